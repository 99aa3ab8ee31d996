//! Building blocks burn does not have in the form the designs need: a fused-gate LSTM,
//! Keras-style multi-head attention (key_dim independent of the model width), additive
//! attention pooling, separable convolutions, and a dropout driven by the training run's own
//! seeded RNG (burn's dropout draws from one process-global RNG, which breaks seed
//! reproducibility when two trainings share a process).

mod attention;
mod channel_norm;
mod conv_front;
mod conv_rows;
mod dense;
mod derived;
mod flex;
mod gate;
mod lstm;
mod lstm_block;
mod lstm_recurrence;
mod norm_pool;
mod rectifier;
mod sepconv;

pub use attention::{AdditiveAttention, KerasMultiHeadAttention};
pub(crate) use channel_norm::batch_norm_channels_train;
pub use conv_front::{ConvFrontEnd, ConvFrontEndConfig};
pub(crate) use conv_rows::{conv1d_rows, RowsGeometry};
pub(crate) use dense::{dense_stack, Activation, Dense};
pub(crate) use flex::is_flex;
pub(crate) use gate::tanh_sigmoid_gate;
pub use lstm::{BiLstm, Lstm, LstmBias};
#[cfg(test)]
pub(crate) use lstm_recurrence::lstm_recurrence;
pub(crate) use rectifier::{elu_rectifier, leaky_rectifier, prelu_rectifier};
#[cfg(test)]
pub(crate) use sepconv::pointwise;
pub(crate) use sepconv::pointwise_norm;
pub use sepconv::SeparableConv1d;

use burn::tensor::{Tensor, TensorData};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

/// Per-forward state: `Some(rng)` while training (dropout active), `None` for inference.
pub struct ForwardCtx<'a> {
    rng: Option<&'a mut ChaCha8Rng>,
}

impl<'a> ForwardCtx<'a> {
    /// Training mode: dropout masks come from `rng`.
    pub fn training(rng: &'a mut ChaCha8Rng) -> Self {
        Self { rng: Some(rng) }
    }

    /// Inference mode: dropout is the identity.
    pub fn inference() -> ForwardCtx<'static> {
        ForwardCtx { rng: None }
    }

    /// Whether this forward pass trains (dropout active; an ensemble returns every member).
    pub fn is_training(&self) -> bool {
        self.rng.is_some()
    }

    /// Inverted dropout with keep-probability `1 - p`.
    pub fn dropout<const D: usize>(&mut self, x: Tensor<D>, p: f64) -> Tensor<D> {
        let Some(rng) = self.rng.as_deref_mut() else {
            return x;
        };
        if p <= 0.0 {
            return x;
        }
        let shape = x.shape();
        let n = shape.num_elements();
        let keep = 1.0 - p;
        // Compare raw u32 draws with a fixed threshold: cheap and identical on every platform.
        let threshold = (keep * u32::MAX as f64) as u32;
        let scale = (1.0 / keep) as f32;
        // One mask per batch (the tensor takes ownership of the buffer).
        let mask: Vec<f32> = (0..n)
            .map(|_| {
                if rng.next_u32() < threshold {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        let mask = Tensor::<D>::from_data(TensorData::new(mask, shape), &x.device());
        x * mask
    }
}

/// Defines a function compiled three times, for AVX-512, for AVX2 + FMA and for baseline
/// x86-64, choosing per call by what the CPU has. Builds target baseline x86-64, so the
/// hand-written loops would otherwise vectorise only four floats wide with SSE2 (burn's and
/// gemm's kernels dispatch at run time too). Written here because pulp's closure dispatch leaves
/// a large closure un-inlined, compiled for the baseline. What the body calls must be
/// `#[inline(always)]`. Rust never fuses `a * b + c` into an FMA by itself, so every version
/// computes the same bits.
macro_rules! vectorized_fn {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn wide512($($arg: $ty),*) $(-> $ret)? $body
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) $(-> $ret)? $body
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("fma")
                {
                    // SAFETY: this CPU has the instruction sets `wide512` is compiled for.
                    return unsafe { wide512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: this CPU has the instruction sets `wide` is compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body
        }
    };
}
pub(crate) use vectorized_fn;

/// Partial sums of [`lane_sum`].
const LANES: usize = 16;

/// `sum of term(x[i], y[i])` over the shorter slice, in 16 partial sums: one running float sum
/// is a serial chain of additions the compiler may not reorder, which keeps a loop from
/// vectorising (a fifth of scoring autoencoder rows, before it was summed in lanes).
#[inline(always)]
pub(crate) fn lane_sum(x: &[f32], y: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (x_blocks, y_blocks) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = x_blocks
        .remainder()
        .iter()
        .zip(y_blocks.remainder())
        .map(|(&x, &y)| term(x, y))
        .sum();
    for (x, y) in x_blocks.zip(y_blocks) {
        for lane in 0..LANES {
            lanes[lane] += term(x[lane], y[lane]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Rows per parallel chunk: one chunk per rayon thread.
pub(crate) fn rows_per_chunk(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

/// A tensor's f32 values, read where they are: a Flex tensor's storage is shared by reference
/// count (`into_data` copies it whenever a parameter still holds it: the CNN-LSTM's 256 KB
/// `W_hh` on every one-sample call); other backends' values (and views that are not plain
/// row-major) are copied out, converted to f32.
pub(crate) enum F32Values {
    Shared(burn::backend::flex::FlexTensor),
    Copied(TensorData),
}

impl F32Values {
    pub fn of<const D: usize>(tensor: Tensor<D>) -> Self {
        match Self::flex_storage(&tensor) {
            Some(storage) => F32Values::Shared(storage),
            None => F32Values::Copied(tensor.into_data().convert::<f32>()),
        }
    }

    /// A Flex f32 tensor's storage (shared, no copy) when it is plain row-major.
    pub fn flex_storage<const D: usize>(
        tensor: &Tensor<D>,
    ) -> Option<burn::backend::flex::FlexTensor> {
        use burn::backend::{BackendTensor, DispatchTensorKind};
        match tensor.clone().into_dispatch().kind {
            DispatchTensorKind::Flex(BackendTensor::Float(t)) if t.as_slice::<f32>().is_some() => {
                Some(t)
            }
            _ => None,
        }
    }

    /// Row-major.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            F32Values::Shared(t) => t.as_slice::<f32>().expect("checked contiguous f32"),
            F32Values::Copied(data) => data.as_slice::<f32>().expect("converted to f32"),
        }
    }
}
