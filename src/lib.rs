//! backprop: neural networks trained by explicit, layer-by-layer
//! backpropagation, after "Deep Learning from Scratch".
//!
//! A net is an ordered chain of [`layers`] ending in
//! [`layers::SoftmaxWithLoss`]; [`nets::Network::gradient`] runs the loss
//! forward, then `dout = 1` back through the layers in reverse;
//! [`gradcheck`] compares that with central differences.

pub mod bench;
pub mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod dist;
pub mod eval;
#[cfg(feature = "cli")]
pub mod experiments;
#[cfg(feature = "onnx")]
pub mod export;
#[cfg(feature = "plots")]
mod font;
pub mod fuzzing;
pub mod gradcheck;
pub mod layers;
#[cfg(feature = "cli")]
pub mod learn;
pub mod nets;
pub mod optim;
#[cfg(feature = "plots")]
pub mod plot;
pub mod predict;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(feature = "plots")]
pub mod show;
pub mod tensor;
pub mod train;

pub use predict::{Classifier, Prediction};

/// The README's example, compiled and run by `cargo test` so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
