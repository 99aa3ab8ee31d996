//! Training-mode batch norm over channels-first `[B, C, L]` (LDPI's maps) as one
//! differentiable op on the Flex backend.
//!
//! burn's Flex `batch_norm_train` makes each channel contiguous with a transpose forward and
//! backward (a tenth of LDPI's SimCLR pretraining in `perf`, plus its elementwise passes).
//! Here a channel's values are `B` runs of `L`: the statistics are read in place, one channel
//! per task, and the output and the input gradient are one pass per sample.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::nn::BatchNorm;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{contiguous, f32s, flex_tensor};
use super::norm_pool::{update_running_statistics, Affine, BatchNormOutput};
use super::{lane_sum, vectorized_fn};

#[backend_extension(Autodiff, Flex)]
pub trait ChannelNormBackend: Backend {
    /// `batch_norm_train(x)` over `x [B, C, L]`: statistics per channel over the batch and
    /// the positions; the mean and biased variance come back for the running averages.
    fn batch_norm_channels(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BatchNormOutput<Self>;
}

/// `norm` in training mode over `x [B, C, L]` on the Flex backend with autodiff, updating the
/// running statistics as burn's `BatchNorm` does.
pub(crate) fn batch_norm_channels_train(x: Tensor<3>, norm: &BatchNorm) -> Tensor<3> {
    let out = <Dispatch as ChannelNormBackend>::batch_norm_channels(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    update_running_statistics(
        norm,
        Tensor::from_dispatch(out.mean),
        Tensor::from_dispatch(out.variance),
    );
    Tensor::from_dispatch(out.output)
}

impl ChannelNormBackend for Flex {
    fn batch_norm_channels(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> BatchNormOutput<Self> {
        let out = forward(&x, &gamma, &beta, epsilon);
        let channels = out.dims.channels;
        BatchNormOutput {
            output: out.output,
            mean: flex_tensor(out.mean, [channels]),
            variance: flex_tensor(out.variance, [channels]),
        }
    }
}

impl<C: CheckpointStrategy> ChannelNormBackend for Autodiff<Flex, C> {
    fn batch_norm_channels(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> BatchNormOutput<Self> {
        let out = forward(x.primitive(), gamma.primitive(), beta.primitive(), epsilon);
        let channels = out.dims.channels;
        let mean = FloatTensor::<Self>::new(flex_tensor(out.mean.clone(), [channels]));
        let variance = FloatTensor::<Self>::new(flex_tensor(out.variance.clone(), [channels]));
        let output = match ChannelNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = Saved(Arc::new(SavedInner {
                    dims: out.dims,
                    input: contiguous(x.primitive()),
                    gamma: f32s(&contiguous(gamma.primitive())).to_vec(),
                    mean: out.mean,
                    inv_std: out.inv_std,
                }));
                prep.finish(state, out.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(out.output),
        };
        BatchNormOutput {
            output,
            mean,
            variance,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    channels: usize,
    length: usize,
}

impl Dims {
    /// The values each channel's statistics are over.
    fn count(&self) -> f32 {
        (self.batch * self.length) as f32
    }

    /// Channel `c`'s values: one run of `length` per sample.
    fn runs<'v>(&self, values: &'v [f32], c: usize) -> impl Iterator<Item = &'v [f32]> + 'v {
        let (channels, length) = (self.channels, self.length);
        (0..self.batch).map(move |b| &values[(b * channels + c) * length..][..length])
    }
}

struct ForwardOut {
    dims: Dims,
    output: FlexTensor,
    mean: Vec<f32>,
    variance: Vec<f32>,
    inv_std: Vec<f32>,
}

fn forward(x: &FlexTensor, gamma: &FlexTensor, beta: &FlexTensor, epsilon: f64) -> ForwardOut {
    let shape = x.layout().shape();
    let dims = Dims {
        batch: shape[0],
        channels: shape[1],
        length: shape[2],
    };
    let x = contiguous(x);
    let values = f32s(&x);
    let (gamma, beta) = (contiguous(gamma), contiguous(beta));
    let (gamma, beta) = (f32s(&gamma), f32s(&beta));
    // Two passes (mean, then centred squares) as burn does, for the precision.
    let (mean, variance): (Vec<f32>, Vec<f32>) = (0..dims.channels)
        .into_par_iter()
        .map(|c| {
            let mean = dims.runs(values, c).map(run_sum).sum::<f32>() / dims.count();
            let squares = dims.runs(values, c).map(|run| centred_squares(run, mean));
            (mean, squares.sum::<f32>() / dims.count())
        })
        .unzip();
    let (affine, inv_std) = Affine::from_batch(gamma, beta, &mean, &variance, epsilon);
    let mut output = vec![0.0f32; values.len()];
    let sample = dims.channels * dims.length;
    if sample > 0 {
        output
            .par_chunks_mut(sample)
            .zip(values.par_chunks(sample))
            .for_each(|(out, x)| {
                for (c, (out, x)) in out
                    .chunks_exact_mut(dims.length)
                    .zip(x.chunks_exact(dims.length))
                    .enumerate()
                {
                    affine_run(x, affine.scale[c], affine.shift[c], out);
                }
            });
    }
    ForwardOut {
        dims,
        output: flex_tensor(output, [dims.batch, dims.channels, dims.length]),
        mean,
        variance,
        inv_std,
    }
}

struct SavedInner {
    dims: Dims,
    input: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

/// Shared so that cloning the autodiff state does not copy the buffers.
#[derive(Clone)]
struct Saved(Arc<SavedInner>);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BatchNormChannels({:?})", self.0.dims)
    }
}

#[derive(Debug, Clone, Copy)]
struct ChannelNormBackward;

impl Backward<Flex, 3> for ChannelNormBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let grad = contiguous(&grad);
        let grad = f32s(&grad);
        let saved = &ops.state.0;
        let dims = saved.dims;
        let values = f32s(&saved.input);
        // Per channel: sum of dy, and of dy times the centred input.
        let (sum_grad, sum_grad_centred): (Vec<f32>, Vec<f32>) = (0..dims.channels)
            .into_par_iter()
            .map(|c| {
                let mean = saved.mean[c];
                dims.runs(values, c)
                    .zip(dims.runs(grad, c))
                    .map(|(x, g)| (run_sum(g), grad_centred(x, g, mean)))
                    .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y))
            })
            .unzip();
        if let Some(node) = x_node {
            // dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)), written as
            // dy * scale + (x - mean) * slope + offset per channel.
            let n = dims.count();
            let (mut scale, mut slope, mut offset) = (Vec::new(), Vec::new(), Vec::new());
            for c in 0..dims.channels {
                let (g, s) = (saved.gamma[c], saved.inv_std[c]);
                scale.push(g * s);
                slope.push(-g * s * s * s * sum_grad_centred[c] / n);
                offset.push(-g * s * sum_grad[c] / n);
            }
            let mut d_x = vec![0.0f32; values.len()];
            let sample = dims.channels * dims.length;
            if sample > 0 {
                d_x.par_chunks_mut(sample)
                    .zip(values.par_chunks(sample).zip(grad.par_chunks(sample)))
                    .for_each(|(d_x, (x, g))| {
                        for (c, ((d_x, x), g)) in d_x
                            .chunks_exact_mut(dims.length)
                            .zip(x.chunks_exact(dims.length))
                            .zip(g.chunks_exact(dims.length))
                            .enumerate()
                        {
                            let per_channel = [scale[c], slope[c], offset[c], saved.mean[c]];
                            input_gradient_run(x, g, per_channel, d_x);
                        }
                    });
            }
            let shape = [dims.batch, dims.channels, dims.length];
            grads.register::<Flex>(node.id, flex_tensor(d_x, shape));
        }
        if let Some(node) = gamma_node {
            let d_gamma = sum_grad_centred
                .iter()
                .zip(&saved.inv_std)
                .map(|(s, inv_std)| s * inv_std)
                .collect();
            grads.register::<Flex>(node.id, flex_tensor(d_gamma, [dims.channels]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_tensor(sum_grad, [dims.channels]));
        }
    }
}

vectorized_fn! {
    fn run_sum(x: &[f32]) -> f32 {
        lane_sum(x, x, |x, _| x)
    }
}

vectorized_fn! {
    fn centred_squares(x: &[f32], mean: f32) -> f32 {
        lane_sum(x, x, |x, _| (x - mean) * (x - mean))
    }
}

vectorized_fn! {
    fn grad_centred(x: &[f32], g: &[f32], mean: f32) -> f32 {
        lane_sum(x, g, |x, g| g * (x - mean))
    }
}

vectorized_fn! {
    fn affine_run(x: &[f32], scale: f32, shift: f32, out: &mut [f32]) {
        for (out, &x) in out.iter_mut().zip(x) {
            *out = x * scale + shift;
        }
    }
}

vectorized_fn! {
    /// `dx = dy * scale + (x - mean) * slope + offset` over one run.
    fn input_gradient_run(x: &[f32], g: &[f32], per_channel: [f32; 4], d_x: &mut [f32]) {
        let [scale, slope, offset, mean] = per_channel;
        for ((d_x, &x), &g) in d_x.iter_mut().zip(x).zip(g) {
            *d_x = g * scale + (x - mean) * slope + offset;
        }
    }
}
