//! The LSTM recurrence as one differentiable op on the Flex backend (training).
//!
//! In burn tensor ops every step is a small GEMM plus about a dozen autodiff nodes, and the
//! backward pass walks all of them one at a time on one core. Here the forward pass runs the
//! fused cell and keeps the activated gates and cell states; the backward pass computes each
//! step's gate gradients in one fused pass, and the recurrent weight's gradient as one GEMM
//! over all steps. Samples are independent, so both passes split the batch across the rayon
//! threads with no synchronisation per step.
//!
//! Input: the projected inputs `x_proj [B, T, 4H]` (input GEMM and biases included, gate order
//! i, f, g, o) and `W_hh [H, 4H]`; output: every step's `h` as `[B, T, H]` in time order.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{contiguous, f32s, flex_tensor, gemm, Matrix, Threads};
use super::lstm::{sigmoid, tanh};
use super::{rows_per_chunk, vectorized_fn};

#[backend_extension(Autodiff, Flex)]
pub trait LstmRecurrenceBackend: Backend {
    /// `x_proj [B, T, 4H]`, `recurrent [H, 4H]` -> all hidden states `[B, T, H]`; `reverse`
    /// processes the steps from the last to the first.
    fn lstm_recurrence(
        x_proj: FloatTensor<Self>,
        recurrent: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self>;
}

/// Runs the recurrence op; the tensors must live on the Flex backend (with or without autodiff).
pub(crate) fn lstm_recurrence(x_proj: Tensor<3>, recurrent: Tensor<2>, reverse: bool) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as LstmRecurrenceBackend>::lstm_recurrence(
        x_proj.into_dispatch(),
        recurrent.into_dispatch(),
        reverse,
    ))
}

impl LstmRecurrenceBackend for Flex {
    fn lstm_recurrence(x_proj: FlexTensor, recurrent: FlexTensor, reverse: bool) -> FlexTensor {
        forward(&x_proj, &recurrent, reverse).hidden
    }
}

impl<C: CheckpointStrategy> LstmRecurrenceBackend for Autodiff<Flex, C> {
    fn lstm_recurrence(
        x_proj: FloatTensor<Self>,
        recurrent: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        match RecurrenceBackward
            .prepare::<C>([x_proj.node(), recurrent.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = forward(x_proj.primitive(), recurrent.primitive(), reverse);
                let hidden = out.hidden.clone();
                let state = Saved(Arc::new(SavedInner {
                    dims: out.dims,
                    reverse,
                    recurrent: recurrent.into_primitive(),
                    gates: out.gates,
                    cells: out.cells,
                    tanh_cells: out.tanh_cells,
                    h_prev: out.h_prev,
                }));
                prep.finish(state, hidden)
            }
            OpsKind::UnTracked(prep) => {
                let out = forward(x_proj.primitive(), recurrent.primitive(), reverse);
                prep.finish(out.hidden)
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    steps: usize,
    hidden: usize,
}

impl Dims {
    /// The time index of the `i`-th processed step.
    fn time(&self, i: usize, reverse: bool) -> usize {
        if reverse {
            self.steps - 1 - i
        } else {
            i
        }
    }
}

/// What the backward pass needs, all batch-major `[B, T, ...]`.
struct SavedInner {
    dims: Dims,
    reverse: bool,
    recurrent: FlexTensor,
    /// Activated gates `[B, T, 4H]`.
    gates: Vec<f32>,
    /// Cell states `[B, T, H]`.
    cells: Vec<f32>,
    tanh_cells: Vec<f32>,
    /// The `h` each step received (zero for the first processed step) `[B, T, H]`.
    h_prev: Vec<f32>,
}

/// Shared so that cloning the autodiff state does not copy the buffers.
#[derive(Clone)]
struct Saved(Arc<SavedInner>);

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LstmRecurrence({:?})", self.0.dims)
    }
}

#[derive(Debug)]
struct RecurrenceBackward;

impl Backward<Flex, 2> for RecurrenceBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, recurrent_node] = ops.parents;
        let grad_hidden = grads.consume::<Flex>(&ops.node);
        let saved = &ops.state.0;
        let Dims {
            batch,
            steps,
            hidden,
        } = saved.dims;
        let width = 4 * hidden;
        let grad_hidden = contiguous(&grad_hidden);
        let recurrent = contiguous(&saved.recurrent);
        let d_gates = backward_gates(saved, f32s(&grad_hidden), f32s(&recurrent));
        if let Some(node) = recurrent_node {
            // dW_hh = sum over samples and steps of h_prev^T d_gates: one GEMM, K = B * T.
            let mut d_recurrent = vec![0.0f32; hidden * width];
            gemm(
                &mut d_recurrent,
                width,
                Matrix::rows(&saved.h_prev, hidden).transposed(),
                Matrix::rows(&d_gates, width),
                [hidden, batch * steps, width],
                false,
                Threads::All,
            );
            grads.register::<Flex>(node.id, flex_tensor(d_recurrent, [hidden, width]));
        }
        if let Some(node) = x_node {
            // The projected inputs enter the pre-activations unchanged.
            grads.register::<Flex>(node.id, flex_tensor(d_gates, [batch, steps, width]));
        }
    }
}

