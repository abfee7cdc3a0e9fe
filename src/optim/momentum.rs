//! Momentum: `v ← α v - lr · dW`, `W ← W + v`.
//! Nesterov (the textbook's form): `v ← α v - lr · dW`,
//! `W ← W + α² v - (1 + α) lr · dW`.

use super::Optimizer;
use crate::tensor::Float;

pub struct Momentum {
    pub lr: f64,
    pub momentum: f64,
}

impl Momentum {
    pub fn new(lr: f64, momentum: f64) -> Self {
        Momentum { lr, momentum }
    }
}

impl<T: Float> Optimizer<T> for Momentum {
    fn name(&self) -> &'static str {
        "momentum"
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
        let (lr, a) = (T::of(self.lr), T::of(self.momentum));
        for ((w, &g), v) in w.iter_mut().zip(g).zip(state[0].iter_mut()) {
            *v = a * *v - lr * g;
            *w += *v;
        }
    }
}

pub struct Nesterov {
    pub lr: f64,
    pub momentum: f64,
}

impl Nesterov {
    pub fn new(lr: f64, momentum: f64) -> Self {
        Nesterov { lr, momentum }
    }
}

impl<T: Float> Optimizer<T> for Nesterov {
    fn name(&self) -> &'static str {
        "nesterov"
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
        let (lr, a) = (T::of(self.lr), T::of(self.momentum));
        for ((w, &g), v) in w.iter_mut().zip(g).zip(state[0].iter_mut()) {
            *v = a * *v - lr * g;
            *w += a * a * *v - (T::one() + a) * lr * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{assert_reaches_minimum, one_step};

    #[test]
    fn hand_computed_steps() {
        // v = -0.1 * 2 = -0.2; w = 1 - 0.2
        assert!((one_step(&mut Momentum::new(0.1, 0.9), 1.0, 2.0) - 0.8).abs() < 1e-15);
        // v = -0.2; w = 1 + 0.81 * -0.2 - 1.9 * 0.2 = 0.458
        assert!((one_step(&mut Nesterov::new(0.1, 0.9), 1.0, 2.0) - 0.458).abs() < 1e-15);
    }

    #[test]
    fn minimise_the_textbook_function() {
        assert_reaches_minimum(&mut Momentum::new(0.1, 0.9), 300);
        assert_reaches_minimum(&mut Nesterov::new(0.1, 0.9), 300);
    }
}
