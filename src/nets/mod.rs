//! Networks: an ordered chain of layers ending in SoftmaxWithLoss
//! ([`Network`]), and the architectures that build one ([`MultiLayerNet`]).

mod multi_layer_net;
mod network;

pub use multi_layer_net::{Activation, MultiLayerNet, WeightInit};
pub use network::{NamedParam, NamedParamMut, Network};
