//! Dense autoencoder (seeds-spec §3.1 step 5): F -> hidden... -> code (ReLU) -> hidden... -> F.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use crate::config::{AutoencoderConfig, DecoderOutput};

#[derive(Module, Debug)]
pub struct Autoencoder {
    pub encoder: Vec<Linear>,
    pub decoder: Vec<Linear>,
    pub sigmoid_output: bool,
}

impl Autoencoder {
    pub fn new(c: &AutoencoderConfig, features: usize, device: &Device) -> Self {
        let mut widths = vec![features];
        widths.extend(&c.hidden);
        widths.push(c.code_dim);
        let encoder = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        let decoder = widths
            .windows(2)
            .rev()
            .map(|w| LinearConfig::new(w[1], w[0]).init(device))
            .collect();
        Self {
            encoder,
            decoder,
            sigmoid_output: c.decoder_output == DecoderOutput::Sigmoid,
        }
    }

    /// `[B, F] -> [B, code]`.
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder
            .iter()
            .fold(x, |h, layer| relu(layer.forward(h)))
    }

    /// Reconstruction `[B, F] -> [B, F]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = self.encode(x);
        let last = self.decoder.len() - 1;
        for (i, layer) in self.decoder.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        if self.sigmoid_output {
            sigmoid(h)
        } else {
            h
        }
    }
}
