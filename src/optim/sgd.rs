//! Stochastic gradient descent: `W ← W - lr · dW`.

use super::Optimizer;
use crate::tensor::Float;

pub struct Sgd {
    pub lr: f64,
}

impl Sgd {
    pub fn new(lr: f64) -> Self {
        Sgd { lr }
    }
}

impl<T: Float> Optimizer<T> for Sgd {
    fn name(&self) -> &'static str {
        "sgd"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn slots(&self) -> usize {
        0
    }

    fn update(&self, w: &mut [T], g: &[T], _state: &mut [&mut [T]], _decay: bool) {
        let lr = T::of(self.lr);
        for (w, &g) in w.iter_mut().zip(g) {
            *w -= lr * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{assert_reaches_minimum, one_step};

    #[test]
    fn hand_computed_step() {
        assert_eq!(one_step(&mut Sgd::new(0.1), 1.0, 2.0), 0.8);
    }

    #[test]
    fn minimises_the_textbook_function() {
        // Slow along x (curvature 1/10): the textbook's zig-zag, but it gets there.
        assert_reaches_minimum(&mut Sgd::new(0.9), 200);
    }
}
