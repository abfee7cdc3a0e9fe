//! `backprop show filters|misclassified|summary|examples|activations`:
//! pictures of a saved model or a data set, drawn by [`crate::show`] (filters
//! and mistakes as PNG, examples and activations as PNG and SVG, beside the
//! model unless `--out` says otherwise), and a net's layers, shapes and
//! parameter counts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use image::{DynamicImage, ImageFormat};

use super::{ModelOnTestSet, beside, load_model_and_test_set};
use crate::checkpoint;
use crate::data::{self, DatasetName, LoadOptions};
use crate::eval;
use crate::nets::NetSpec;
use crate::plot::Figure;
use crate::predict;
use crate::show::{self, FilterGrid, FilterSource, MistakeGrid};
use crate::tensor::Tensor;
use crate::train::NetKind;

#[derive(Args)]
pub struct ShowArgs {
    #[command(subcommand)]
    pub what: ShowCommand,
}

#[derive(Subcommand)]
pub enum ShowCommand {
    /// The first layer's filters as a PNG grid (a convnet's kernels; an MLP's
    /// weights into each first hidden unit, drawn as input images).
    Filters(FiltersArgs),
    /// The test images a model gets wrong as a PNG grid, captioned true→predicted.
    Misclassified(MisclassifiedArgs),
    /// Every layer of a net with its output shape, parameter count and multiply-adds,
    /// the totals and the memory a training batch needs.
    Summary(SummaryArgs),
    /// Training images with their labels (the textbook's mnist_show.py), as PNG and SVG.
    Examples(ExamplesArgs),
    /// A convnet's first-layer filters run over a picture, each response drawn
    /// (the textbook's apply_filter.py), as PNG and SVG.
    Activations(ActivationsArgs),
}

#[derive(Args)]
pub struct SummaryArgs {
    /// A model.safetensors written by `backprop train`.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "net",
        conflicts_with = "net"
    )]
    pub model: Option<PathBuf>,
    /// A net as `train --net` takes it: mlp, simple-cnn, deep-cnn or a net file (FILE.toml).
    #[arg(long, requires = "input")]
    pub net: Option<NetKind>,
    /// One example's shape for --net, such as 1x28x28 (C x H x W) or 784.
    #[arg(long, value_name = "SHAPE")]
    pub input: Option<Shape>,
    /// Classes for --net: the size of the last Affine if the net leaves it open.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub classes: usize,
}

/// One example's shape, written `1x28x28`.
#[derive(Clone, Debug)]
pub struct Shape(pub Vec<usize>);

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.split('x')
            .map(|d| match d.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!(
                    "expected a shape such as 1x28x28 or 784, got '{s}'"
                )),
            })
            .collect::<Result<_, _>>()
            .map(Shape)
    }
}

#[derive(Args)]
pub struct ExamplesArgs {
    /// Data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    pub dataset: DatasetName,
    /// Folder holding the data set's files (as for train).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Show the first N training images.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = positive)]
    pub limit: usize,
    /// Where to write the PNG (the SVG goes beside it) [default: runs/examples-<dataset>.png].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ActivationsArgs {
    /// A convnet's model.safetensors (train one with --net simple-cnn).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// A picture (PNG, JPEG, BMP), used as grey levels in [0, 1], white 1, as the book does;
    /// shrunk to at most 400 pixels on a side.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Run the first N filters.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = positive)]
    pub limit: usize,
    /// Where to write the PNG (the SVG goes beside it) [default: activations.png beside the model].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct FiltersArgs {
    /// A model.safetensors written by `backprop train`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Where to write the PNG [default: filters.png beside the model,
    /// filters-untrained.png with --untrained].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Draw the same architecture with fresh weights instead of the trained
    /// ones, to compare noise with what training made of it.
    #[arg(long)]
    pub untrained: bool,
    /// Seed of the fresh weights [default: the model's own, so the picture
    /// shows exactly the weights its training started from].
    #[arg(long, requires = "untrained")]
    pub seed: Option<u64>,
    /// Draw at most this many filters (hidden units, for an MLP).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = positive)]
    pub limit: usize,
}

