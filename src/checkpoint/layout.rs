//! The tensors a [`NetSpec`] needs, by PyTorch name and shape, worked out from
//! the spec alone, without building the net.
//!
//! A checkpoint's metadata is not trusted: a spec claiming a hidden layer of
//! four billion units must be refused before anything of that size is
//! allocated. [`layout`] takes every tensor's shape from the spec's own
//! validation (checked arithmetic, convolution buffers capped at
//! [`crate::nets::MAX_CONV_VALUES`]), and the loader compares them with the
//! tensors actually in the file, so the net it then builds is no bigger than
//! the file's own data.
//!
//! This mirrors what [`NetSpec::build`] makes (layer order, `torch_name`s,
//! transposed Affine weights); a test compares the two for every kind of net.
//!
//! ```
//! use backprop::checkpoint::layout;
//! use backprop::nets::{MultiLayerNet, NetSpec};
//! let l = layout(&NetSpec::Mlp(MultiLayerNet::new(4, &[3], 2))).unwrap();
//! assert_eq!(l.tensors[0], ("0.weight".to_string(), vec![3, 4]));
//! assert_eq!(l.layers, 3); // Affine, Relu, Affine
//! ```

use crate::nets::{ConvParam, NetSpec};

/// The tensors of a net, in the order the net holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// PyTorch name and shape of every parameter and buffer.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// How many layers the net has (Flatten, activations and Dropout included).
    pub layers: usize,
}

impl Layout {
    fn affine(&mut self, fan_in: usize, fan_out: usize) {
        let i = self.layers;
        self.tensors
            .push((format!("{i}.weight"), vec![fan_out, fan_in]));
        self.tensors.push((format!("{i}.bias"), vec![fan_out]));
        self.layers += 1;
    }

    fn batch_norm(&mut self, features: usize) {
        let i = self.layers;
        for name in ["weight", "bias", "running_mean", "running_var"] {
            self.tensors.push((format!("{i}.{name}"), vec![features]));
        }
        self.layers += 1;
    }

    fn conv(&mut self, p: &ConvParam, channels: usize) {
        let i = self.layers;
        let k = p.filter_size;
        self.tensors
            .push((format!("{i}.weight"), vec![p.filter_num, channels, k, k]));
        self.tensors.push((format!("{i}.bias"), vec![p.filter_num]));
        self.layers += 1;
    }

    /// A layer without parameters (activation, pooling, Flatten, Dropout).
    fn plain(&mut self) {
        self.layers += 1;
    }
}

/// The tensors `spec` needs, or why it cannot be built (a reason for the
/// metadata error). Allocates in proportion to the spec, never to its sizes.
pub fn layout(spec: &NetSpec) -> Result<Layout, String> {
    let mut l = Layout {
        tensors: Vec::new(),
        layers: 0,
    };
    match spec {
        NetSpec::Mlp(m) => {
            m.validate().map_err(|e| e.to_string())?;
            let sizes = m.sizes();
            for (i, pair) in sizes.windows(2).enumerate() {
                l.affine(pair[0], pair[1]);
                if i + 2 < sizes.len() {
                    if m.use_batchnorm {
                        l.batch_norm(pair[1]);
                    }
                    l.plain();
                    if m.dropout_ratio > 0.0 {
                        l.plain();
                    }
                }
            }
        }
        NetSpec::SimpleCnn(s) => {
            let (_, pooled) = s.shapes().map_err(|e| e.to_string())?;
            l.conv(&s.conv_param, s.input_dim[0]);
            l.plain(); // Relu
            l.plain(); // MaxPooling
            l.plain(); // Flatten
            l.affine(pooled.iter().product(), s.hidden_size);
            l.plain(); // Relu
            l.affine(s.hidden_size, s.output_size);
        }
        NetSpec::DeepCnn(d) => {
            // The input shape of each convolution, then the last pooling's output.
            let shapes = d.shapes().map_err(|e| e.to_string())?;
            for (i, p) in d.conv_params.iter().enumerate() {
                l.conv(p, shapes[i][0]);
                l.plain(); // Relu
                if i % 2 == 1 {
                    l.plain(); // MaxPooling
                }
            }
            let flat = shapes
                .last()
                .expect("the input shape at least")
                .iter()
                .product();
            l.plain(); // Flatten
            l.affine(flat, d.hidden_size);
            l.plain(); // Relu
            l.plain(); // Dropout
            l.affine(d.hidden_size, d.output_size);
            l.plain(); // Dropout
        }
    }
    Ok(l)
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
            NetSpec::Mlp(MultiLayerNet::new(6, &[5, 4], 3)),
            NetSpec::Mlp(
                MultiLayerNet::new(6, &[5, 4], 3)
                    .batchnorm(true)
                    .dropout(0.3),
            ),
            NetSpec::Mlp(MultiLayerNet::new(2, &[], 3)),
            NetSpec::SimpleCnn(SimpleConvNet::new([1, 12, 12], 10)),
            NetSpec::DeepCnn(DeepConvNet::new([1, 28, 28], 10)),
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
        let huge = layout(&NetSpec::Mlp(MultiLayerNet::new(4, &[4_000_000_000], 2))).unwrap();
        assert_eq!(huge.tensors[0].1, [4_000_000_000, 4]);

        let zero = layout(&NetSpec::Mlp(MultiLayerNet::new(4, &[0], 2))).unwrap_err();
        assert!(zero.contains("sizes must be positive"), "{zero}");

        let mut cnn = SimpleConvNet::new([1, 28, 28], 10);
        cnn.conv_param.pad = usize::MAX;
        let e = layout(&NetSpec::SimpleCnn(cnn.clone())).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");

        cnn.conv_param.pad = 1_000_000;
        let e = layout(&NetSpec::SimpleCnn(cnn.clone())).unwrap_err();
        assert!(e.contains("more than 4194304 values"), "{e}");

        cnn.conv_param.pad = 0;
        cnn.conv_param.stride = 0;
        assert!(layout(&NetSpec::SimpleCnn(cnn)).is_err());

        let mut deep = DeepConvNet::new([1, 28, 28], 10);
        deep.conv_params.pop();
        let e = layout(&NetSpec::DeepCnn(deep)).unwrap_err();
        assert!(e.contains("pairs"), "{e}");

        let e = layout(&NetSpec::Mlp(MultiLayerNet::new(4, &[3], 2).dropout(1.5))).unwrap_err();
        assert!(e.contains("dropout"), "{e}");
    }
}
