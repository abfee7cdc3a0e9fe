//! Where MNIST and Fashion-MNIST files come from: the folders we look in, in which order,
//! and the mirrors and checksums used when nothing is on disk.
//!
//! The environment is read once into [`Env`] and passed down, so the search order can be
//! tested with explicit values instead of by mutating process-wide variables.

use std::path::{Path, PathBuf};

#[cfg(feature = "download")]
use super::download;
use super::{DataError, Dataset, DatasetName, Features, InputKind, LoadOptions, Split, idx};

/// The four files of an MNIST-style data set, in the order train images, train labels,
/// test images, test labels, each with the SHA-256 of its decompressed content.
///
/// The checksums cover the IDX bytes rather than the `.gz` files because the published
/// archives and redistributed copies (e.g. Debian's, or a recompressed shared folder) hold
/// identical data in different gzip wrappers; hashing the content accepts all of them.
type FileSet = [(&'static str, &'static str); 4];

const MNIST_FILES: FileSet = [
    (
        "train-images-idx3-ubyte.gz",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

const FASHION_FILES: FileSet = [
    (
        "train-images-idx3-ubyte.gz",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

#[cfg(feature = "download")]
const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

#[cfg(feature = "download")]
const FASHION_MIRRORS: &[&str] = &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// Where Debian's `dataset-fashion-mnist` package installs its files.
const DEBIAN_DATASETS: &str = "/usr/share/datasets";

/// Both data sets have ten classes (digits; clothing types).
const CLASSES: usize = 10;

/// The environment settings that steer the search, read once per [`super::load`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Env {
    /// `$BACKPROP_DATA`: a folder with one subfolder per data set.
    pub backprop_data: Option<PathBuf>,
    /// Per-user cache root (`$BACKPROP_CACHE`, `$XDG_CACHE_HOME/backprop` or
    /// `$HOME/.cache/backprop`); `None` if none of those is set.
    pub cache_dir: Option<PathBuf>,
    /// `$BACKPROP_MIRROR`: a base URL that replaces the built-in mirrors.
    #[cfg(feature = "download")]
    pub mirror: Option<String>,
    /// Root of system-wide data set packages (Debian's `/usr/share/datasets`).
    pub system_dir: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Env {
        // Empty values count as unset, as the XDG spec asks and as shells make easy to do.
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let cache_dir = var("BACKPROP_CACHE")
            .map(PathBuf::from)
            .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("backprop")))
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache").join("backprop")));
        Env {
            backprop_data: var("BACKPROP_DATA").map(PathBuf::from),
            cache_dir,
            #[cfg(feature = "download")]
            mirror: var("BACKPROP_MIRROR").map(|m| m.to_string_lossy().into_owned()),
            system_dir: Some(PathBuf::from(DEBIAN_DATASETS)),
        }
    }
}

fn files(name: DatasetName) -> &'static FileSet {
    match name {
        DatasetName::FashionMnist => &FASHION_FILES,
        _ => &MNIST_FILES,
    }
}

/// The path of `file` in `dir`, compressed or not, if it exists.
fn find(dir: &Path, file: &str) -> Option<PathBuf> {
    let plain = file.strip_suffix(".gz").unwrap_or(file);
    [file, plain]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// The first of the data set's files missing from `dir`, if any.
fn first_missing(name: DatasetName, dir: &Path) -> Option<&'static str> {
    files(name)
        .iter()
        .map(|&(f, _)| f)
        .find(|f| find(dir, f).is_none())
}

