//! Everything that can go wrong while finding, downloading or decoding a data set.
//!
//! Each message names the file or folder involved and, for format problems, says what was
//! expected and what was found, because the person reading it usually has to go and fix a
//! file by hand.

use std::io;
use std::path::PathBuf;

/// Failure to find, fetch or decode a data set.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading, writing or renaming a file failed.
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: io::Error },

    /// The file starts with the gzip magic bytes but does not decompress.
    #[error(
        "{}: corrupt or incomplete gzip data ({err}); delete the file and fetch it again",
        path.display()
    )]
    Gzip { path: PathBuf, err: io::Error },

    /// The first two bytes of an IDX file are not zero.
    #[error(
        "{}: not an IDX file: expected magic bytes 00 00 08 <ndim>, found {found}",
        path.display()
    )]
    BadMagic { path: PathBuf, found: String },

    /// The IDX element type is not unsigned byte.
    #[error(
        "{}: unsupported IDX element type: expected 0x08 (unsigned byte), found {code:#04x}",
        path.display()
    )]
    UnsupportedType { path: PathBuf, code: u8 },

    /// The IDX file has the wrong number of dimensions for its role.
    #[error("{}: expected {expected} dimension(s) ({role}), found {found}", path.display())]
    Rank {
        path: PathBuf,
        role: &'static str,
        expected: usize,
        found: usize,
    },

    /// The header's dimensions multiply to more bytes than can be addressed.
    #[error("{}: header dimensions {dims} overflow the addressable size; the file is corrupt", path.display())]
    Overflow { path: PathBuf, dims: String },

    /// The file ends before the data the header announces.
    #[error(
        "{}: truncated: header says {what} ({expected} bytes), file has {found} bytes{}; \
         delete it and fetch it again",
        path.display(),
        decompressed_note(*gzip)
    )]
    Truncated {
        path: PathBuf,
        what: String,
        expected: u64,
        found: u64,
        gzip: bool,
    },

    /// The file continues after the data the header announces.
    #[error(
        "{}: trailing data: header says {what} ({expected} bytes), file has {found} bytes{}",
        path.display(),
        decompressed_note(*gzip)
    )]
    TrailingData {
        path: PathBuf,
        what: String,
        expected: u64,
        found: u64,
        gzip: bool,
    },

    /// An image file and its label file disagree on the number of examples.
    #[error(
        "{} has {images} images but {} has {labels} labels: expected the same count; \
         are both files from the same data set and split?",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: usize,
        labels: usize,
    },

    /// A label names a class the data set does not have.
    #[error(
        "{}: label of example {index}: expected a class below {classes}, found {label}",
        path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },

    /// Test images have a different size from the training images.
    #[error("{}: expected images of {expected} like the training set, found {found}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },

    /// A data folder the user pointed at (`--data` or `BACKPROP_DATA`) lacks a file.
    #[error("{origin} {}: {file} not found{also}; {hint}", dir.display())]
    Missing {
        origin: &'static str,
        dir: PathBuf,
        file: String,
        also: String,
        hint: String,
    },

    /// The data set is not on disk and may not (or cannot) be downloaded.
    #[error(
        "{dataset} is not on this machine and {reason}; pass --data DIR (a folder holding the \
         four IDX files), set BACKPROP_DATA=DIR (with the files in DIR/{dataset}/), or use \
         --dataset mnist-sample (built in) or spiral to work offline"
    )]
    Unavailable { dataset: String, reason: String },

    /// An HTTP request failed (connection, timeout, or a non-success status).
    #[cfg(feature = "download")]
    #[error("{url}: {err}")]
    Http { url: String, err: Box<ureq::Error> },

    /// The data needs a part of backprop this build left out.
    #[error(
        "{what}, but this build of backprop reads none: build it with the cargo feature \
         `{feature}` (on by default)"
    )]
    NeedsFeature { what: String, feature: &'static str },

    /// A downloaded file does not have the published content.
    #[error(
        "{file} from {url}: checksum mismatch: expected SHA-256 {expected}, found {found} \
         (of the decompressed content)"
    )]
    Checksum {
        file: String,
        url: String,
        expected: String,
        found: String,
    },

    /// Every mirror failed for one file.
    #[error(
        "could not download {file} into {} from any mirror; to work offline pass --data DIR \
         (a folder holding the four IDX files), set BACKPROP_DATA=DIR (with the files in \
         DIR/<dataset>/), or use --dataset mnist-sample (built in) or spiral. Last error: {last}",
        dir.display()
    )]
    DownloadFailed {
        file: String,
        dir: PathBuf,
        last: Box<DataError>,
    },

    /// A data set name that is not one of ours, nor a file or folder.
    #[error(
        "unknown data set {0:?}: expected one of mnist, mnist-sample, fashion-mnist, spiral, \
         idx (with --data DIR), a folder of pictures or a CSV file (there is no such file or folder)"
    )]
    UnknownDataset(String),

    #[error("--dataset idx reads the four IDX files of --data DIR: pass --data")]
    IdxNeedsData,

    /// A folder of pictures without one subfolder per class.
    #[error(
        "{}: no class folders: expected one subfolder of pictures per class ({}/<class>/*.png), \
         or train/ and test/ folders laid out so",
        dir.display(),
        dir.display()
    )]
    NoClassFolders { dir: PathBuf },

    /// A class folder holding no pictures.
    #[error("{}: the class folder holds no pictures (.png, .jpg, .jpeg or .bmp)", dir.display())]
    EmptyClass { dir: PathBuf },

    /// A file with a picture's name that does not decode as one.
    #[error("{}: {reason}; fix or remove it, or pass --skip-bad to leave such files out", path.display())]
    BadImage { path: PathBuf, reason: String },

    /// The splits of a folder name different classes.
    #[error(
        "{}: its classes {found:?} differ from those of {}: {expected:?}; every split needs the same class folders",
        dir.display(),
        reference.display()
    )]
    ClassMismatch {
        dir: PathBuf,
        found: Vec<String>,
        reference: PathBuf,
        expected: Vec<String>,
    },

    /// Something wrong in a table, at a row (1 = the header) and column.
    #[error("{}: {}{reason}", path.display(), at.as_deref().map(|a| format!("{a}: ")).unwrap_or_default())]
    Table {
        path: PathBuf,
        /// "row 7, column 3 (age)", or None for the file as a whole.
        at: Option<String>,
        reason: String,
    },

    /// A class with too few examples to hold out part of it.
    #[error(
        "{}: class {class:?} has {count} example(s): too few to hold out {what} of each class \
         (--{flag}); add examples of it, or merge it into another class",
        source_name
    )]
    TooFewToSplit {
        source_name: String,
        class: String,
        count: usize,
        what: String,
        flag: &'static str,
    },

    /// More classes than labels can hold.
    #[error("{source_name}: {count} classes; at most {max} are supported", max = super::MAX_CLASSES)]
    TooManyClasses { source_name: String, count: usize },
}

impl DataError {
    /// The data set is simply not to be had here (not on disk, no download),
    /// as opposed to a file that is there but wrong.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DataError::Unavailable { .. } | DataError::DownloadFailed { .. }
        )
    }
}

fn decompressed_note(gzip: bool) -> &'static str {
    if gzip { " once decompressed" } else { "" }
}
