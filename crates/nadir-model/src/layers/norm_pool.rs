//! Training-mode batch norm + max-pool + ReLU over channels-last `[B, L, F]` as one
//! differentiable op on the Flex backend.
//!
//! burn's `batch_norm_train` takes channels-first input, so on `[B * L, F]` rows it transposes
//! twice forward and twice backward and makes about ten full-size temporaries; its max-pool
//! records i64 indices with a scalar loop per output. Here the statistics are one pass over
//! the rows and the normalised, pooled, rectified output a second one. The backward pass finds
//! each window's winner again by recomputing the normalised values (bit-identical, so the
//! comparison with the output is exact), which keeps every loop branch-free and vectorised,
//! then makes one pass for the channel sums and one for the input gradient.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, ExtensionType, Flex};
use burn::nn::BatchNorm;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{add_rows, contiguous, f32s, flex_tensor};
use super::vectorized_fn;

/// A training batch norm's output and its batch statistics (for the running averages; not
/// differentiable).
#[derive(ExtensionType)]
pub struct BatchNormOutput<B: Backend> {
    /// The normalised values, in the op's own layout (`[B, L / window, F]` pooled here).
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
    ) -> BatchNormOutput<Self>;
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

/// `norm` at inference as a per-channel affine map `(scale, shift)`, for folding into the
/// layer before it.
pub(crate) fn inference_affine(norm: &BatchNorm) -> (Tensor<1>, Tensor<1>) {
    let scale = norm.gamma.val() / (norm.running_var.value() + norm.epsilon).sqrt();
    let shift = norm.beta.val() - norm.running_mean.value() * scale.clone();
    (scale, shift)
}

/// Moves `norm`'s running mean and variance towards a training batch's, as burn's
/// `BatchNorm` does.
pub(crate) fn update_running_statistics(norm: &BatchNorm, mean: Tensor<1>, variance: Tensor<1>) {
    let momentum = norm.momentum;
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Tensor<1>| {
        let running = state.value_sync().to_device(&batch.device());
        let updated = running.mul_scalar(1.0 - momentum) + batch.detach().mul_scalar(momentum);
        state.update(updated.detach());
    };
    update(&norm.running_mean, mean);
    update(&norm.running_var, variance);
}

impl NormPoolBackend for Flex {
    fn batch_norm_pool_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        window: usize,
    ) -> BatchNormOutput<Self> {
        let out = forward(&x, &gamma, &beta, epsilon, window);
        BatchNormOutput {
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
    ) -> BatchNormOutput<Self> {
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
                    mean: out.mean,
                    inv_std: out.inv_std,
                    affine: out.affine,
                    output: out.output.clone(),
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
    length: usize,
    features: usize,
    window: usize,
}

impl Dims {
    fn pooled(&self) -> usize {
        self.length / self.window
    }
}

/// The batch norm as a per-channel affine map `y = x * scale + shift`.
pub(crate) struct Affine {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

impl Affine {
    /// A training batch norm's map from its batch statistics, and `1 / sqrt(variance + eps)`.
    pub fn from_batch(
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        variance: &[f32],
        epsilon: f64,
    ) -> (Self, Vec<f32>) {
        let inv_std: Vec<f32> = variance
            .iter()
            .map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt() as f32)
            .collect();
        let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
        let shift = beta
            .iter()
            .zip(mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        (Self { scale, shift }, inv_std)
    }
}

vectorized_fn! {
    /// One sample's `relu(max_pool(x * scale + shift))`: `rows` are its `pooled * window`
    /// rows, `out` its `pooled` output rows (zeroed).
    fn pool_sample(rows: &[f32], affine: &Affine, window: usize, out: &mut [f32]) {
        let features = affine.scale.len();
        let (scale, shift) = (&affine.scale[..], &affine.shift[..features]);
        for (out, rows) in out
            .chunks_exact_mut(features)
            .zip(rows.chunks_exact(window * features))
        {
            // Starting from 0 applies the ReLU; the strict `>` keeps the first maximum (the
            // backward pass relies on it).
            for row in rows.chunks_exact(features) {
                let row = &row[..features];
                for f in 0..features {
                    let y = row[f] * scale[f] + shift[f];
                    out[f] = if y > out[f] { y } else { out[f] };
                }
            }
        }
    }
}

struct ForwardOut {
    dims: Dims,
    output: FlexTensor,
    mean: Vec<f32>,
    variance: Vec<f32>,
    inv_std: Vec<f32>,
    affine: Affine,
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
    assert!(window > 0, "pool window 0");
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
    let mut mean = channel_sums(values, batch, features, None);
    mean.iter_mut().for_each(|m| *m /= rows);
    let mut variance = channel_sums(values, batch, features, Some(&mean));
    variance.iter_mut().for_each(|s| *s /= rows);
    let (affine, inv_std) = Affine::from_batch(gamma, beta, &mean, &variance, epsilon);
    let pooled = dims.pooled();
    let mut output = vec![0.0f32; batch * pooled * features];
    if pooled > 0 {
        output
            .par_chunks_mut(pooled * features)
            .enumerate()
            .for_each(|(b, out)| {
                let rows = &values[b * length * features..][..pooled * window * features];
                pool_sample(rows, &affine, window, out);
            });
    }
    ForwardOut {
        dims,
        output: flex_tensor(output, [batch, pooled, features]),
        mean,
        variance,
        inv_std,
        affine,
    }
}

struct SavedInner {
    dims: Dims,
    input: FlexTensor,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    /// Its `scale` is also the input gradient's `gamma * inv_std`.
    affine: Affine,
    output: FlexTensor,
}

/// Shared so that cloning the autodiff state does not copy the buffers.
#[derive(Clone)]
struct Saved(Arc<SavedInner>);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NormPool({:?})", self.0.dims)
    }
}

