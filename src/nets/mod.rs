//! Networks: an ordered chain of layers ending in SoftmaxWithLoss
//! ([`Network`]), and the one description that builds one ([`NetSpec`]), of
//! which the textbook's nets are instances.

mod conv_nets;
mod multi_layer_net;
mod network;
mod spec;

pub use conv_nets::{ConvParam, DeepConvNet, SimpleConvNet};
pub use multi_layer_net::{Activation, MultiLayerNet, WeightInit};
pub(crate) use network::check_labels;
pub use network::{InputError, NamedParam, NamedParamMut, NetScratch, Network};
pub use spec::{LayerSpec, LayerSummary, MAX_CONV_VALUES, NetSpec, NetSummary, SpecError};
