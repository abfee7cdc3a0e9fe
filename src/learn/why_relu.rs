//! Why a net needs an activation function (chapter 3's "non-linear
//! functions", seen on data): the spiral data set (three interleaved arms)
//! trained twice with the same 2-100-100-3 layout, SGD lr 0.1, batch 32,
//! once with Affine layers only and once with ReLU between them. Without an
//! activation the layers multiply out into one Affine map, `x·W + b` (the
//! lesson checks it): each class boundary is a straight line and about half
//! the points land on the wrong side. With ReLU the boundaries bend around
//! the arms. The decision regions are drawn under the test points.

use std::fmt::Write as _;

use anyhow::Result;

use super::{Options, Outcome};
use crate::data::{Dataset, Features, spiral};
use crate::experiments::figure_and_csv;
use crate::layers::Layer;
use crate::nets::{MultiLayerNet, Network};
use crate::optim::Sgd;
use crate::plot::{Figure, Mark, Panel, Picture, Points, palette};
use crate::tensor::Tensor;
use crate::train::Trainer;

const HIDDEN: [usize; 2] = [100, 100];
const BATCH: usize = 32;
const LR: f64 = 0.1;

/// The two nets: with ReLU, and the same layers without it.
pub fn nets(seed: u64) -> (Network<f32>, Network<f32>) {
    let relu = MultiLayerNet::new(2, &HIDDEN, spiral::CLASSES)
        .build::<f32>(seed)
        .expect("2-100-100-3 builds");
    let affine: Vec<Box<dyn Layer<f32>>> = relu
        .layers
        .iter()
        .filter(|l| l.name() != "Relu")
        .cloned()
        .collect();
    (Network::new(affine, 0.0), relu)
}

