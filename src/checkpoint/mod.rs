//! Checkpoints: a trained net in the safetensors format, readable by PyTorch.
//!
//! Tensors are f32 and named as in the `state_dict` of the equivalent
//! `torch.nn.Sequential`: layer `i` of [`Network::layers`] is module `i`, its
//! parameter `W`/`gamma` is `i.weight`, `b`/`beta` is `i.bias`, and buffers keep
//! their names (`i.running_mean`). Layers that PyTorch stores transposed say so
//! through [`Layer::torch_transposed`] (Affine's `W` is (in, out), `Linear.weight`
//! is (out, in)).
//!
//! The safetensors metadata (string to string) carries what rebuilds and feeds
//! the net: `format_version`, `net` (the [`NetSpec`] as JSON), `dataset` (as
//! `--dataset` takes it), `classes` (the class names, a JSON list), `input_shape`
//! (JSON `[C, H, W]`), `input` (how raw examples become inputs, a JSON
//! [`InputKind`]: digits, pictures of a size, a table's column encodings),
//! `seed` (generated data sets and held-out splits are drawn from it),
//! `test_split`, `epoch` and `preprocess` (the same in words). Version 1 files
//! gave `classes` as a count and had no `input`; they still load.
//!
//! Loading trusts nothing in the file: the architecture in the metadata is
//! checked against the tensors actually present (names, shapes, dtype) before
//! the net is built, so no metadata can make the loader allocate more than
//! the file's own data; weights that are NaN or infinite are refused, since a
//! net holding them can only answer NaN. [`load_bytes`] is the loader on bytes
//! already in memory (the fuzz target `checkpoint` calls it).
//!
//! ```
//! use backprop::checkpoint::{self, ModelInfo};
//! use backprop::data::DatasetName;
//! use backprop::nets::MultiLayerNet;
//! let net = MultiLayerNet::new(4, &[3], 2).build::<f32>(1).unwrap();
//! let info = ModelInfo::builtin(DatasetName::Spiral, 2, [1, 1, 4], 1, 0);
//! let path = std::env::temp_dir().join(format!("doc-{}.safetensors", std::process::id()));
//! checkpoint::save(&path, &net, &info).unwrap();
//! let (back, info_back) = checkpoint::load::<f32>(&path).unwrap();
//! assert_eq!(back.params()[0].value.data(), net.params()[0].value.data());
//! assert_eq!(info_back, info);
//! # std::fs::remove_file(&path).unwrap();
//! ```

mod layout;
mod train_state;

pub use layout::{Layout, layout};
pub use train_state::{
    TRAIN_STATE_FILE, TrainState, read_train_state, restore_training, save_training,
    train_state_from_bytes,
};

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::data::{self, DataSource, Dataset, DatasetName, InputKind, ReadOptions};
use crate::layers::Layer;
use crate::nets::{self, NetSpec, Network};
use crate::tensor::{Float, Tensor};

/// The file `train` writes in its output folder.
pub const MODEL_FILE: &str = "model.safetensors";

/// Bumped when the meaning of names, layouts or metadata changes. Version 2
/// keeps `net` as a chain of layers ([`NetSpec`]); version 1 kept the
/// textbook's nets by kind (`{"kind": "mlp", ...}`), which still loads.
pub const FORMAT_VERSION: u32 = 2;

/// The versions this build reads.
const READS: [&str; 2] = ["1", "2"];

/// What a checkpoint says besides its tensors and architecture.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// The data set the net was trained on; `eval` uses its test split.
    pub dataset: DataSource,
    /// The classes' names, in the order of the net's scores.
    pub class_names: Vec<String>,
    /// One example's shape, `[C, H, W]` (`[1, 28, 28]` for MNIST).
    pub input_shape: [usize; 3],
    /// How raw examples become the net's inputs.
    pub input: InputKind,
    /// The run's seed: generated data sets (spiral) and held-out test sets are
    /// drawn from it.
    pub seed: u64,
    /// The share of each class held out as the test set, for data that had no
    /// test split (a folder without test/, a table).
    pub test_split: f64,
    /// Epochs trained when the file was written.
    pub epoch: usize,
}

