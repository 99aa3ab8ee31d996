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
//! let attack_log_odds = model.predict(vx, shape)?.anomaly_scores();
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
    PeriodicConfig, TabmConfig, TabmEmbedding,
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
pub use trained::{
    log_odds_against, mean_probability_log_odds, Embeddings, ScoreGradients, Scores, Trained,
};

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

/// Makes the calling thread one of the threads the models compute on: rayon's global pool is
/// built with this thread as its worker 0 (`RAYON_NUM_THREADS` threads in all, this one
/// included), so a model's parallel ops split their work here and the other workers steal
/// halves, as the calling thread does in PyTorch's and ONNX Runtime's pools.
///
/// From a thread outside the pool, every parallel op (a GEMM, a convolution, the LSTM's blocks)
/// hands its whole work to the pool and sleeps until it is done: a one-sample LLAFormerNet call
/// made ~25 such hand-offs and context switches were over half its time. Measured with
/// `bench_models` (2 threads, samples/s, outside -> inside the pool): LLAFormerNet batch 1
/// 7.7 k -> 13.9 k, batch 1024 26.8 k -> 31.8 k; LLN batch 1 4.1 k -> 5.6 k; CNN-LSTM batch 1
/// 2.9 k -> 3.4 k; LDPI batch 1 1.7 k -> 2.6 k; the hybrid at batch 1024 1.30 M -> 1.61 M; the
/// autoencoder unchanged. (Moving each call into the pool instead, with `rayon::scope`, costs a
/// hand-off per call: the autoencoder's batch-1 calls ran 5x slower.)
///
/// Call it once, before any model runs, from the thread that will run them (the `nadir`
/// binary's main thread for its model commands, `watch`'s scoring thread). Returns `false`
/// when the pool was already built; models then still run, with the hand-offs.
pub fn compute_on_this_thread() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}
