//! Layers: each one a `forward` and, directly below it, the `backward` that
//! undoes it, as in the textbook's `common/layers.py`.
//!
//! A layer caches what its backward needs during forward, keeps its parameter
//! gradients (`dW`, `db`) on itself, and owns its output buffers, which are
//! reused from batch to batch.
//!
//! Inference has a second way in, [`Layer::infer`], next to each layer's
//! `forward`: the same output as `forward(x, false)`, bit for bit, over
//! `&self`, written into the caller's buffers. One net then serves many
//! threads at once, each with its own [`Scratch`] and activations
//! ([`NetScratch`](crate::nets::NetScratch)).

mod affine;
pub(crate) mod batch_norm;
pub mod conv_kernels;
pub mod convolution;
mod dropout;
mod flatten;
mod pooling;
pub(crate) mod relu;
mod sigmoid;
mod softmax_with_loss;
mod tanh;
pub mod winograd;

pub use affine::Affine;
pub use batch_norm::BatchNorm;
pub use convolution::Convolution;
pub use dropout::{Dropout, DropoutScaling, check_dropout_ratio};
pub use flatten::Flatten;
pub use pooling::MaxPooling;
pub use relu::Relu;
pub use sigmoid::Sigmoid;
pub use softmax_with_loss::{Labels, SoftmaxWithLoss};
pub use tanh::Tanh;

use rand_chacha::ChaCha8Rng;
use smallvec::SmallVec;
pub use smallvec::smallvec;

use crate::tensor::{Float, Tensor};

use conv_kernels::Plan;
use winograd::Winograd;

/// A layer's working memory for [`Layer::infer`], kept by the caller (one per
/// thread or call) so that the layer itself can be shared. Its buffers grow to
/// the largest input they have seen and are then reused.
pub struct Scratch<T> {
    /// Working values: BatchNorm's `√(σ² + ε)` per feature, a convolution's
    /// phase planes or im2col columns; free for a layer type of the user's own.
    pub values: Vec<T>,
    /// A convolution's filters, packed for the direct kernels.
    pub(crate) packed: Vec<T>,
    /// A convolution's plan for the last input geometry (it depends on
    /// nothing else that forward reads), made once per input shape.
    pub(crate) plan: Option<Plan>,
    /// A convolution's filters transformed for Winograd's F(2x2, 3x3), and
    /// its working buffers.
    pub(crate) winograd: Winograd<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Scratch {
            values: Vec::new(),
            packed: Vec::new(),
            plan: None,
            winograd: Winograd::default(),
        }
    }
}

/// A learnable tensor with its gradient, named as in the textbook (`W`, `b`).
pub struct Param<'a, T> {
    pub name: &'static str,
    pub value: &'a Tensor<T>,
    pub grad: &'a Tensor<T>,
    /// Whether L2 weight decay applies (weights yes, biases no).
    pub decay: bool,
}

impl<'a, T> Param<'a, T> {
    pub fn new(name: &'static str, value: &'a Tensor<T>, grad: &'a Tensor<T>, decay: bool) -> Self {
        Param {
            name,
            value,
            grad,
            decay,
        }
    }
}

/// Mutable access to a parameter and its gradient, for optimizers and checks.
pub struct ParamMut<'a, T> {
    pub name: &'static str,
    pub value: &'a mut Tensor<T>,
    pub grad: &'a mut Tensor<T>,
    pub decay: bool,
}

impl<'a, T> ParamMut<'a, T> {
    pub fn new(
        name: &'static str,
        value: &'a mut Tensor<T>,
        grad: &'a mut Tensor<T>,
        decay: bool,
    ) -> Self {
        ParamMut {
            name,
            value,
            grad,
            decay,
        }
    }
}

/// A layer's parameters. Inline up to four (a layer has at most W, b or
/// gamma, beta), so listing them on every step allocates nothing.
pub type Params<'a, T> = SmallVec<[Param<'a, T>; 4]>;
pub type ParamsMut<'a, T> = SmallVec<[ParamMut<'a, T>; 4]>;

/// A layer's buffers by name, inline up to two (BatchNorm's running mean and
/// variance), so the trainer can average them every step without allocating.
pub type Buffers<'a, T> = SmallVec<[(&'static str, &'a Tensor<T>); 2]>;
pub type BuffersMut<'a, T> = SmallVec<[(&'static str, &'a mut Tensor<T>); 2]>;

/// One step of the chain. `forward` records what `backward` will need.
pub trait Layer<T: Float>: Send + Sync {
    /// The textbook's class name: `"Affine"`, `"Relu"`, ...
    fn name(&self) -> &'static str;

    /// Inference over a shared layer: writes into `out` (resized here) what
    /// `forward(x, false)` returns, bit for bit, keeping nothing in the layer;
    /// any working memory is the caller's `scratch`. Only called where
    /// [`Layer::has_infer`] is true. The default, for a layer type of the
    /// user's own, panics: such a layer runs through `forward` instead (a
    /// [`Classifier`](crate::Classifier) with one in its net keeps a copy of
    /// the net per thread).
    fn infer(&self, _x: &Tensor<T>, _out: &mut Tensor<T>, _scratch: &mut Scratch<T>) {
        panic!(
            "{} has no Layer::infer: implement it and has_infer, or run the net with Network::predict",
            self.name()
        )
    }

    /// Whether the layer implements [`Layer::infer`]: true for every layer
    /// of the library, false by default for a type of the user's own.
    fn has_infer(&self) -> bool {
        false
    }

