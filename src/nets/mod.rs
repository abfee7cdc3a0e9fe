//! Networks: an ordered chain of layers ending in SoftmaxWithLoss
//! ([`Network`]), and the architectures that build one ([`NetSpec`]).

mod multi_layer_net;
mod network;

pub use multi_layer_net::{Activation, MultiLayerNet, WeightInit};
pub use network::{NamedParam, NamedParamMut, Network};

use serde::{Deserialize, Serialize};

use crate::tensor::Float;

/// An architecture: enough to rebuild a net, so checkpoints carry it as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NetSpec {
    /// The textbook's fully connected MultiLayerNet.
    Mlp(MultiLayerNet),
}

impl NetSpec {
    /// Builds the net with fresh weights drawn from `seed`.
    pub fn build<T: Float>(&self, seed: u64) -> Network<T> {
        match self {
            NetSpec::Mlp(m) => m.build(seed),
        }
    }
}
