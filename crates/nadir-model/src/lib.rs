//! Models and training: the fifth stage of the nadir pipeline.
//!
//! Six families selectable by [`ModelKind`] (seeds-spec §1-§5 plus a dense autoencoder), built
//! with burn on its pure-Rust Flex CPU backend by default; [`ComputeDevice`] picks CUDA or wgpu
//! instead at run time where the `cuda` / `wgpu` features built them in.
//! A [`ModelConfig`] (TOML, published defaults) is validated before anything is built;
//! [`train`] runs the supervised loop and returns a [`Trained`] model that scores samples and
//! serialises its weights for the bundle.
//!
//! ```no_run
//! use nadir_model::{train, InputShape, ModelConfig, ModelKind, TrainData, TrainOptions};
//! # fn demo(x: &[f32], y: &[u32], vx: &[f32], vy: &[u32]) -> Result<(), nadir_model::ModelError> {
//! let shape = InputShape::Tabular { features: 10 };
//! let cfg = ModelConfig::default_for(ModelKind::Hybrid, shape, 2);
//! let opts = TrainOptions::default_for(ModelKind::Hybrid);
//! let model = train(&cfg, TrainData::new(x, shape, y), TrainData::new(vx, shape, vy), &opts)?;
//! let p_attack = model.predict(vx, shape)?.anomaly_scores();
//! let weights = model.to_bytes()?;
//! # Ok(()) }
//! ```

pub mod arch;
pub mod config;
mod data;
mod deepsad;
mod device;
mod error;
mod gbdt;
mod kind;
pub mod layers;
mod meta;
mod reduction;
mod shape;
mod train;
mod trained;

pub use config::{
    ArchConfig, AutoencoderConfig, CheckedConfig, CnnLstmConfig, DecoderOutput, EnsembleConfig,
    GbdtConfig, Head, HybridConfig, LdpiConfig, LlaformerConfig, LlnConfig, ModelConfig,
};
pub use data::TrainData;
pub use deepsad::{pretrain_encoder, ContrastiveOptions, DeepSadOptions};
pub use device::ComputeDevice;
pub use error::ModelError;
pub use gbdt::TreeShap;
pub use kind::{ModelKind, UnknownModelKind};
pub use meta::{
    adapt, loss_and_accuracy, meta_train, meta_train_from, AdaptOptions, MetaOptions, SHARED_ROWS,
};
pub use reduction::fit_reduction;
pub use shape::InputShape;
pub use train::{
    balanced_class_weights, train, EpochRecord, History, OptimizerKind, PlateauOptions,
    TrainOptions, WarmupCosine,
};
pub use trained::{Embeddings, ScoreGradients, Scores, Trained};

#[cfg(test)]
mod tests;

/// Lets the process keep freed tensor buffers instead of handing them back to the OS.
///
/// burn-flex allocates every op's output afresh. With glibc's defaults a buffer over 128 KiB
/// is mmap'd and unmapped again when freed, so each large output page-faults and is zeroed
/// anew: batch-1024 `cnn-lstm` inference in the benchmark made 535 k page faults and ran
/// 1,686 samples/s; with these settings 13 k faults and 2,333. A 32 MiB mmap threshold serves tensors
/// from the heap, and a 1 GiB trim threshold keeps freed heap for the next op; peak memory
/// is still what the model needs at once. Outputs over 32 MiB (glibc's cap on that threshold)
/// would still be mmap'd: no mmap at all took LDPI's batch-1024 scoring (256-channel maps)
/// from 594 to 2,035 samples/s. Process-wide: binaries call it once at start-up
/// (`nadir` for its model commands, the model benchmark).
pub fn keep_freed_tensor_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation thresholds; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}
