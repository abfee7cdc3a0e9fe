//! `backprop serve`: a JSON endpoint for any saved model, and for a digit
//! model a draw-a-digit web page; the model runs here, on the server.
//!
//! - `GET /`: for a digit model the page (one static file, embedded in the
//!   binary); for others a page saying what `/predict` takes.
//! - `GET /info`: the model's data set, class names and what it takes.
//! - `POST /predict`, for a digit model, with `{"pixels": [...]}`: 784 grey
//!   levels (0-255) of a 28x28 image already laid out like MNIST (ink bright,
//!   20x20, centred), used as they are; or `{"pixels": [...], "width": W,
//!   "height": H}`: a picture of any size and polarity, preprocessed like
//!   `backprop predict`. For any model of pictures, the picture itself as the
//!   body (PNG, JPEG, BMP), prepared as `predict` prepares a file. These answer
//!   `{"probabilities": [...], "prediction": k, "class": "name"}`. For a table
//!   model, `{"features": [...]}` (one raw row without its label: the values of
//!   the columns `/info` lists, strings or numbers) answers the same, and
//!   `{"rows": [[...], ...]}` answers `{"predictions": [{...}, ...]}`.
//!   Anything malformed gets 400 with `{"error": "..."}`.
//!
//! Other paths get 404 and other methods 405, with `{"error": "..."}` like
//! every refusal made past the request head. A head that cannot be read is
//! refused by hyper itself, without a body: 400, or 431 when too long (also
//! for a Content-Length of 2^64 - 3 or more).
//!
//! HTTP is hyper's (HTTP/1.1 on a tokio multi-thread runtime), routed by
//! axum, with a limit on everything a client controls: at most
//! [`MAX_CONNECTIONS`] open at once (more wait in the listen queue); the head
//! must arrive within [`HEAD_TIMEOUT`], which also closes idle keep-alive
//! connections, and fit in [`MAX_HEAD`] bytes; a body declared larger than
//! [`MAX_BODY`] gets 413 before any of it is read, a chunked one as soon as it
//! passes the limit; the body must arrive and the answer be ready within
//! [`REQUEST_TIMEOUT`] (else 408); a client that stops reading its answers is
//! dropped after [`WRITE_TIMEOUT`]. Every request runs the one classifier
//! (it is `Sync`), at most as many at once as there are cores (at least 2); a large picture is decoded and
//! preprocessed off the runtime's threads, so it does not hold up the others.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::data::InputKind;
use crate::predict::Classifier;
use crate::predict::preprocess::{SIDE, mnist_like};

const PAGE: &str = include_str!("index.html");

/// Largest request body: a 1000x1000 canvas as JSON integers fits easily.
pub const MAX_BODY: usize = 16 << 20;

/// Largest request line plus headers, in bytes.
pub const MAX_HEAD: usize = 16 << 10;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 256;

/// Time a client has to send a request head, counted from when the server
/// starts waiting for it (so it also closes idle keep-alive connections).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(20);

/// Time from a complete head to the answer: the body must arrive within it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Time an answer may wait for the client to read it, before the
/// connection is closed.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// Bodies up to this size are answered on the runtime's thread (a 28x28
/// image is about 3 KiB and takes microseconds); larger ones on a blocking
/// thread.
const INLINE_BODY: usize = 64 << 10;

/// Largest picture accepted, in pixels.
pub const MAX_PIXELS: usize = 4_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    pixels: Option<Vec<f64>>,
    width: Option<usize>,
    height: Option<usize>,
    /// One table row without its label.
    features: Option<Vec<serde_json::Value>>,
    /// Several.
    rows: Option<Vec<Vec<serde_json::Value>>>,
}

/// An HTTP status and the JSON to send with it.
pub type Reply = (u16, serde_json::Value);

fn bad(message: impl Into<String>) -> Reply {
    (400, json!({ "error": message.into() }))
}

/// `&<>"` escaped, for a page that names the model.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `{"probabilities": [...], "prediction": k, "class": "name"}`.
fn answer(classifier: &Classifier, probabilities: Vec<f64>) -> serde_json::Value {
    let prediction = crate::predict::top(&probabilities, 1)[0].0;
    json!({
        "probabilities": probabilities,
        "prediction": prediction,
        "class": classifier.class_names()[prediction],
    })
}

