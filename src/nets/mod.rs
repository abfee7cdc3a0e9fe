//! Networks: an ordered chain of layers ending in SoftmaxWithLoss
//! ([`Network`]), and the architectures that build one ([`NetSpec`]).

mod conv_nets;
mod multi_layer_net;
mod network;

pub use conv_nets::{ConvParam, DeepConvNet, MAX_CONV_VALUES, SimpleConvNet, SpecError};
pub use multi_layer_net::{Activation, MultiLayerNet, WeightInit};
pub(crate) use network::check_labels;
pub use network::{InputError, NamedParam, NamedParamMut, Network};

use serde::{Deserialize, Serialize};

use crate::tensor::Float;

/// An architecture: enough to rebuild a net, so checkpoints carry it as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NetSpec {
    /// The textbook's fully connected MultiLayerNet.
    Mlp(MultiLayerNet),
    /// The textbook's SimpleConvNet (conv - relu - pool - affine - relu - affine).
    SimpleCnn(SimpleConvNet),
    /// The textbook's DeepConvNet (six 3x3 convolutions, dropout).
    DeepCnn(DeepConvNet),
}

impl NetSpec {
    /// Builds the net with fresh weights drawn from `seed`, or says why the
    /// architecture cannot be built.
    pub fn build<T: Float>(&self, seed: u64) -> Result<Network<T>, SpecError> {
        match self {
            NetSpec::Mlp(m) => m.build(seed),
            NetSpec::SimpleCnn(s) => s.build(seed),
            NetSpec::DeepCnn(d) => d.build(seed),
        }
    }

    /// Whether the net can be built for its input size (a spec read from a
    /// file, or a convnet asked for on data too small for its filters).
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            NetSpec::Mlp(m) => m.validate(),
            NetSpec::SimpleCnn(s) => s.validate(),
            NetSpec::DeepCnn(d) => d.validate(),
        }
    }
}
