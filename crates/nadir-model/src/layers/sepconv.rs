//! tsai's separable convolution: depthwise conv (groups = channels, no bias) then pointwise 1x1 (no bias).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{BatchNorm, PaddingConfig1d};
use burn::tensor::{Device, Tensor};

use super::batch_norm_channels_train;
use super::flex::is_flex;
use super::norm_pool::inference_affine;

#[derive(Module, Debug)]
pub struct SeparableConv1d {
    pub depthwise: Conv1d,
    pub pointwise: Conv1d,
}

impl SeparableConv1d {
    /// Odd `kernel` with padding `kernel / 2`, so the length is kept.
    pub fn new(channels_in: usize, channels_out: usize, kernel: usize, device: &Device) -> Self {
        let pad = kernel / 2;
        Self {
            depthwise: Conv1dConfig::new(channels_in, channels_in, kernel)
                .with_groups(channels_in)
                .with_padding(PaddingConfig1d::Explicit(pad, pad))
                .with_bias(false)
                .init(device),
            pointwise: Conv1dConfig::new(channels_in, channels_out, 1)
                .with_bias(false)
                .init(device),
        }
    }

    /// The convolution, then batch norm; at inference the norm is folded into the pointwise
    /// weight (see [`pointwise_norm`]).
    pub fn forward_norm(&self, x: Tensor<3>, norm: &BatchNorm) -> Tensor<3> {
        pointwise_norm(self.depthwise.forward(x), self.pointwise.weight.val(), norm)
    }
}

/// A 1x1 convolution without bias (`weight [F, C, 1]`) over `x [B, C, L]` as one matmul: burn's
/// Conv1d runs it through im2col and layout copies (LDPI pretraining 102 -> 131 samples/s).
pub(crate) fn pointwise(x: Tensor<3>, weight: Tensor<3>) -> Tensor<3> {
    let [filters, channels, _] = weight.dims();
    weight.reshape([1, filters, channels]).matmul(x)
}

/// [`pointwise`] then batch norm. At inference the norm is a per-channel affine map, folded
/// into the weight and a bias: one pass over the output instead of burn's four.
pub(crate) fn pointwise_norm(x: Tensor<3>, weight: Tensor<3>, norm: &BatchNorm) -> Tensor<3> {
    if x.is_autodiff() {
        let y = pointwise(x, weight);
        if is_flex(&y.device()) && norm.training.is_enabled() {
            return batch_norm_channels_train(y, norm);
        }
        return norm.forward(y);
    }
    let [filters, _, _] = weight.dims();
    let (scale, shift) = inference_affine(norm);
    pointwise(x, weight * scale.reshape([filters, 1, 1])) + shift.reshape([1, filters, 1])
}
