//! LDPI's rectifiers (leaky ReLU, PReLU with one slope, ELU) as one differentiable op on the
//! Flex backend: `x` where it is positive, the negative side's function elsewhere.
//!
//! burn builds each from a comparison, a product and a `mask_where`, and differentiates the
//! `mask_where` with two more; Flex runs `mask_where` as a branchy scalar loop on one core.
//! On LDPI's `[128, 256, 240]` maps those nine passes per training step were a fifth of SimCLR
//! pretraining (perf). Here the forward pass is one vectorised pass and the backward pass
//! another, the rows split across the rayon threads.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::activation::{elu, leaky_relu, prelu};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{contiguous, f32s, flex_tensor, is_flex};
use super::lstm::exp;
use super::{lane_sum, vectorized_fn};

/// What a rectifier does to values at or below zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NegativeSide {
    /// `alpha * x` (leaky ReLU with slope `alpha`; PReLU when `alpha` is trained).
    Linear,
    /// `alpha * (exp(x) - 1)` (ELU).
    Exponential,
}

#[backend_extension(Autodiff, Flex)]
pub(crate) trait RectifierBackend: Backend {
    /// `x` where `x > 0`, else the negative side with `alpha` (a one-value tensor).
    fn rectify(
        x: FloatTensor<Self>,
        alpha: FloatTensor<Self>,
        side: NegativeSide,
    ) -> FloatTensor<Self>;
}

/// Values per parallel chunk (one LDPI map has 61 k per sample).
const CHUNK: usize = 64 * 1024;

/// Leaky ReLU with a fixed slope.
pub(crate) fn leaky_rectifier<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    if !is_flex(&x.device()) {
        return leaky_relu(x, slope);
    }
    let alpha = Tensor::from_floats([slope as f32], &x.device());
    rectify(x, alpha, NegativeSide::Linear)
}

/// PReLU with one trained slope (`alpha` of shape `[1]`).
pub(crate) fn prelu_rectifier<const D: usize>(x: Tensor<D>, alpha: Tensor<1>) -> Tensor<D> {
    if !is_flex(&x.device()) {
        return prelu(x, alpha);
    }
    rectify(x, alpha, NegativeSide::Linear)
}

/// ELU with a fixed `alpha`.
pub(crate) fn elu_rectifier<const D: usize>(x: Tensor<D>, alpha: f64) -> Tensor<D> {
    if !is_flex(&x.device()) {
        return elu(x, alpha);
    }
    let alpha = Tensor::from_floats([alpha as f32], &x.device());
    rectify(x, alpha, NegativeSide::Exponential)
}

fn rectify<const D: usize>(x: Tensor<D>, alpha: Tensor<1>, side: NegativeSide) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as RectifierBackend>::rectify(
        x.into_dispatch(),
        alpha.into_dispatch(),
        side,
    ))
}

impl RectifierBackend for Flex {
    fn rectify(x: FlexTensor, alpha: FlexTensor, side: NegativeSide) -> FlexTensor {
        forward(&contiguous(&x), &alpha, side)
    }
}

impl<C: CheckpointStrategy> RectifierBackend for Autodiff<Flex, C> {
    fn rectify(
        x: FloatTensor<Self>,
        alpha: FloatTensor<Self>,
        side: NegativeSide,
    ) -> FloatTensor<Self> {
        let input = contiguous(x.primitive());
        let output = forward(&input, alpha.primitive(), side);
        match RectifierBackward
            .prepare::<C>([x.node(), alpha.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = Saved {
                    input,
                    alpha: alpha_of(alpha.primitive()),
                    side,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }
}

fn alpha_of(alpha: &FlexTensor) -> f32 {
    let alpha = contiguous(alpha);
    let values = f32s(&alpha);
    assert_eq!(values.len(), 1, "rectify: alpha holds one value");
    values[0]
}

fn forward(x: &FlexTensor, alpha: &FlexTensor, side: NegativeSide) -> FlexTensor {
    let alpha = alpha_of(alpha);
    let values = f32s(x);
    let mut out = vec![0.0f32; values.len()];
    out.par_chunks_mut(CHUNK)
        .zip(values.par_chunks(CHUNK))
        .for_each(|(out, x)| match side {
            NegativeSide::Linear => linear_forward(x, alpha, out),
            NegativeSide::Exponential => exponential_forward(x, alpha, out),
        });
    FlexTensor::from_data(burn::tensor::TensorData::new(
        out,
        x.layout().shape().to_vec(),
    ))
}

#[derive(Debug, Clone)]
struct Saved {
    input: FlexTensor,
    alpha: f32,
    side: NegativeSide,
}

#[derive(Debug)]
struct RectifierBackward;

impl Backward<Flex, 2> for RectifierBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, alpha_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let grad = contiguous(&grad);
        let Saved { input, alpha, side } = &ops.state;
        let (x, grad) = (f32s(input), f32s(&grad));
        let mut d_x = vec![0.0f32; x.len()];
        let with_alpha = alpha_node.is_some();
        // Each chunk's share of d alpha = sum over x <= 0 of grad * d(negative side)/d alpha.
        let d_alpha: f32 = d_x
            .par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
            .map(|(d_x, (x, grad))| match side {
                NegativeSide::Linear => linear_backward(x, grad, *alpha, d_x, with_alpha),
                NegativeSide::Exponential => exponential_backward(x, grad, *alpha, d_x, with_alpha),
            })
            .sum();
        if let Some(node) = x_node {
            let shape = input.layout().shape().to_vec();
            grads.register::<Flex>(
                node.id,
                FlexTensor::from_data(burn::tensor::TensorData::new(d_x, shape)),
            );
        }
        if let Some(node) = alpha_node {
            grads.register::<Flex>(node.id, flex_tensor(vec![d_alpha], [1]));
        }
    }
}

vectorized_fn! {
    fn linear_forward(x: &[f32], alpha: f32, out: &mut [f32]) {
        for (out, &x) in out.iter_mut().zip(x) {
            *out = if x > 0.0 { x } else { alpha * x };
        }
    }
}

vectorized_fn! {
    fn exponential_forward(x: &[f32], alpha: f32, out: &mut [f32]) {
        for (out, &x) in out.iter_mut().zip(x) {
            *out = if x > 0.0 { x } else { alpha * (exp(x.min(0.0)) - 1.0) };
        }
    }
}

vectorized_fn! {
    /// Writes d x; returns this chunk's d alpha when `with_alpha` (0 otherwise).
    fn linear_backward(x: &[f32], grad: &[f32], alpha: f32, d_x: &mut [f32], with_alpha: bool) -> f32 {
        for ((d_x, &x), &g) in d_x.iter_mut().zip(x).zip(grad) {
            *d_x = if x > 0.0 { g } else { alpha * g };
        }
        if !with_alpha {
            return 0.0;
        }
        lane_sum(x, grad, |x, g| if x > 0.0 { 0.0 } else { g * x })
    }
}

vectorized_fn! {
    /// Writes d x; returns this chunk's d alpha when `with_alpha` (0 otherwise).
    fn exponential_backward(x: &[f32], grad: &[f32], alpha: f32, d_x: &mut [f32], with_alpha: bool) -> f32 {
        for ((d_x, &x), &g) in d_x.iter_mut().zip(x).zip(grad) {
            *d_x = if x > 0.0 { g } else { alpha * exp(x.min(0.0)) * g };
        }
        if !with_alpha {
            return 0.0;
        }
        lane_sum(x, grad, |x, g| if x > 0.0 { 0.0 } else { g * (exp(x.min(0.0)) - 1.0) })
    }
}
