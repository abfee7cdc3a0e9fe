//! Reader and writer for the IDX format that MNIST and Fashion-MNIST ship in.
//!
//! Only unsigned-byte arrays are supported, since that is all those data sets use. Files
//! come from the network or from whatever folder a user points at, so every header field is
//! checked before it is trusted: sizes are computed with checked arithmetic and the payload
//! is read through a bounded reader, so a corrupt header can neither panic nor make us
//! allocate gigabytes. [`parse_idx`] works on bytes already in memory; the fuzz target
//! `idx` (see `fuzz/`) calls it with arbitrary input.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use super::DataError;

/// The first two bytes of every gzip stream.
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// IDX type code for unsigned bytes.
const UBYTE: u8 = 0x08;

/// Upper bound on the up-front allocation for the payload: the header is not trusted yet,
/// but MNIST's largest file (47 MB) should still be read without reallocating.
const PREALLOCATE_MAX: usize = 64 << 20;

/// Deflate's largest expansion: one 258-byte match per 2 bits is about 1032 to 1. A gzip
/// stream of n bytes cannot decompress to more than this many times n, so that bounds what
/// its header can make us reserve.
const DEFLATE_MAX_RATIO: usize = 1032;

/// An n-dimensional array of bytes, row-major, as stored in an IDX file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an unsigned-byte IDX file, gzip-compressed or plain (detected from the content,
/// not the extension, because mirrors and decompressing proxies do not keep names honest).
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|err| DataError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    parse_idx(path, &raw)
}

/// Parses the content of an IDX file, gzip-compressed or plain; `path` only names the
/// file in errors. Reserves no more memory than `bytes` can hold once decompressed.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let most = bytes.len().saturating_mul(DEFLATE_MAX_RATIO);
        parse(path, MultiGzDecoder::new(bytes), true, most)
    } else {
        parse(path, bytes, false, bytes.len())
    }
}

/// Reads an IDX array from `r`, which yields at most `most` bytes.
fn parse(path: &Path, mut r: impl Read, gzip: bool, most: usize) -> Result<IdxArray, DataError> {
    let read_err = |err| {
        let path = path.to_path_buf();
        if gzip {
            DataError::Gzip { path, err }
        } else {
            DataError::Io { path, err }
        }
    };
    let truncated = |what: String, expected: usize, found: usize| DataError::Truncated {
        path: path.to_path_buf(),
        what,
        expected: expected as u64,
        found: found as u64,
        gzip,
    };

    let magic = read_up_to(&mut r, 4).map_err(read_err)?;
    let &[zero0, zero1, code, ndim] = magic.as_slice() else {
        return Err(truncated("an IDX header".into(), 4, magic.len()));
    };
    if zero0 != 0 || zero1 != 0 {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found: hex_bytes(&magic),
        });
    }
    if code != UBYTE {
        return Err(DataError::UnsupportedType {
            path: path.to_path_buf(),
            code,
        });
    }

    let ndim = usize::from(ndim);
    let header_len = 4 + 4 * ndim;
    let dim_bytes = read_up_to(&mut r, 4 * ndim).map_err(read_err)?;
    if dim_bytes.len() < 4 * ndim {
        return Err(truncated(
            format!("{ndim} dimensions"),
            header_len,
            4 + dim_bytes.len(),
        ));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let overflow = || DataError::Overflow {
        path: path.to_path_buf(),
        dims: join_dims(&dims),
    };
    let payload = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let total = payload.checked_add(header_len).ok_or_else(overflow)?;

    // One byte more than announced tells trailing garbage apart from an exact fit.
    let mut data = Vec::with_capacity(initial_capacity(payload, most));
    (&mut r)
        .take((payload as u64).saturating_add(1))
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() < payload {
        return Err(truncated(describe(&dims), total, header_len + data.len()));
    }
    if data.len() > payload {
        let rest = io::copy(&mut r, &mut io::sink()).map_err(read_err)?;
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            what: describe(&dims),
            expected: total as u64,
            found: (total as u64).saturating_add(1).saturating_add(rest),
            gzip,
        });
    }
    Ok(IdxArray { dims, data })
}

