//! Training-mode batch norm + max-pool + ReLU over channels-last `[B, L, F]` as one
//! differentiable op on the Flex backend.
//!
//! burn's `batch_norm_train` takes channels-first input, so on `[B * L, F]` rows it transposes
//! twice forward and twice backward and makes about ten full-size temporaries; its max-pool
//! records i64 indices with a scalar loop per output. Here the statistics are one pass over
//! the rows, the normalised, pooled, rectified output a second one that also keeps which
//! window element won (one byte), and the backward pass is one sparse pass for the channel
//! sums plus one dense pass for the input gradient.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, ExtensionType, Flex};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{contiguous, f32s, flex_tensor};

/// The op's output and the batch statistics (for the running averages; not differentiable).
#[derive(ExtensionType)]
pub struct NormPoolOutput<B: Backend> {
    /// `[B, L / window, F]`.
    pub output: FloatTensor<B>,
    /// `[F]`.
    pub mean: FloatTensor<B>,
    /// Biased variance `[F]`, as burn's `batch_norm_train` returns it.
    pub variance: FloatTensor<B>,
}

#[backend_extension(Autodiff, Flex)]
pub trait NormPoolBackend: Backend {
    /// `relu(max_pool(batch_norm_train(x)))` along the steps of `x [B, L, F]`, window = stride
    /// = `window` (a trailing partial window is dropped; its rows still count for the
    /// statistics).
    fn batch_norm_pool_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        window: usize,
    ) -> NormPoolOutput<Self>;
}

/// [`NormPoolBackend::batch_norm_pool_relu`] on tensors of the Flex backend; returns
/// `(output, mean, variance)`.
pub(crate) fn batch_norm_pool_relu(
    x: Tensor<3>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    window: usize,
) -> (Tensor<3>, Tensor<1>, Tensor<1>) {
    let out = <Dispatch as NormPoolBackend>::batch_norm_pool_relu(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        window,
    );
    (
        Tensor::from_dispatch(out.output),
        Tensor::from_dispatch(out.mean),
        Tensor::from_dispatch(out.variance),
    )
}

impl NormPoolBackend for Flex {
    fn batch_norm_pool_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        window: usize,
    ) -> NormPoolOutput<Self> {
        let out = forward(&x, &gamma, &beta, epsilon, window);
        NormPoolOutput {
            output: out.output,
            mean: flex_tensor(out.mean, [out.dims.features]),
            variance: flex_tensor(out.variance, [out.dims.features]),
        }
    }
}

impl<C: CheckpointStrategy> NormPoolBackend for Autodiff<Flex, C> {
    fn batch_norm_pool_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        window: usize,
    ) -> NormPoolOutput<Self> {
        let out = forward(
            x.primitive(),
            gamma.primitive(),
            beta.primitive(),
            epsilon,
            window,
        );
        let features = out.dims.features;
        let mean = FloatTensor::<Self>::new(flex_tensor(out.mean.clone(), [features]));
        let variance = FloatTensor::<Self>::new(flex_tensor(out.variance.clone(), [features]));
        let output = match NormPoolBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = Saved(Arc::new(SavedInner {
                    dims: out.dims,
                    input: x.into_primitive(),
                    gamma: f32s(&contiguous(gamma.primitive())).to_vec(),
                    mean: out.mean,
                    inv_std: out.inv_std,
                    winners: out.winners,
                }));
                prep.finish(state, out.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(out.output),
        };
        NormPoolOutput {
            output,
            mean,
            variance,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    length: usize,
    features: usize,
    window: usize,
}

impl Dims {
    fn pooled(&self) -> usize {
        self.length / self.window
    }
}

/// No window element won: the ReLU cut the output to zero, so no gradient flows.
const CUT: u8 = u8::MAX;

struct ForwardOut {
    dims: Dims,
    output: FlexTensor,
    mean: Vec<f32>,
    variance: Vec<f32>,
    inv_std: Vec<f32>,
    /// Per output element, the index in its window of the maximum, or [`CUT`].
    winners: Vec<u8>,
}

fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
    window: usize,
) -> ForwardOut {
    let shape = x.layout().shape();
    let dims = Dims {
        batch: shape[0],
        length: shape[1],
        features: shape[2],
        window,
    };
    assert!(
        (1..usize::from(CUT)).contains(&window),
        "pool window {window} out of range"
    );
    let Dims {
        batch,
        length,
        features,
        ..
    } = dims;
    let x = contiguous(x);
    let values = f32s(&x);
    let (gamma, beta) = (contiguous(gamma), contiguous(beta));
    let (gamma, beta) = (f32s(&gamma), f32s(&beta));
    let rows = (batch * length) as f32;
    // Two passes (mean, then centred squares) as burn does, for the precision.
    let mut mean = vec![0.0f32; features];
    for row in values.chunks_exact(features) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows);
    let mut variance = vec![0.0f32; features];
    for row in values.chunks_exact(features) {
        for ((s, &v), &m) in variance.iter_mut().zip(row).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    variance.iter_mut().for_each(|s| *s /= rows);
    let inv_std: Vec<f32> = variance
        .iter()
        .map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt() as f32)
        .collect();
    // y = x * scale + shift.
    let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
    let shift: Vec<f32> = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    let pooled = dims.pooled();
    let mut output = vec![0.0f32; batch * pooled * features];
    let mut winners = vec![CUT; batch * pooled * features];
    if pooled > 0 {
        output
            .par_chunks_mut(pooled * features)
            .zip(winners.par_chunks_mut(pooled * features))
            .enumerate()
            .for_each(|(b, (out, won))| {
                let sample = &values[b * length * features..][..pooled * window * features];
                for ((out_row, won_row), rows) in out
                    .chunks_exact_mut(features)
                    .zip(won.chunks_exact_mut(features))
                    .zip(sample.chunks_exact(window * features))
                {
                    // Output 0 and CUT already apply the ReLU: a window wins only above 0.
                    for (w, row) in rows.chunks_exact(features).enumerate() {
                        let w = w as u8;
                        for ((((o, won), &v), &s), &t) in out_row
                            .iter_mut()
                            .zip(won_row.iter_mut())
                            .zip(row)
                            .zip(&scale)
                            .zip(&shift)
                        {
                            let y = v * s + t;
                            if y > *o {
                                *o = y;
                                *won = w;
                            }
                        }
                    }
                }
            });
    }
    ForwardOut {
        dims,
        output: flex_tensor(output, [batch, pooled, features]),
        mean,
        variance,
        inv_std,
        winners,
    }
}

