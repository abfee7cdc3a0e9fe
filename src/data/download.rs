//! Downloads data set files from a list of mirrors into a local folder, verifying each.
//!
//! Public mirrors come and go, so each file is tried on every mirror in turn. A file only
//! appears under its final name after it arrived completely and matched its checksum (it is
//! written to a temporary name and then renamed), so an interrupted or corrupted download
//! can never be mistaken for data later.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};

use super::DataError;
use super::idx::GZIP_MAGIC;

/// Downloads each of `files` (name, SHA-256 of its decompressed content) into `dest`,
/// trying `mirrors` (base URLs) in order, unless the file is already there.
///
/// The checksum covers the decompressed content so that the same data in a different gzip
/// wrapper (a recompressed copy, or a server that sends it with `Content-Encoding: gzip`,
/// which the HTTP client undoes) is still accepted. A file that arrives uncompressed is
/// stored without its `.gz` suffix so its name does not lie.
///
/// Panics if `mirrors` is empty.
pub fn fetch_dataset(
    files: &[(&str, &str)],
    mirrors: &[String],
    dest: &Path,
    progress: bool,
) -> Result<(), DataError> {
    assert!(!mirrors.is_empty(), "fetch_dataset: no mirrors given");
    fs::create_dir_all(dest).map_err(|err| DataError::Io {
        path: dest.to_path_buf(),
        err,
    })?;
    let agent = agent();
    for &(file, sha256) in files {
        let plain = file.strip_suffix(".gz").unwrap_or(file);
        if dest.join(file).is_file() || dest.join(plain).is_file() {
            continue;
        }
        let mut last = None;
        for (i, base) in mirrors.iter().enumerate() {
            match fetch_file(&agent, base, file, sha256, dest, progress) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    if progress && i + 1 < mirrors.len() {
                        eprintln!("warning: {e}; trying the next mirror");
                    }
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            return Err(DataError::DownloadFailed {
                file: file.to_string(),
                dir: dest.to_path_buf(),
                last: Box::new(e),
            });
        }
    }
    Ok(())
}

fn agent() -> ureq::Agent {
    // Generous per-read limit for slow links, but a dead host must fail fast enough that
    // trying the next mirror is worth it. No overall limit: MNIST is 10 MB on any link.
    ureq::Agent::config_builder()
        .timeout_resolve(Some(Duration::from_secs(15)))
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("backprop/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Removes the temporary file unless the download was completed and renamed.
struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn fetch_file(
    agent: &ureq::Agent,
    base: &str,
    file: &str,
    sha256: &str,
    dest: &Path,
    progress: bool,
) -> Result<(), DataError> {
    let url = format!("{}/{file}", base.trim_end_matches('/'));
    let http_err = |err| DataError::Http {
        url: url.clone(),
        err: Box::new(err),
    };
    let mut part = PartFile {
        path: dest.join(format!(".{file}.{}.part", std::process::id())),
        keep: false,
    };
    let io_err = |path: &Path, err| DataError::Io {
        path: path.to_path_buf(),
        err,
    };

    let mut response = agent.get(&url).call().map_err(http_err)?;
    let bar = progress_bar(progress, response.body().content_length(), file, &url);
    let mut reader = response.body_mut().as_reader();
    let mut out = File::create(&part.path).map_err(|e| io_err(&part.path, e))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(http_err(ureq::Error::Io(e))),
        };
        out.write_all(&buf[..n])
            .map_err(|e| io_err(&part.path, e))?;
        if let Some(bar) = &bar {
            bar.inc(n as u64);
        }
    }
    out.sync_all().map_err(|e| io_err(&part.path, e))?;
    drop(out);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let found = content_sha256(&part.path)?;
    if found != sha256 {
        return Err(DataError::Checksum {
            file: file.to_string(),
            url,
            expected: sha256.to_string(),
            found,
        });
    }
    let name = if is_gzip(&part.path)? {
        file
    } else {
        file.strip_suffix(".gz").unwrap_or(file)
    };
    let target = dest.join(name);
    fs::rename(&part.path, &target).map_err(|e| io_err(&target, e))?;
    part.keep = true;
    Ok(())
}

