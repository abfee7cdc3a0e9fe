//! RMSprop: `h ← ρ h + (1 - ρ) dW²`, `W ← W - lr · dW / (√h + 1e-7)`: AdaGrad
//! with a memory that fades, so steps do not shrink to nothing.

use super::Optimizer;
use crate::tensor::Float;

pub struct RmsProp {
    pub lr: f64,
    pub decay_rate: f64,
}

impl RmsProp {
    pub fn new(lr: f64, decay_rate: f64) -> Self {
        RmsProp { lr, decay_rate }
    }
}

impl<T: Float> Optimizer<T> for RmsProp {
    fn name(&self) -> &'static str {
        "rmsprop"
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
        let (lr, rho, eps) = (T::of(self.lr), T::of(self.decay_rate), T::of(1e-7));
        for ((w, &g), h) in w.iter_mut().zip(g).zip(state[0].iter_mut()) {
            *h = rho * *h + (T::one() - rho) * g * g;
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
        // h = 0.01 * 4 = 0.04; w = 1 - 0.1 * 2 / (0.2 + 1e-7)
        let want = 1.0 - 0.2 / (0.2 + 1e-7);
        assert!((one_step(&mut RmsProp::new(0.1, 0.99), 1.0, 2.0) - want).abs() < 1e-12);
    }

    #[test]
    fn minimises_the_textbook_function() {
        // Steps are about lr in size near the end, so lr sets the final accuracy.
        assert_reaches_minimum(&mut RmsProp::new(0.002, 0.99), 5000);
    }
}
