//! backprop: neural networks trained by explicit, layer-by-layer
//! backpropagation, after "Deep Learning from Scratch".
//!
//! A net is an ordered chain of [`layers`] ending in
//! [`layers::SoftmaxWithLoss`]; [`nets::Network::gradient`] runs the loss
//! forward, then `dout = 1` back through the layers in reverse;
//! [`gradcheck`] compares that with central differences.

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod data;
pub mod dist;
pub mod eval;
pub mod experiments;
#[cfg(feature = "onnx")]
pub mod export;
mod font;
pub mod fuzzing;
pub mod gradcheck;
pub mod layers;
pub mod learn;
pub mod nets;
pub mod optim;
pub mod plot;
pub mod predict;
pub mod serve;
pub mod show;
pub mod tensor;
pub mod train;

/// The README's example, compiled and run by `cargo test` so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