/// A trained net and its accuracies.
pub struct Trained {
    pub net: Network<f32>,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

/// Trains `net` on `train` for `epochs` epochs and measures it.
pub fn train(
    net: Network<f32>,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    opts: &Options,
) -> Result<Trained> {
    let mut trainer = Trainer::new(net, Box::new(Sgd::new(LR)), opts.threads, opts.seed);
    for _ in 0..epochs {
        trainer.train_epoch(train, BATCH, |_, _| {})?;
    }
    Ok(Trained {
        train_accuracy: trainer.evaluate(train, 1000)?.1,
        test_accuracy: trainer.evaluate(test, 1000)?.1,
        net: trainer.net().clone(),
    })
}

/// Scores of `net` for the points `xy` (pairs).
fn scores(net: &mut Network<f32>, xy: &[f32]) -> Result<Tensor<f32>> {
    let x = Tensor::from_vec(&[xy.len() / 2, 2], xy.to_vec())?;
    Ok(net.predict(&x, false)?.clone())
}

/// The largest gap between `net`'s scores and one affine map `x·W + b`
/// fitted through the origin and the two unit points: 0 (up to rounding)
/// when the net is affine.
pub fn distance_from_affine(net: &mut Network<f32>, xy: &[f32]) -> Result<f64> {
    let basis = scores(net, &[0.0, 0.0, 1.0, 0.0, 0.0, 1.0])?;
    let (b, w0, w1) = (
        basis.row(0).to_vec(),
        basis.row(1).to_vec(),
        basis.row(2).to_vec(),
    );
    let s = scores(net, xy)?;
    let mut worst = 0.0f64;
    for (i, row) in (0..s.rows()).map(|i| (i, s.row(i))) {
        let (x, y) = (f64::from(xy[2 * i]), f64::from(xy[2 * i + 1]));
        for (k, &v) in row.iter().enumerate() {
            let affine =
                f64::from(b[k]) + x * f64::from(w0[k] - b[k]) + y * f64::from(w1[k] - b[k]);
            worst = worst.max((f64::from(v) - affine).abs());
        }
    }
    Ok(worst)
}

const EXTENT: f64 = 1.1;
const GRID: usize = 160;

fn regions_panel(title: &str, net: &mut Network<f32>, test: &Dataset) -> Result<Panel> {
    let step = 2.0 * EXTENT / (GRID - 1) as f64;
    let grid: Vec<f32> = (0..GRID)
        .flat_map(|j| {
            (0..GRID).flat_map(move |i| {
                [
                    (-EXTENT + step * i as f64) as f32,
                    (-EXTENT + step * j as f64) as f32,
                ]
            })
        })
        .collect();
    let classes: Vec<usize> = scores(net, &grid)?.argmax_rows().collect();
    let half = EXTENT + step / 2.0;
    let mut marks = vec![Mark::Picture(Picture::regions(
        &classes,
        GRID,
        GRID,
        -half..half,
        -half..half,
    ))];
    let Features::Dense(xy) = &test.features else {
        unreachable!("the spiral is dense")
    };
    for c in 0..test.classes() {
        let points = test
            .labels
            .iter()
            .enumerate()
            .filter(|&(_, &l)| usize::from(l) == c)
            .map(|(i, _)| (f64::from(xy[2 * i]), f64::from(xy[2 * i + 1])))
            .collect();
        marks.push(Mark::Points(
            Points::new(format!("class {c}"), points, palette(c)).size(2),
        ));
    }
    Ok(Panel::marks(title, "x1", "x2", marks)
        .x_range(-half..half)
        .y_range(-half..half)
        .equal_aspect()
        .legend(false))
}

pub fn run(opts: &Options) -> Result<Outcome> {
    let split = spiral::split(opts.seed);
    let epochs = opts.pick(20, 8);
    let (affine, relu) = nets(opts.seed);
    let mut affine = train(affine, &split.train, &split.test, epochs, opts)?;
    let mut relu = train(relu, &split.train, &split.test, epochs, opts)?;
    let Features::Dense(xy) = &split.test.features else {
        unreachable!("the spiral is dense")
    };
    let gap = distance_from_affine(&mut affine.net, xy)?;
    let mut table = String::new();
    writeln!(table, "spiral ({} train, {} test points, 3 classes), 2-100-100-3, SGD lr {LR}, batch {BATCH}, {epochs} epochs:", split.train.len(), split.test.len()).expect("writing to a String");
    for (name, t) in [
        ("Affine only (no activation)", &affine),
        ("Affine with ReLU", &relu),
    ] {
        writeln!(
            table,
            "  {name:<28} train accuracy {:.4}, test accuracy {:.4}",
            t.train_accuracy, t.test_accuracy
        )
        .expect("writing to a String");
    }
    writeln!(
        table,
        "without an activation the three Affine layers are one: the scores equal x·W + b for a single 2x3 W (largest difference {gap:.1e})"
    )
    .expect("writing to a String");
    let figure = Figure::new(
        vec![
            regions_panel(
                &format!("Affine only: test accuracy {:.3}", affine.test_accuracy),
                &mut affine.net,
                &split.test,
            )?,
            regions_panel(
                &format!("with ReLU: test accuracy {:.3}", relu.test_accuracy),
                &mut relu.net,
                &split.test,
            )?,
        ],
        2,
    )
    .title("why ReLU: decision regions on the spiral")
    .panel_size(560, 560);
    let rows = vec![
        format!("affine,{},{}", affine.train_accuracy, affine.test_accuracy),
        format!("relu,{},{}", relu.train_accuracy, relu.test_accuracy),
    ];
    figure_and_csv(
        &figure,
        opts,
        "why-relu",
        "net,train_accuracy,test_accuracy",
        &rows,
        table,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use crate::learn::{Lesson, tests::run_quick};

    #[test]
    fn relu_bends_the_boundaries_and_affine_only_cannot() {
        let dir = TempDir::new("learn-relu");
        run_quick(Lesson::WhyRelu, dir.path());
        let csv = std::fs::read_to_string(dir.path().join("why-relu.csv")).unwrap();
        let test_accuracy = |row: usize| -> f64 {
            csv.lines()
                .nth(row)
                .unwrap()
                .split(',')
                .nth(2)
                .unwrap()
                .parse()
                .unwrap()
        };
        let (affine, relu) = (test_accuracy(1), test_accuracy(2));
        assert!(affine < 0.7, "Affine only reached {affine}");
        assert!(relu > 0.95, "ReLU reached only {relu}");
    }

    #[test]
    fn affine_layers_multiply_out_into_one() {
        let (mut affine, mut relu) = nets(3);
        let xy = [0.3f32, -0.7, -0.9, 0.2, 0.5, 0.5];
        assert!(distance_from_affine(&mut affine, &xy).unwrap() < 1e-5);
        assert!(distance_from_affine(&mut relu, &xy).unwrap() > 1e-3);
    }
}
