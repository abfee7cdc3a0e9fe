//! `backprop serve`: a draw-a-digit web page and a JSON endpoint; the model
//! runs here, on the server.
//!
//! - `GET /`: the page (one static file, embedded in the binary).
//! - `GET /info`: the model's data set and class count.
//! - `POST /predict` with `{"pixels": [...]}`: 784 grey levels (0-255) of a
//!   28x28 image already laid out like MNIST (ink bright, 20x20, centred), used
//!   as they are; or `{"pixels": [...], "width": W, "height": H}`: a picture of
//!   any size and polarity, preprocessed like `backprop predict`. Answers
//!   `{"probabilities": [10 numbers], "prediction": k}`. Anything malformed gets
//!   400 with `{"error": "..."}`.
//!
//! Requests are answered one at a time: a forward pass takes microseconds,
//! so a thread pool would buy nothing for one person drawing.

use std::io::{Cursor, Read};
use std::path::Path;

use anyhow::{Result, anyhow};
use serde::Deserialize;
use serde_json::json;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::predict::Classifier;
use crate::predict::preprocess::{SIDE, mnist_like};

const PAGE: &str = include_str!("index.html");

/// Largest request body: a 1000x1000 canvas as JSON integers fits easily.
pub const MAX_BODY: usize = 16 << 20;

/// Largest picture accepted, in pixels.
pub const MAX_PIXELS: usize = 4_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    pixels: Vec<f64>,
    width: Option<usize>,
    height: Option<usize>,
}

/// An HTTP status and the JSON to send with it.
pub type Reply = (u16, serde_json::Value);

fn bad(message: impl Into<String>) -> Reply {
    (400, json!({ "error": message.into() }))
}

/// The `/predict` logic on a request body, independent of HTTP.
pub fn predict_body(classifier: &mut Classifier, body: &[u8]) -> Reply {
    let req: PredictRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return bad(format!(
                "malformed request: {e}; send {{\"pixels\": [784 grey levels]}} or {{\"pixels\": [...], \"width\": W, \"height\": H}}"
            ));
        }
    };
    if let Some(bad_value) = req.pixels.iter().find(|v| !(0.0..=255.0).contains(*v)) {
        return bad(format!("pixel value {bad_value} is outside 0..255"));
    }
    let n = req.pixels.len();
    let image = match (req.width, req.height) {
        (None, None) => {
            if n != SIDE * SIDE {
                return bad(format!(
                    "got {n} pixels; without width and height, send {} (a 28x28 image)",
                    SIDE * SIDE
                ));
            }
            req.pixels.iter().map(|&v| (v / 255.0) as f32).collect()
        }
        (Some(w), Some(h)) => {
            if w.checked_mul(h).is_none_or(|p| p > MAX_PIXELS) {
                return bad(format!("{w}x{h} is larger than {MAX_PIXELS} pixels"));
            }
            let gray: Vec<f32> = req.pixels.iter().map(|&v| v as f32).collect();
            match mnist_like(&gray, w, h) {
                Ok(x) => x,
                Err(e) => return bad(e.to_string()),
            }
        }
        _ => return bad("give both width and height, or neither (for 784 pixels)"),
    };
    let probabilities = match classifier.probabilities(&image) {
        Ok(p) => p,
        Err(e) => return bad(e.to_string()),
    };
    let prediction = crate::predict::top(&probabilities, 1)[0].0;
    (
        200,
        json!({ "probabilities": probabilities, "prediction": prediction }),
    )
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Cursor<Vec<u8>>> {
    let header = Header::from_bytes("Content-Type", content_type).expect("valid header");
    Response::from_data(body)
        .with_status_code(status)
        .with_header(header)
}

fn json_response((status, value): Reply) -> Response<Cursor<Vec<u8>>> {
    respond(status, "application/json", value.to_string().into_bytes())
}

fn handle(classifier: &mut Classifier, req: &mut Request) -> Response<Cursor<Vec<u8>>> {
    let path = req.url().split('?').next().unwrap_or("").to_owned();
    match (req.method(), path.as_str()) {
        (Method::Get, "/") | (Method::Get, "/index.html") => {
            respond(200, "text/html; charset=utf-8", PAGE.as_bytes().to_vec())
        }
        (Method::Get, "/info") => json_response((
            200,
            json!({
                "dataset": classifier.info.dataset.as_str(),
                "classes": classifier.info.classes,
                "epoch": classifier.info.epoch,
            }),
        )),
        (Method::Post, "/predict") => {
            let mut body = Vec::new();
            let read = req
                .as_reader()
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body);
            match read {
                Err(e) => json_response(bad(format!("cannot read the request body: {e}"))),
                Ok(_) if body.len() > MAX_BODY => json_response((
                    413,
                    json!({ "error": format!("request body larger than {MAX_BODY} bytes") }),
                )),
                Ok(_) => json_response(predict_body(classifier, &body)),
            }
        }
        (_, "/" | "/index.html" | "/info" | "/predict") => json_response((
            405,
            json!({ "error": format!("{} is not allowed on {path}", req.method()) }),
        )),
        _ => json_response((404, json!({ "error": format!("no page at {path}") }))),
    }
}

/// Serves the model at `model` on `host:port` until the process is stopped.
/// Port 0 picks a free port; the address is printed either way.
pub fn serve(model: &Path, host: &str, port: u16) -> Result<()> {
    let mut classifier = Classifier::load(model)?;
    let server = Server::http((host, port))
        .map_err(|e| anyhow!("cannot listen on {host}:{port}: {e}; try another --port"))?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| anyhow!("the server has no IP address"))?;
    println!(
        "serving {} ({}, epoch {}) on http://{addr}/  (Ctrl-C stops)",
        model.display(),
        classifier.info.dataset,
        classifier.info.epoch
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    for mut req in server.incoming_requests() {
        let response = handle(&mut classifier, &mut req);
        // A client that hung up before the answer is its own business.
        let _ = req.respond(response);
    }
    Ok(())
}