/// Finds (or downloads) the folder holding the data set's four files; see [`super::load`]
/// for the search order. A folder the user named explicitly (`--data`, `BACKPROP_DATA`)
/// must hold the files: falling back silently would train on data they did not choose.
pub(crate) fn locate(
    name: DatasetName,
    opts: &LoadOptions,
    env: &Env,
) -> Result<PathBuf, DataError> {
    let missing = |origin, dir: &Path, file: &str, also: String, hint: String| DataError::Missing {
        origin,
        dir: dir.to_path_buf(),
        file: format!("{file} (or {})", file.trim_end_matches(".gz")),
        also,
        hint,
    };

    if let Some(dir) = &opts.data_dir {
        let nested = dir.join(name.as_str());
        let Some(file) = first_missing(name, dir) else {
            return Ok(dir.clone());
        };
        if first_missing(name, &nested).is_none() {
            return Ok(nested);
        }
        return Err(missing(
            "--data",
            dir,
            file,
            format!(" there or in {}", nested.display()),
            format!(
                "point --data at the folder holding the four {name} IDX files, or drop it to \
                 use the cache and download"
            ),
        ));
    }

    // BACKPROP_DATA may hold some data sets and not others (the shared folder
    // has only mnist/): a missing subfolder falls through, a broken one is an error.
    if let Some(root) = &env.backprop_data
        && root.join(name.as_str()).is_dir()
    {
        let dir = root.join(name.as_str());
        return match first_missing(name, &dir) {
            None => Ok(dir),
            Some(file) => Err(missing(
                "BACKPROP_DATA",
                &dir,
                file,
                String::new(),
                format!(
                    "put the four {name} IDX files there, or unset BACKPROP_DATA to use the \
                     cache and download"
                ),
            )),
        };
    }

    if name == DatasetName::FashionMnist
        && let Some(system) = &env.system_dir
    {
        let dir = system.join(name.as_str());
        if first_missing(name, &dir).is_none() {
            return Ok(dir);
        }
    }

    let unavailable = |reason: &str| DataError::Unavailable {
        dataset: name.to_string(),
        reason: reason.to_string(),
    };
    let Some(cache_root) = &env.cache_dir else {
        return Err(unavailable(
            "there is no cache folder to download it into (set BACKPROP_CACHE, XDG_CACHE_HOME \
             or HOME)",
        ));
    };
    let cache = cache_root.join(name.as_str());
    if first_missing(name, &cache).is_none() {
        return Ok(cache);
    }
    if !opts.allow_download {
        return Err(unavailable("downloading is disabled"));
    }
    fetch(name, env, &cache, opts)?;
    Ok(cache)
}

/// Downloads the four files of `name` into `cache` from its mirrors (or
/// `BACKPROP_MIRROR`), verifying each against its checksum.
#[cfg(feature = "download")]
fn fetch(name: DatasetName, env: &Env, cache: &Path, opts: &LoadOptions) -> Result<(), DataError> {
    let mirrors: Vec<String> = match &env.mirror {
        Some(m) => vec![m.clone()],
        None => {
            let builtin = match name {
                DatasetName::FashionMnist => FASHION_MIRRORS,
                _ => MNIST_MIRRORS,
            };
            builtin.iter().map(|m| m.to_string()).collect()
        }
    };
    download::fetch_dataset(files(name), &mirrors, cache, opts.progress)
}

#[cfg(not(feature = "download"))]
fn fetch(name: DatasetName, _: &Env, _: &Path, _: &LoadOptions) -> Result<(), DataError> {
    Err(DataError::Unavailable {
        dataset: name.to_string(),
        reason: "this build of backprop cannot download (it was built without the cargo \
                 feature `download`)"
            .to_string(),
    })
}

/// Reads the train and test splits from a folder holding the four files.
pub(crate) fn read_split(name: DatasetName, dir: &Path) -> Result<Split, DataError> {
    let path = |i: usize| {
        let file = files(name)[i].0;
        find(dir, file).unwrap_or_else(|| dir.join(file))
    };
    let train = read_dataset(name, &path(0), &path(1))?;
    let test = read_dataset(name, &path(2), &path(3))?;
    check_shapes(&train, &test, &path(2))?;
    Ok(Split::new(train, test))
}

fn check_shapes(train: &Dataset, test: &Dataset, test_path: &Path) -> Result<(), DataError> {
    if test.shape != train.shape {
        let hw = |s: [usize; 3]| idx::join_dims(&s[1..]);
        return Err(DataError::ShapeMismatch {
            path: test_path.to_path_buf(),
            expected: hw(train.shape),
            found: hw(test.shape),
        });
    }
    Ok(())
}