impl ModelInfo {
    /// For a net trained on `data`, which came from `source`.
    pub fn of(
        source: DataSource,
        data: &Dataset,
        seed: u64,
        test_split: f64,
        epoch: usize,
    ) -> Self {
        ModelInfo {
            dataset: source,
            class_names: data.class_names.clone(),
            input_shape: data.shape,
            input: data.input.clone(),
            seed,
            test_split,
            epoch,
        }
    }

    /// For a net on a built-in data set (its class names and input kind).
    pub fn builtin(
        name: DatasetName,
        classes: usize,
        input_shape: [usize; 3],
        seed: u64,
        epoch: usize,
    ) -> Self {
        ModelInfo {
            dataset: name.into(),
            class_names: data::builtin_class_names(name, classes),
            input_shape,
            input: InputKind::of_builtin(name),
            seed,
            test_split: 0.2,
            epoch,
        }
    }

    pub fn classes(&self) -> usize {
        self.class_names.len()
    }

    /// How to read the training data again as it was read (`eval`: the same
    /// test split, picture size and table columns).
    pub fn read_options(&self) -> ReadOptions {
        let mut read = ReadOptions {
            test_split: self.test_split,
            ..ReadOptions::default()
        };
        match &self.input {
            InputKind::Images {
                width,
                height,
                channels,
            } => {
                read.image_size = Some((*width, *height));
                read.channels = Some(*channels);
            }
            InputKind::Table(table) => {
                read.label = Some(table.label().to_owned());
                read.delimiter = Some(table.delimiter);
                read.ignore = table.ignored_by_choice().map(str::to_owned).collect();
            }
            InputKind::Digits | InputKind::Vectors => {}
        }
        read
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("cannot write checkpoint {path}: {err}")]
    Write { path: PathBuf, err: std::io::Error },
    #[error(
        "{path} is not a valid safetensors file ({reason}); was it truncated or is it another format?"
    )]
    Format { path: PathBuf, reason: String },
    #[error(
        "{path} has no '{key}' in its metadata, so backprop cannot rebuild the net: write checkpoints with `backprop train`, or add the metadata keys format_version, net, dataset, classes and input_shape"
    )]
    MissingMetadata { path: PathBuf, key: &'static str },
    #[error("{path}: metadata '{key}' = {value:?} is invalid: {reason}")]
    BadMetadata {
        path: PathBuf,
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "{path} has format_version {found}; this backprop reads versions 1 to {FORMAT_VERSION}"
    )]
    Version { path: PathBuf, found: String },
    #[error(
        "{path}: tensor '{name}' is missing; the architecture in the metadata needs it with shape {expected:?}"
    )]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
    },
    #[error(
        "{path}: tensor '{name}' has shape {found:?}, the architecture in the metadata expects {expected:?}"
    )]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "{path}: tensor '{name}' holds {value} at index {index}, expected finite numbers: a net with such weights can only answer NaN (did the run that wrote it diverge? train again with a smaller --lr)"
    )]
    NonFinite {
        path: PathBuf,
        name: String,
        index: usize,
        value: f32,
    },
    #[error("{path}: tensor '{name}' is {found}, expected F32")]
    Dtype {
        path: PathBuf,
        name: String,
        found: String,
    },
    #[error(
        "{path}: tensor '{name}' is not part of the architecture in the metadata (expected only: {expected})"
    )]
    Unexpected {
        path: PathBuf,
        name: String,
        expected: String,
    },
    #[error("{path}: {reason}; the file is damaged: start the run again without --resume")]
    BadState { path: PathBuf, reason: String },
    #[error("{path}: the net does not match its metadata: {reason}")]
    Mismatch { path: PathBuf, reason: String },
    #[error("cannot save the net: {0}")]
    Spec(#[from] nets::SpecError),
}

/// PyTorch's name for tensor `name` of layer `index`.
pub fn torch_name(index: usize, name: &str) -> String {
    let suffix = match name {
        "W" | "gamma" => "weight",
        "b" | "beta" => "bias",
        other => other,
    };
    format!("{index}.{suffix}")
}