struct ForwardOut {
    dims: Dims,
    hidden: FlexTensor,
    gates: Vec<f32>,
    cells: Vec<f32>,
    tanh_cells: Vec<f32>,
    h_prev: Vec<f32>,
}

fn forward(x_proj: &FlexTensor, recurrent: &FlexTensor, reverse: bool) -> ForwardOut {
    let shape = x_proj.layout().shape();
    let dims = Dims {
        batch: shape[0],
        steps: shape[1],
        hidden: recurrent.layout().shape()[0],
    };
    let Dims {
        batch,
        steps,
        hidden,
    } = dims;
    let width = 4 * hidden;
    assert_eq!(shape[2], width, "x_proj is [B, T, 4H]");
    assert_eq!(recurrent.layout().shape()[1], width, "W_hh is [H, 4H]");
    // The pre-activations start as the projected inputs; the steps add h @ W_hh in place and
    // then overwrite them with the activated gates.
    let mut gates = f32s(&contiguous(x_proj)).to_vec();
    let recurrent = contiguous(recurrent);
    let recurrent = f32s(&recurrent);
    let mut cells = vec![0.0f32; batch * steps * hidden];
    let mut tanh_cells = vec![0.0f32; batch * steps * hidden];
    let mut h_prev = vec![0.0f32; batch * steps * hidden];
    let mut hidden_out = vec![0.0f32; batch * steps * hidden];
    let rows = rows_per_chunk(batch);
    let chunks: Vec<_> = gates
        .chunks_mut(rows * steps * width)
        .zip(cells.chunks_mut(rows * steps * hidden))
        .zip(tanh_cells.chunks_mut(rows * steps * hidden))
        .zip(h_prev.chunks_mut(rows * steps * hidden))
        .zip(hidden_out.chunks_mut(rows * steps * hidden))
        .map(|((((g, c), tc), hp), h)| ForwardChunk {
            gates: g,
            cells: c,
            tanh_cells: tc,
            h_prev: hp,
            hidden: h,
        })
        .collect();
    chunks
        .into_par_iter()
        .for_each(|chunk| forward_chunk(chunk, recurrent, dims, reverse));
    ForwardOut {
        dims,
        hidden: flex_tensor(hidden_out, [batch, steps, hidden]),
        gates,
        cells,
        tanh_cells,
        h_prev,
    }
}

/// One chunk of consecutive samples, batch-major.
struct ForwardChunk<'a> {
    gates: &'a mut [f32],
    cells: &'a mut [f32],
    tanh_cells: &'a mut [f32],
    h_prev: &'a mut [f32],
    hidden: &'a mut [f32],
}

fn forward_chunk(chunk: ForwardChunk<'_>, recurrent: &[f32], dims: Dims, reverse: bool) {
    let Dims { steps, hidden, .. } = dims;
    let width = 4 * hidden;
    let rows = chunk.hidden.len() / (steps * hidden);
    let mut c = vec![0.0f32; rows * hidden];
    for i in 0..steps {
        let t = dims.time(i, reverse);
        if i > 0 {
            // pre[b, t] += h_prev[b, t] @ W_hh over the chunk's rows (row stride T * width).
            gemm(
                &mut chunk.gates[t * width..],
                steps * width,
                Matrix::rows(&chunk.h_prev[t * hidden..], steps * hidden),
                Matrix::rows(recurrent, width),
                [rows, hidden, width],
                true,
                Threads::One,
            );
        }
        let next = (i + 1 < steps).then(|| dims.time(i + 1, reverse));
        for b in 0..rows {
            let at = b * steps + t;
            let h = &mut chunk.hidden[at * hidden..][..hidden];
            cell_forward(
                &mut chunk.gates[at * width..][..width],
                &mut c[b * hidden..][..hidden],
                &mut chunk.cells[at * hidden..][..hidden],
                &mut chunk.tanh_cells[at * hidden..][..hidden],
                h,
            );
            if let Some(next) = next {
                chunk.h_prev[(b * steps + next) * hidden..][..hidden].copy_from_slice(h);
            }
        }
    }
}

vectorized_fn! {
    /// Activates one sample's gates in place and advances its cell state `c`.
    fn cell_forward(
        gates: &mut [f32],
        c: &mut [f32],
        c_out: &mut [f32],
        tc_out: &mut [f32],
        h: &mut [f32],
    ) {
        let n = h.len();
        let (gi, rest) = gates.split_at_mut(n);
        let (gf, rest) = rest.split_at_mut(n);
        let (gg, go) = rest.split_at_mut(n);
        let (go, c, c_out, tc_out) = (&mut go[..n], &mut c[..n], &mut c_out[..n], &mut tc_out[..n]);
        for j in 0..n {
            let input = sigmoid(gi[j]);
            let forget = sigmoid(gf[j]);
            let candidate = tanh(gg[j]);
            let output = sigmoid(go[j]);
            let cell = forget * c[j] + input * candidate;
            let tanh_cell = tanh(cell);
            (gi[j], gf[j], gg[j], go[j]) = (input, forget, candidate, output);
            c[j] = cell;
            c_out[j] = cell;
            tc_out[j] = tanh_cell;
            h[j] = output * tanh_cell;
        }
    }
}