/// A byte-count progress bar on stderr, only when asked for and stderr is a terminal;
/// otherwise one line saying what is being fetched, if asked for.
fn progress_bar(progress: bool, len: Option<u64>, file: &str, url: &str) -> Option<ProgressBar> {
    if !progress {
        return None;
    }
    if !io::stderr().is_terminal() {
        eprintln!("downloading {url}");
        return None;
    }
    let template = if len.is_some() {
        "{msg:28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg:28} {spinner} {bytes} {bytes_per_sec}"
    };
    let style = ProgressStyle::with_template(template)
        .expect("progress template is valid")
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(file.to_string());
    Some(bar)
}

fn is_gzip(path: &Path) -> Result<bool, DataError> {
    let mut magic = Vec::with_capacity(2);
    File::open(path)
        .and_then(|f| f.take(2).read_to_end(&mut magic))
        .map_err(|err| DataError::Io {
            path: path.to_path_buf(),
            err,
        })?;
    Ok(magic == GZIP_MAGIC)
}

/// Lower-case hex SHA-256 of a file's content, decompressed first if it is gzip.
pub(crate) fn content_sha256(path: &Path) -> Result<String, DataError> {
    let gzip = is_gzip(path)?;
    let file = File::open(path).map_err(|err| DataError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(io::BufReader::new(file)))
    } else {
        Box::new(file)
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                let path = path.to_path_buf();
                return Err(if gzip {
                    DataError::Gzip { path, err }
                } else {
                    DataError::Io { path, err }
                });
            }
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::{read_idx, write_idx};
    use crate::data::testutil::{TempDir, serve, unreachable_base};
    use std::collections::HashMap;

    /// Two small gzip IDX files in `dir`, with their names, bytes and content checksums.
    fn sample_files(dir: &Path) -> Vec<(String, Vec<u8>, String)> {
        fs::create_dir_all(dir).unwrap();
        let images: Vec<u8> = (0..50 * 784).map(|i| (i % 251) as u8).collect();
        let labels: Vec<u8> = (0..50).map(|i| (i % 10) as u8).collect();
        let mut out = Vec::new();
        for (name, dims, data) in [
            ("train-images-idx3-ubyte.gz", vec![50, 28, 28], images),
            ("train-labels-idx1-ubyte.gz", vec![50], labels),
        ] {
            let path = dir.join(name);
            write_idx(&path, &dims, &data, true).unwrap();
            let sha = content_sha256(&path).unwrap();
            out.push((name.to_string(), fs::read(&path).unwrap(), sha));
        }
        out
    }

    fn routes(files: &[(String, Vec<u8>, String)]) -> HashMap<String, Vec<u8>> {
        files
            .iter()
            .map(|(name, bytes, _)| (format!("/mnist/{name}"), bytes.clone()))
            .collect()
    }

    fn checksums(files: &[(String, Vec<u8>, String)]) -> Vec<(&str, &str)> {
        files
            .iter()
            .map(|(n, _, s)| (n.as_str(), s.as_str()))
            .collect()
    }

    /// Names in `dir`, sorted, including hidden temporary files.
    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn content_checksum_ignores_the_gzip_wrapper() {
        let tmp = TempDir::new("dl-checksum");
        let data = [3u8; 10];
        let (gz, plain) = (tmp.path().join("a.gz"), tmp.path().join("a"));
        write_idx(&gz, &[10], &data, true).unwrap();
        write_idx(&plain, &[10], &data, false).unwrap();
        let sha = content_sha256(&gz).unwrap();
        assert_eq!(sha, content_sha256(&plain).unwrap());
        assert_eq!(sha.len(), 64);
    }

    #[test]
    fn downloads_and_verifies() {
        let tmp = TempDir::new("dl-ok");
        let files = sample_files(&tmp.path().join("src"));
        let base = serve(routes(&files), 2);
        let dest = tmp.path().join("dest");
        fetch_dataset(&checksums(&files), &[format!("{base}mnist")], &dest, false).unwrap();
        assert_eq!(
            listing(&dest),
            ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
        );
        let img = read_idx(&dest.join("train-images-idx3-ubyte.gz")).unwrap();
        assert_eq!(img.dims, [50, 28, 28]);
        assert_eq!(img.data[784 + 5], ((784 + 5) % 251) as u8);
        // Present files are not fetched again: with the server gone this still succeeds.
        fetch_dataset(&checksums(&files), &[unreachable_base()], &dest, false).unwrap();
    }

    #[test]
    fn corrupted_file_fails_checksum_and_leaves_nothing() {
        let tmp = TempDir::new("dl-corrupt");
        let mut files = sample_files(&tmp.path().join("src"));
        let good = files[0].1.clone();
        write_idx(
            &tmp.path().join("bad.gz"),
            &[50, 28, 28],
            &[9; 50 * 784],
            true,
        )
        .unwrap();
        files[0].1 = fs::read(tmp.path().join("bad.gz")).unwrap();
        let base = serve(routes(&files), 1);
        let dest = tmp.path().join("dest");
        let err = fetch_dataset(&checksums(&files), &[format!("{base}mnist/")], &dest, false)
            .unwrap_err();
        let DataError::DownloadFailed { last, .. } = &err else {
            panic!("expected DownloadFailed, got {err:?}");
        };
        assert!(matches!(**last, DataError::Checksum { .. }), "{last:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte.gz") && msg.contains(&files[0].2),
            "{msg}"
        );
        assert!(
            listing(&dest).is_empty(),
            "left behind: {:?}",
            listing(&dest)
        );
        assert_ne!(good, files[0].1);
    }

    #[test]
    fn falls_over_to_the_next_mirror() {
        let tmp = TempDir::new("dl-failover");
        let files = sample_files(&tmp.path().join("src"));
        // The first mirror answers 404 for everything, the second has the files.
        let empty = serve(HashMap::new(), 2);
        let full = serve(routes(&files), 2);
        let dest = tmp.path().join("dest");
        let mirrors = [format!("{empty}mnist"), format!("{full}mnist")];
        fetch_dataset(&checksums(&files), &mirrors, &dest, false).unwrap();
        assert_eq!(listing(&dest).len(), 2);
    }

    #[test]
    fn not_found_everywhere_reports_the_status() {
        let tmp = TempDir::new("dl-404");
        let files = sample_files(&tmp.path().join("src"));
        let empty = serve(HashMap::new(), 1);
        let dest = tmp.path().join("dest");
        let err = fetch_dataset(&checksums(&files), &[empty], &dest, false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("404") && msg.contains("--dataset mnist-sample"),
            "{msg}"
        );
        assert!(listing(&dest).is_empty());
    }

    #[test]
    fn uncompressed_arrival_drops_the_gz_suffix() {
        let tmp = TempDir::new("dl-plain");
        let labels: Vec<u8> = (0..20).collect();
        let plain = tmp.path().join("labels");
        write_idx(&plain, &[20], &labels, false).unwrap();
        let sha = content_sha256(&plain).unwrap();
        let routes = HashMap::from([("/l.gz".to_string(), fs::read(&plain).unwrap())]);
        let base = serve(routes, 1);
        let dest = tmp.path().join("dest");
        fetch_dataset(&[("l.gz", sha.as_str())], &[base], &dest, false).unwrap();
        assert_eq!(listing(&dest), ["l"]);
        assert_eq!(read_idx(&dest.join("l")).unwrap().data, labels);
    }
}