/// A tensor in PyTorch's layout, as f32.
pub(crate) struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Transposes a row-major `(rows, cols)` matrix.
fn transpose<T: Copy>(data: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(data.len());
    for c in 0..cols {
        out.extend((0..rows).map(|r| data[r * cols + c]));
    }
    out
}

fn to_torch<T: Float>(layer: &dyn Layer<T>, index: usize, name: &str, t: &Tensor<T>) -> Named {
    let data: Vec<f32> = t.data().iter().map(|v| v.as_f64() as f32).collect();
    let shape = t.shape().to_vec();
    if layer.torch_transposed(name) && shape.len() == 2 {
        Named {
            name: torch_name(index, name),
            data: transpose(&data, shape[0], shape[1]),
            shape: vec![shape[1], shape[0]],
        }
    } else {
        Named {
            name: torch_name(index, name),
            shape,
            data,
        }
    }
}

/// Every parameter and buffer of `net` in PyTorch's names and layouts.
pub(crate) fn state_dict<T: Float>(net: &Network<T>, buffers_only: bool) -> Vec<Named> {
    let mut out = Vec::new();
    for (i, layer) in net.layers.iter().enumerate() {
        if !buffers_only {
            for p in layer.params() {
                out.push(to_torch(layer.as_ref(), i, p.name, p.value));
            }
        }
        for (name, t) in layer.buffers() {
            out.push(to_torch(layer.as_ref(), i, name, t));
        }
    }
    out
}

/// Copies tensors from `file` into the parameters (and buffers) of `net`,
/// checking names, shapes and dtypes; names get `prefix` in front. Returns
/// how many tensors were read.
pub(crate) fn fill_from<T: Float>(
    net: &mut Network<T>,
    file: &SafeTensors<'_>,
    prefix: &str,
    buffers_only: bool,
    path: &Path,
) -> Result<usize, CheckpointError> {
    let mut filled = 0;
    for (i, layer) in net.layers.iter_mut().enumerate() {
        let flips: Vec<&'static str> = layer
            .params()
            .iter()
            .map(|p| p.name)
            .chain(layer.buffers().iter().map(|b| b.0))
            .filter(|n| layer.torch_transposed(n))
            .collect();
        let fill = |name: &str, value: &mut Tensor<T>| {
            let flip = flips.contains(&name) && value.shape().len() == 2;
            fill_one(
                file,
                &format!("{prefix}{}", torch_name(i, name)),
                value,
                flip,
                path,
            )
        };
        if !buffers_only {
            for p in layer.params_mut() {
                fill(p.name, p.value)?;
                filled += 1;
            }
        }
        for (name, value) in layer.buffers_mut() {
            fill(name, value)?;
            filled += 1;
        }
    }
    Ok(filled)
}

