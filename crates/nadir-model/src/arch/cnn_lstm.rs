//! CNN-LSTM, seeds-spec §5.1: Conv1d x2 (+ BN, ReLU, max-pool) -> dropout -> LSTM -> Linear on the last step.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use crate::config::CnnLstmConfig;
use crate::layers::{ConvFrontEnd, ConvFrontEndConfig, ForwardCtx, Lstm, LstmBias};

#[derive(Module, Debug)]
pub struct CnnLstm {
    pub front: ConvFrontEnd,
    pub lstm: Vec<Lstm>,
    pub classifier: Linear,
    pub dropout: f64,
}

impl CnnLstm {
    pub fn new(c: &CnnLstmConfig, channels: usize, n_outputs: usize, device: &Device) -> Self {
        let front = ConvFrontEndConfig {
            channels,
            filters: [c.conv1_channels, c.conv2_channels],
            kernel_size: c.kernel_size,
            padding: (c.padding, c.padding),
            pool: c.pool,
            batch_norm_eps: 1e-5, // PyTorch's default
        };
        let lstm = (0..c.lstm_layers)
            .map(|layer| {
                let d_input = if layer == 0 {
                    c.conv2_channels
                } else {
                    c.lstm_hidden
                };
                Lstm::new(d_input, c.lstm_hidden, LstmBias::Torch, false, device)
            })
            .collect();
        Self {
            front: ConvFrontEnd::new(&front, device),
            lstm,
            classifier: LinearConfig::new(c.lstm_hidden, n_outputs).init(device),
            dropout: c.dropout,
        }
    }

    /// `[B, C, L] -> [B, outputs]`.
    pub fn forward(&self, x: Tensor<3>, ctx: &mut ForwardCtx) -> Tensor<2> {
        // Dropout draws its mask over the channels-first view, the order it always had, so a
        // seed gives the same masks.
        let features = self.front.forward_channels_last(x).swap_dims(1, 2);
        let mut sequence = ctx.dropout(features, self.dropout).swap_dims(1, 2);
        let layers = self.lstm.len();
        for layer in &self.lstm[..layers - 1] {
            sequence = ctx.dropout(layer.forward_sequence(sequence), self.dropout);
        }
        let last = self.lstm[layers - 1].forward_last(sequence);
        self.classifier.forward(last)
    }
}