/// Gradients of the pre-activations `[B, T, 4H]` from the gradient of all hidden states.
fn backward_gates(saved: &SavedInner, grad_hidden: &[f32], recurrent: &[f32]) -> Vec<f32> {
    let Dims {
        batch,
        steps,
        hidden,
    } = saved.dims;
    let width = 4 * hidden;
    let mut d_gates = vec![0.0f32; batch * steps * width];
    let rows = rows_per_chunk(batch);
    let per_h = rows * steps * hidden;
    let chunks: Vec<_> = d_gates
        .chunks_mut(rows * steps * width)
        .zip(saved.gates.chunks(rows * steps * width))
        .zip(saved.cells.chunks(per_h))
        .zip(saved.tanh_cells.chunks(per_h))
        .zip(grad_hidden.chunks(per_h))
        .map(|((((dg, g), c), tc), dh)| BackwardChunk {
            d_gates: dg,
            gates: g,
            cells: c,
            tanh_cells: tc,
            grad_hidden: dh,
        })
        .collect();
    chunks
        .into_par_iter()
        .for_each(|chunk| backward_chunk(chunk, recurrent, saved.dims, saved.reverse));
    d_gates
}

struct BackwardChunk<'a> {
    d_gates: &'a mut [f32],
    gates: &'a [f32],
    cells: &'a [f32],
    tanh_cells: &'a [f32],
    grad_hidden: &'a [f32],
}

fn backward_chunk(chunk: BackwardChunk<'_>, recurrent: &[f32], dims: Dims, reverse: bool) {
    let Dims { steps, hidden, .. } = dims;
    let width = 4 * hidden;
    let rows = chunk.grad_hidden.len() / (steps * hidden);
    // The gradient reaching h and c of the step being processed from the later steps.
    let mut dh_next = vec![0.0f32; rows * hidden];
    let mut dc = vec![0.0f32; rows * hidden];
    let zeros = vec![0.0f32; hidden];
    for i in (0..steps).rev() {
        let t = dims.time(i, reverse);
        let prev = (i > 0).then(|| dims.time(i - 1, reverse));
        for b in 0..rows {
            let at = b * steps + t;
            let c_prev = prev.map_or(&zeros[..], |p| {
                &chunk.cells[(b * steps + p) * hidden..][..hidden]
            });
            cell_backward(
                &chunk.gates[at * width..][..width],
                c_prev,
                &chunk.tanh_cells[at * hidden..][..hidden],
                &chunk.grad_hidden[at * hidden..][..hidden],
                &dh_next[b * hidden..][..hidden],
                &mut dc[b * hidden..][..hidden],
                &mut chunk.d_gates[at * width..][..width],
            );
        }
        if i > 0 {
            // dh_prev = d_gates[., t] @ W_hh^T.
            gemm(
                &mut dh_next,
                hidden,
                Matrix::rows(&chunk.d_gates[t * width..], steps * width),
                Matrix::rows(recurrent, width).transposed(),
                [rows, width, hidden],
                false,
                Threads::One,
            );
        }
    }
}

vectorized_fn! {
    /// One sample's step backwards: `dc` carries the cell gradient from the later step in and
    /// to the earlier step out.
    fn cell_backward(
        gates: &[f32],
        c_prev: &[f32],
        tanh_cell: &[f32],
        dh_out: &[f32],
        dh_next: &[f32],
        dc: &mut [f32],
        d_gates: &mut [f32],
    ) {
        let n = dc.len();
        let (gi, gf, gg, go) = (
            &gates[..n],
            &gates[n..2 * n],
            &gates[2 * n..3 * n],
            &gates[3 * n..4 * n],
        );
        let (c_prev, tanh_cell, dh_out, dh_next) =
            (&c_prev[..n], &tanh_cell[..n], &dh_out[..n], &dh_next[..n]);
        let (di, rest) = d_gates.split_at_mut(n);
        let (df, rest) = rest.split_at_mut(n);
        let (dg, d_o) = rest.split_at_mut(n);
        let d_o = &mut d_o[..n];
        for j in 0..n {
            let (input, forget, candidate, output) = (gi[j], gf[j], gg[j], go[j]);
            let dh = dh_out[j] + dh_next[j];
            let tc = tanh_cell[j];
            let d_cell = dc[j] + dh * output * (1.0 - tc * tc);
            di[j] = d_cell * candidate * input * (1.0 - input);
            df[j] = d_cell * c_prev[j] * forget * (1.0 - forget);
            dg[j] = d_cell * input * (1.0 - candidate * candidate);
            d_o[j] = dh * tc * output * (1.0 - output);
            dc[j] = d_cell * forget;
        }
    }
}