/// Tensor `name` of `file`, if it is F32 of shape `expected`.
fn f32_view<'a>(
    file: &SafeTensors<'a>,
    name: &str,
    expected: &[usize],
    path: &Path,
) -> Result<TensorView<'a>, CheckpointError> {
    let view = file
        .tensor(name)
        .map_err(|_| CheckpointError::MissingTensor {
            path: path.to_owned(),
            name: name.to_owned(),
            expected: expected.to_vec(),
        })?;
    if view.dtype() != Dtype::F32 {
        return Err(CheckpointError::Dtype {
            path: path.to_owned(),
            name: name.to_owned(),
            found: format!("{:?}", view.dtype()),
        });
    }
    if view.shape() != expected {
        return Err(CheckpointError::Shape {
            path: path.to_owned(),
            name: name.to_owned(),
            expected: expected.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    Ok(view)
}

/// Reads tensor `name` of `file` into `value`, transposing it if `flip`.
fn fill_one<T: Float>(
    file: &SafeTensors<'_>,
    name: &str,
    value: &mut Tensor<T>,
    flip: bool,
    path: &Path,
) -> Result<(), CheckpointError> {
    let expected: Vec<usize> = if flip {
        vec![value.shape()[1], value.shape()[0]]
    } else {
        value.shape().to_vec()
    };
    let view = f32_view(file, name, &expected, path)?;
    let data: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some((index, &value)) = data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(CheckpointError::NonFinite {
            path: path.to_owned(),
            name: name.to_owned(),
            index,
            value,
        });
    }
    let data = if flip {
        transpose(&data, expected[0], expected[1])
    } else {
        data
    };
    for (dst, &src) in value.data_mut().iter_mut().zip(&data) {
        *dst = T::of(f64::from(src));
    }
    Ok(())
}

/// Serialises tensors and metadata, and writes them atomically: to a temporary
/// file in the same folder, then renamed, so a run killed mid-write leaves the
/// previous checkpoint intact.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &[Named],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| CheckpointError::Format {
                    path: path.to_owned(),
                    reason: format!("tensor {}: {e}", t.name),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data =
        safetensors::serialize(views, Some(metadata)).map_err(|e| CheckpointError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    write_atomically(path, &data).map_err(|err| CheckpointError::Write {
        path: path.to_owned(),
        err,
    })
}

/// Writes `data` to `path` through a temporary file in the same folder,
/// flushed and then renamed over `path`: a process killed at any moment
/// leaves the old file or the new one, never a torn one. A failed write
/// removes its temporary file.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // The rename itself is durable only once the folder is synced (after a
    // power cut; a killed process needs only the rename).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    fs::read(path).map_err(|err| CheckpointError::Read {
        path: path.to_owned(),
        err,
    })
}

