//! The convolutional front end `lln` and `cnn-lstm` share (seeds-spec §2.4, §5.1):
//! two Conv1d + BatchNorm + ReLU + max-pool stages.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::conv_rows::{conv1d_rows, conv1d_rows_by, RowsGeometry};
use super::derived::{Derived, Sources};
use super::flex::{is_flex, is_flex_autodiff};
use super::norm_pool::{batch_norm_pool_relu, inference_affine, update_running_statistics};
use super::{vectorized_fn, F32Values};

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
    /// Each stage's inference convolution (see [`FoldedConv`]).
    #[module(skip)]
    pub(crate) folded: [Derived<FoldedConv>; 2],
}

/// A stage's convolution with its inference batch norm folded in, the weight as the matrix the
/// column matrix is multiplied by.
pub(crate) struct FoldedConv {
    /// `[k * C, F]`: row `j * C + c`, column `f` is `w[f, c, j]` times the norm's scale.
    weight: Tensor<2>,
    bias: Tensor<1>,
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
            folded: Default::default(),
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

    /// `[B, C, L] -> [B, L', filters[1]]`: the same function as [`forward`](Self::forward), but
    /// channels-last (the layout an LSTM reads, so no transpose follows) and each convolution is
    /// one GEMM over every position of the batch. burn-flex's conv1d runs one small GEMM per
    /// sample, and its weight gradient is a convolution whose GEMMs are `k` columns wide, which
    /// made the front end the slowest part of `cnn-lstm` training.
    pub fn forward_channels_last(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.stage(x.swap_dims(1, 2), &self.conv1, &self.norm1, &self.folded[0]);
        self.stage(x, &self.conv2, &self.norm2, &self.folded[1])
    }

    /// Conv + BatchNorm + ReLU + max-pool, channels-last `[B, L, C] -> [B, L', F]`.
    fn stage(
        &self,
        x: Tensor<3>,
        conv: &Conv1d,
        norm: &BatchNorm,
        folded: &Derived<FoldedConv>,
    ) -> Tensor<3> {
        let (Some(geometry), Some(window)) = (
            RowsGeometry::of(conv).filter(|g| g.dilation == 1),
            pool_window(&self.pool),
        ) else {
            // Shapes the GEMM form does not cover: burn's channels-first layers.
            let y = conv.forward(x.swap_dims(1, 2));
            return self.pool.forward(relu(norm.forward(y))).swap_dims(1, 2);
        };
        let padding = (geometry.left, geometry.right);
        let [batch, length, channels] = x.dims();
        let k = conv.kernel_size;
        // Never short: `ModelConfig::check` refuses windows the convolutions cannot cover.
        let out_len = (length + padding.0 + padding.1 + 1)
            .checked_sub(k)
            .expect("conv1d: input shorter than the kernel");
        let device = x.device();
        if !x.is_autodiff() {
            // Inference: batch norm is a per-channel affine map, folded into the convolution.
            let folded = fold_norm(conv, norm, folded);
            let y = if is_flex(&device) {
                let weight = F32Values::of(folded.weight.clone());
                let bias = F32Values::of(folded.bias.clone());
                conv1d_rows_by(x, weight.as_slice(), bias.as_slice(), k, geometry)
            } else {
                let columns = im2col(x, k, padding).reshape([batch * out_len, k * channels]);
                (columns.matmul(folded.weight.clone()) + folded.bias.clone().unsqueeze_dim::<2>(0))
                    .reshape([batch, out_len, folded.bias.dims()[0]])
            };
            return max_pool_relu(y, window);
        }
        let filters = conv.weight.dims()[0];
        let y = if is_flex(&device) {
            let bias = conv
                .bias
                .as_ref()
                .map(|b| b.val())
                .unwrap_or_else(|| Tensor::zeros([filters], &device));
            conv1d_rows(x, conv.weight.val(), bias, geometry)
        } else {
            let columns = im2col(x, k, padding).reshape([batch * out_len, k * channels]);
            let mut y = columns.matmul(column_weight(conv.weight.val()));
            if let Some(bias) = &conv.bias {
                y = y + bias.val().unsqueeze_dim::<2>(0);
            }
            y.reshape([batch, out_len, filters])
        };
        if is_flex_autodiff(&device) && norm.training.is_enabled() {
            return batch_norm_pool_relu_train(y, norm, window);
        }
        // `[B * L', F]` is `[N, C]` to batch norm: statistics over batch and positions.
        let y = norm.forward(y.reshape([batch * out_len, filters]));
        // Pool before ReLU: max and ReLU commute, and this halves the ReLU's work.
        relu(max_pool_steps(y.reshape([batch, out_len, filters]), window))
    }
}