/// `--dataset idx --data DIR`: the four files named as MNIST's, with images
/// of any size and as many classes as the labels name (EMNIST, KMNIST, ...).
pub(crate) fn read_any_idx(dir: &Path) -> Result<Split, DataError> {
    let path = |i: usize| {
        let file = MNIST_FILES[i].0;
        find(dir, file).unwrap_or_else(|| dir.join(file))
    };
    if let Some(file) = first_missing(DatasetName::Mnist, dir) {
        return Err(DataError::Missing {
            origin: "--data",
            dir: dir.to_path_buf(),
            file: format!("{file} (or {})", file.trim_end_matches(".gz")),
            also: String::new(),
            hint: "--dataset idx reads the four standard IDX files (train-images-idx3-ubyte, \
                   train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"
                .into(),
        });
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "idx".into());
    let read = |images: usize, labels: usize| -> Result<Dataset, DataError> {
        let (img, labels) = idx::read_labelled(&path(images), &path(labels), 256)?;
        let (h, w) = (img.dims[1], img.dims[2]);
        Ok(Dataset {
            name: name.clone(),
            features: Features::Pixels(img.data),
            labels: labels.into_iter().map(u16::from).collect(),
            class_names: Vec::new(),
            shape: [1, h, w],
            input: InputKind::Images {
                width: w as u32,
                height: h as u32,
                channels: 1,
            },
        })
    };
    let (mut train, mut test) = (read(0, 1)?, read(2, 3)?);
    check_shapes(&train, &test, &path(2))?;
    let classes = train
        .labels
        .iter()
        .chain(&test.labels)
        .max()
        .map_or(0, |&m| usize::from(m) + 1)
        .max(2);
    for d in [&mut train, &mut test] {
        d.class_names = super::numbered_classes(classes);
    }
    Ok(Split::new(train, test))
}

fn read_dataset(name: DatasetName, images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let (img, labels) = idx::read_labelled(images, labels, CLASSES)?;
    Ok(ten_class_images(name, img, labels))
}

