//! The tensors a [`NetSpec`] needs, by PyTorch name and shape, worked out from
//! the spec alone, without building the net.
//!
//! A checkpoint's metadata is not trusted: a spec claiming a hidden layer of
//! four billion units must be refused before anything of that size is
//! allocated. [`layout`] computes every tensor's shape with checked arithmetic,
//! and the loader compares them with the tensors actually in the file, so the
//! net it then builds is no bigger than the file's own data.
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

/// Largest per-example buffer a convolution may need (its im2col matrix or its
/// output), in values. Weights are bounded by the file, but padding and stride
/// are not: a 1x1 filter with a padding of a million would ask for terabytes
/// at the first prediction. The textbook's nets on MNIST need at most 112,896
/// (DeepConvNet's second convolution); 2^22 leaves room for colour images.
pub const MAX_CONV_VALUES: usize = 1 << 22;

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

/// The output `(FN, OH, OW)` of convolution `p` on `(C, H, W)`, if the filter
/// fits and the buffers stay below [`MAX_CONV_VALUES`].
fn conv_output(p: &ConvParam, [c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
    let k = p.filter_size;
    let side = |input: usize| {
        let padded = p.pad.checked_mul(2)?.checked_add(input)?;
        if p.stride == 0 || k == 0 || k > padded {
            return None;
        }
        Some((padded - k) / p.stride + 1)
    };
    let (Some(oh), Some(ow)) = (side(h), side(w)) else {
        return Err(format!(
            "{p} (filter {k}, stride {}, pad {}) does not fit input {:?}",
            p.stride,
            p.pad,
            [c, h, w]
        ));
    };
    if p.filter_num == 0 {
        return Err(format!("{p} has no filters"));
    }
    let positions = oh.checked_mul(ow);
    let im2col = positions.and_then(|n| n.checked_mul(c)?.checked_mul(k)?.checked_mul(k));
    let output = positions.and_then(|n| n.checked_mul(p.filter_num));
    match (im2col, output) {
        (Some(a), Some(b)) if a <= MAX_CONV_VALUES && b <= MAX_CONV_VALUES => {
            Ok([p.filter_num, oh, ow])
        }
        _ => Err(format!(
            "{p} on input {:?} needs buffers of more than {MAX_CONV_VALUES} values per example",
            [c, h, w]
        )),
    }
}

/// 2x2, stride 2 max pooling.
fn pooled([c, h, w]: [usize; 3]) -> Result<[usize; 3], String> {
    if h < 2 || w < 2 {
        return Err(format!("2x2 pooling does not fit {:?}", [c, h, w]));
    }
    Ok([c, (h - 2) / 2 + 1, (w - 2) / 2 + 1])
}

fn positive(what: &str, sizes: &[usize]) -> Result<(), String> {
    if sizes.contains(&0) {
        return Err(format!("{what} must be positive, got {sizes:?}"));
    }
    Ok(())
}

fn product(shape: [usize; 3]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("{shape:?} overflows"))
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
            positive("input_dim", &s.input_dim)?;
            positive("hidden and output sizes", &[s.hidden_size, s.output_size])?;
            let conv = conv_output(&s.conv_param, s.input_dim)?;
            let flat = product(pooled(conv)?)?;
            l.conv(&s.conv_param, s.input_dim[0]);
            l.plain(); // Relu
            l.plain(); // MaxPooling
            l.plain(); // Flatten
            l.affine(flat, s.hidden_size);
            l.plain(); // Relu
            l.affine(s.hidden_size, s.output_size);
        }
        NetSpec::DeepCnn(d) => {
            positive("input_dim", &d.input_dim)?;
            positive("hidden and output sizes", &[d.hidden_size, d.output_size])?;
            if d.conv_params.is_empty() || d.conv_params.len() % 2 != 0 {
                return Err(format!(
                    "the convolutions come in pairs, got {}",
                    d.conv_params.len()
                ));
            }
            if !(0.0..1.0).contains(&d.dropout_ratio) {
                return Err(format!(
                    "the dropout ratio must be in [0, 1), got {}",
                    d.dropout_ratio
                ));
            }
            let mut shape = d.input_dim;
            for (i, p) in d.conv_params.iter().enumerate() {
                l.conv(p, shape[0]);
                shape = conv_output(p, shape)?;
                l.plain(); // Relu
                if i % 2 == 1 {
                    shape = pooled(shape)?;
                    l.plain(); // MaxPooling
                }
            }
            let flat = product(shape)?;
            l.plain(); // Flatten
            l.affine(flat, d.hidden_size);
            l.plain(); // Relu
            l.plain(); // Dropout
            l.affine(d.hidden_size, d.output_size);
            l.plain(); // Dropout
        }
    }
    // What remains (e.g. a convnet's own checks) is cheap now that every size
    // is known to be sane.
    spec.validate().map_err(|e| e.to_string())?;
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