struct SavedInner {
    dims: Dims,
    input: FlexTensor,
    gamma: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    winners: Vec<u8>,
}

/// Shared so that cloning the autodiff state does not copy the buffers.
#[derive(Clone)]
struct Saved(Arc<SavedInner>);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NormPool({:?})", self.0.dims)
    }
}

#[derive(Debug)]
struct NormPoolBackward;

impl Backward<Flex, 3> for NormPoolBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let grad = contiguous(&grad);
        let grad = f32s(&grad);
        let saved = &ops.state.0;
        let Dims {
            batch,
            length,
            features,
            window,
        } = saved.dims;
        let pooled = saved.dims.pooled();
        let input = contiguous(&saved.input);
        let values = f32s(&input);
        let (mean, inv_std) = (&saved.mean, &saved.inv_std);
        // Per channel: the sums of the normalised output's gradient and of it times the
        // normalised input; only the winning window elements have a non-zero gradient.
        let mut sum_grad = vec![0.0f32; features];
        let mut sum_grad_norm = vec![0.0f32; features];
        for b in 0..batch {
            for p in 0..pooled {
                let at = (b * pooled + p) * features;
                let won = &saved.winners[at..][..features];
                let g = &grad[at..][..features];
                let rows = &values[(b * length + p * window) * features..][..window * features];
                for f in 0..features {
                    if won[f] != CUT {
                        let v = rows[usize::from(won[f]) * features + f];
                        sum_grad[f] += g[f];
                        sum_grad_norm[f] += g[f] * (v - mean[f]) * inv_std[f];
                    }
                }
            }
        }
        if let Some(node) = x_node {
            let n = (batch * length) as f32;
            let mean_grad: Vec<f32> = sum_grad.iter().map(|s| s / n).collect();
            let mean_grad_norm: Vec<f32> = sum_grad_norm.iter().map(|s| s / n).collect();
            let scale: Vec<f32> = saved
                .gamma
                .iter()
                .zip(inv_std)
                .map(|(g, s)| g * s)
                .collect();
            let mut x_grad = vec![0.0f32; batch * length * features];
            // dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)).
            x_grad
                .par_chunks_mut(length * features)
                .zip(values.par_chunks(length * features))
                .enumerate()
                .for_each(|(b, (dx, x))| {
                    for (l, (dx_row, x_row)) in dx
                        .chunks_exact_mut(features)
                        .zip(x.chunks_exact(features))
                        .enumerate()
                    {
                        let (p, w) = (l / window, (l % window) as u8);
                        let pooled_at = (b * pooled + p) * features;
                        let in_window = p < pooled;
                        for f in 0..features {
                            let dy = if in_window && saved.winners[pooled_at + f] == w {
                                grad[pooled_at + f]
                            } else {
                                0.0
                            };
                            let x_hat = (x_row[f] - mean[f]) * inv_std[f];
                            dx_row[f] = scale[f] * (dy - mean_grad[f] - x_hat * mean_grad_norm[f]);
                        }
                    }
                });
            grads.register::<Flex>(node.id, flex_tensor(x_grad, [batch, length, features]));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex_tensor(sum_grad_norm, [features]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_tensor(sum_grad, [features]));
        }
    }
}