    /// Computes the output for input `x`. `train` is false for inference
    /// (layers such as Dropout and BatchNorm behave differently).
    fn forward(&mut self, x: &Tensor<T>, train: bool) -> &Tensor<T>;

    /// Given `dout = dL/d(output)`, returns `dx = dL/d(input)` and stores the
    /// parameter gradients. Must follow a `forward`.
    fn backward(&mut self, dout: &Tensor<T>) -> &Tensor<T>;

    /// The shape of one example's output for one example's input shape
    /// (without the batch axis), or what the layer expected instead: the net
    /// checks a chain of layers with it before running data through it.
    /// Shape-preserving layers (activations, Dropout) keep the default.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        Ok(input.to_vec())
    }

    /// The result of the last `forward`.
    fn output(&self) -> &Tensor<T>;

    /// The result of the last `backward`.
    fn grad_input(&self) -> &Tensor<T>;

    fn params(&self) -> Params<'_, T> {
        Params::new()
    }

    fn params_mut(&mut self) -> ParamsMut<'_, T> {
        ParamsMut::new()
    }

    /// State that is saved and restored but not learned by gradient descent,
    /// such as BatchNorm's running mean and variance.
    fn buffers(&self) -> Buffers<'_, T> {
        Buffers::new()
    }

    fn buffers_mut(&mut self) -> BuffersMut<'_, T> {
        BuffersMut::new()
    }

    /// Restarts the layer's random generator (Dropout), so that each worker
    /// replica draws its own masks, reproducibly.
    fn reseed(&mut self, _seed: u64) {}

    /// The layer's random generator (Dropout), if it has one: checkpoints save
    /// it so that a resumed run draws the same masks as an uninterrupted one.
    fn rng(&self) -> Option<&ChaCha8Rng> {
        None
    }

    fn set_rng(&mut self, _rng: ChaCha8Rng) {}

    /// Whether PyTorch's equivalent module stores parameter `param` transposed
    /// (Affine's `W` is (in, out); `torch.nn.Linear.weight` is (out, in)).
    /// Checkpoints transpose such 2-D tensors on save and load.
    fn torch_transposed(&self, _param: &str) -> bool {
        false
    }

    /// The first layer's input gradient is never used; skipping it is free speed.
    fn set_input_grad_needed(&mut self, _needed: bool) {}

    /// Whether the layer can apply a Relu that follows it itself
    /// ([`Layer::fuse_relu`]), so that the net's fast order may leave the
    /// Relu out: Convolution, whose kernels do it as they store and copy.
    fn can_fuse_relu(&self) -> bool {
        false
    }

    /// Applies that Relu (`on`) or stops: the output through ReLU, and
    /// `dout` through ReLU's backward before the layer's own, the same
    /// values as the Relu layer's. Only called where
    /// [`Layer::can_fuse_relu`].
    fn fuse_relu(&mut self, _on: bool) {}

    /// The layer as one entry of a [`NetSpec`](crate::nets::NetSpec), so that a
    /// net built in code can be saved; `None` for a layer the spec cannot
    /// describe (a type of the user's own).
    fn spec(&self) -> Option<crate::nets::LayerSpec> {
        None
    }

    /// A copy with the same parameters (worker replicas for data parallelism).
    fn box_clone(&self) -> Box<dyn Layer<T>>;
}

impl<T: Float> Clone for Box<dyn Layer<T>> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// Elementwise activation shared by ReLU, Sigmoid and Tanh: `y = f(x)` and
/// `dx = dout * f'(y)`, where the derivative is written in terms of the output
/// so that the output is all backward needs to keep.
pub(crate) fn activation_forward<T: Float>(x: &Tensor<T>, out: &mut Tensor<T>, f: impl Fn(T) -> T) {
    out.resize(x.shape());
    for (o, &v) in out.data_mut().iter_mut().zip(x.data()) {
        *o = f(v);
    }
}

pub(crate) fn activation_backward<T: Float>(
    dout: &Tensor<T>,
    out: &Tensor<T>,
    dx: &mut Tensor<T>,
    df: impl Fn(T) -> T,
) {
    assert_eq!(
        dout.shape(),
        out.shape(),
        "backward: dout shape {:?} differs from output shape {:?}",
        dout.shape(),
        out.shape()
    );
    dx.resize(dout.shape());
    for ((d, &g), &y) in dx.data_mut().iter_mut().zip(dout.data()).zip(out.data()) {
        *d = g * df(y);
    }
}

/// Whether `a` and `b` are the same tensor bit for bit (`==` would take -0
/// for 0).
#[cfg(test)]
pub(crate) fn same_bits<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> bool {
    a.shape() == b.shape()
        && a.data()
            .iter()
            .zip(b.data())
            .all(|(x, y)| x.as_f64().to_bits() == y.as_f64().to_bits())
}

/// Whether `layer`'s [`Layer::infer`] gives its `forward(x, false)`, bit for
/// bit, with `scratch` (reused from earlier calls, as a thread reuses it).
#[cfg(test)]
pub(crate) fn infers_as_forward<T: Float>(
    layer: &mut dyn Layer<T>,
    x: &Tensor<T>,
    scratch: &mut Scratch<T>,
) -> bool {
    let mut out = Tensor::default();
    layer.infer(x, &mut out, scratch);
    same_bits(&out, layer.forward(x, false))
}