/// An MNIST-style split: grey `N x H x W` images in ten classes.
pub(crate) fn ten_class_images(name: DatasetName, img: idx::IdxArray, labels: Vec<u8>) -> Dataset {
    Dataset {
        name: name.to_string(),
        features: Features::Pixels(img.data),
        labels: labels.into_iter().map(u16::from).collect(),
        class_names: super::builtin_class_names(name, CLASSES),
        shape: [1, img.dims[1], img.dims[2]],
        input: InputKind::of_builtin(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    #[cfg(feature = "download")]
    use {
        crate::data::testutil::{serve, unreachable_base},
        std::collections::HashMap,
    };

    /// Writes a small MNIST-like data set (`n_train` and `n_test` images of 28x28) into
    /// `dir`, with pixels and labels derived from the example index.
    fn write_fake(dir: &Path, n_train: usize, n_test: usize, gzip: bool) {
        std::fs::create_dir_all(dir).unwrap();
        let suffix = if gzip { ".gz" } else { "" };
        for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
            let pixels: Vec<u8> = (0..n * 784).map(|i| (i / 784 + i % 784) as u8).collect();
            let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            let img = dir.join(format!("{prefix}-images-idx3-ubyte{suffix}"));
            let lab = dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}"));
            idx::write_idx(&img, &[n, 28, 28], &pixels, gzip).unwrap();
            idx::write_idx(&lab, &[n], &labels, gzip).unwrap();
        }
    }

    fn opts(data_dir: Option<&Path>, allow_download: bool) -> LoadOptions {
        LoadOptions {
            data_dir: data_dir.map(Path::to_path_buf),
            allow_download,
            progress: false,
            seed: 0,
            sample_fallback: false,
            read: Default::default(),
        }
    }

    /// An environment that points nowhere real, so tests never touch the user's cache.
    fn env(tmp: &TempDir) -> Env {
        Env {
            cache_dir: Some(tmp.path().join("cache")),
            ..Env::default()
        }
    }

    fn check_fake(split: &Split, n_train: usize, n_test: usize) {
        assert_eq!((split.train.len(), split.test.len()), (n_train, n_test));
        assert_eq!(split.train.shape, [1, 28, 28]);
        assert_eq!(split.train.classes(), 10);
        assert_eq!(split.test.labels[7], 7);
        let Features::Pixels(px) = &split.train.features else {
            panic!("MNIST features must be pixels")
        };
        assert_eq!(px[5 * 784 + 2], 7);
    }

    #[test]
    fn data_dir_holding_the_files() {
        let tmp = TempDir::new("src-data-dir");
        write_fake(tmp.path(), 30, 12, false);
        let dir = locate(
            DatasetName::Mnist,
            &opts(Some(tmp.path()), false),
            &env(&tmp),
        )
        .unwrap();
        assert_eq!(dir, tmp.path());
        check_fake(&read_split(DatasetName::Mnist, &dir).unwrap(), 30, 12);
    }

    #[test]
    fn data_dir_with_dataset_subfolder() {
        let tmp = TempDir::new("src-data-nested");
        write_fake(&tmp.path().join("fashion-mnist"), 20, 10, true);
        let o = opts(Some(tmp.path()), false);
        let dir = locate(DatasetName::FashionMnist, &o, &env(&tmp)).unwrap();
        assert_eq!(dir, tmp.path().join("fashion-mnist"));
        check_fake(
            &read_split(DatasetName::FashionMnist, &dir).unwrap(),
            20,
            10,
        );

        // The MNIST folder is not there: an error naming the folder, no download attempt.
        let err = locate(DatasetName::Mnist, &o, &env(&tmp)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
        assert!(
            msg.contains("--data") && msg.contains(&tmp.path().display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
    }

    #[test]
    fn backprop_data_missing_files_is_an_error() {
        let tmp = TempDir::new("src-backprop-data");
        write_fake(&tmp.path().join("cache").join("mnist"), 10, 10, true);
        std::fs::create_dir_all(tmp.path().join("shared").join("mnist")).unwrap();
        let e = Env {
            backprop_data: Some(tmp.path().join("shared")),
            ..env(&tmp)
        };
        // Even though the cache holds MNIST, a BACKPROP_DATA/mnist without the files is an error.
        let err = locate(DatasetName::Mnist, &opts(None, true), &e).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
        assert!(msg.contains("BACKPROP_DATA"), "{msg}");
        // Without the subfolder at all, BACKPROP_DATA simply does not have this data set.
        std::fs::remove_dir(tmp.path().join("shared").join("mnist")).unwrap();
        assert_eq!(
            locate(DatasetName::Mnist, &opts(None, true), &e).unwrap(),
            tmp.path().join("cache").join("mnist")
        );
        std::fs::create_dir_all(tmp.path().join("shared").join("mnist")).unwrap();
        let err = locate(DatasetName::Mnist, &opts(None, true), &e).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
        assert!(msg.contains("BACKPROP_DATA"), "{msg}");
        assert!(
            msg.contains(
                &tmp.path()
                    .join("shared")
                    .join("mnist")
                    .display()
                    .to_string()
            ),
            "{msg}"
        );

        write_fake(&tmp.path().join("shared").join("mnist"), 10, 10, false);
        let dir = locate(DatasetName::Mnist, &opts(None, true), &e).unwrap();
        assert_eq!(dir, tmp.path().join("shared").join("mnist"));
    }

    #[test]
    fn system_dir_then_cache() {
        let tmp = TempDir::new("src-system");
        let e = Env {
            system_dir: Some(tmp.path().join("system")),
            ..env(&tmp)
        };
        write_fake(
            &tmp.path().join("cache").join("fashion-mnist"),
            10,
            10,
            true,
        );
        let dir = locate(DatasetName::FashionMnist, &opts(None, false), &e).unwrap();
        assert_eq!(dir, tmp.path().join("cache").join("fashion-mnist"));

        write_fake(
            &tmp.path().join("system").join("fashion-mnist"),
            10,
            10,
            true,
        );
        let dir = locate(DatasetName::FashionMnist, &opts(None, false), &e).unwrap();
        assert_eq!(dir, tmp.path().join("system").join("fashion-mnist"));

        // The system package is Fashion-MNIST only.
        write_fake(&tmp.path().join("system").join("mnist"), 10, 10, true);
        let err = locate(DatasetName::Mnist, &opts(None, false), &e).unwrap_err();
        assert!(matches!(err, DataError::Unavailable { .. }), "{err:?}");
    }

    #[cfg(feature = "download")]
    #[test]
    fn download_into_cache_through_mirror_override() {
        let tmp = TempDir::new("src-download");
        let src = tmp.path().join("src");
        write_fake(&src, 50, 20, true);
        let mut routes = HashMap::new();
        let mut checksums = Vec::new();
        for (file, _) in MNIST_FILES {
            let path = src.join(file);
            routes.insert(format!("/{file}"), std::fs::read(&path).unwrap());
            checksums.push((file, download::content_sha256(&path).unwrap()));
        }
        let base = serve(routes, 4);
        let dest = tmp.path().join("cache").join("mnist");
        let files: Vec<(&str, &str)> = checksums.iter().map(|(f, h)| (*f, h.as_str())).collect();
        download::fetch_dataset(&files, &[base], &dest, false).unwrap();
        // The cache is now found without any network.
        let dir = locate(DatasetName::Mnist, &opts(None, false), &env(&tmp)).unwrap();
        assert_eq!(dir, dest);
        check_fake(&read_split(DatasetName::Mnist, &dir).unwrap(), 50, 20);
    }

    #[cfg(feature = "download")]
    #[test]
    fn unreachable_mirror_names_the_offline_options() {
        let tmp = TempDir::new("src-unreachable");
        let e = Env {
            mirror: Some(unreachable_base()),
            ..env(&tmp)
        };
        let err = locate(DatasetName::Mnist, &opts(None, true), &e).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::DownloadFailed { .. }), "{err:?}");
        for needle in [
            "--data",
            "BACKPROP_DATA",
            "--dataset mnist-sample",
            "127.0.0.1",
        ] {
            assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
        }
        let cache = tmp.path().join("cache").join("mnist");
        assert!(first_missing(DatasetName::Mnist, &cache).is_some());

        let err = locate(DatasetName::Mnist, &opts(None, false), &e).unwrap_err();
        assert!(err.to_string().contains("--dataset mnist-sample"), "{err}");
    }

    /// Runs only with `BACKPROP_DATA` set: checks the real MNIST files in
    /// `$BACKPROP_DATA/mnist`.
    #[test]
    fn real_mnist_from_backprop_data() {
        let Some(root) = std::env::var_os("BACKPROP_DATA").filter(|v| !v.is_empty()) else {
            eprintln!("skipping real_mnist_from_backprop_data: BACKPROP_DATA is not set");
            return;
        };
        let e = Env {
            backprop_data: Some(PathBuf::from(root)),
            ..Env::default()
        };
        let dir = locate(DatasetName::Mnist, &opts(None, false), &e).unwrap();
        let split = read_split(DatasetName::Mnist, &dir).unwrap();
        assert_eq!((split.train.len(), split.test.len()), (60000, 10000));
        for d in [&split.train, &split.test] {
            assert_eq!((d.shape, d.classes(), d.dim()), ([1, 28, 28], 10, 784));
            assert!(d.labels.iter().all(|&l| l < 10));
        }
        #[cfg(feature = "download")]
        check_checksums(DatasetName::Mnist, &dir);
    }

    #[cfg(feature = "download")]
    /// Checks the built-in checksums against the files in `dir`, so that a download could
    /// verify them.
    fn check_checksums(name: DatasetName, dir: &Path) {
        for (file, sha) in files(name) {
            let path = find(dir, file).unwrap();
            assert_eq!(download::content_sha256(&path).unwrap(), *sha, "{file}");
        }
    }

    #[cfg(feature = "download")]
    /// Runs only where Debian's dataset-fashion-mnist package is installed.
    #[test]
    fn fashion_checksums_match_debian_package() {
        let dir = Path::new(DEBIAN_DATASETS).join("fashion-mnist");
        if first_missing(DatasetName::FashionMnist, &dir).is_some() {
            eprintln!("skipping: {} does not hold Fashion-MNIST", dir.display());
            return;
        }
        check_checksums(DatasetName::FashionMnist, &dir);
    }
}
