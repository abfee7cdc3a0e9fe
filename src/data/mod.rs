//! Data sets, loaded into compact in-memory splits that the training loop
//! copies mini-batches out of: MNIST and Fashion-MNIST (and the built-in MNIST
//! sample), a generated spiral, and the user's own: folders of pictures
//! (`folder`, feature `images`), CSV tables ([`csv`]) and IDX files of any shape. One file per
//! format, all producing the same [`Dataset`], so the trainer never knows
//! where the data came from.
//!
//! Images stay as the bytes they are stored as (a quarter of the memory of `f32`) and are
//! scaled to `[0, 1]` only when a batch is gathered; see [`Dataset::gather`].
//! A data set without a test split gets one ([`split::stratified`]).

pub mod csv;
#[cfg(feature = "download")]
mod download;
mod error;
#[cfg(feature = "images")]
pub mod folder;
pub mod idx;
pub mod sample;
mod sources;
pub mod spiral;
pub mod split;
#[cfg(test)]
pub(crate) mod testutil;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::tensor::Float;

pub use self::csv::TableEncoding;
#[cfg(feature = "download")]
pub use download::fetch_dataset;
pub use error::DataError;
pub use idx::IdxArray;

/// Most classes a data set may have (labels are 16-bit).
pub const MAX_CLASSES: usize = 1 << 16;

/// One split (train, validation or test) of a data set.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    /// Data set name: "mnist", "fashion-mnist", "spiral", a folder's or a file's name.
    pub name: String,
    /// The inputs, one row of [`Dataset::dim`] values per example.
    pub features: Features,
    /// Class index per example, into [`Dataset::class_names`].
    pub labels: Vec<u16>,
    /// The classes' names, in label order ("0" to "9" for MNIST).
    pub class_names: Vec<String>,
    /// (C, H, W) of one example: `[1, 28, 28]` for MNIST, `[1, 1, 2]` for the spiral.
    pub shape: [usize; 3],
    /// How raw examples became these features; a checkpoint keeps it so that
    /// new examples are prepared the same way.
    pub input: InputKind,
}

/// How a data set's raw examples become the values a net takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum InputKind {
    /// MNIST-style digits: 28x28 grey, ink 255 on 0, pixel / 255. A picture
    /// given to `predict` is inverted if dark on light, cropped to the ink,
    /// scaled into 20x20 and centred by mass, as MNIST was made.
    Digits,
    /// Pictures resized to `width` x `height` (the image crate's Triangle
    /// filter) in `channels` (1: grey, 3: RGB), pixel / 255, channels first.
    Images {
        width: u32,
        height: u32,
        channels: u8,
    },
    /// Values used as they are (the spiral's points).
    Vectors,
    /// Table rows, each column encoded as the training split's statistics say.
    Table(TableEncoding),
}

impl InputKind {
    /// The preparation in words (a checkpoint's `preprocess`).
    pub fn describe(&self) -> String {
        match self {
            InputKind::Digits => "x = pixel / 255 (MNIST layout: ink 255 on background 0)".into(),
            InputKind::Images {
                width,
                height,
                channels,
            } => format!(
                "pictures resized to {width}x{height} in {channels} channel(s), x = pixel / 255, \
                 channels first"
            ),
            InputKind::Vectors => "x as given".into(),
            InputKind::Table(_) => "table rows: numbers standardised by the training split's \
                                    mean and standard deviation, strings one-hot (see input)"
                .into(),
        }
    }

    /// What a data set of this kind was prepared like, for data sets saved
    /// before checkpoints recorded it (format version 1).
    pub fn of_builtin(name: DatasetName) -> InputKind {
        match name {
            DatasetName::Spiral => InputKind::Vectors,
            _ => InputKind::Digits,
        }
    }
}

/// Example inputs, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Features {
    /// Grey levels 0..=255, scaled to `[0, 1]` when gathered.
    Pixels(Vec<u8>),
    /// Values used as they are.
    Dense(Vec<f32>),
}