/// What a request of the model's kind looks like, for error messages.
fn expected(classifier: &Classifier) -> String {
    match classifier.info().input {
        InputKind::Digits => "send {\"pixels\": [784 grey levels]}, {\"pixels\": [...], \"width\": W, \"height\": H}, or a picture (PNG, JPEG, BMP) as the body".into(),
        InputKind::Images { .. } => "send a picture (PNG, JPEG, BMP) as the body".into(),
        InputKind::Table(_) | InputKind::Vectors => format!(
            "send {{\"features\": [one value per column]}} or {{\"rows\": [[...], ...]}}; the model takes {}",
            classifier.takes()
        ),
    }
}

/// A JSON value as a table cell: strings as they are, numbers as written.
fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `/predict` logic on a request body, independent of HTTP.
pub fn predict_body(classifier: &Classifier, body: &[u8]) -> Reply {
    let picture_model = matches!(
        classifier.info().input,
        InputKind::Digits | InputKind::Images { .. }
    );
    if picture_model && image::guess_format(body).is_ok() {
        return match classifier.classify_picture(std::path::Path::new("the body"), body) {
            Ok(p) => (200, answer(classifier, p)),
            Err(e) => bad(e.to_string()),
        };
    }
    let req: PredictRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return bad(format!("malformed request: {e}; {}", expected(classifier)));
        }
    };
    match (&classifier.info().input, req) {
        (
            InputKind::Table(_) | InputKind::Vectors,
            PredictRequest {
                features,
                rows,
                pixels: None,
                width: None,
                height: None,
            },
        ) if features.is_some() != rows.is_some() => {
            let one = features.is_some();
            let rows = rows.unwrap_or_else(|| features.into_iter().collect());
            let mut answers = Vec::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                let values: Vec<String> = row.iter().map(cell).collect();
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                match classifier.classify_row(&values) {
                    Ok(p) => answers.push(answer(classifier, p)),
                    Err(e) if one => return bad(e.to_string()),
                    Err(e) => return bad(format!("row {}: {e}", i + 1)),
                }
            }
            match answers.pop() {
                Some(a) if one => (200, a),
                last => {
                    answers.extend(last);
                    (200, json!({ "predictions": answers }))
                }
            }
        }
        (
            InputKind::Digits,
            PredictRequest {
                pixels: Some(pixels),
                width,
                height,
                features: None,
                rows: None,
            },
        ) => digit_pixels(classifier, &pixels, width, height),
        _ => bad(format!(
            "this request does not fit the model: {}",
            expected(classifier)
        )),
    }
}

/// `{"pixels": [...]}` for a digit model.
fn digit_pixels(
    classifier: &Classifier,
    pixels: &[f64],
    width: Option<usize>,
    height: Option<usize>,
) -> Reply {
    if let Some(bad_value) = pixels.iter().find(|v| !(0.0..=255.0).contains(*v)) {
        return bad(format!("pixel value {bad_value} is outside 0..255"));
    }
    let n = pixels.len();
    let image = match (width, height) {
        (None, None) => {
            if n != SIDE * SIDE {
                return bad(format!(
                    "got {n} pixels; without width and height, send {} (a 28x28 image)",
                    SIDE * SIDE
                ));
            }
            pixels.iter().map(|&v| (v / 255.0) as f32).collect()
        }
        (Some(w), Some(h)) => {
            if w.checked_mul(h).is_none_or(|p| p > MAX_PIXELS) {
                return bad(format!("{w}x{h} is larger than {MAX_PIXELS} pixels"));
            }
            let gray: Vec<f32> = pixels.iter().map(|&v| v as f32).collect();
            match mnist_like(&gray, w, h) {
                Ok(x) => x,
                Err(e) => return bad(e.to_string()),
            }
        }
        _ => return bad("give both width and height, or neither (for 784 pixels)"),
    };
    match classifier.probabilities(&image) {
        Ok(p) => (200, answer(classifier, p)),
        Err(e) => bad(e.to_string()),
    }
}

/// What the handlers share.
struct App {
    /// The one classifier every request runs (each thread with its own
    /// activations, the net shared).
    classifier: Classifier,
    /// A permit per forward pass running: as many as there are cores, so
    /// that a burst of requests waits without holding the runtime's threads.
    forward_passes: Arc<Semaphore>,
    info: serde_json::Value,
    /// The draw-a-digit page, or for other models a page saying what they take.
    page: String,
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(status, &json!({ "error": message.into() }))
}

