//! The networks, one module per family, behind one [`Network`] enum.

mod autoencoder;
mod cnn_lstm;
mod hybrid;
mod ldpi;
mod llaformer;
mod lln;
mod tabm;

pub use autoencoder::Autoencoder;
pub use cnn_lstm::CnnLstm;
pub use hybrid::Hybrid;
pub use ldpi::Ldpi;
pub use llaformer::Llaformer;
pub use lln::Lln;
pub use tabm::Tabm;

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::tensor::{Device, Tensor};

use crate::config::{ArchConfig, CheckedConfig};
use crate::layers::ForwardCtx;
use crate::InputShape;

/// Any of the model families. One network per model: boxing the large variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    Llaformer(Llaformer),
    Lln(Lln),
    Hybrid(Hybrid),
    CnnLstm(CnnLstm),
    Ldpi(Ldpi),
    Autoencoder(Autoencoder),
    Tabm(Tabm),
}

/// burn's initialisers draw from one process-global RNG: seeding and drawing happen under this
/// lock so two models built at once in one process still get their own seed's weights.
static INIT_LOCK: Mutex<()> = Mutex::new(());

impl Network {
    /// Builds the network of `cfg` on `device` with weights drawn from `seed`.
    pub fn new(cfg: &CheckedConfig, device: &Device, seed: u64) -> Self {
        let _guard = INIT_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        device.seed(seed);
        let network = Self::build(cfg, device);
        // Parameters initialise lazily on first use: force it now, while the seed is ours.
        network.visit(&mut Materialize);
        network
    }

    fn build(cfg: &CheckedConfig, device: &Device) -> Self {
        let outputs = cfg.n_outputs();
        let (channels, length) = cfg.input.channels_length();
        match &cfg.arch {
            ArchConfig::Llaformer(c) => Network::Llaformer(Llaformer::new(c, outputs, device)),
            ArchConfig::Lln(c) => Network::Lln(Lln::new(c, channels, outputs, device)),
            ArchConfig::Hybrid(c) => {
                let (features, steps, windows) = match cfg.input {
                    InputShape::Windows { channels, length } => (channels, length, true),
                    _ => (length, 1, false),
                };
                Network::Hybrid(Hybrid::new(c, features, steps, windows, outputs, device))
            }
            ArchConfig::CnnLstm(c) => Network::CnnLstm(CnnLstm::new(c, channels, outputs, device)),
            ArchConfig::Ldpi(c) => Network::Ldpi(Ldpi::new(
                c,
                outputs,
                cfg.head == crate::config::Head::Hypersphere,
                device,
            )),
            ArchConfig::Autoencoder(c) => Network::Autoencoder(Autoencoder::new(c, length, device)),
            ArchConfig::Tabm(c) => Network::Tabm(Tabm::new(c, channels * length, outputs, device)),
            // `Trained` and `train` route trees to `crate::gbdt` before any network is built.
            ArchConfig::Gbdt(_) | ArchConfig::Ensemble(_) => {
                unreachable!("trees and ensembles are not one network")
            }
        }
    }

    /// Class logits `[B, outputs]`, or the reconstruction `[B, F]` for the autoencoder; while
    /// training, TabM's `[k * B, outputs]` (each of its k members, member-major).
    /// `x` is `[B, channels, length]` as [`InputShape::channels_length`] gives.
    pub fn forward(&self, x: Tensor<3>, ctx: &mut ForwardCtx) -> Tensor<2> {
        let batch = x.dims()[0];
        match self.inference_chunk() {
            Some(chunk) if !x.is_autodiff() && batch > chunk => {
                let chunks = (0..batch)
                    .step_by(chunk)
                    .map(|start| {
                        let len = chunk.min(batch - start);
                        self.forward_whole(x.clone().narrow(0, start, len), ctx)
                    })
                    .collect();
                Tensor::cat(chunks, 0)
            }
            _ => self.forward_whole(x, ctx),
        }
    }

    /// Samples per inference pass for the families with a convolutional front end: their
    /// intermediates (column matrices, every step's gates) grow past the caches with the batch,
    /// and fresh multi-MB buffers are page-faulted and zeroed on every call. Measured at batch
    /// 1024 (`bench_models`, 4 alternating rounds): LLN 10.6 k -> 12.0 k samples/s, LLAFormerNet
    /// 27.9 k -> 32.0 k with chunks of 64 (128: no gain); CNN-LSTM the same speed, with a ~6 MB
    /// column matrix instead of ~100 MB. The others run slower in chunks (the hybrid 1.0 M ->
    /// 0.67 M, the autoencoder 12 M -> 8.7 M), LDPI the same or slower.
    fn inference_chunk(&self) -> Option<usize> {
        match self {
            Network::Llaformer(_) | Network::Lln(_) | Network::CnnLstm(_) => Some(64),
            _ => None,
        }
    }

    /// [`forward`](Self::forward) over the whole batch at once.
    fn forward_whole(&self, x: Tensor<3>, ctx: &mut ForwardCtx) -> Tensor<2> {
        match self {
            Network::Llaformer(m) => m.forward(x, ctx),
            Network::Lln(m) => m.forward(x, ctx),
            Network::Hybrid(m) => m.forward(x, ctx),
            Network::CnnLstm(m) => m.forward(x, ctx),
            Network::Ldpi(m) => m.forward(x, ctx),
            Network::Autoencoder(m) => m.forward(flatten_rows(x)),
            Network::Tabm(m) => m.forward(flatten_rows(x), ctx),
        }
    }

    /// The family's embedding: the autoencoder's code, LDPI's head output; `None` for the others.
    pub fn encode(&self, x: Tensor<3>) -> Option<Tensor<2>> {
        match self {
            Network::Autoencoder(m) => Some(m.encode(flatten_rows(x))),
            Network::Ldpi(m) => Some(m.encode(x)),
            _ => None,
        }
    }

    /// Sets Deep SAD's hypersphere centre (a no-op for families without one).
    pub fn set_center(&mut self, center: Tensor<1>) {
        if let Network::Ldpi(m) = self {
            m.set_center(center);
        }
    }

    /// Number of trainable parameters (batch-norm running statistics are buffers, not counted;
    /// burn's `num_params` counts them).
    pub fn num_trainable_params(&self) -> usize {
        trainable_params(self)
    }

    /// Ids and ranks of every trainable float parameter (for global-norm gradient clipping).
    pub fn float_param_ids(&self) -> Vec<(ParamId, usize)> {
        let mut collector = IdCollector(Vec::new());
        self.visit(&mut collector);
        collector.0
    }
}

fn flatten_rows(x: Tensor<3>) -> Tensor<2> {
    let [batch, channels, length] = x.dims();
    x.reshape([batch, channels * length])
}

/// Trainable parameters of any module: every float tensor except batch-norm running statistics
/// and the Deep SAD centre.
pub(crate) fn trainable_params<M: Module>(module: &M) -> usize {
    let mut counter = TrainableCounter {
        path: Vec::new(),
        count: 0,
    };
    module.visit(&mut counter);
    counter.count
}

struct TrainableCounter {
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for TrainableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var" | "center")
        );
        if !buffer {
            self.count += param.lazy_shape().num_elements();
        }
    }
}

struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

struct IdCollector(Vec<(ParamId, usize)>);

impl ModuleVisitor for IdCollector {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push((param.id, D));
    }
}