#[derive(Args)]
pub struct MisclassifiedArgs {
    #[command(flatten)]
    pub test: ModelOnTestSet,
    /// Where to write the PNG [default: misclassified.png beside the model].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Draw the first N mistakes (in test-set order).
    #[arg(long, value_name = "N", default_value_t = 36,
          value_parser = positive)]
    pub limit: usize,
}

/// A count of at least 1 (a grid of nothing is not a picture).
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got '{s}'")),
    }
}

pub fn run(a: ShowArgs) -> Result<()> {
    match a.what {
        ShowCommand::Filters(a) => filters(a),
        ShowCommand::Misclassified(a) => misclassified(a),
        ShowCommand::Summary(a) => summary(a),
        ShowCommand::Examples(a) => examples(a),
        ShowCommand::Activations(a) => activations(a),
    }
}

fn summary(a: SummaryArgs) -> Result<()> {
    let (name, spec) = match (&a.model, a.net, &a.input) {
        (Some(model), ..) => (model.display().to_string(), checkpoint::read_spec(model)?),
        (None, Some(kind), Some(Shape(input))) => {
            let spec = match &kind {
                NetKind::File(path) => NetSpec::load(path)?,
                builtin => builtin.textbook_spec(input, a.classes),
            };
            let spec = spec
                .for_data(input, a.classes)
                .with_context(|| format!("--net {kind} cannot take inputs of shape {input:?}"))?;
            (format!("--net {kind} on inputs {input:?}"), spec)
        }
        _ => unreachable!("clap requires --model, or --net with --input"),
    };
    let summary = spec
        .summary()
        .with_context(|| format!("{name} cannot be built"))?;
    println!("{name}: {spec}");
    println!("{summary}");
    Ok(())
}

/// Writes `figure` as `FILE` (PNG) and the SVG beside it; returns both paths.
fn save_figure(figure: &Figure, png: &Path) -> Result<[PathBuf; 2]> {
    let dir = png
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = png
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{} has no file name to write to", png.display()))?;
    let [svg, written] = figure.save(dir, stem)?;
    if written != png {
        std::fs::rename(&written, png)
            .with_context(|| format!("cannot write {}", png.display()))?;
    }
    Ok([png.to_path_buf(), svg])
}

fn examples(a: ExamplesArgs) -> Result<()> {
    let split = data::load(
        a.dataset,
        &LoadOptions {
            data_dir: a.data,
            allow_download: true,
            progress: true,
            seed: 0,
            sample_fallback: true,
            read: Default::default(),
        },
    )?;
    if split.dataset() != Some(a.dataset) {
        eprintln!("{}", data::sample::notice("showing"));
    }
    let train = split.train;
    let indices: Vec<usize> = (0..a.limit.min(train.len())).collect();
    let figure = show::examples_figure(&train, &indices, 10)?;
    let labels: Vec<String> = indices
        .iter()
        .map(|&i| train.labels[i].to_string())
        .collect();
    let [c, h, w] = train.shape;
    println!(
        "x_train[0]: label {}, {} values shown as {h}x{w}{}",
        train.labels[0],
        train.dim(),
        if c > 1 {
            format!(" (channel 0 of {c})")
        } else {
            String::new()
        }
    );
    println!(
        "{} training images 0 to {}: labels {}",
        a.dataset,
        indices.len() - 1,
        labels.join(" ")
    );
    let out = a
        .out
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("examples-{}.png", a.dataset)));
    for f in save_figure(&figure, &out)? {
        println!("wrote {}", f.display());
    }
    Ok(())
}

