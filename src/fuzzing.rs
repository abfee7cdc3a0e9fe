//! What the fuzz targets in `fuzz/` run on each input, in one place so that
//! `tests/fuzz_corpus.rs` replays the corpus through exactly the same code on
//! stable Rust. Each function takes arbitrary bytes, must return (never panic,
//! never allocate more than the input justifies) and says whether the input
//! was accepted.
//!
//! ```
//! assert!(!backprop::fuzzing::idx(b"not an IDX file"));
//! ```

use std::path::Path;

use crate::checkpoint;
use crate::data::idx;
#[cfg(feature = "images")]
use crate::predict;
use crate::tensor::Tensor;

/// Largest input (values per example) the checkpoint target runs a loaded net
/// on; real inputs are as large as the data set's, which the fuzzer has none of.
const MAX_TRIAL_INPUT: usize = 1 << 16;

/// The IDX reader on a gzip-compressed or plain file.
pub fn idx(bytes: &[u8]) -> bool {
    idx::parse_idx(Path::new("fuzz.idx"), bytes).is_ok()
}

/// The checkpoint loader, then one prediction with the loaded net (so that an
/// architecture that loads but cannot run is found too); and the same bytes
/// as a `train_state.safetensors`.
pub fn checkpoint(bytes: &[u8]) -> bool {
    let path = Path::new("fuzz.safetensors");
    let _ = checkpoint::train_state_from_bytes(path, bytes);
    let Ok((mut net, info)) = checkpoint::load_bytes::<f32>(path, bytes) else {
        return false;
    };
    let [c, h, w] = info.input_shape;
    if c.saturating_mul(h).saturating_mul(w) <= MAX_TRIAL_INPUT {
        let scores = net
            .predict(&Tensor::zeros(&[1, c, h, w]), false)
            .expect("a loaded net takes the input shape its checkpoint names");
        assert_eq!(
            scores.shape(),
            [1, info.classes()],
            "scores of a loaded net"
        );
    }
    true
}

/// Decoding a picture (PNG, JPEG, BMP) and preparing it as `predict` does.
#[cfg(feature = "images")]
pub fn image(bytes: &[u8]) -> bool {
    predict::preprocess_bytes(Path::new("fuzz.png"), bytes).is_ok()
}

/// A 24-bit BMP whose header claims `width x height`, followed by `pixels`
/// bytes of white (whatever the header says): the tests make their hostile
/// pictures with it.
pub fn bmp(width: i32, height: i32, pixels: usize) -> Vec<u8> {
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(54 + pixels as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]); // reserved
    b.extend_from_slice(&54u32.to_le_bytes()); // pixel data offset
    b.extend_from_slice(&40u32.to_le_bytes()); // BITMAPINFOHEADER
    b.extend_from_slice(&width.to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // planes
    b.extend_from_slice(&24u16.to_le_bytes()); // bits per pixel
    b.extend_from_slice(&[0; 24]); // no compression; sizes and palette unset
    b.resize(54 + pixels, 255);
    b
}
