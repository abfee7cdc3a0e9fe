//! Adam: `m ← β₁ m + (1 - β₁) dW`, `v ← β₂ v + (1 - β₂) dW²`,
//! `W ← W - lr_t · m / (√v + 1e-7)` with the bias correction folded into
//! `lr_t = lr · √(1 - β₂ᵗ) / (1 - β₁ᵗ)`, as in the textbook.
//!
//! AdamW (Loshchilov & Hutter) adds decoupled weight decay to the weights:
//! `W ← W - lr · wd · W`, instead of putting `lambda · W` into the gradient.

use super::Optimizer;
use crate::tensor::Float;

pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Steps taken, `t` in the bias correction.
    pub iter: u64,
}

impl Adam {
    pub fn new(lr: f64, beta1: f64, beta2: f64) -> Self {
        Adam {
            lr,
            beta1,
            beta2,
            iter: 0,
        }
    }

    fn lr_t(&self) -> f64 {
        let t = self.iter.max(1) as i32;
        self.lr * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t))
    }

    /// The Adam step on a slice, with an optional extra decoupled decay.
    fn apply<T: Float>(&self, w: &mut [T], g: &[T], state: &mut [&mut [T]], decoupled: f64) {
        let (b1, b2) = (T::of(self.beta1), T::of(self.beta2));
        let (one_b1, one_b2) = (T::one() - b1, T::one() - b2);
        let (lr_t, eps, wd) = (T::of(self.lr_t()), T::of(1e-7), T::of(decoupled));
        let (m, v) = state.split_at_mut(1);
        for (((w, &g), m), v) in w
            .iter_mut()
            .zip(g)
            .zip(m[0].iter_mut())
            .zip(v[0].iter_mut())
        {
            *m += one_b1 * (g - *m);
            *v += one_b2 * (g * g - *v);
            *w -= lr_t * *m / (v.sqrt() + eps) + wd * *w;
        }
    }
}

impl<T: Float> Optimizer<T> for Adam {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn slots(&self) -> usize {
        2
    }

    fn begin_step(&mut self) {
        self.iter += 1;
    }

    fn steps(&self) -> u64 {
        self.iter
    }

    fn set_steps(&mut self, steps: u64) {
        self.iter = steps;
    }

    fn update(&self, w: &mut [T], g: &[T], state: &mut [&mut [T]], _decay: bool) {
        self.apply(w, g, state, 0.0);
    }
}

pub struct AdamW {
    pub adam: Adam,
    pub weight_decay: f64,
}

impl AdamW {
    pub fn new(lr: f64, beta1: f64, beta2: f64, weight_decay: f64) -> Self {
        AdamW {
            adam: Adam::new(lr, beta1, beta2),
            weight_decay,
        }
    }
}

impl<T: Float> Optimizer<T> for AdamW {
    fn name(&self) -> &'static str {
        "adamw"
    }

    fn lr(&self) -> f64 {
        self.adam.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.adam.lr = lr;
    }

    fn slots(&self) -> usize {
        2
    }

    fn begin_step(&mut self) {
        self.adam.iter += 1;
    }

    fn steps(&self) -> u64 {
        self.adam.iter
    }

    fn set_steps(&mut self, steps: u64) {
        self.adam.iter = steps;
    }

    fn update(&self, w: &mut [T], g: &[T], state: &mut [&mut [T]], decay: bool) {
        let wd = if decay {
            self.adam.lr * self.weight_decay
        } else {
            0.0
        };
        self.adam.apply(w, g, state, wd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::testing::{assert_reaches_minimum, one_step};

    #[test]
    fn hand_computed_first_step() {
        // t = 1: m = 0.1 g, v = 0.001 g², lr_t = lr √0.001 / 0.1, so the step is
        // lr · 0.1g/0.1 · √0.001/(√0.001 |g| + eps) ≈ lr · sign(g).
        let g = 2.0;
        let m = 0.1 * g;
        let v: f64 = 0.001 * g * g;
        let lr_t = 0.01 * 0.001f64.sqrt() / 0.1;
        let want = 1.0 - lr_t * m / (v.sqrt() + 1e-7);
        assert!((one_step(&mut Adam::new(0.01, 0.9, 0.999), 1.0, g) - want).abs() < 1e-15);
        // AdamW also takes lr · wd · w off the weight.
        let want_w = want - 0.01 * 0.5 * 1.0;
        assert!((one_step(&mut AdamW::new(0.01, 0.9, 0.999, 0.5), 1.0, g) - want_w).abs() < 1e-15);
    }

    #[test]
    fn minimise_the_textbook_function() {
        assert_reaches_minimum(&mut Adam::new(0.1, 0.9, 0.999), 1000);
        assert_reaches_minimum(&mut AdamW::new(0.1, 0.9, 0.999, 0.01), 1000);
    }
}
