//! Classifying with a saved model: the [`Classifier`] a program embeds, and
//! what `backprop predict` and `serve` run.
//!
//! A [`Classifier`] holds a net loaded from a checkpoint and prepares what it
//! is given as the model's training data was prepared (the checkpoint's
//! [`InputKind`]): a picture of a digit goes through `preprocess::mnist_like`
//! (inverted if dark on light, cropped, centred), any other picture is
//! resized and converted as its folder's pictures were (both with the
//! feature `images`), a table row is encoded column by column
//! ([`crate::data::TableEncoding`]). The answer is the softmax of the
//! scores, by class name.
//!
//! One classifier serves many threads at once, all reading the one net it
//! loaded ([`Network::infer`]): each thread keeps only its activations and
//! working memory (a [`NetScratch`]) and its input buffer, made on the
//! thread's first call and kept in a thread-local cache, so a call takes no
//! lock and allocates only its answer. (A net with a layer type of the
//! user's own that has no [`Layer::infer`](crate::layers::Layer::infer) is
//! the exception: each thread then runs a copy of the net.)
//!
//! ```
//! use backprop::predict::{format_top, top};
//! let p = [0.01, 0.9, 0.02, 0.07];
//! assert_eq!(top(&p, 2), vec![(1, 0.9), (3, 0.07)]);
//! let names = ["ant", "bee", "cat", "dog"].map(String::from);
//! assert_eq!(format_top(&p, &names, 3), "bee (0.900), dog (0.070), cat (0.020)");
//! ```

#[cfg(feature = "images")]
mod picture;
#[cfg(feature = "images")]
pub mod preprocess;

use std::cell::RefCell;
use std::path::Path;
use std::sync::{Arc, Weak};

#[cfg(feature = "images")]
pub use picture::{
    ImageError, MAX_DECODE_BYTES, MAX_SIDE, decode_picture, load_gray, load_gray_bytes,
    preprocess_bytes,
};

use crate::checkpoint::{self, CheckpointError, ModelInfo};
use crate::data::InputKind;
use crate::nets::{InputError, NetScratch, Network};
use crate::tensor::Tensor;
use crate::train::infer_rows;

/// The `k` most probable classes, most probable first.
pub fn top(probabilities: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut order: Vec<(usize, f64)> = probabilities.iter().copied().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(k);
    order
}