/// A data set's training and test splits, and a validation split if the data
/// came with one (a folder's `val/`).
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub train: Dataset,
    pub validation: Option<Dataset>,
    pub test: Dataset,
    /// What loading decided that the user should hear of: a test split held
    /// out, columns left out, files skipped. One line each.
    pub notes: Vec<String>,
}

impl Split {
    /// Training and test splits, nothing else to say.
    pub fn new(train: Dataset, test: Dataset) -> Split {
        Split {
            train,
            validation: None,
            test,
            notes: Vec::new(),
        }
    }
}

// Printing millions of pixels helps nobody; show what identifies the split instead.
impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.features {
            Features::Pixels(_) => "pixels",
            Features::Dense(_) => "dense",
        };
        f.debug_struct("Dataset")
            .field("name", &self.name)
            .field("len", &self.len())
            .field("shape", &self.shape)
            .field("classes", &self.classes())
            .field("features", &kind)
            .finish()
    }
}

impl Dataset {
    /// Number of classes (10 for MNIST).
    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per example: C*H*W.
    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// Copies examples `indices` into `x` (row-major, `indices.len() * dim()` values),
    /// scaling pixels by 1/255, and their labels into `t`.
    ///
    /// Runs once per mini-batch, so it allocates nothing. Pixels are divided by 255
    /// (exactly rounded, as numpy's and PyTorch's `x / 255`); the conversion and
    /// division vectorise, where a 256-entry lookup table does not (a table took 14%
    /// of a W1 epoch on one thread, perf).
    ///
    /// Panics if `x` or `t` has the wrong length or an index is out of range.
    pub fn gather<T: Float>(&self, indices: &[usize], x: &mut [T], t: &mut [usize]) {
        let dim = self.dim();
        assert_eq!(
            x.len(),
            indices.len() * dim,
            "gather: x has {} values, expected {} examples x {dim}",
            x.len(),
            indices.len()
        );
        assert_eq!(
            t.len(),
            indices.len(),
            "gather: t has {} labels, expected {}",
            t.len(),
            indices.len()
        );
        let n = self.len();
        for (&i, ti) in indices.iter().zip(t.iter_mut()) {
            assert!(i < n, "gather: index {i} out of range for {n} examples");
            *ti = usize::from(self.labels[i]);
        }
        if dim == 0 {
            return;
        }
        match &self.features {
            Features::Pixels(px) => {
                let scale = T::of(255.0);
                for (k, (&i, row)) in indices.iter().zip(x.chunks_exact_mut(dim)).enumerate() {
                    if let Some(&next) = indices.get(k + 2) {
                        prefetch(&px[next * dim..(next + 1) * dim]);
                    }
                    let src = &px[i * dim..(i + 1) * dim];
                    for (o, &p) in row.iter_mut().zip(src) {
                        *o = T::from_u8(p) / scale;
                    }
                }
            }
            Features::Dense(v) => {
                for (&i, row) in indices.iter().zip(x.chunks_exact_mut(dim)) {
                    let src = &v[i * dim..(i + 1) * dim];
                    for (o, &p) in row.iter_mut().zip(src) {
                        *o = T::of(f64::from(p));
                    }
                }
            }
        }
    }

    /// The first `n` examples (all of them if there are fewer), e.g. the 300 training
    /// images of the textbook's overfitting experiments.
    pub fn take(&self, n: usize) -> Dataset {
        let indices: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&indices)
    }

    /// The examples at `indices`, in that order. Panics if an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let dim = self.dim();
        let n = self.len();
        let rows = |i: usize| {
            assert!(i < n, "subset: index {i} out of range for {n} examples");
            i * dim..(i + 1) * dim
        };
        let features = match &self.features {
            Features::Pixels(px) => Features::Pixels(
                indices
                    .iter()
                    .flat_map(|&i| &px[rows(i)])
                    .copied()
                    .collect(),
            ),
            Features::Dense(v) => {
                Features::Dense(indices.iter().flat_map(|&i| &v[rows(i)]).copied().collect())
            }
        };
        Dataset {
            name: self.name.clone(),
            features,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
            shape: self.shape,
            input: self.input.clone(),
        }
    }
}

