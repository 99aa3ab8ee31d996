//! tsai's separable convolution: depthwise conv (groups = channels, no bias) then pointwise 1x1 (no bias).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::PaddingConfig1d;
use burn::tensor::{Device, Tensor};

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

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [c_out, c_in, _] = self.pointwise.weight.dims();
        let weight = self.pointwise.weight.val().reshape([1, c_out, c_in]);
        weight.matmul(self.depthwise.forward(x))
    }
}
