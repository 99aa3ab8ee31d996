//! A stack of dense layers at inference on plain buffers (the autoencoder's scoring on Flex).
//!
//! In burn ops each layer is a GEMM, a broadcast bias add and an activation, each into a fresh
//! tensor. Here the bias is the GEMM's starting value and the activation runs in place. A layer
//! narrower than [`NARROW`] (the autoencoder's 10-wide code) is computed transposed, so that
//! its GEMM runs along the batch: gemm's kernels for a 10-column output were over a quarter of
//! scoring autoencoder rows (perf).

use std::borrow::Cow;

use super::flex::{gemm, Matrix, Threads};
use super::lstm::sigmoid;
use super::vectorized_fn;

/// Outputs narrower than this are computed as `[outputs, rows]`.
const NARROW: usize = 16;

/// Rows from which a layer's GEMM runs on the rayon threads (below, a one-sample call would
/// wake the other thread for a few hundred products).
const PARALLEL_ROWS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Activation {
    Identity,
    Relu,
    Sigmoid,
}

/// One layer: `y = activation(x · weight + bias)`, `weight` row-major `[inputs, outputs]`
/// (burn's `Linear` layout), `bias` `[outputs]`.
pub(crate) struct Dense<'a> {
    pub weight: &'a [f32],
    pub bias: &'a [f32],
    pub activation: Activation,
}

/// An activation matrix, row-major `[rows, width]` or stored transposed `[width, rows]`; the
/// input is borrowed.
struct Activations<'a> {
    values: Cow<'a, [f32]>,
    width: usize,
    transposed: bool,
}

impl Activations<'_> {
    /// As a `[rows, width]` GEMM operand.
    fn matrix(&self, rows: usize) -> Matrix<'_> {
        if self.transposed {
            Matrix::rows(&self.values, rows).transposed()
        } else {
            Matrix::rows(&self.values, self.width)
        }
    }
}

/// `x` (`[rows, inputs]`, row-major) through every layer; returns `[rows, outputs]` row-major.
pub(crate) fn dense_stack(x: &[f32], rows: usize, layers: &[Dense<'_>]) -> Vec<f32> {
    let threads = if rows >= PARALLEL_ROWS {
        Threads::All
    } else {
        Threads::One
    };
    let mut h = Activations {
        values: Cow::Borrowed(x),
        width: x.len() / rows.max(1),
        transposed: false,
    };
    for layer in layers {
        let (inputs, outputs) = (h.width, layer.bias.len());
        assert_eq!(layer.weight.len(), inputs * outputs, "dense: weight shape");
        let weight = Matrix::rows(layer.weight, outputs);
        let transposed = outputs < NARROW;
        let mut values;
        if transposed {
            // y^T = weight^T · h^T, each row of y^T starting as its bias.
            values = vec![0.0f32; outputs * rows];
            for (row, &b) in values.chunks_exact_mut(rows.max(1)).zip(layer.bias) {
                row.fill(b);
            }
            gemm(
                &mut values,
                rows,
                weight.transposed(),
                h.matrix(rows).transposed(),
                [outputs, inputs, rows],
                true,
                threads,
            );
        } else {
            values = layer.bias.repeat(rows);
            gemm(
                &mut values,
                outputs,
                h.matrix(rows),
                weight,
                [rows, inputs, outputs],
                true,
                threads,
            );
        }
        activate(&mut values, layer.activation);
        h = Activations {
            values: Cow::Owned(values),
            width: outputs,
            transposed,
        };
    }
    if !h.transposed {
        return h.values.into_owned();
    }
    let mut out = vec![0.0f32; rows * h.width];
    for (j, column) in h.values.chunks_exact(rows.max(1)).enumerate() {
        for (i, &value) in column.iter().enumerate() {
            out[i * h.width + j] = value;
        }
    }
    out
}

vectorized_fn! {
    fn activate(values: &mut [f32], activation: Activation) {
        match activation {
            Activation::Identity => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Sigmoid => values.iter_mut().for_each(|v| *v = sigmoid(*v)),
        }
    }
}
