//! The convolutional front end `lln` and `cnn-lstm` share (seeds-spec §2.4, §5.1):
//! two Conv1d + BatchNorm + ReLU + max-pool stages.

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// The sizes of a [`ConvFrontEnd`].
pub struct ConvFrontEndConfig {
    pub channels: usize,
    pub filters: [usize; 2],
    pub kernel_size: usize,
    /// Zero padding (left, right) of each convolution.
    pub padding: (usize, usize),
    pub pool: usize,
    pub batch_norm_eps: f64,
}

#[derive(Module, Debug)]
pub struct ConvFrontEnd {
    pub conv1: Conv1d,
    pub norm1: BatchNorm,
    pub conv2: Conv1d,
    pub norm2: BatchNorm,
    pub pool: MaxPool1d,
}

impl ConvFrontEnd {
    pub fn new(c: &ConvFrontEndConfig, device: &Device) -> Self {
        let conv = |c_in, c_out| {
            Conv1dConfig::new(c_in, c_out, c.kernel_size)
                .with_padding(PaddingConfig1d::Explicit(c.padding.0, c.padding.1))
                .init(device)
        };
        let norm = |n| {
            BatchNormConfig::new(n)
                .with_epsilon(c.batch_norm_eps)
                .init(device)
        };
        let [f1, f2] = c.filters;
        Self {
            conv1: conv(c.channels, f1),
            norm1: norm(f1),
            conv2: conv(f1, f2),
            norm2: norm(f2),
            pool: MaxPool1dConfig::new(c.pool).with_stride(c.pool).init(),
        }
    }

    /// `[B, C, L] -> [B, filters[1], L']`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self
            .pool
            .forward(relu(self.norm1.forward(self.conv1.forward(x))));
        self.pool
            .forward(relu(self.norm2.forward(self.conv2.forward(x))))
    }
}