/// Asks the CPU to start loading `bytes` into cache. The batch gather reads
/// images in shuffled order, so the hardware prefetcher cannot guess the next
/// one; asking two images ahead hides most of the memory latency.
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is only a hint; it cannot fault, and the address
        // comes from a live slice.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
}

/// The data sets this crate knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist,
    /// The built-in sample of MNIST (see [`sample`]).
    MnistSample,
    FashionMnist,
    Spiral,
}

impl DatasetName {
    pub const ALL: [DatasetName; 4] = [
        DatasetName::Mnist,
        DatasetName::MnistSample,
        DatasetName::FashionMnist,
        DatasetName::Spiral,
    ];

    /// The name used on the command line, in folder names and in saved files.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::MnistSample => "mnist-sample",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Spiral => "spiral",
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| DataError::UnknownDataset(s.to_string()))
    }
}

/// What `--dataset` names: a built-in data set, IDX files of any shape in
/// `--data DIR`, a folder of pictures, or a CSV table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    Builtin(DatasetName),
    /// The four standard IDX files (as MNIST's), any image size and class count.
    Idx,
    /// Pictures in one subfolder per class (see `folder`, feature `images`).
    Folder(PathBuf),
    /// A table with a header row (see [`csv`]).
    Csv(PathBuf),
}

impl From<DatasetName> for DataSource {
    fn from(name: DatasetName) -> Self {
        DataSource::Builtin(name)
    }
}

impl From<&Path> for DataSource {
    fn from(path: &Path) -> Self {
        DataSource::from_path(path)
    }
}

impl DataSource {
    /// The built-in data set, if it is one.
    pub fn builtin(&self) -> Option<DatasetName> {
        match self {
            DataSource::Builtin(n) => Some(*n),
            _ => None,
        }
    }

    /// A source for a path: a `.csv`/`.tsv`/`.txt` file is a table, anything
    /// else a folder of pictures.
    pub fn from_path(path: &Path) -> DataSource {
        let table = path.extension().is_some_and(|e| {
            ["csv", "tsv", "txt"]
                .iter()
                .any(|t| e.eq_ignore_ascii_case(t))
        });
        if table || path.is_file() {
            DataSource::Csv(path.to_path_buf())
        } else {
            DataSource::Folder(path.to_path_buf())
        }
    }
}

impl FromStr for DataSource {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(name) = s.parse::<DatasetName>() {
            return Ok(DataSource::Builtin(name));
        }
        if s == "idx" {
            return Ok(DataSource::Idx);
        }
        let path = Path::new(s);
        if path.exists() || s.contains(std::path::MAIN_SEPARATOR) || s.contains('.') {
            return Ok(DataSource::from_path(path));
        }
        Err(DataError::UnknownDataset(s.to_string()))
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Builtin(n) => write!(f, "{n}"),
            DataSource::Idx => f.write_str("idx"),
            DataSource::Folder(p) | DataSource::Csv(p) => write!(f, "{}", p.display()),
        }
    }
}

// Saved as the string `--dataset` takes, so runs saved before there were
// other sources ("mnist") read as they are.
impl Serialize for DataSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DataSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where to look for data, whether fetching it is allowed, and how to read
/// the user's own.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--data DIR`: the folder holding the IDX files (or a parent with `DIR/<dataset>/`).
    pub data_dir: Option<PathBuf>,
    /// Download into the per-user cache if the files are nowhere on disk.
    pub allow_download: bool,
    /// Show a progress bar while downloading or decoding (only if stderr is a terminal).
    pub progress: bool,
    /// Seed for generated data sets (the spiral) and for held-out splits.
    pub seed: u64,
    /// For `mnist`: use the built-in sample when the full set is neither on disk
    /// nor downloadable (not when a folder the user named lacks it). The
    /// returned splits are then named `mnist-sample`.
    pub sample_fallback: bool,
    /// How to read the user's own data.
    pub read: ReadOptions,
}

