//! Chapter 6, `optimizer_compare_naive.py`: the library's optimizers on
//! `f(x, y) = x²/20 + y²` from (-7, 2), 30 updates each, printing where each
//! ends (`backprop learn optimizer-paths` draws the paths on contour lines).
//!
//! `cargo run --release --example ch06_optimizer_compare_naive`

use backprop::optim;

fn main() {
    for (name, lr) in [
        ("sgd", 0.95),
        ("momentum", 0.1),
        ("adagrad", 1.5),
        ("adam", 0.3),
    ] {
        let mut rule = optim::by_name::<f64>(name, lr).unwrap();
        let mut params = [-7.0, 2.0];
        let mut state = vec![vec![0.0; 2]; rule.slots()];
        for _ in 0..30 {
            let grads = [params[0] / 10.0, 2.0 * params[1]];
            let mut slots: Vec<&mut [f64]> = state.iter_mut().map(|s| s.as_mut_slice()).collect();
            rule.begin_step();
            rule.update(&mut params, &grads, &mut slots, false);
        }
        let f = params[0] * params[0] / 20.0 + params[1] * params[1];
        println!(
            "{name:<8} lr {lr:<4}: ({:.4}, {:.4}), f = {f:.2e}",
            params[0], params[1]
        );
    }
}
