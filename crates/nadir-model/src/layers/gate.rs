//! LLAFormerNet's "attention block" (seeds-spec §1.3): `tanh(a) ⊙ sigmoid(b)` per time step.

use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::lstm;
use super::{rows_per_chunk, vectorized_fn, F32Values};

/// Outputs below which the gate runs on the calling thread (one LLAFormerNet sample has 2,848).
const PARALLEL_VALUES: usize = 16 * 1024;

/// `[B, T, 2U]` (the `a` half, then the `b` half) -> `[B, T, U]`. Inference runs one
/// vectorised pass over plain buffers, the rows split across the rayon threads: in burn ops
/// (two narrows, libm's scalar tanh and exp, a product) the gate took about a quarter of
/// LLAFormerNet's batch-1024 scoring (perf). Training keeps burn's differentiable ops.
pub(crate) fn tanh_sigmoid_gate(halves: Tensor<3>, units: usize) -> Tensor<3> {
    if halves.is_autodiff() {
        return tanh(halves.clone().narrow(2, 0, units)) * sigmoid(halves.narrow(2, units, units));
    }
    let [batch, steps, _] = halves.dims();
    let device = halves.device();
    let data = F32Values::of(halves);
    let values = data.as_slice();
    let rows = batch * steps;
    let rows_per_thread = rows_per_chunk(rows);
    let mut gated = vec![0.0f32; rows * units];
    let gate_rows = |(out, halves): (&mut [f32], &[f32])| {
        for (out, halves) in out
            .chunks_exact_mut(units)
            .zip(halves.chunks_exact(2 * units))
        {
            gate_row(halves, out);
        }
    };
    if rows * units < PARALLEL_VALUES {
        // Too little work to wake another thread for.
        gate_rows((&mut gated[..], values));
    } else {
        gated
            .par_chunks_mut(rows_per_thread * units)
            .zip(values.par_chunks(rows_per_thread * 2 * units))
            .for_each(gate_rows);
    }
    Tensor::from_data(TensorData::new(gated, [batch, steps, units]), &device)
}

vectorized_fn! {
    /// One step: `out = tanh(a) * sigmoid(b)`, `halves = [a, b]`.
    fn gate_row(halves: &[f32], out: &mut [f32]) {
        let n = out.len();
        let (a, b) = halves.split_at(n);
        let b = &b[..n];
        for j in 0..n {
            out[j] = lstm::tanh(a[j]) * lstm::sigmoid(b[j]);
        }
    }
}