/// How to read a folder of pictures or a table; a training run keeps them,
/// so that `--resume` and `eval` read the data the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadOptions {
    /// The share of each class held out as the test set when the data has
    /// none (a folder without `test/`, a table).
    pub test_split: f64,
    /// Pictures: the size the net sees [default: the most common one].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<(u32, u32)>,
    /// Pictures: 1 (grey) or 3 (RGB) [default: 1 if every picture is grey].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    /// Pictures: skip files that do not decode instead of stopping.
    pub skip_bad: bool,
    /// Tables: the label column [default: label, class, target or y, else the last].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Tables: the field separator [default: `,`, or tab for `.tsv`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<char>,
    /// Tables: columns to leave out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            test_split: 0.2,
            image_size: None,
            channels: None,
            skip_bad: false,
            label: None,
            delimiter: None,
            ignore: Vec::new(),
        }
    }
}

/// Loads a data set's splits.
///
/// MNIST and Fashion-MNIST are looked for, in order, in `opts.data_dir` (the folder itself,
/// then `DIR/<dataset>/`), `$BACKPROP_DATA/<dataset>/`, Debian's
/// `/usr/share/datasets/fashion-mnist/` (Fashion-MNIST only), and the per-user cache
/// (`$BACKPROP_CACHE`, `$XDG_CACHE_HOME/backprop` or `~/.cache/backprop`), and finally
/// downloaded into that cache if `opts.allow_download`. `BACKPROP_MIRROR` replaces the
/// download mirrors with one base URL. If MNIST cannot be had that way and
/// `opts.sample_fallback` is set, the result is the built-in [`sample`]; check
/// [`Split::dataset`] to tell. A folder or a table is read as `folder::load` (feature
/// `images`) and [`csv::load`] say; IDX files of any shape come from `opts.data_dir`.
///
/// ```
/// use backprop::data::{self, DatasetName, LoadOptions};
/// let split = data::load(DatasetName::Spiral, &LoadOptions::default()).unwrap();
/// assert_eq!(split.train.class_names, ["0", "1", "2"]);
/// ```
pub fn load(source: impl Into<DataSource>, opts: &LoadOptions) -> Result<Split, DataError> {
    match source.into() {
        DataSource::Builtin(DatasetName::Spiral) => Ok(spiral::split(opts.seed)),
        DataSource::Builtin(DatasetName::MnistSample) => sample::split(),
        DataSource::Builtin(name) => {
            let env = sources::Env::from_process();
            match sources::locate(name, opts, &env) {
                Ok(dir) => sources::read_split(name, &dir),
                Err(e)
                    if name == DatasetName::Mnist && opts.sample_fallback && e.is_unavailable() =>
                {
                    sample::split()
                }
                Err(e) => Err(e),
            }
        }
        DataSource::Idx => {
            let dir = opts.data_dir.as_deref().ok_or(DataError::IdxNeedsData)?;
            sources::read_any_idx(dir)
        }
        #[cfg(feature = "images")]
        DataSource::Folder(dir) => folder::load(&dir, opts),
        #[cfg(not(feature = "images"))]
        DataSource::Folder(dir) => Err(DataError::NeedsFeature {
            what: format!("{} is a folder of pictures", dir.display()),
            feature: "images",
        }),
        DataSource::Csv(file) => self::csv::load(&file, opts),
    }
}

impl Split {
    /// Which built-in data set was loaded, as [`load`] names its splits
    /// (`mnist-sample` after a fallback); `None` for others.
    pub fn dataset(&self) -> Option<DatasetName> {
        self.train.name.parse().ok()
    }
}

/// The names of a built-in data set's classes: the digits for MNIST (and
/// the spiral's arms), the ten articles of Fashion-MNIST.
pub fn builtin_class_names(name: DatasetName, classes: usize) -> Vec<String> {
    const FASHION: [&str; 10] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];
    match name {
        DatasetName::FashionMnist if classes == FASHION.len() => {
            FASHION.iter().map(|s| s.to_string()).collect()
        }
        _ => numbered_classes(classes),
    }
}

