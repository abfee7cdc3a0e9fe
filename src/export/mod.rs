//! Exporting a trained net for other runtimes, one file per format:
//! [`onnx`] (onnxruntime, tract, and every runtime that reads ONNX; behind
//! the cargo feature `onnx`, on by default).
//!
//! An exporter reads the net's layers, not its checkpoint, so whatever
//! [`checkpoint::load`](crate::checkpoint::load) gives, or a net built in
//! code from the library's layers, exports; a layer the format cannot
//! express is an [`ExportError`] naming it.

pub mod onnx;

use std::path::{Path, PathBuf};

use crate::nets::{InputError, SpecError};

/// Why a net could not be exported, or its file not written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "cannot export layer {index} ({layer}) to {format}: {reason}; export nets made of the \
         library's layers (Affine, Convolution, MaxPooling, BatchNorm, Dropout, Relu, Sigmoid, \
         Tanh, Flatten)"
    )]
    Unsupported {
        format: &'static str,
        /// 1-based position in the chain.
        index: usize,
        layer: &'static str,
        reason: String,
    },
    /// The net does not take the model's input shape.
    #[error("cannot export the net: {0}")]
    Input(#[from] InputError),
    #[error("cannot export the net: {0}")]
    Spec(#[from] SpecError),
    #[error("the net gives {scores} scores, but the model has {classes} classes")]
    Classes { scores: usize, classes: usize },
    #[error("cannot write {}: the folder {} does not exist; create it first", path.display(), folder.display())]
    NoFolder { path: PathBuf, folder: PathBuf },
    #[error("cannot write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
}

/// Writes `bytes` to `path` atomically (a temporary file renamed into place,
/// as checkpoints are written), after checking that its folder exists.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let folder = path
        .parent()
        .filter(|f| !f.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(ExportError::NoFolder {
            path: path.to_owned(),
            folder: folder.to_owned(),
        });
    }
    crate::checkpoint::write_atomically(path, bytes).map_err(|err| ExportError::Write {
        path: path.to_owned(),
        err,
    })
}
