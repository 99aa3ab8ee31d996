//! Stride-1 Conv1d over channels-last `[B, L, C]` as one op on the Flex backend: the column
//! matrix (im2col) and one GEMM forward; two GEMMs and `k` shifted adds backward.
//!
//! In burn tensor ops the im2col is a `cat` of `k` shifted `narrow`s of a zero-padded copy,
//! and its backward pass a chain of slice assignments and strided copies (a tenth of `cnn-lstm`
//! training time). Here the column matrix is written once and kept for the weight gradient.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::nn::conv::Conv1d;
use burn::nn::PaddingConfig1d;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::flex::{add_rows, contiguous, f32s, flex_tensor, gemm, Matrix, Threads};
use super::{vectorized_fn, F32Values};

#[backend_extension(Autodiff, Flex)]
pub trait ConvRowsBackend: Backend {
    /// `x [B, L, C]`, `weight [F, C, k]` (burn's Conv1d layout), `bias [F]` ->
    /// `[B, L + left + right - (k - 1) * dilation, F]`, zero padding `left` and `right`.
    fn conv1d_rows(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        left: usize,
        right: usize,
        dilation: usize,
    ) -> FloatTensor<Self>;
}

/// Zero padding and dilation of a stride-1 convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowsGeometry {
    pub left: usize,
    pub right: usize,
    pub dilation: usize,
}

impl RowsGeometry {
    /// `conv`'s geometry when it is a stride-1, ungrouped convolution with explicit padding (the
    /// cases [`conv1d_rows`] covers), else `None`.
    pub fn of(conv: &Conv1d) -> Option<Self> {
        if conv.stride != 1 || conv.groups != 1 {
            return None;
        }
        let (left, right) = match conv.padding {
            PaddingConfig1d::Explicit(left, right) => (left, right),
            PaddingConfig1d::Valid => (0, 0),
            PaddingConfig1d::Same => return None,
        };
        Some(Self {
            left,
            right,
            dilation: conv.dilation,
        })
    }
}

/// [`ConvRowsBackend::conv1d_rows`] on tensors of the Flex backend (with or without autodiff).
pub(crate) fn conv1d_rows(
    x: Tensor<3>,
    weight: Tensor<3>,
    bias: Tensor<1>,
    geometry: RowsGeometry,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as ConvRowsBackend>::conv1d_rows(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        geometry.left,
        geometry.right,
        geometry.dilation,
    ))
}

impl ConvRowsBackend for Flex {
    fn conv1d_rows(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        left: usize,
        right: usize,
        dilation: usize,
    ) -> FlexTensor {
        let geometry = RowsGeometry {
            left,
            right,
            dilation,
        };
        forward(&x, &weight, &bias, geometry).output
    }
}

impl<C: CheckpointStrategy> ConvRowsBackend for Autodiff<Flex, C> {
    fn conv1d_rows(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        left: usize,
        right: usize,
        dilation: usize,
    ) -> FloatTensor<Self> {
        let geometry = RowsGeometry {
            left,
            right,
            dilation,
        };
        let out = forward(
            x.primitive(),
            weight.primitive(),
            bias.primitive(),
            geometry,
        );
        match ConvRowsBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = Saved(Arc::new(SavedInner {
                    dims: out.dims,
                    columns: out.columns,
                    weight: out.weight,
                }));
                prep.finish(state, out.output)
            }
            OpsKind::UnTracked(prep) => prep.finish(out.output),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    length: usize,
    channels: usize,
    filters: usize,
    kernel: usize,
    left: usize,
    dilation: usize,
    out_len: usize,
}

impl Dims {
    /// The sizes of a convolution of `[B, L, C]` by `F` filters of width `k`.
    fn new(
        [batch, length, channels]: [usize; 3],
        [filters, kernel]: [usize; 2],
        geometry: RowsGeometry,
    ) -> Self {
        let RowsGeometry {
            left,
            right,
            dilation,
        } = geometry;
        assert!(dilation > 0, "conv1d_rows: dilation 0");
        // Never short: `ModelConfig::check` refuses windows the convolutions cannot cover.
        let out_len = (length + left + right)
            .checked_sub((kernel - 1) * dilation)
            .expect("conv1d_rows: input shorter than the kernel");
        Self {
            batch,
            length,
            channels,
            filters,
            kernel,
            left,
            dilation,
            out_len,
        }
    }

    /// Columns of the column matrix: `kernel` taps of `channels` values.
    fn width(&self) -> usize {
        self.kernel * self.channels
    }
}

struct ForwardOut {
    dims: Dims,
    output: FlexTensor,
    /// `[B * L', k * C]`, tap-major: column `j * C + c` of row `(b, t)` is
    /// `x[b, t + j * dilation - left, c]`, or 0 in the padding.
    columns: Vec<f32>,
    /// Contiguous `[F, C, k]`.
    weight: FlexTensor,
}

fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: &FlexTensor,
    geometry: RowsGeometry,
) -> ForwardOut {
    let shape = x.layout().shape();
    let [filters, channels, kernel] = [0, 1, 2].map(|i| weight.layout().shape()[i]);
    let (batch, length) = (shape[0], shape[1]);
    assert_eq!(
        shape[2], channels,
        "conv1d_rows: x is [B, L, C], weight [F, C, k]"
    );
    let dims = Dims::new([batch, length, channels], [filters, kernel], geometry);
    let x = contiguous(x);
    let columns = im2col(f32s(&x), dims);
    // Every row starts as the bias; the GEMMs add the columns times the weight.
    let weight = contiguous(weight);
    let bias = contiguous(bias);
    let bias = f32s(&bias);
    let rows = batch * dims.out_len;
    let output = if rows >= REORDER_MIN_ROWS {
        // One GEMM over all taps, with the weight reordered into the columns' order.
        let taps = swap_inner_dims(f32s(&weight), [filters, channels, kernel]);
        multiply_columns(
            &columns,
            Matrix::rows(&taps, dims.width()).transposed(),
            bias,
            dims,
        )
    } else {
        let mut output = bias.repeat(rows);
        for j in 0..kernel {
            gemm(
                &mut output,
                filters,
                tap_columns(&columns, dims, j),
                tap_weights(f32s(&weight), dims, j),
                [rows, channels, filters],
                true,
                Threads::All,
            );
        }
        output
    };
    ForwardOut {
        dims,
        output: flex_tensor(output, [batch, dims.out_len, filters]),
        columns,
        weight,
    }
}

/// The column matrix `[B * L', k * C]` of channels-last `x` (see [`ForwardOut::columns`]).
fn im2col(x: &[f32], dims: Dims) -> Vec<f32> {
    let Dims {
        batch,
        length,
        channels,
        left,
        dilation,
        out_len,
        ..
    } = dims;
    let width = dims.width();
    let mut columns = vec![0.0f32; batch * out_len * width];
    if out_len > 0 {
        columns
            .par_chunks_mut(out_len * width)
            .zip(x.par_chunks(length * channels))
            .for_each(|(columns, x)| {
                for (t, row) in columns.chunks_exact_mut(width).enumerate() {
                    for (j, tap) in row.chunks_exact_mut(channels).enumerate() {
                        // Input step t + j * dilation - left; the padding stays zero.
                        let step = (t + j * dilation).checked_sub(left);
                        if let Some(s) = step.filter(|&s| s < length) {
                            tap.copy_from_slice(&x[s * channels..][..channels]);
                        }
                    }
                }
            });
    }
    columns
}

/// An inference convolution whose weight is already the matrix the column matrix is multiplied
/// by: `weight` is `[k * C, F]` (row `j * C + c` holds `w[., c, j]`), `bias` `[F]`; `x` is
/// `[B, L, C]`, any backend's values. One GEMM whatever the batch; gemm reads this layout
/// without packing it first (packing burn's `[F, k * C]` order was a tenth of a one-sample
/// CNN-LSTM call).
pub(crate) fn conv1d_rows_by(
    x: Tensor<3>,
    weight: &[f32],
    bias: &[f32],
    kernel: usize,
    geometry: RowsGeometry,
) -> Tensor<3> {
    let [batch, length, channels] = x.dims();
    let device = x.device();
    let filters = bias.len();
    assert_eq!(
        weight.len(),
        kernel * channels * filters,
        "conv1d_rows_by: the weight is [k * C, F]"
    );
    let dims = Dims::new([batch, length, channels], [filters, kernel], geometry);
    let columns = im2col(F32Values::of(x).as_slice(), dims);
    let output = multiply_columns(&columns, Matrix::rows(weight, filters), bias, dims);
    Tensor::from_data(
        TensorData::new(output, [batch, dims.out_len, filters]),
        &device,
    )
}

/// `columns · weight + bias` with `weight` `[k * C, F]`: `[B * L', F]`, every row starting as
/// the bias.
fn multiply_columns(columns: &[f32], weight: Matrix<'_>, bias: &[f32], dims: Dims) -> Vec<f32> {
    let (rows, width) = (dims.batch * dims.out_len, dims.width());
    let mut output = bias.repeat(rows);
    gemm(
        &mut output,
        dims.filters,
        Matrix::rows(columns, width),
        weight,
        [rows, width, dims.filters],
        true,
        Threads::All,
    );
    output
}

/// From this many output rows the forward pass reorders the weight into the columns' order and
/// makes one GEMM; below it, one GEMM per tap reads the weight through strides (the conv front
/// end's inference keeps its weight reordered, see `conv1d_rows_by`). The reorder
/// costs the same whatever the batch: for a `[256, 128, 3]` weight it was 13-18 % of a
/// one-sample CNN-LSTM call (128 rows; per tap: batch 1 ~3.4 k -> ~4.2 k samples/s), while at
/// batch 1024 the per-tap GEMMs (three passes over the output) were ~5 % slower (perf, bench).
const REORDER_MIN_ROWS: usize = 1024;

