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
//! Connections are served concurrently, each on its own thread ([`http`]);
//! the forward passes share a pool of as many classifiers as there are cores
//! (at least 2), so a slow client costs a sleeping thread, not a classifier,
//! and one large picture does not hold up the others.

pub mod http;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::json;

use http::{Request, Response};

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
    let probabilities = classifier.probabilities(&image);
    let prediction = crate::predict::top(&probabilities, 1)[0].0;
    (
        200,
        json!({ "probabilities": probabilities, "prediction": prediction }),
    )
}

/// Classifiers lent out one forward pass at a time.
struct Pool {
    free: Mutex<Vec<Classifier>>,
    returned: Condvar,
}

impl Pool {
    /// Runs `f` on a free classifier, waiting for one if all are busy.
    fn with<T>(&self, f: impl FnOnce(&mut Classifier) -> T) -> T {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let mut classifier = loop {
            match free.pop() {
                Some(c) => break c,
                None => {
                    free = self
                        .returned
                        .wait(free)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        };
        drop(free);
        let out = f(&mut classifier);
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(classifier);
        self.returned.notify_one();
        out
    }
}

fn handle(pool: &Pool, info: &serde_json::Value, req: &Request) -> Response {
    let path = req.path.as_str();
    match (req.method.as_str(), path) {
        ("GET", "/" | "/index.html") => Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: PAGE.as_bytes().to_vec(),
        },
        ("GET", "/info") => Response::json(200, info),
        ("POST", "/predict") => {
            let (status, value) = pool.with(|c| predict_body(c, &req.body));
            Response::json(status, &value)
        }
        (method, "/" | "/index.html" | "/info" | "/predict") => Response::json(
            405,
            &json!({ "error": format!("{method} is not allowed on {path}") }),
        ),
        _ => Response::json(404, &json!({ "error": format!("no page at {path}") })),
    }
}

/// Serves the model at `model` on `host:port` until the process is stopped.
/// Port 0 picks a free port; the address is printed either way.
pub fn serve(model: &Path, host: &str, port: u16) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let classifiers = (0..threads)
        .map(|_| Classifier::load(model))
        .collect::<Result<Vec<_>>>()?;
    let model_info = &classifiers[0].info;
    let info = json!({
        "dataset": model_info.dataset.as_str(),
        "classes": model_info.classes,
        "epoch": model_info.epoch,
    });
    let listener = std::net::TcpListener::bind((host, port))
        .with_context(|| format!("cannot listen on {host}:{port}; try another --port"))?;
    println!(
        "serving {} ({}, epoch {}) on http://{}/  (Ctrl-C stops)",
        model.display(),
        model_info.dataset,
        model_info.epoch,
        listener.local_addr()?
    );
    let pool = Pool {
        free: Mutex::new(classifiers),
        returned: Condvar::new(),
    };
    use std::io::Write;
    std::io::stdout().flush()?;
    http::run(
        listener,
        MAX_BODY,
        Arc::new(move |req: &Request| handle(&pool, &info, req)),
    )
}