async fn page(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        app.page.clone(),
    )
        .into_response()
}

async fn info(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, &app.info)
}

async fn predict(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let permit = Arc::clone(&app.forward_passes)
        .acquire_owned()
        .await
        .expect("the forward passes' semaphore is never closed");
    let (status, value) = if body.len() <= INLINE_BODY {
        predict_body(&app.classifier, &body)
    } else {
        // Parsing megabytes of JSON and resizing a large picture take
        // milliseconds: too long to hold one of the runtime's threads.
        let app = Arc::clone(&app);
        let pass = move || {
            let _permit = permit;
            predict_body(&app.classifier, &body)
        };
        match tokio::task::spawn_blocking(pass).await {
            Ok(reply) => reply,
            Err(e) => (
                500,
                json!({ "error": format!("the prediction failed: {e}") }),
            ),
        }
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &value)
}

async fn not_found(uri: Uri) -> Response {
    error(StatusCode::NOT_FOUND, format!("no page at {}", uri.path()))
}

async fn not_allowed(method: Method, uri: Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Gives the refusals made by the layers (413, 408) and by axum's body
/// extractor (400, 413) the same JSON shape as the handlers' own.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("request body larger than {MAX_BODY} bytes"),
        StatusCode::REQUEST_TIMEOUT => format!(
            "the request body did not arrive within {} s",
            REQUEST_TIMEOUT.as_secs()
        ),
        _ => {
            let text = axum::body::to_bytes(response.into_body(), MAX_HEAD)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            let reason = status.canonical_reason().unwrap_or("error");
            if text.is_empty() {
                reason.to_owned()
            } else {
                text.into_owned()
            }
        }
    };
    error(status, message)
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/info", get(info))
        .route("/predict", post(predict))
        .fallback(not_found)
        .method_not_allowed_fallback(not_allowed)
        // Refuses a declared Content-Length over the limit before reading,
        // and limits the bytes read; axum's own limit (2 MiB by default)
        // is set to the same.
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(Arc::new(app))
}

/// Serves `app` on `listener` forever, at most [`MAX_CONNECTIONS`] at once.
async fn accept(listener: tokio::net::TcpListener, app: Router) -> Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        // The whole head must fit in the read buffer, else 431.
        .max_buf_size(MAX_HEAD);
    loop {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait for connections to close.
                eprintln!("cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // hyper has no write timeout: without one, a client that sends
        // requests and never reads the answers would keep its slot forever.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let connection = http.serve_connection(
            TokioIo::new(Box::pin(stream)),
            TowerToHyperService::new(app.clone()),
        );
        tokio::spawn(async move {
            // A client that hangs up or misbehaves is its own business.
            let _ = connection.await;
            drop(slot);
        });
    }
}

/// Serves the model at `model` on `host:port` until the process is stopped.
/// Port 0 picks a free port; the address is printed either way.
pub fn serve(model: &Path, host: &str, port: u16) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let classifier = Classifier::open(model)?;
    let model_info = classifier.info();
    let takes = classifier.takes();
    let columns: Option<Vec<&str>> = match &model_info.input {
        InputKind::Table(t) => Some(t.input_columns().map(|c| c.name.as_str()).collect()),
        _ => None,
    };
    let info = json!({
        "dataset": model_info.dataset.to_string(),
        "classes": model_info.class_names,
        "epoch": model_info.epoch,
        "takes": takes,
        "columns": columns,
    });
    let page = match model_info.input {
        InputKind::Digits => PAGE.to_owned(),
        _ => format!(
            "<!doctype html><meta charset=\"utf-8\"><title>backprop</title>\
             <h1>{}</h1><p>This model takes {}. POST them to <code>/predict</code> \
             (see <code>/info</code>); it answers the probabilities of its {} classes.</p>",
            html_escape(&model.display().to_string()),
            html_escape(&takes),
            model_info.classes()
        ),
    };
    let listener = std::net::TcpListener::bind((host, port))
        .with_context(|| format!("cannot listen on {host}:{port}; try another --port"))?;
    println!(
        "serving {} ({}, epoch {}) on http://{}/  (Ctrl-C stops)",
        model.display(),
        model_info.dataset,
        model_info.epoch,
        listener.local_addr()?
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    let app = App {
        classifier,
        forward_passes: Arc::new(Semaphore::new(threads)),
        info,
        page,
    };
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        accept(listener, router(app)).await
    })
}