fn activations(a: ActivationsArgs) -> Result<()> {
    let (net, info) = checkpoint::load::<f32>(&a.model)?;
    let (grey, full_width, full_height) = predict::load_gray(&a.image)?;
    let (grey, width, height) = show::shrink(&grey, full_width, full_height, show::MAX_SIDE);
    if width != full_width {
        println!(
            "{} is {full_width}x{full_height}: shrunk to {width}x{height} (at most {} on a side)",
            a.image.display(),
            show::MAX_SIDE
        );
    }
    let channels = info.input_shape[0];
    let values: Vec<f32> = grey.iter().map(|g| g / 255.0).collect();
    let picture: Vec<f32> = (0..channels).flat_map(|_| values.iter().copied()).collect();
    let picture = Tensor::from_vec(&[1, channels, height, width], picture)?;
    let responses = show::filter_responses(&net, &picture, a.limit).with_context(|| {
        format!(
            "cannot run the filters of {} over {}",
            a.model.display(),
            a.image.display()
        )
    })?;
    let shown: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let figure = show::responses_figure(&shown, (height, width), &responses);
    let (c, fh, fw) = responses.filter_shape;
    let (oh, ow) = responses.map_size;
    println!(
        "{} (epoch {}): {} filters of {c}x{fh}x{fw} over {} ({width}x{height}), responses {ow}x{oh}",
        a.model.display(),
        info.epoch,
        responses.maps.len(),
        a.image.display()
    );
    for (k, map) in responses.maps.iter().enumerate() {
        let (lo, hi) = map
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        println!(
            "  filter {:>2}: response from {lo:>8.3} to {hi:>8.3}",
            k + 1
        );
    }
    let out = a.out.unwrap_or_else(|| beside(&a.model, "activations.png"));
    for f in save_figure(&figure, &out)? {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// Writes `img` as PNG whatever the file's extension says.
fn save_png(img: DynamicImage, path: &Path) -> Result<()> {
    img.save_with_format(path, ImageFormat::Png)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn filters(a: FiltersArgs) -> Result<()> {
    let (mut net, info) = checkpoint::load::<f32>(&a.model)?;
    let whose = if a.untrained {
        let spec = net.spec.clone().with_context(|| {
            format!(
                "{} was loaded without its architecture, so it cannot be rebuilt with fresh weights",
                a.model.display()
            )
        })?;
        let seed = a.seed.unwrap_or(info.seed);
        net = spec.build(seed)?;
        let start = if seed == info.seed {
            ", the weights its training started from"
        } else {
            ""
        };
        format!("untrained, seed {seed}{start}")
    } else {
        format!("epoch {}", info.epoch)
    };
    let filters = show::first_layer_filters(&net, info.input_shape, a.limit)
        .with_context(|| format!("cannot draw the filters of {}", a.model.display()))?;
    let img = show::filter_grid(&filters, &FilterGrid::for_filters(&filters));
    let default_name = if a.untrained {
        "filters-untrained.png"
    } else {
        "filters.png"
    };
    let out = a.out.unwrap_or_else(|| beside(&a.model, default_name));
    let (width, height) = img.dimensions();
    save_png(img.into(), &out)?;
    let [c, h, w] = filters.shape;
    let what = match filters.source {
        FilterSource::Convolution => "filters of the first Convolution",
        FilterSource::Affine => "hidden units' input weights, columns of the first Affine",
    };
    println!(
        "{} ({whose}): {} of {} {what} ({}), as {c}x{h}x{w} tiles",
        a.model.display(),
        filters.count(),
        filters.total,
        filters.param,
    );
    println!("wrote {} ({width}x{height})", out.display());
    Ok(())
}

fn misclassified(a: MisclassifiedArgs) -> Result<()> {
    let (mut net, _info, dataset, test) = load_model_and_test_set(&a.test, true)?;
    let model = &a.test.model;
    let predictions = eval::predict_classes(&mut net, &test, test.len())?;
    let labels: Vec<usize> = test.labels.iter().map(|&l| usize::from(l)).collect();
    let mistakes = show::mistakes(&labels, &predictions);
    let shown = &mistakes[..mistakes.len().min(a.limit)];
    let img = show::misclassified_grid(&test, shown, &test.class_names, &MistakeGrid::default())
        .with_context(|| format!("cannot draw the mistakes of {}", model.display()))?;
    println!(
        "{}: {} of {} {dataset} test images misclassified (accuracy {:.4})",
        model.display(),
        mistakes.len(),
        test.len(),
        1.0 - mistakes.len() as f64 / test.len().max(1) as f64
    );
    if mistakes.is_empty() {
        println!("nothing to draw");
        return Ok(());
    }
    let out = a.out.unwrap_or_else(|| beside(model, "misclassified.png"));
    let (width, height) = img.dimensions();
    save_png(img.into(), &out)?;
    println!(
        "wrote {} ({width}x{height}): the first {}, captioned true→predicted",
        out.display(),
        shown.len()
    );
    Ok(())
}
