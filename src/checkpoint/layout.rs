//! The tensors a [`NetSpec`] needs, by PyTorch name and shape, worked out from
//! the spec alone, without building the net.
//!
//! A checkpoint's metadata is not trusted: a spec claiming a hidden layer of
//! four billion units must be refused before anything of that size is
//! allocated. [`layout`] takes every tensor's shape from the spec's own
//! summary (checked arithmetic, convolution buffers capped at
//! [`crate::nets::MAX_CONV_VALUES`]), and the loader compares them with the
//! tensors actually in the file, so the net it then builds is no bigger than
//! the file's own data.
//!
//! ```
//! use backprop::checkpoint::layout;
//! use backprop::nets::MultiLayerNet;
//! let l = layout(&MultiLayerNet::new(4, &[3], 2).spec()).unwrap();
//! assert_eq!(l.tensors[0], ("0.weight".to_string(), vec![3, 4]));
//! assert_eq!(l.layers, 3); // Affine, Relu, Affine
//! ```

use crate::nets::NetSpec;

/// The tensors of a net, in the order the net holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// PyTorch name and shape of every parameter and buffer.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// How many layers the net has (Flatten, activations and Dropout included).
    pub layers: usize,
}

/// The tensors `spec` needs, or why it cannot be built (a reason for the
/// metadata error). Allocates in proportion to the spec, never to its sizes.
pub fn layout(spec: &NetSpec) -> Result<Layout, String> {
    let rows = spec.summary().map_err(|e| e.to_string())?.layers;
    Ok(Layout {
        layers: rows.len(),
        tensors: rows.into_iter().flat_map(|r| r.tensors).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::state_dict;
    use crate::nets::{DeepConvNet, MultiLayerNet, SimpleConvNet};

    /// The layout must be exactly what building the net gives.
    #[test]
    fn layout_matches_the_built_net() {
        let specs = [
            MultiLayerNet::new(6, &[5, 4], 3).spec(),
            MultiLayerNet::new(6, &[5, 4], 3)
                .batchnorm(true)
                .dropout(0.3)
                .spec(),
            MultiLayerNet::new(2, &[], 3).spec(),
            SimpleConvNet::new([1, 12, 12], 10).spec(),
            DeepConvNet::new([1, 28, 28], 10).spec(),
        ];
        for spec in specs {
            let l = layout(&spec).unwrap();
            let net = spec.build::<f32>(1).unwrap();
            let built: Vec<(String, Vec<usize>)> = state_dict(&net, false)
                .into_iter()
                .map(|t| (t.name, t.shape))
                .collect();
            assert_eq!(l.tensors, built, "{spec:?}");
            assert_eq!(l.layers, net.layers.len(), "{spec:?}");
        }
    }

    #[test]
    fn absurd_sizes_are_refused_without_allocating() {
        // Four billion hidden units: fine to describe, refused only when the
        // file's tensors do not match; here the layout alone is cheap.
        let huge = layout(&MultiLayerNet::new(4, &[4_000_000_000], 2).spec()).unwrap();
        assert_eq!(huge.tensors[0].1, [4_000_000_000, 4]);

        let zero = layout(&MultiLayerNet::new(4, &[0], 2).spec()).unwrap_err();
        assert!(zero.contains("must be at least 1"), "{zero}");

        let mut cnn = SimpleConvNet::new([1, 28, 28], 10);
        cnn.conv_param.pad = usize::MAX;
        let e = layout(&cnn.spec()).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");

        cnn.conv_param.pad = 1_000_000;
        let e = layout(&cnn.spec()).unwrap_err();
        assert!(e.contains("more than 4194304 values"), "{e}");

        cnn.conv_param.pad = 0;
        cnn.conv_param.stride = 0;
        assert!(layout(&cnn.spec()).is_err());

        let e = layout(&MultiLayerNet::new(4, &[3], 2).dropout(1.5).spec()).unwrap_err();
        assert!(e.contains("dropout"), "{e}");
    }
}