/// The gradient of one pooled output row reaching the rows of its window. The winner is the
/// first row whose normalised value equals the output: the forward pass's strict `>` kept the
/// first maximum, and recomputing `x * scale + shift` gives the same bits. An output of 0 is a
/// window the ReLU cut, where no row gets a gradient.
///
/// Free functions over slices (not methods on a struct of `Vec`s): slice arguments cannot
/// alias, so these loops vectorise.
mod window_gradient {
    use super::Affine;

    /// Starts a window: the output gradient still to hand out, per channel.
    #[inline(always)]
    pub fn start(output: &[f32], grad: &[f32], remaining: &mut [f32]) {
        let n = remaining.len();
        let (output, grad) = (&output[..n], &grad[..n]);
        for f in 0..n {
            remaining[f] = if output[f] > 0.0 { grad[f] } else { 0.0 };
        }
    }

    /// The gradient reaching `row` of the window, in `routed`; later rows get what remains.
    #[inline(always)]
    pub fn route(
        row: &[f32],
        output: &[f32],
        affine: &Affine,
        remaining: &mut [f32],
        routed: &mut [f32],
    ) {
        let n = remaining.len();
        let (row, output, routed) = (&row[..n], &output[..n], &mut routed[..n]);
        let (scale, shift) = (&affine.scale[..n], &affine.shift[..n]);
        for f in 0..n {
            let won = row[f] * scale[f] + shift[f] == output[f];
            routed[f] = if won { remaining[f] } else { 0.0 };
            // Exactly 0 once routed: a later row with the same value gets nothing.
            remaining[f] -= routed[f];
        }
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
        let output = contiguous(&saved.output);
        let output = f32s(&output);
        let (mean, inv_std) = (&saved.mean[..features], &saved.inv_std[..features]);
        let affine = &saved.affine;
        // Per channel: the sums of the normalised output's gradient and of it times the
        // centred input (times inv_std below).
        let (sum_grad, mut sum_grad_norm) =
            ordered_sample_sums(batch, features, |b, sum_grad, sum_grad_centred| {
                let at = b * pooled * features;
                window_sums(
                    &values[b * length * features..][..pooled * window * features],
                    &output[at..][..pooled * features],
                    &grad[at..][..pooled * features],
                    affine,
                    mean,
                    window,
                    sum_grad,
                    sum_grad_centred,
                );
            });
        for (s, i) in sum_grad_norm.iter_mut().zip(inv_std) {
            *s *= i;
        }
        if let Some(node) = x_node {
            // dx = scale * (dy - mean(dy) - x_hat * mean(dy * x_hat)), with scale = gamma *
            // inv_std and x_hat = (x - mean) * inv_std, is `scale * dy + offset + slope * x`
            // per channel.
            let n = (batch * length) as f32;
            let scale = &affine.scale[..features];
            let slope: Vec<f32> = (0..features)
                .map(|f| -scale[f] * inv_std[f] * sum_grad_norm[f] / n)
                .collect();
            let offset: Vec<f32> = (0..features)
                .map(|f| -scale[f] * sum_grad[f] / n - slope[f] * mean[f])
                .collect();
            let input_gradient = InputGradient { slope, offset };
            let mut x_grad = vec![0.0f32; batch * length * features];
            x_grad
                .par_chunks_mut(length * features)
                .zip(values.par_chunks(length * features))
                .enumerate()
                .for_each(|(b, (dx, rows))| {
                    let at = b * pooled * features;
                    sample_input_gradient(
                        rows,
                        &output[at..][..pooled * features],
                        &grad[at..][..pooled * features],
                        affine,
                        &input_gradient,
                        window,
                        dx,
                    );
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

vectorized_fn! {
    /// Adds one sample's terms to the per-channel sums of the routed gradient and of it times
    /// the centred input: `rows` are its `pooled * window` rows, `output` and `grad` its
    /// `pooled` output rows.
    #[allow(clippy::too_many_arguments)]
    fn window_sums(
        rows: &[f32],
        output: &[f32],
        grad: &[f32],
        affine: &Affine,
        mean: &[f32],
        window: usize,
        sum_grad: &mut [f32],
        sum_grad_centred: &mut [f32],
    ) {
        let features = mean.len();
        let sum_grad = &mut sum_grad[..features];
        let sum_grad_centred = &mut sum_grad_centred[..features];
        let mut remaining = vec![0.0f32; features];
        let mut routed = vec![0.0f32; features];
        for ((output, grad), rows) in output
            .chunks_exact(features)
            .zip(grad.chunks_exact(features))
            .zip(rows.chunks_exact(window * features))
        {
            window_gradient::start(output, grad, &mut remaining);
            for row in rows.chunks_exact(features) {
                let (row, routed) = (&row[..features], &mut routed[..features]);
                window_gradient::route(row, output, affine, &mut remaining, routed);
                for f in 0..features {
                    sum_grad[f] += routed[f];
                    sum_grad_centred[f] += routed[f] * (row[f] - mean[f]);
                }
            }
        }
    }
}

/// The input gradient per channel: `scale * dy + offset + slope * x`, with the batch norm's
/// `scale`.
struct InputGradient {
    slope: Vec<f32>,
    offset: Vec<f32>,
}

vectorized_fn! {
    /// One sample's input gradient `dx` (`[L, F]`) from its rows and its pooled output rows.
    fn sample_input_gradient(
        rows: &[f32],
        output: &[f32],
        grad: &[f32],
        affine: &Affine,
        coefficients: &InputGradient,
        window: usize,
        dx: &mut [f32],
    ) {
        let features = affine.scale.len();
        let InputGradient { slope, offset } = coefficients;
        let (scale, slope, offset) = (&affine.scale[..], &slope[..features], &offset[..features]);
        let pooled = output.len() / features;
        let mut remaining = vec![0.0f32; features];
        let mut routed = vec![0.0f32; features];
        for (l, (dx, row)) in dx
            .chunks_exact_mut(features)
            .zip(rows.chunks_exact(features))
            .enumerate()
        {
            let (dx, row) = (&mut dx[..features], &row[..features]);
            let routed = &mut routed[..features];
            let (p, w) = (l / window, l % window);
            if p < pooled {
                let output = &output[p * features..][..features];
                if w == 0 {
                    window_gradient::start(output, &grad[p * features..], &mut remaining);
                }
                window_gradient::route(row, output, affine, &mut remaining, routed);
            } else {
                // The trailing partial window: counted in the statistics only.
                routed.fill(0.0);
            }
            for f in 0..features {
                dx[f] = offset[f] + slope[f] * row[f] + scale[f] * routed[f];
            }
        }
    }
}

/// Samples per block of the parallel channel sums. Blocks are fixed and their partial sums
/// added in order, so the result does not depend on how rayon splits the work (seeded
/// training stays reproducible).
const SAMPLES_PER_BLOCK: usize = 8;

/// Two per-channel sums, each sample's terms added by `add_sample(sample, sums, sums)`.
fn ordered_sample_sums(
    batch: usize,
    features: usize,
    add_sample: impl Fn(usize, &mut [f32], &mut [f32]) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    let blocks: Vec<(Vec<f32>, Vec<f32>)> = (0..batch.div_ceil(SAMPLES_PER_BLOCK))
        .into_par_iter()
        .map(|block| {
            let (mut first, mut second) = (vec![0.0f32; features], vec![0.0f32; features]);
            let start = block * SAMPLES_PER_BLOCK;
            for b in start..batch.min(start + SAMPLES_PER_BLOCK) {
                add_sample(b, &mut first[..features], &mut second[..features]);
            }
            (first, second)
        })
        .collect();
    let (mut first, mut second) = (vec![0.0f32; features], vec![0.0f32; features]);
    for (a, b) in blocks {
        first.iter_mut().zip(a).for_each(|(t, v)| *t += v);
        second.iter_mut().zip(b).for_each(|(t, v)| *t += v);
    }
    (first, second)
}

/// Per-channel sums over `[batch, length, features]` values: of the values, or with
/// `centre`, of their squared deviations from it.
fn channel_sums(values: &[f32], batch: usize, features: usize, centre: Option<&[f32]>) -> Vec<f32> {
    let per_sample = values.len() / batch.max(1);
    let (sums, _) = ordered_sample_sums(batch, features, |b, sums, _| {
        let rows = &values[b * per_sample..][..per_sample];
        match centre {
            None => add_rows(rows, sums),
            Some(centre) => add_squared_deviations(rows, centre, sums),
        }
    });
    sums
}

vectorized_fn! {
    /// Adds the squared deviations from `centre` of rows of `sums.len()` values to `sums`.
    fn add_squared_deviations(rows: &[f32], centre: &[f32], sums: &mut [f32]) {
        let features = sums.len();
        let centre = &centre[..features];
        for row in rows.chunks_exact(features) {
            let row = &row[..features];
            for f in 0..features {
                let d = row[f] - centre[f];
                sums[f] += d * d;
            }
        }
    }
}