/// Tap `j`'s block of the column matrix: `[B * L', C]`.
fn tap_columns(columns: &[f32], dims: Dims, j: usize) -> Matrix<'_> {
    Matrix::rows(&columns[j * dims.channels..], dims.width())
}

/// Tap `j` of burn's `[F, C, k]` weight as a `[C, F]` matrix: element `(c, f)` is
/// `weight[f, c, j]`.
fn tap_weights(weight: &[f32], dims: Dims, j: usize) -> Matrix<'_> {
    Matrix {
        values: &weight[j..],
        row_stride: dims.kernel,
        col_stride: dims.channels * dims.kernel,
    }
}

struct SavedInner {
    dims: Dims,
    columns: Vec<f32>,
    /// Contiguous `[F, C, k]`.
    weight: FlexTensor,
}

/// Shared so that cloning the autodiff state does not copy the buffers.
#[derive(Clone)]
struct Saved(Arc<SavedInner>);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conv1dRows({:?})", self.0.dims)
    }
}

#[derive(Debug)]
struct ConvRowsBackward;

impl Backward<Flex, 3> for ConvRowsBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let grad = contiguous(&grad);
        let grad = f32s(&grad);
        let saved = &ops.state.0;
        let dims = saved.dims;
        let Dims {
            batch,
            length,
            channels,
            filters,
            kernel,
            out_len,
            ..
        } = dims;
        let (rows, width) = (batch * out_len, dims.width());
        let grad_rows = Matrix::rows(grad, filters);
        if let Some(node) = x_node {
            // d columns = grad · each tap's weights, then each tap's block added back at its
            // input step. One GEMM per tap at every size: no weight reorder, and training ran
            // the same either way (CNN-LSTM 2.7-2.9 k samples/s, `bench_models`).
            let mut d_columns = vec![0.0f32; rows * width];
            let weight = f32s(&saved.weight);
            for j in 0..kernel {
                gemm(
                    &mut d_columns[j * channels..],
                    width,
                    grad_rows,
                    tap_weights(weight, dims, j).transposed(),
                    [rows, filters, channels],
                    false,
                    Threads::All,
                );
            }
            let mut d_x = vec![0.0f32; batch * length * channels];
            if out_len > 0 {
                d_x.par_chunks_mut(length * channels)
                    .zip(d_columns.par_chunks(out_len * width))
                    .for_each(|(d_x, d_columns)| col2im(d_x, d_columns, dims));
            }
            grads.register::<Flex>(node.id, flex_tensor(d_x, [batch, length, channels]));
        }
        if let Some(node) = weight_node {
            // d taps = grad^T · columns, then back to burn's [F, C, k].
            let mut d_taps = vec![0.0f32; filters * width];
            gemm(
                &mut d_taps,
                width,
                grad_rows.transposed(),
                Matrix::rows(&saved.columns, width),
                [filters, rows, width],
                false,
                Threads::All,
            );
            let d_weight = swap_inner_dims(&d_taps, [filters, kernel, channels]);
            grads.register::<Flex>(node.id, flex_tensor(d_weight, [filters, channels, kernel]));
        }
        if let Some(node) = bias_node {
            let mut d_bias = vec![0.0f32; filters];
            add_rows(grad, &mut d_bias);
            grads.register::<Flex>(node.id, flex_tensor(d_bias, [filters]));
        }
    }
}

/// `[n, a, b] -> [n, b, a]`: between burn's weight layout `[F, C, k]` and the columns' order
/// `[F, k, C]`, both ways. Written row by row of the result (contiguous stores).
fn swap_inner_dims(values: &[f32], [n, a, b]: [usize; 3]) -> Vec<f32> {
    let mut swapped = vec![0.0f32; n * a * b];
    for (from, to) in values
        .chunks_exact(a * b)
        .zip(swapped.chunks_exact_mut(a * b))
    {
        for (j, row) in to.chunks_exact_mut(a).enumerate() {
            for (i, value) in row.iter_mut().enumerate() {
                *value = from[i * b + j];
            }
        }
    }
    swapped
}

vectorized_fn! {
    /// One sample's input gradient `[L, C]` from its column-matrix gradient `[L', k * C]`: the
    /// inverse of im2col, adding every tap's block back at its input step.
    fn col2im(d_x: &mut [f32], d_columns: &[f32], dims: Dims) {
        let Dims {
            length,
            channels,
            left,
            dilation,
            ..
        } = dims;
        for (t, row) in d_columns.chunks_exact(dims.width()).enumerate() {
            for (j, tap) in row.chunks_exact(channels).enumerate() {
                let step = (t + j * dilation).checked_sub(left);
                if let Some(s) = step.filter(|&s| s < length) {
                    for (d, &g) in d_x[s * channels..][..channels].iter_mut().zip(tap) {
                        *d += g;
                    }
                }
            }
        }
    }
}
