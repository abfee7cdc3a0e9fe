//! Folders of pictures, laid out as torchvision's `ImageFolder`:
//! `DIR/<class>/*.png|jpg|jpeg|bmp` (subfolders of a class folder count too),
//! the classes being the sorted names of the subfolders. If `DIR/train/` and
//! `DIR/test/` exist they are the splits (and `DIR/val/`, if there, the
//! validation split); otherwise a share of each class is held out as the test
//! set ([`ReadOptions::test_split`](super::ReadOptions::test_split)).
//!
//! Pictures may have any size and colour: the net sees `--image-size`
//! (default: the size most of them have) in `--channels` (default: 1 if every
//! picture is grey, else 3), resized and converted by the `image` crate
//! ([`to_input`], which `predict` applies to new pictures too). They are
//! decoded in parallel and kept as bytes, channels first, like MNIST's, so an
//! epoch takes as long as one over the same images from IDX files. The
//! training examples are put in an order shuffled by the seed, so that
//! `--train-size` takes a sample of every class.
//!
//! ```no_run
//! use backprop::data::{self, DataSource, LoadOptions};
//! let split = data::load(DataSource::Folder("photos".into()), &LoadOptions::default())?;
//! println!("{} classes: {:?}", split.train.classes(), split.train.class_names);
//! # Ok::<(), backprop::data::DataError>(())
//! ```

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::{ColorType, DynamicImage, imageops::FilterType};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{DataError, Dataset, Features, InputKind, LoadOptions, MAX_CLASSES, Split};
use crate::predict;

/// The file endings read as pictures; other files are left out (and counted).
const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// The splits' folder names.
const TRAIN: &str = "train";
const TEST: &str = "test";
const VALIDATION: &str = "val";

/// One split's pictures: (file, class) in class order, then file order.
struct Listing {
    dir: PathBuf,
    classes: Vec<String>,
    files: Vec<(PathBuf, u16)>,
    /// Files in the class folders that are not pictures by their name.
    ignored: usize,
}

/// Reads the folder `dir`; see the module's documentation.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Split, DataError> {
    if !dir.is_dir() {
        return Err(DataError::Io {
            path: dir.to_path_buf(),
            err: std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
        });
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let split_dir = |s: &str| Some(dir.join(s)).filter(|d| d.is_dir());
    let mut notes = Vec::new();
    let (train, test, validation) = match split_dir(TRAIN) {
        Some(train_dir) => {
            let train = list(&train_dir)?;
            let other = |s: &str| {
                split_dir(s)
                    .map(|d| list(&d).and_then(|l| same_classes(l, &train)))
                    .transpose()
            };
            let (test, validation) = (other(TEST)?, other(VALIDATION)?);
            (train, test, validation)
        }
        None => (list(dir)?, None, None),
    };

    // One size and channel count for every split: the training pictures decide.
    let headers = read_headers(&train, opts)?;
    let (width, height) = match opts.read.image_size {
        Some(size) => size,
        None => most_common_size(&headers),
    };
    let channels = opts.read.channels.unwrap_or_else(|| {
        if headers.iter().flatten().all(|h| is_grey(h.color)) {
            1
        } else {
            3
        }
    });
    let input = InputKind::Images {
        width,
        height,
        channels,
    };
    let decode = |listing: &Listing, what: &str| decode_all(listing, &name, &input, opts, what);
    let (mut train_set, skipped) = decode(&train, "training")?;
    let mut skipped_total = skipped;
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed ^ 0xf01d_e500));
    train_set = train_set.subset(&order);
    let test_set = match &test {
        Some(listing) => {
            let (set, skipped) = decode(listing, "test")?;
            skipped_total += skipped;
            set
        }
        None => {
            let (kept, held) = train_set.hold_out(
                opts.read.test_split,
                opts.seed,
                "the test set",
                "test-split",
            )?;
            notes.push(format!(
                "{} has no {TEST}/ folder: {} of its {} pictures ({}% of each class, seed {}) are the test set",
                dir.display(),
                held.len(),
                train_set.len(),
                opts.read.test_split * 100.0,
                opts.seed
            ));
            train_set = kept;
            held
        }
    };
    let validation_set = match &validation {
        Some(listing) => {
            let (set, skipped) = decode(listing, "validation")?;
            skipped_total += skipped;
            Some(set)
        }
        None => None,
    };
    let ignored: usize = [Some(&train), test.as_ref(), validation.as_ref()]
        .into_iter()
        .flatten()
        .map(|l| l.ignored)
        .sum();
    if ignored > 0 {
        notes.push(format!(
            "left out {ignored} file(s) in the class folders whose names are not .png, .jpg, .jpeg or .bmp"
        ));
    }
    if skipped_total > 0 {
        notes.push(format!(
            "skipped {skipped_total} picture(s) that do not decode (--skip-bad)"
        ));
    }
    if test_set.is_empty() {
        return Err(DataError::EmptyClass {
            dir: dir.join(TEST),
        });
    }
    Ok(Split {
        train: train_set,
        validation: validation_set,
        test: test_set,
        notes,
    })
}