/// "0", "1", ... for classes that have no names of their own.
pub fn numbered_classes(classes: usize) -> Vec<String> {
    (0..classes).map(|k| k.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels() -> Dataset {
        // Three 1x2x2 examples whose pixels encode their index.
        Dataset {
            name: "test".into(),
            features: Features::Pixels(vec![0, 255, 51, 102, 1, 1, 1, 1, 2, 2, 2, 2]),
            labels: vec![7, 3, 5],
            class_names: crate::data::numbered_classes(10),
            shape: [1, 2, 2],
            input: crate::data::InputKind::Vectors,
        }
    }

    #[test]
    fn gather_normalises_and_follows_indices() {
        let d = pixels();
        let mut x = vec![0f32; 8];
        let mut t = vec![0usize; 2];
        d.gather(&[0, 2], &mut x, &mut t);
        assert_eq!(x[..4], [0.0, 1.0, 0.2, 0.4]);
        assert_eq!(x[4..], [(2.0 / 255.0f64) as f32; 4]);
        assert_eq!(t, [7, 5]);

        let mut x64 = vec![0f64; 12];
        let mut t = vec![0usize; 3];
        d.gather(&[2, 1, 0], &mut x64, &mut t);
        assert_eq!(x64[..4], [2.0 / 255.0; 4]);
        assert_eq!(x64[4..8], [1.0 / 255.0; 4]);
        assert_eq!(x64[8..], [0.0, 1.0, 0.2, 0.4]);
        assert_eq!(t, [5, 3, 7]);
    }

    #[test]
    fn gather_dense() {
        let d = Dataset {
            name: "dense".into(),
            features: Features::Dense(vec![0.5, -1.0, 0.25, 2.0]),
            labels: vec![1, 0],
            class_names: crate::data::numbered_classes(2),
            shape: [1, 1, 2],
            input: crate::data::InputKind::Vectors,
        };
        let mut x = vec![0f64; 4];
        let mut t = vec![9usize; 2];
        d.gather(&[1, 0], &mut x, &mut t);
        assert_eq!(x, [0.25, 2.0, 0.5, -1.0]);
        assert_eq!(t, [0, 1]);
    }

    #[test]
    #[should_panic(expected = "x has 3 values, expected 1 examples x 4")]
    fn gather_checks_buffer_lengths() {
        pixels().gather(&[0], &mut [0f32; 3], &mut [0usize; 1]);
    }

    #[test]
    fn take_and_subset() {
        let d = pixels();
        assert_eq!((d.len(), d.dim(), d.is_empty()), (3, 4, false));
        let first = d.take(2);
        assert_eq!(first.labels, [7, 3]);
        assert_eq!(first.features, Features::Pixels(d_pixels(&[0, 1])));
        assert_eq!(d.take(10).len(), 3);
        assert!(d.take(0).is_empty());
        let sub = d.subset(&[2, 0]);
        assert_eq!(sub.labels, [5, 7]);
        assert_eq!(sub.features, Features::Pixels(d_pixels(&[2, 0])));
        assert_eq!((sub.classes(), sub.shape), (10, [1, 2, 2]));
    }

    fn d_pixels(indices: &[usize]) -> Vec<u8> {
        let Features::Pixels(px) = pixels().features else {
            unreachable!()
        };
        indices
            .iter()
            .flat_map(|&i| px[i * 4..i * 4 + 4].to_vec())
            .collect()
    }

    #[test]
    fn errors_can_cross_threads_and_into_anyhow() {
        fn check<E: std::error::Error + Send + Sync + 'static>() {}
        check::<DataError>();
    }

    #[test]
    fn names_parse_display_and_serialize() {
        for (name, s) in [
            (DatasetName::Mnist, "mnist"),
            (DatasetName::MnistSample, "mnist-sample"),
            (DatasetName::FashionMnist, "fashion-mnist"),
            (DatasetName::Spiral, "spiral"),
        ] {
            assert_eq!(s.parse::<DatasetName>().unwrap(), name);
            assert_eq!(name.to_string(), s);
            assert_eq!(serde_json::to_string(&name).unwrap(), format!("\"{s}\""));
        }
        let err = "cifar".parse::<DatasetName>().unwrap_err();
        assert!(
            err.to_string()
                .contains("mnist, mnist-sample, fashion-mnist, spiral")
        );
    }
}