/// `conv` with `norm`'s inference affine map folded in, made once per set of parameters.
fn fold_norm(conv: &Conv1d, norm: &BatchNorm, folded: &Derived<FoldedConv>) -> Arc<FoldedConv> {
    let mut sources = Sources::new()
        .with(conv.weight.val())
        .with(norm.gamma.val())
        .with(norm.beta.val())
        .with(norm.running_mean.value())
        .with(norm.running_var.value());
    if let Some(bias) = &conv.bias {
        sources = sources.with(bias.val());
    }
    folded.get(sources, || {
        let (scale, shift) = inference_affine(norm);
        let weight = column_weight(conv.weight.val()) * scale.clone().unsqueeze_dim::<2>(0);
        let bias = match &conv.bias {
            Some(b) => b.val() * scale + shift,
            None => shift,
        };
        FoldedConv { weight, bias }
    })
}

/// burn's `[F, C, k]` conv weight as the `[k * C, F]` matrix `im2col`'s columns are multiplied
/// by: row `j * C + c`, column f holds `w[f, c, j]`.
fn column_weight(weight: Tensor<3>) -> Tensor<2> {
    let [filters, channels, k] = weight.dims();
    weight.permute([2, 1, 0]).reshape([k * channels, filters])
}

/// Training batch norm, max-pool and ReLU as one op (see `norm_pool`), updating the running
/// statistics as burn's `BatchNorm` does.
fn batch_norm_pool_relu_train(y: Tensor<3>, norm: &BatchNorm, window: usize) -> Tensor<3> {
    let (out, mean, variance) =
        batch_norm_pool_relu(y, norm.gamma.val(), norm.beta.val(), norm.epsilon, window);
    update_running_statistics(norm, mean, variance);
    out
}

/// The window of a non-overlapping, unpadded max-pool (`kernel == stride`), else `None`.
fn pool_window(pool: &MaxPool1d) -> Option<usize> {
    let unpadded = matches!(
        pool.padding,
        PaddingConfig1d::Valid | PaddingConfig1d::Explicit(0, 0)
    );
    (unpadded && pool.stride == pool.kernel_size && pool.dilation == 1 && !pool.ceil_mode)
        .then_some(pool.kernel_size)
}

/// `[B, L, C] -> [B, L', k * C]` with `L' = L + left + right - k + 1`: position `t` holds the
/// zero-padded input at `t .. t + k`, tap-major.
fn im2col(x: Tensor<3>, k: usize, (left, right): (usize, usize)) -> Tensor<3> {
    let [batch, length, channels] = x.dims();
    let device = x.device();
    let padded = if left + right == 0 {
        x
    } else {
        let mut parts = Vec::with_capacity(3);
        if left > 0 {
            parts.push(Tensor::zeros([batch, left, channels], &device));
        }
        parts.push(x);
        if right > 0 {
            parts.push(Tensor::zeros([batch, right, channels], &device));
        }
        Tensor::cat(parts, 1)
    };
    let out_len = length + left + right + 1 - k;
    if k == 1 {
        return padded;
    }
    let taps = (0..k)
        .map(|j| padded.clone().narrow(1, j, out_len))
        .collect();
    Tensor::cat(taps, 2)
}

/// Max-pool along the steps of channels-last `[B, L, C]` with window = stride = `window`
/// (a trailing partial window is dropped, as MaxPool1d does): burn's 2-D max-pool over the
/// `[B, 1, L, C]` view with a `window x 1` kernel, so no transpose is needed.
fn max_pool_steps(x: Tensor<3>, window: usize) -> Tensor<3> {
    let [batch, length, channels] = x.dims();
    let options = MaxPoolOptions::new([window, 1]).with_stride([window, 1]);
    max_pool2d(x.reshape([batch, 1, length, channels]), options).reshape([
        batch,
        length / window,
        channels,
    ])
}

/// Inference `relu(max_pool_steps(x))` in one pass over the rows. Hand-written: burn's max-pool
/// is a scalar loop per output that also records i64 indices, which inference does not need.
fn max_pool_relu(x: Tensor<3>, window: usize) -> Tensor<3> {
    let [batch, length, channels] = x.dims();
    let device = x.device();
    let pooled = length / window;
    let data = F32Values::of(x);
    let values = data.as_slice();
    let mut out = vec![0.0f32; batch * pooled * channels];
    for (rows, out) in values
        .chunks_exact(length * channels)
        .zip(out.chunks_exact_mut(pooled * channels))
    {
        pool_relu_sample(&rows[..pooled * window * channels], window, channels, out);
    }
    Tensor::from_data(TensorData::new(out, [batch, pooled, channels]), &device)
}

vectorized_fn! {
    /// One sample's `relu(max_pool(rows))`: `rows` are its `pooled * window` rows, `out` its
    /// `pooled` output rows (zeroed; starting from 0 applies the ReLU).
    fn pool_relu_sample(rows: &[f32], window: usize, channels: usize, out: &mut [f32]) {
        for (out, windows) in out
            .chunks_exact_mut(channels)
            .zip(rows.chunks_exact(window * channels))
        {
            for row in windows.chunks_exact(channels) {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = o.max(v);
                }
            }
        }
    }
}
