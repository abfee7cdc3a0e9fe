//! Optimizers: one rule per file, each updating parameters from their
//! gradients with state of its own, as the textbook's `common/optimizer.py`.
//!
//! Every rule here is elementwise, so [`Optimizer::update`] works on any slice
//! of a parameter: the trainer hands each thread its own part of every tensor.
//! State is kept outside the rule in [`OptimizerState`] (per parameter, one
//! vector per slot, e.g. Adam's `m` and `v`), which checkpoints can save.
//!
//! ```
//! use backprop::layers::Labels;
//! use backprop::nets::MultiLayerNet;
//! use backprop::optim::{self, OptimizerState};
//! use backprop::tensor::Tensor;
//! let mut net = MultiLayerNet::new(2, &[8], 2).build::<f64>(0).unwrap();
//! let mut opt = OptimizerState::new(optim::by_name("sgd", 0.1).unwrap(), &net);
//! let x = Tensor::from_vec(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
//! let t = [0, 1];
//! let before = net.gradient(&x, Labels::Index(&t)).unwrap();
//! for _ in 0..50 {
//!     net.gradient(&x, Labels::Index(&t)).unwrap();
//!     opt.step(&mut net);
//! }
//! assert!(net.loss(&x, Labels::Index(&t), false).unwrap() < before);
//! ```

mod adagrad;
mod adam;
mod momentum;
mod rmsprop;
mod schedule;
mod sgd;

pub use adagrad::AdaGrad;
pub use adam::{Adam, AdamW};
pub use momentum::{Momentum, Nesterov};
pub use rmsprop::RmsProp;
pub use schedule::LrSchedule;
pub use sgd::Sgd;

use crate::nets::Network;
use crate::tensor::Float;

/// An update rule.
pub trait Optimizer<T: Float>: Send + Sync {
    fn name(&self) -> &'static str;

    /// State vectors kept per parameter element (Momentum 1, Adam 2).
    fn slots(&self) -> usize;

    /// Called once per step, before the updates (Adam counts steps for its
    /// bias correction).
    fn begin_step(&mut self) {}

    /// Steps taken so far (saved with checkpoints).
    fn steps(&self) -> u64 {
        0
    }

    fn set_steps(&mut self, _steps: u64) {}

    /// The learning rate of the next step.
    fn lr(&self) -> f64;

    /// Changes the learning rate (for a [`LrSchedule`]).
    fn set_lr(&mut self, lr: f64);

    /// Updates `w` from `g` in place. `state[s]` is slot `s` for these same
    /// elements. `decay` says whether `w` is a weight (for AdamW).
    fn update(&self, w: &mut [T], g: &[T], state: &mut [&mut [T]], decay: bool);
}

pub const NAMES: &[&str] = &[
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw",
];

/// The rule called `name` with learning rate `lr` and the textbook's other
/// settings (momentum 0.9, RMSprop decay 0.99, Adam betas 0.9 and 0.999,
/// AdamW weight decay 0.01).
pub fn by_name<T: Float>(name: &str, lr: f64) -> Result<Box<dyn Optimizer<T>>, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(Sgd::new(lr)),
        "momentum" => Box::new(Momentum::new(lr, 0.9)),
        "nesterov" => Box::new(Nesterov::new(lr, 0.9)),
        "adagrad" => Box::new(AdaGrad::new(lr)),
        "rmsprop" => Box::new(RmsProp::new(lr, 0.99)),
        "adam" => Box::new(Adam::new(lr, 0.9, 0.999)),
        "adamw" => Box::new(AdamW::new(lr, 0.9, 0.999, 0.01)),
        _ => {
            return Err(format!(
                "unknown optimizer '{name}': use one of {}",
                NAMES.join(", ")
            ));
        }
    })
}

/// A rule together with its state for every parameter of a net.
pub struct OptimizerState<T: Float> {
    pub rule: Box<dyn Optimizer<T>>,
    /// `state[p][s]`: slot `s` of parameter `p`, as long as the parameter.
    pub state: Vec<Vec<Vec<T>>>,
}

impl<T: Float> OptimizerState<T> {
    pub fn new(rule: Box<dyn Optimizer<T>>, net: &Network<T>) -> Self {
        let slots = rule.slots();
        let state = net
            .params()
            .iter()
            .map(|p| (0..slots).map(|_| vec![T::zero(); p.value.len()]).collect())
            .collect();
        OptimizerState { rule, state }
    }

    /// The textbook's `optimizer.update(params, grads)`: one step on every
    /// parameter from the gradients stored on the layers.
    pub fn step(&mut self, net: &mut Network<T>) {
        self.rule.begin_step();
        for (p, slots) in net.params_mut().into_iter().zip(&mut self.state) {
            let mut views: Vec<&mut [T]> = slots.iter_mut().map(|s| s.as_mut_slice()).collect();
            self.rule
                .update(p.value.data_mut(), p.grad.data(), &mut views, p.decay);
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared checks: one hand-computed step, and descent on the textbook's
    //! `f(x, y) = x²/20 + y²` (chapter 6), whose minimum is at the origin.
    use super::Optimizer;

    pub fn one_step(rule: &mut dyn Optimizer<f64>, w: f64, g: f64) -> f64 {
        let mut w = [w];
        let mut state = vec![vec![0.0f64]; rule.slots()];
        let mut views: Vec<&mut [f64]> = state.iter_mut().map(|s| s.as_mut_slice()).collect();
        rule.begin_step();
        rule.update(&mut w, &[g], &mut views, true);
        w[0]
    }

    /// Runs `steps` updates from the textbook's start (-7, 2); returns the end point.
    pub fn minimise(rule: &mut dyn Optimizer<f64>, steps: usize) -> (f64, f64) {
        let mut w = [-7.0, 2.0];
        let mut state = vec![vec![0.0f64; 2]; rule.slots()];
        for _ in 0..steps {
            let g = [w[0] / 10.0, 2.0 * w[1]];
            let mut views: Vec<&mut [f64]> = state.iter_mut().map(|s| s.as_mut_slice()).collect();
            rule.begin_step();
            rule.update(&mut w, &g, &mut views, false);
        }
        (w[0], w[1])
    }

    pub fn assert_reaches_minimum(rule: &mut dyn Optimizer<f64>, steps: usize) {
        let (x, y) = minimise(rule, steps);
        let f = x * x / 20.0 + y * y;
        assert!(f < 1e-4, "{} ended at ({x}, {y}), f = {f}", rule.name());
    }
}