/// `7 (0.981), 1 (0.012), 9 (0.004)`, by class name.
pub fn format_top(probabilities: &[f64], names: &[String], k: usize) -> String {
    top(probabilities, k)
        .iter()
        .map(|&(c, p)| format!("{} ({p:.3})", names.get(c).map_or("?", String::as_str)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Softmax of `scores`, in f64 and shifted by the maximum so it cannot overflow.
pub fn softmax(scores: &[f32]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = scores.iter().map(|&s| f64::from(s - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// One example's answer: the most probable class (the lower index on a tie),
/// its name, and every class's probability in score order.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction<'a> {
    pub class: usize,
    pub name: &'a str,
    pub probabilities: Vec<f32>,
}

impl Prediction<'_> {
    /// The probability of the predicted class.
    pub fn probability(&self) -> f32 {
        self.probabilities[self.class]
    }
}

/// A loaded model, ready to classify pixels, pictures or table rows as its
/// training data was prepared; `Send + Sync`, for any number of threads at
/// once. Cloning it is cheap (the loaded net is shared).
///
/// ```
/// use backprop::Classifier;
/// # let dir = std::env::temp_dir().join(format!("backprop-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("model.safetensors");
/// # let net = backprop::nets::MultiLayerNet::new(784, &[10], 10).build::<f32>(0).unwrap();
/// # let info = backprop::checkpoint::ModelInfo::builtin(
/// #     backprop::data::DatasetName::Mnist, 10, [1, 28, 28], 0, 1);
/// # backprop::checkpoint::save(&path, &net, &info).unwrap();
/// let classifier = Classifier::open(&path).unwrap();
/// let p = classifier.predict(&[0.0; 784]).unwrap();
/// assert_eq!(p.name, classifier.class_names()[p.class]);
/// assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct Classifier {
    model: Arc<Model>,
}

/// What every thread runs.
struct Model {
    net: Network<f32>,
    info: ModelInfo,
    /// One example's shape, batch axis first: `[1, C, H, W]`.
    shape: [usize; 4],
    /// Rows per slice of a batch ([`infer_rows`]).
    slice_rows: usize,
}

/// What one thread keeps for one model: the net's activations and working
/// memory, and the input buffer it reuses.
struct Worker {
    /// Which model; dead once every clone of its classifier is dropped.
    model: Weak<Model>,
    scratch: NetScratch<f32>,
    /// A copy of the net, only for a net that [`Network::infer`] cannot run
    /// (a layer type of the user's own without `infer`).
    replica: Option<Network<f32>>,
    x: Tensor<f32>,
}

thread_local! {
    /// This thread's workers, one per live classifier it has run.
    static WORKERS: RefCell<Vec<Worker>> = const { RefCell::new(Vec::new()) };
}

/// A table row or a vector that does not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error("{0}")]
    Row(String),
    #[error("the model takes {0}, not rows")]
    NotRows(String),
    #[error(transparent)]
    Input(#[from] InputError),
}

impl Classifier {
    /// Loads the checkpoint at `path` (a `model.safetensors` that `backprop
    /// train` wrote); a file that is not one is the checkpoint loader's error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CheckpointError> {
        let path = path.as_ref();
        let (net, info) = checkpoint::load::<f32>(path)?;
        Self::new(net, info, path)
    }

    /// A classifier of the checkpoint in `bytes`, for example a model built
    /// into the program with `include_bytes!`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let path = Path::new("<model bytes>");
        let (net, info) = checkpoint::load_bytes::<f32>(path, bytes)?;
        Self::new(net, info, path)
    }

    /// A classifier of `net`, which `info` describes; `path` names it in errors.
    pub fn new(
        mut net: Network<f32>,
        info: ModelInfo,
        path: &Path,
    ) -> Result<Self, CheckpointError> {
        net.check_input(&info.input_shape)
            .map_err(|e| CheckpointError::Mismatch {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let [c, h, w] = info.input_shape;
        let slice_rows = infer_rows(net.widest_values(&info.input_shape));
        Ok(Classifier {
            model: Arc::new(Model {
                net,
                info,
                shape: [1, c, h, w],
                slice_rows,
            }),
        })
    }

    /// What the checkpoint says about the model: its data set, classes and input.
    pub fn info(&self) -> &ModelInfo {
        &self.model.info
    }

    /// The net as loaded, which every call runs.
    pub fn net(&self) -> &Network<f32> {
        &self.model.net
    }

    /// Rows of a batch that run at a time, as the trainer's inference slices
    /// batches for this net: about 2.5 MB of activations in its widest
    /// layer, at most 1,000 rows, so that they stay in the cache from layer
    /// to layer.
    pub fn slice_rows(&self) -> usize {
        self.model.slice_rows
    }

    /// The classes' names, in score order.
    pub fn class_names(&self) -> &[String] {
        &self.model.info.class_names
    }

    /// What the model takes, in words.
    pub fn takes(&self) -> String {
        match &self.model.info.input {
            InputKind::Digits => "pictures of digits (any size, preprocessed as MNIST)".into(),
            InputKind::Images {
                width,
                height,
                channels,
            } => format!("pictures (resized to {width}x{height}, {channels} channel(s))"),
            InputKind::Vectors => format!("vectors of {} values", self.values()),
            InputKind::Table(t) => {
                let names: Vec<&str> = t.input_columns().map(|c| c.name.as_str()).collect();
                format!("table rows with the columns {}", names.join(", "))
            }
        }
    }

    /// Values per example: pixels are `[C, H, W]` in row-major order, each in
    /// `[0, 1]` as the training data's were.
    pub fn values(&self) -> usize {
        self.model.info.input_shape.iter().product()
    }

    /// Runs the net on `x` as `rows` examples (or, if that is not what `x`
    /// holds, as one example of its length, which the net then refuses,
    /// naming what it takes) with this thread's worker, made on the first
    /// call, and hands `each` the scores of each example. Workers of dropped
    /// classifiers go on the way.
    fn run(&self, x: &[f32], rows: usize, each: &mut dyn FnMut(&[f32])) -> Result<(), InputError> {
        WORKERS.with_borrow_mut(|workers| {
            workers.retain(|w| w.model.strong_count() > 0);
            let mine = Arc::as_ptr(&self.model);
            let i = match workers.iter().position(|w| w.model.as_ptr() == mine) {
                Some(i) => i,
                None => {
                    let net = &self.model.net;
                    workers.push(Worker {
                        model: Arc::downgrade(&self.model),
                        scratch: NetScratch::new(),
                        replica: (!net.has_infer()).then(|| net.clone()),
                        x: Tensor::zeros(&self.model.shape),
                    });
                    workers.len() - 1
                }
            };
            let Worker {
                scratch,
                replica,
                x: input,
                ..
            } = &mut workers[i];
            if rows * self.values() == x.len() {
                let mut shape = self.model.shape;
                shape[0] = rows;
                input.resize(&shape);
            } else {
                input.resize(&[1, x.len()]);
            }
            input.data_mut().copy_from_slice(x);
            let scores = match replica {
                Some(net) => net.predict(input, false)?,
                None => self.model.net.infer(input, scratch)?,
            };
            scores.data().chunks_exact(scores.cols()).for_each(each);
            Ok(())
        })
    }

    /// The scores of each example of `x`, in order, handed to `each`: one
    /// example if `one`, else a batch of them, run [`Classifier::slice_rows`] rows at a
    /// time as the trainer's inference runs (the activations of a slice stay
    /// in the cache from layer to layer).
    fn scores(&self, x: &[f32], one: bool, mut each: impl FnMut(&[f32])) -> Result<(), InputError> {
        if x.is_empty() {
            return Err(InputError::EmptyBatch);
        }
        let values = self.values();
        if !x.len().is_multiple_of(values) || (one && x.len() != values) {
            return self.run(x, 1, &mut each);
        }
        for slice in x.chunks(self.slice_rows() * values) {
            self.run(slice, slice.len() / values, &mut each)?;
        }
        Ok(())
    }

    /// Class probabilities (f64) for one example as the net takes it
    /// ([`Classifier::values`] values, already prepared); another count is
    /// an error naming both.
    pub fn probabilities(&self, x: &[f32]) -> Result<Vec<f64>, InputError> {
        let mut p = Vec::new();
        self.scores(x, true, |s| p = softmax(s))?;
        Ok(p)
    }

    /// The class of one example given as the model's input: pixels `[C, H,
    /// W]` in `[0, 1]` (or a table row already encoded, see
    /// [`Classifier::predict_row`] for raw rows).
    pub fn predict(&self, x: &[f32]) -> Result<Prediction<'_>, InputError> {
        Ok(self.prediction(self.probabilities(x)?))
    }

    /// [`Classifier::predict`] for a batch: `x` holds the examples one after
    /// the other.
    pub fn predict_batch(&self, x: &[f32]) -> Result<Vec<Prediction<'_>>, InputError> {
        let mut out = Vec::with_capacity(x.len() / self.values().max(1));
        self.scores(x, false, |s| out.push(self.prediction(softmax(s))))?;
        Ok(out)
    }

    /// The most probable class of every example of the batch `x`, and
    /// nothing else: for throughput (`backprop bench w3-classifier`).
    pub fn predict_classes(&self, x: &[f32]) -> Result<Vec<usize>, InputError> {
        let mut out = Vec::with_capacity(x.len() / self.values().max(1));
        self.scores(x, false, |s| out.push(argmax(s)))?;
        Ok(out)
    }

    /// The prediction that `probabilities` (in f64, as softmax gives them) make.
    pub fn prediction(&self, probabilities: Vec<f64>) -> Prediction<'_> {
        let class = top(&probabilities, 1).first().map_or(0, |&(c, _)| c);
        Prediction {
            class,
            name: self.class_names().get(class).map_or("?", String::as_str),
            probabilities: probabilities.into_iter().map(|p| p as f32).collect(),
        }
    }

    /// The class of a raw table row: the values of the model's input columns,
    /// in their order (the row without its label), standardised and one-hot
    /// encoded as the training table was. A vector model takes its values as
    /// numbers.
    pub fn predict_row(&self, values: &[&str]) -> Result<Prediction<'_>, RowError> {
        Ok(self.prediction(self.classify_row(values)?))
    }

    /// [`Classifier::predict_row`]'s probabilities, in f64.
    pub fn classify_row(&self, values: &[&str]) -> Result<Vec<f64>, RowError> {
        let mut x = Vec::with_capacity(self.values());
        match &self.model.info.input {
            InputKind::Table(t) => t.encode(values, &mut x).map_err(RowError::Row)?,
            InputKind::Vectors => {
                for v in values {
                    x.push(
                        v.trim()
                            .parse::<f32>()
                            .map_err(|_| RowError::Row(format!("{v:?} is not a number")))?,
                    );
                }
            }
            InputKind::Digits | InputKind::Images { .. } => {
                return Err(RowError::NotRows(self.takes()));
            }
        }
        Ok(self.probabilities(&x)?)
    }
}

/// The index of the highest score, the first on a tie (as `argmax_rows`).
fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests;