/// What to reserve for a payload the header says is `payload` bytes, when the input can
/// yield at most `most`: a 20-byte file claiming gigabytes gets 20 bytes, not 64 MiB.
fn initial_capacity(payload: usize, most: usize) -> usize {
    payload.min(most).min(PREALLOCATE_MAX)
}

/// Reads at most `n` bytes; fewer only at end of input.
fn read_up_to(r: &mut impl Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Writes `data` with shape `dims` as an unsigned-byte IDX file, optionally gzip-compressed.
///
/// Panics if `dims` do not describe `data` (at most 255 dimensions, each below 2^32, product
/// equal to `data.len()`): that is a bug in the caller, not bad input.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8], gzip: bool) -> Result<(), DataError> {
    let ndim = u8::try_from(dims.len()).expect("IDX supports at most 255 dimensions");
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    assert_eq!(
        count,
        Some(data.len()),
        "write_idx: dims {dims:?} do not match {} bytes of data",
        data.len()
    );
    let mut header = vec![0, 0, UBYTE, ndim];
    for &d in dims {
        let d = u32::try_from(d).expect("IDX dimensions must be below 2^32");
        header.extend_from_slice(&d.to_be_bytes());
    }

    let io_err = |err| DataError::Io {
        path: path.to_path_buf(),
        err,
    };
    let file = BufWriter::new(File::create(path).map_err(io_err)?);
    let result = if gzip {
        let mut enc = GzEncoder::new(file, Compression::default());
        enc.write_all(&header)
            .and_then(|()| enc.write_all(data))
            .and_then(|()| enc.finish()?.into_inner().map_err(|e| e.into_error()))
    } else {
        let mut file = file;
        file.write_all(&header)
            .and_then(|()| file.write_all(data))
            .and_then(|()| file.into_inner().map_err(|e| e.into_error()))
    };
    result.and_then(|f| f.sync_all()).map_err(io_err)
}

/// Reads an image file and its label file and checks that they describe the same examples
/// with labels below `classes`. Returns the images (dims `[n, h, w]`) and the labels.
pub fn read_labelled(
    images: &Path,
    labels: &Path,
    classes: usize,
) -> Result<(IdxArray, Vec<u8>), DataError> {
    check_labelled(
        images,
        read_idx(images)?,
        labels,
        read_idx(labels)?,
        classes,
    )
}

/// [`read_labelled`] on files already in memory (the built-in sample); the
/// paths only name them in errors.
pub fn parse_labelled(
    (images, image_bytes): (&Path, &[u8]),
    (labels, label_bytes): (&Path, &[u8]),
    classes: usize,
) -> Result<(IdxArray, Vec<u8>), DataError> {
    let img = parse_idx(images, image_bytes)?;
    let lab = parse_idx(labels, label_bytes)?;
    check_labelled(images, img, labels, lab, classes)
}

fn check_labelled(
    images: &Path,
    img: IdxArray,
    labels: &Path,
    lab: IdxArray,
    classes: usize,
) -> Result<(IdxArray, Vec<u8>), DataError> {
    check_rank(images, &img, 3, "images: count, rows, columns")?;
    check_rank(labels, &lab, 1, "labels: count")?;
    if img.dims[0] != lab.dims[0] {
        return Err(DataError::CountMismatch {
            images_path: images.to_path_buf(),
            labels_path: labels.to_path_buf(),
            images: img.dims[0],
            labels: lab.dims[0],
        });
    }
    if let Some((index, &label)) = lab
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: labels.to_path_buf(),
            index,
            label,
            classes,
        });
    }
    Ok((img, lab.data))
}