pub(crate) fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, CheckpointError> {
    SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn metadata(
    path: &Path,
    bytes: &[u8],
) -> Result<HashMap<String, String>, CheckpointError> {
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError::Format {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Writes `net` to `path`, with the [`NetSpec`] it was built from, or for a
/// net built in code from the library's layers, the one they describe.
pub fn save<T: Float>(
    path: &Path,
    net: &Network<T>,
    info: &ModelInfo,
) -> Result<(), CheckpointError> {
    let spec = saved_spec(net, info)?;
    let meta = HashMap::from([
        ("format".to_owned(), "backprop".to_owned()),
        ("format_version".to_owned(), FORMAT_VERSION.to_string()),
        (
            "net".to_owned(),
            serde_json::to_string(&spec).expect("NetSpec serialises"),
        ),
        ("dataset".to_owned(), info.dataset.to_string()),
        (
            "classes".to_owned(),
            serde_json::to_string(&info.class_names).expect("names serialise"),
        ),
        (
            "input".to_owned(),
            serde_json::to_string(&info.input).expect("input kind serialises"),
        ),
        ("test_split".to_owned(), info.test_split.to_string()),
        (
            "input_shape".to_owned(),
            serde_json::to_string(&info.input_shape).expect("array serialises"),
        ),
        ("seed".to_owned(), info.seed.to_string()),
        ("epoch".to_owned(), info.epoch.to_string()),
        ("preprocess".to_owned(), info.input.describe()),
    ]);
    write_safetensors(path, &state_dict(net, false), meta)
}

/// The [`NetSpec`] a checkpoint of `net` records as `net`: the one it was
/// built from, or for a net built in code from the library's layers, the one
/// they describe; either way taking the examples as the data has them.
pub(crate) fn saved_spec<T: Float>(
    net: &Network<T>,
    info: &ModelInfo,
) -> Result<NetSpec, nets::SpecError> {
    let mut spec = match &net.spec {
        Some(spec) => spec.clone(),
        None => NetSpec::from_layers(&net.layers, net.weight_decay_lambda, &info.input_shape)?,
    };
    // A MultiLayerNet names only the examples' flattened size.
    if spec
        .input_shape
        .as_ref()
        .is_some_and(|s| s.len() == 1 && s[0] == info.input_shape.iter().product::<usize>())
    {
        spec.input_shape = Some(info.input_shape.to_vec());
    }
    Ok(spec)
}

/// Parses metadata key `key` with `f`, naming the file and key on failure.
fn field<V>(
    path: &Path,
    meta: &HashMap<String, String>,
    key: &'static str,
    f: impl FnOnce(&str) -> Result<V, String>,
) -> Result<V, CheckpointError> {
    let value = meta
        .get(key)
        .ok_or_else(|| CheckpointError::MissingMetadata {
            path: path.to_owned(),
            key,
        })?;
    f(value).map_err(|reason| CheckpointError::BadMetadata {
        path: path.to_owned(),
        key,
        value: value.chars().take(200).collect(),
        reason,
    })
}

fn parse_info(
    path: &Path,
    meta: &HashMap<String, String>,
) -> Result<(NetSpec, ModelInfo), CheckpointError> {
    let version = field(path, meta, "format_version", |v| Ok(v.to_owned()))?;
    if !READS.contains(&version.trim()) {
        return Err(CheckpointError::Version {
            path: path.to_owned(),
            found: version,
        });
    }
    let mut spec = field(path, meta, "net", |v| {
        NetSpec::from_json(v).map_err(|e| e.reason)
    })?;
    let dataset = field(path, meta, "dataset", |v| {
        v.parse::<DataSource>().map_err(|e| e.to_string())
    })?;
    // A list of names; version 1 gave a count.
    let class_names = field(path, meta, "classes", |v| {
        let names = match v.trim().parse::<usize>() {
            Ok(n) => match dataset.builtin() {
                Some(name) => data::builtin_class_names(name, n),
                None => data::numbered_classes(n),
            },
            Err(_) => serde_json::from_str::<Vec<String>>(v).map_err(|e| e.to_string())?,
        };
        if names.len() < 2 || names.len() > data::MAX_CLASSES {
            return Err(format!(
                "expected the names of 2 to {} classes, e.g. [\"cat\", \"dog\"]",
                data::MAX_CLASSES
            ));
        }
        Ok(names)
    })?;
    let input = if meta.contains_key("input") {
        field(path, meta, "input", |v| {
            serde_json::from_str::<InputKind>(v).map_err(|e| e.to_string())
        })?
    } else {
        match dataset.builtin() {
            Some(name) => InputKind::of_builtin(name),
            None => InputKind::Vectors,
        }
    };
    let test_split = if meta.contains_key("test_split") {
        field(path, meta, "test_split", |v| {
            match v.trim().parse::<f64>() {
                Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
                _ => Err("expected a share from 0 to below 1, such as 0.2".into()),
            }
        })?
    } else {
        0.2
    };
    let input_shape = field(path, meta, "input_shape", |v| {
        match serde_json::from_str::<[usize; 3]>(v) {
            Ok(s) if s.iter().all(|&d| d > 0) => Ok(s),
            _ => Err("expected [C, H, W] with positive sizes, e.g. [1, 28, 28]".into()),
        }
    })?;
    let number = |key, default: u64| -> Result<u64, CheckpointError> {
        if meta.contains_key(key) {
            field(path, meta, key, |v| {
                v.trim().parse::<u64>().map_err(|e| e.to_string())
            })
        } else {
            Ok(default)
        }
    };
    let info = ModelInfo {
        dataset,
        class_names,
        input_shape,
        input,
        seed: number("seed", 0)?,
        test_split,
        epoch: number("epoch", 0)? as usize,
    };
    // The net takes the checkpoint's example shape. A version-1 MultiLayerNet
    // named only its input size, the flattened shape.
    match &spec.input_shape {
        Some(s) if s.as_slice() == input_shape => {}
        Some(s)
            if s.len() == 1
                && s.iter().product::<usize>() == input_shape.iter().product::<usize>() =>
        {
            spec.input_shape = Some(input_shape.to_vec());
        }
        None => spec.input_shape = Some(input_shape.to_vec()),
        Some(s) => {
            return Err(CheckpointError::Mismatch {
                path: path.to_owned(),
                reason: format!(
                    "input_shape {input_shape:?} differs from the net's input shape {s:?}"
                ),
            });
        }
    }
    Ok((spec, info))
}

/// Checks that the net built from the metadata takes `input_shape` and gives
/// `classes` scores, by the shapes of its first and last weights (the first
/// layer with parameters is Affine (in, out) or Convolution (FN, C, FH, FW);
/// the last is an Affine whose bias has one entry per class).
fn check_io<T: Float>(
    path: &Path,
    net: &Network<T>,
    info: &ModelInfo,
) -> Result<(), CheckpointError> {
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: path.to_owned(),
        reason,
    };
    let params = net.params();
    let first = params
        .first()
        .ok_or_else(|| mismatch("the net has no parameters".into()))?;
    let [c, h, w] = info.input_shape;
    let ok = match first.value.shape() {
        [rows, _] => c.checked_mul(h).and_then(|n| n.checked_mul(w)) == Some(*rows),
        [_, channels, _, _] => *channels == c,
        _ => true,
    };
    if !ok {
        return Err(mismatch(format!(
            "input_shape {:?} does not fit the first weights {:?} ({})",
            info.input_shape,
            first.value.shape(),
            first.name
        )));
    }
    let last = params.last().expect("non-empty");
    if last.value.shape() != [info.classes()] {
        return Err(mismatch(format!(
            "classes = {} but the last layer gives {:?} scores ({})",
            info.classes(),
            last.value.shape(),
            last.name
        )));
    }
    Ok(())
}

/// The architecture a checkpoint describes, checked against its tensors.
pub fn read_spec(path: &Path) -> Result<NetSpec, CheckpointError> {
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    Ok(checked_spec(path, &bytes, &file)?.0)
}

/// Rebuilds the net a checkpoint describes and loads its tensors.
pub fn load<T: Float>(path: &Path) -> Result<(Network<T>, ModelInfo), CheckpointError> {
    load_bytes(path, &read_file(path)?)
}

/// [`load`] on the content of a checkpoint; `path` only names it in errors.
pub fn load_bytes<T: Float>(
    path: &Path,
    bytes: &[u8],
) -> Result<(Network<T>, ModelInfo), CheckpointError> {
    let file = parse(path, bytes)?;
    let (spec, info) = checked_spec(path, bytes, &file)?;
    let mut net = spec
        .build::<T>(info.seed)
        .map_err(|e| CheckpointError::BadMetadata {
            path: path.to_owned(),
            key: "net",
            value: String::new(),
            reason: e.to_string(),
        })?;
    check_io(path, &net, &info)?;
    fill_from(&mut net, &file, "", false, path)?;
    Ok((net, info))
}

/// The architecture and facts in a checkpoint's metadata, checked against the
/// tensors in `file` (every one present, F32, of the right shape, none extra),
/// so that building the net allocates no more than the file holds.
pub(crate) fn checked_spec(
    path: &Path,
    bytes: &[u8],
    file: &SafeTensors<'_>,
) -> Result<(NetSpec, ModelInfo), CheckpointError> {
    let meta = metadata(path, bytes)?;
    let (spec, info) = parse_info(path, &meta)?;
    let bad_net = |reason: String| CheckpointError::BadMetadata {
        path: path.to_owned(),
        key: "net",
        value: meta
            .get("net")
            .map_or_else(String::new, |v| v.chars().take(200).collect()),
        reason,
    };
    let layout = layout(&spec).map_err(bad_net)?;
    for (name, expected) in &layout.tensors {
        f32_view(file, name, expected, path)?;
    }
    if file.len() != layout.tensors.len() {
        let mut names = file.names();
        names.sort();
        let extra = names
            .into_iter()
            .find(|n| !layout.tensors.iter().any(|(e, _)| e == n))
            .unwrap_or_default()
            .to_owned();
        let expected: Vec<&str> = layout.tensors.iter().map(|(n, _)| n.as_str()).collect();
        return Err(CheckpointError::Unexpected {
            path: path.to_owned(),
            name: extra,
            expected: expected.join(", "),
        });
    }
    Ok((spec, info))
}

/// A checkpoint's tensor shapes by name, and its metadata.
pub type Description = (BTreeMap<String, Vec<usize>>, HashMap<String, String>);

/// Tensor names, shapes and metadata of a checkpoint, for error messages and tests.
pub fn describe(path: &Path) -> Result<Description, CheckpointError> {
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    let shapes = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec()))
        .collect();
    Ok((shapes, metadata(path, &bytes)?))
}

#[cfg(test)]
mod tests;