/// The class folders of `dir` and the pictures in each.
fn list(dir: &Path) -> Result<Listing, DataError> {
    let io = |err, path: &Path| DataError::Io {
        path: path.to_path_buf(),
        err,
    };
    let mut classes: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io(e, dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(DataError::NoClassFolders {
            dir: dir.to_path_buf(),
        });
    }
    if classes.len() > MAX_CLASSES {
        return Err(DataError::TooManyClasses {
            source_name: dir.display().to_string(),
            count: classes.len(),
        });
    }
    let mut files = Vec::new();
    let mut ignored = 0;
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let mut found: Vec<PathBuf> = Vec::new();
        for entry in walkdir::WalkDir::new(&class_dir).follow_links(false) {
            let entry = entry.map_err(|e| {
                let path = e.path().unwrap_or(&class_dir).to_path_buf();
                io(e.into(), &path)
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let picture = entry.path().extension().is_some_and(|e| {
                EXTENSIONS
                    .iter()
                    .any(|x| e.to_string_lossy().eq_ignore_ascii_case(x))
            });
            if picture {
                found.push(entry.into_path());
            } else {
                ignored += 1;
            }
        }
        if found.is_empty() {
            return Err(DataError::EmptyClass { dir: class_dir });
        }
        found.sort();
        files.extend(found.into_iter().map(|f| (f, label as u16)));
    }
    Ok(Listing {
        dir: dir.to_path_buf(),
        classes,
        files,
        ignored,
    })
}

/// `listing`, if its classes are those of `reference`.
fn same_classes(listing: Listing, reference: &Listing) -> Result<Listing, DataError> {
    if listing.classes == reference.classes {
        Ok(listing)
    } else {
        Err(DataError::ClassMismatch {
            dir: listing.dir,
            found: listing.classes,
            reference: reference.dir.clone(),
            expected: reference.classes.clone(),
        })
    }
}

/// What a picture's header says.
struct Header {
    width: u32,
    height: u32,
    color: ColorType,
}

/// Every training picture's header (`None` for one skipped with --skip-bad).
fn read_headers(listing: &Listing, opts: &LoadOptions) -> Result<Vec<Option<Header>>, DataError> {
    listing
        .files
        .par_iter()
        .map(|(path, _)| match header(path) {
            Ok(h) => Ok(Some(h)),
            Err(_) if opts.read.skip_bad => Ok(None),
            Err(e) => Err(e),
        })
        .collect()
}

fn header(path: &Path) -> Result<Header, DataError> {
    let bad = |reason: String| DataError::BadImage {
        path: path.to_path_buf(),
        reason,
    };
    let reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let decoder = reader
        .into_decoder()
        .map_err(|e| bad(format!("not a picture: {e}")))?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    Ok(Header {
        width,
        height,
        color: image::ImageDecoder::color_type(&decoder),
    })
}

/// The most common (width, height); among equally common ones the largest.
fn most_common_size(headers: &[Option<Header>]) -> (u32, u32) {
    let mut counts: HashMap<(u32, u32), usize> = HashMap::new();
    for h in headers.iter().flatten() {
        *counts.entry((h.width, h.height)).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&((w, h), n)| (n, w * h, w))
        .map_or((28, 28), |(size, _)| size)
}

fn is_grey(c: ColorType) -> bool {
    matches!(
        c,
        ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16
    )
}

/// A picture as a net of `input` takes it: resized to its size, in its
/// channels (transparency laid over white, as on paper), channels first.
/// `input` must be [`InputKind::Images`].
pub fn to_input(img: &DynamicImage, input: &InputKind) -> Vec<u8> {
    let &InputKind::Images {
        width,
        height,
        channels,
    } = input
    else {
        panic!("to_input: {input:?} is not a picture input");
    };
    let sized = if (img.width(), img.height()) == (width, height) {
        img.clone()
    } else {
        img.resize_exact(width, height, FilterType::Triangle)
    };
    let plane = (width * height) as usize;
    let rgba = sized.to_rgba8();
    let over_white = |v: u8, a: u8| {
        let a = u16::from(a);
        ((u16::from(v) * a + 255 * (255 - a) + 127) / 255) as u8
    };
    let mut out = vec![0u8; plane * usize::from(channels)];
    for (i, p) in rgba.pixels().enumerate() {
        let [r, g, b, a] = p.0;
        if channels == 1 {
            // ITU-R 601 luma, as the image crate's own grey conversion.
            let y = (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114 + 500) / 1000;
            out[i] = over_white(y as u8, a);
        } else {
            for (c, v) in [r, g, b].into_iter().enumerate() {
                out[c * plane + i] = over_white(v, a);
            }
        }
    }
    out
}

/// Decodes every picture of `listing` into one data set, in parallel, with a
/// progress bar on a terminal. Returns the data set and how many pictures
/// were skipped (--skip-bad).
fn decode_all(
    listing: &Listing,
    name: &str,
    input: &InputKind,
    opts: &LoadOptions,
    what: &str,
) -> Result<(Dataset, usize), DataError> {
    let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(listing.files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "decoding {msg} [{bar:30}] {pos}/{len} pictures eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(format!("{what} pictures of {name}"));
        bar
    });
    let done = AtomicUsize::new(0);
    let decoded: Vec<Option<Vec<u8>>> = listing
        .files
        .par_iter()
        .map(|(path, _)| {
            let picture = std::fs::read(path)
                .map_err(|e| format!("cannot read it: {e}"))
                .and_then(|bytes| {
                    predict::decode_picture(path, &bytes).map_err(|e| {
                        // The picture error names the file itself; keep its reason.
                        let text = e.to_string();
                        text.split_once(": ")
                            .map_or(text.clone(), |(_, r)| r.to_owned())
                    })
                });
            let n = done.fetch_add(1, Ordering::Relaxed);
            if let Some(bar) = &bar
                && n.is_multiple_of(64)
            {
                bar.set_position(n as u64);
            }
            match picture {
                Ok(img) => Ok(Some(to_input(&img, input))),
                Err(_) if opts.read.skip_bad => Ok(None),
                Err(reason) => Err(DataError::BadImage {
                    path: path.clone(),
                    reason,
                }),
            }
        })
        .collect::<Result<_, _>>()?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let skipped = decoded.iter().filter(|d| d.is_none()).count();
    let per_picture = decoded.iter().flatten().next().map_or(0, Vec::len);
    let mut pixels = Vec::with_capacity(decoded.len() * per_picture);
    let mut labels = Vec::with_capacity(decoded.len());
    for (d, (_, label)) in decoded.into_iter().zip(&listing.files) {
        if let Some(px) = d {
            pixels.extend_from_slice(&px);
            labels.push(*label);
        }
    }
    let &InputKind::Images {
        width,
        height,
        channels,
    } = input
    else {
        unreachable!("folders hold pictures")
    };
    Ok((
        Dataset {
            name: name.to_owned(),
            features: Features::Pixels(pixels),
            labels,
            class_names: listing.classes.clone(),
            shape: [usize::from(channels), height as usize, width as usize],
            input: input.clone(),
        },
        skipped,
    ))
}