fn check_rank(
    path: &Path,
    arr: &IdxArray,
    expected: usize,
    role: &'static str,
) -> Result<(), DataError> {
    if arr.dims.len() == expected {
        Ok(())
    } else {
        Err(DataError::Rank {
            path: path.to_path_buf(),
            role,
            expected,
            found: arr.dims.len(),
        })
    }
}

/// Human description of an array for size messages, e.g. "60000 images of 28x28".
fn describe(dims: &[usize]) -> String {
    match dims {
        [n] => format!("{n} labels"),
        [n, h, w] => format!("{n} images of {h}x{w}"),
        _ => format!("an array of {}", join_dims(dims)),
    }
}

pub(crate) fn join_dims(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    parts.join("x")
}

fn hex_bytes(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    fn images(n: usize) -> Vec<u8> {
        (0..n * 28 * 28).map(|i| (i * 7 % 256) as u8).collect()
    }

    #[test]
    fn round_trip_gzip_and_plain() {
        let dir = TempDir::new("idx-roundtrip");
        let data = images(5);
        for gzip in [true, false] {
            let path = dir.path().join(format!("a-{gzip}"));
            write_idx(&path, &[5, 28, 28], &data, gzip).unwrap();
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(raw.starts_with(&GZIP_MAGIC), gzip);
            let arr = read_idx(&path).unwrap();
            assert_eq!(arr.dims, [5, 28, 28]);
            assert_eq!(arr.data, data);
        }
    }

    /// Writes raw bytes (a hand-made header plus payload) and returns the read result.
    fn read_raw(dir: &TempDir, name: &str, bytes: &[u8]) -> (std::path::PathBuf, DataError) {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_idx(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(name), "message does not name the file: {msg}");
        (path, err)
    }

    fn header(code: u8, dims: &[u32]) -> Vec<u8> {
        let mut h = vec![0, 0, code, dims.len() as u8];
        for d in dims {
            h.extend_from_slice(&d.to_be_bytes());
        }
        h
    }

    #[test]
    fn truncated_file() {
        let dir = TempDir::new("idx-truncated");
        let mut bytes = header(UBYTE, &[60000, 28, 28]);
        bytes.extend_from_slice(&[0; 1218]);
        let (_, err) = read_raw(&dir, "train-images-idx3-ubyte", &bytes);
        assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("header says 60000 images of 28x28 (47040016 bytes), file has 1234 bytes"),
            "{msg}"
        );

        let (_, err) = read_raw(&dir, "empty", &[]);
        assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
        let (_, err) = read_raw(&dir, "short-dims", &[0, 0, 8, 3, 0, 0]);
        assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn truncated_gzip_is_reported_not_panicked() {
        let dir = TempDir::new("idx-truncated-gz");
        let path = dir.path().join("cut.gz");
        write_idx(&path, &[20, 28, 28], &images(20), true).unwrap();
        let raw = std::fs::read(&path).unwrap();
        std::fs::write(&path, &raw[..raw.len() / 2]).unwrap();
        let err = read_idx(&path).unwrap_err();
        assert!(
            matches!(err, DataError::Gzip { .. } | DataError::Truncated { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("cut.gz"));
    }

    #[test]
    fn bad_magic() {
        let dir = TempDir::new("idx-magic");
        let (_, err) = read_raw(&dir, "notidx.txt", b"hello world");
        assert!(matches!(err, DataError::BadMagic { .. }), "{err:?}");
        assert!(err.to_string().contains("found 68 65 6c 6c"), "{err}");
    }

    #[test]
    fn wrong_dtype() {
        let dir = TempDir::new("idx-dtype");
        let mut bytes = header(0x0D, &[2]);
        bytes.extend_from_slice(&[0; 8]);
        let (_, err) = read_raw(&dir, "floats", &bytes);
        assert!(
            matches!(err, DataError::UnsupportedType { code: 0x0D, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("expected 0x08 (unsigned byte), found 0x0d")
        );
    }

    #[test]
    fn trailing_bytes() {
        let dir = TempDir::new("idx-trailing");
        let mut bytes = header(UBYTE, &[3]);
        bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        let (_, err) = read_raw(&dir, "labels", &bytes);
        assert!(
            matches!(
                err,
                DataError::TrailingData {
                    expected: 11,
                    found: 13,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn absurd_dims_overflow_without_allocating() {
        let dir = TempDir::new("idx-overflow");
        let (_, err) = read_raw(&dir, "huge", &header(UBYTE, &[u32::MAX; 3]));
        assert!(matches!(err, DataError::Overflow { .. }), "{err:?}");
        // Large but representable: must be reported as truncated, not allocated.
        let (_, err) = read_raw(&dir, "big", &header(UBYTE, &[u32::MAX, u32::MAX]));
        assert!(matches!(err, DataError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn reservation_is_bounded_by_the_input() {
        assert_eq!(initial_capacity(1 << 40, 20), 20);
        assert_eq!(initial_capacity(100, 20 * DEFLATE_MAX_RATIO), 100);
        assert_eq!(initial_capacity(1 << 40, usize::MAX), PREALLOCATE_MAX);
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn bytes_and_files_parse_alike() {
        let mut bytes = header(UBYTE, &[2, 3]);
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
        let path = Path::new("x.idx");
        for input in [bytes.clone(), gzip(&bytes)] {
            let arr = parse_idx(path, &input).unwrap();
            assert_eq!(arr.dims, [2, 3]);
            assert_eq!(arr.data, [1, 2, 3, 4, 5, 6]);
        }
    }

    #[test]
    fn gzip_expanding_beyond_the_header_is_trailing_data() {
        let mut bytes = header(UBYTE, &[3]);
        bytes.extend_from_slice(&[0; 1000]);
        let err = parse_idx(Path::new("long.gz"), &gzip(&bytes)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TrailingData {
                    expected: 11,
                    found: 1008,
                    gzip: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("long.gz") && msg.contains("once decompressed"),
            "{msg}"
        );
    }

    #[test]
    fn gzip_claiming_more_than_it_holds_is_truncated() {
        let err = parse_idx(
            Path::new("claims.gz"),
            &gzip(&header(UBYTE, &[60000, 28, 28])),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 47040016,
                    found: 16,
                    gzip: true,
                    ..
                }
            ),
            "{err:?}"
        );
        // Garbage after the gzip magic is a gzip error, not a panic.
        let err = parse_idx(Path::new("junk.gz"), &[0x1f, 0x8b, 1, 2, 3]).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert!(err.to_string().contains("junk.gz"));
    }

    #[test]
    fn pairing_checks_rank_counts_and_labels() {
        let dir = TempDir::new("idx-pairs");
        let img = dir.path().join("img.gz");
        let lab = dir.path().join("lab.gz");
        write_idx(&img, &[4, 28, 28], &images(4), true).unwrap();

        write_idx(&lab, &[3], &[0, 1, 2], true).unwrap();
        let err = read_labelled(&img, &lab, 10).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::CountMismatch {
                    images: 4,
                    labels: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("img.gz") && msg.contains("lab.gz"), "{msg}");

        write_idx(&lab, &[4], &[0, 9, 12, 1], true).unwrap();
        let err = read_labelled(&img, &lab, 10).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 2,
                    label: 12,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("lab.gz"));

        let err = read_labelled(&lab, &lab, 10).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Rank {
                    expected: 3,
                    found: 1,
                    ..
                }
            ),
            "{err:?}"
        );

        write_idx(&lab, &[4], &[0, 9, 5, 1], false).unwrap();
        let (arr, labels) = read_labelled(&img, &lab, 10).unwrap();
        assert_eq!(arr.dims, [4, 28, 28]);
        assert_eq!(labels, [0, 9, 5, 1]);
    }
}
