//! AdaGrad: `h ← h + dW²`, `W ← W - lr · dW / (√h + 1e-7)`: each weight's step
//! shrinks with the gradient it has already seen.

use super::Optimizer;
use crate::tensor::Float;

pub struct AdaGrad {
    pub lr: f64,
}

impl AdaGrad {
    pub fn new(lr: f64) -> Self {
        AdaGrad { lr }
    }
}

impl<T: Float> Optimizer<T> for AdaGrad {
    fn name(&self) -> &'static str {
        "adagrad"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn slots(&self) -> usize {
        1
    }

    fn update(&self, w: &mut [T], g: &[T], state: &mut [&mut [T]], _decay: bool) {
        let (lr, eps) = (T::of(self.lr), T::of(1e-7));
        for ((w, &g), h) in w.iter_mut().zip(g).zip(state[0].iter_mut()) {
            *h += g * g;
            *w -= lr * g / (h.sqrt() + eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{assert_reaches_minimum, one_step};

    #[test]
    fn hand_computed_step() {
        // h = 4; w = 1 - 0.1 * 2 / (2 + 1e-7)
        let want = 1.0 - 0.2 / (2.0 + 1e-7);
        assert!((one_step(&mut AdaGrad::new(0.1), 1.0, 2.0) - want).abs() < 1e-15);
    }

    #[test]
    fn minimises_the_textbook_function() {
        assert_reaches_minimum(&mut AdaGrad::new(1.5), 500);
    }
}
