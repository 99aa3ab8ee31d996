//! LSTM with the four gates fused into one matrix (burn's LSTM runs one GEMM per gate).
//!
//! The input projection of all time steps is one GEMM before the recurrence; each step then does
//! a single `h @ W_hh` for all four gates and one sigmoid over the whole gate block. Gate order
//! i, f, g, o (as Keras and PyTorch).

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation;
use burn::tensor::{Device, Tensor, TensorData};

use rayon::prelude::*;

use super::flex::{gemm, is_flex_autodiff, Matrix, Threads};
use super::lstm_block::RecurrenceBlock;
use super::lstm_recurrence::lstm_recurrence;
use super::{rows_per_chunk, F32Values};

/// Bias layout: Keras has one bias per gate, PyTorch two (`b_ih` and `b_hh`, redundant but counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LstmBias {
    Keras,
    Torch,
}

/// One-direction LSTM layer, batch-first.
#[derive(Module, Debug)]
pub struct Lstm {
    /// `[d_input, 4 * hidden]`.
    pub input_weight: Param<Tensor<2>>,
    /// `[hidden, 4 * hidden]`.
    pub recurrent_weight: Param<Tensor<2>>,
    /// `[4 * hidden]`, forget-gate slice initialised to 1.
    pub bias: Param<Tensor<1>>,
    /// PyTorch's second bias, `[4 * hidden]`.
    pub recurrent_bias: Option<Param<Tensor<1>>>,
    pub hidden: usize,
    pub reverse: bool,
}

impl Lstm {
    pub fn new(
        d_input: usize,
        hidden: usize,
        bias: LstmBias,
        reverse: bool,
        device: &Device,
    ) -> Self {
        let gates = 4 * hidden;
        let glorot = Initializer::XavierUniform { gain: 1.0 };
        let input_weight = glorot.init_with([d_input, gates], Some(d_input), Some(gates), device);
        let recurrent_weight = glorot.init_with([hidden, gates], Some(hidden), Some(gates), device);
        // Unit forget bias (Keras default): the cell starts by remembering.
        let mut bias_values = vec![0.0f32; gates];
        bias_values[hidden..2 * hidden].fill(1.0);
        let bias_param = Param::from_data(TensorData::new(bias_values, [gates]), device);
        let recurrent_bias = match bias {
            LstmBias::Keras => None,
            LstmBias::Torch => Some(Param::from_data(
                TensorData::new(vec![0.0f32; gates], [gates]),
                device,
            )),
        };
        Self {
            input_weight,
            recurrent_weight,
            bias: bias_param,
            recurrent_bias,
            hidden,
            reverse,
        }
    }

    /// The bias added to the pre-activations (both of PyTorch's).
    fn combined_bias(&self) -> Tensor<1> {
        let mut bias = self.bias.val();
        if let Some(second) = &self.recurrent_bias {
            bias = bias + second.val();
        }
        bias
    }

    /// Input projection of every step at once, time-major: `[B, T, D] -> [T, B, 4H]`.
    fn project_inputs(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, steps, d_input] = x.dims();
        let projected = x
            .swap_dims(0, 1)
            .reshape([steps * batch, d_input])
            .matmul(self.input_weight.val())
            + self.combined_bias().unsqueeze_dim::<2>(0);
        projected.reshape([steps, batch, 4 * self.hidden])
    }

    /// Whether training runs the recurrence as one op: it is implemented for the Flex
    /// autodiff backend only (other backends, e.g. CUDA, take the tensor-op path).
    pub(crate) fn recurrence_op_applies(x: &Tensor<3>) -> bool {
        is_flex_autodiff(&x.device())
    }

    /// All hidden states `[B, T, H]` through the recurrence op (differentiable). The input
    /// projection stays in burn ops, batch-major so that it needs no transpose.
    pub(crate) fn forward_sequence_op(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, steps, d_input] = x.dims();
        let projected = x
            .reshape([batch * steps, d_input])
            .matmul(self.input_weight.val())
            + self.combined_bias().unsqueeze_dim::<2>(0);
        lstm_recurrence(
            projected.reshape([batch, steps, 4 * self.hidden]),
            self.recurrent_weight.val(),
            self.reverse,
        )
    }

    /// The final hidden state `[B, H]` through the recurrence op: the last processed step,
    /// which is time 0 when `reverse`.
    pub(crate) fn forward_last_op(&self, x: Tensor<3>) -> Tensor<2> {
        let [batch, steps, _] = x.dims();
        let last = if self.reverse { 0 } else { steps - 1 };
        self.forward_sequence_op(x)
            .narrow(1, last, 1)
            .reshape([batch, self.hidden])
    }

    /// Runs the recurrence; calls `on_step(t, h_t)` for every step in processing order and
    /// returns the final hidden state `[B, H]`.
    fn run(&self, x: Tensor<3>, mut on_step: impl FnMut(usize, &Tensor<2>)) -> Tensor<2> {
        let [batch, steps, _] = x.dims();
        let device = x.device();
        let h_width = self.hidden;
        let mut step_inputs = Vec::with_capacity(steps);
        split_time_major(self.project_inputs(x), &mut step_inputs);
        let recurrent = self.recurrent_weight.val();
        let mut h = Tensor::<2>::zeros([batch, h_width], &device);
        let mut c = Tensor::<2>::zeros([batch, h_width], &device);
        for i in 0..steps {
            let t = if self.reverse { steps - 1 - i } else { i };
            let x_t = step_inputs[t].clone();
            let gates = if i == 0 {
                x_t // h_0 = 0: skip the recurrent GEMM
            } else {
                x_t + h.matmul(recurrent.clone())
            };
            let activated = activation::sigmoid(gates.clone());
            let input_gate = activated.clone().narrow(1, 0, h_width);
            let forget_gate = activated.clone().narrow(1, h_width, h_width);
            let output_gate = activated.narrow(1, 3 * h_width, h_width);
            let candidate = activation::tanh(gates.narrow(1, 2 * h_width, h_width));
            c = if i == 0 {
                input_gate * candidate
            } else {
                forget_gate * c + input_gate * candidate
            };
            h = output_gate * activation::tanh(c.clone());
            on_step(t, &h);
        }
        h
    }

    /// All hidden states `[B, T, D] -> [B, T, H]` (in time order, also when `reverse`).
    pub fn forward_sequence(&self, x: Tensor<3>) -> Tensor<3> {
        if Self::recurrence_op_applies(&x) {
            self.forward_sequence_op(x)
        } else if x.is_autodiff() {
            self.forward_sequence_ops(x)
        } else {
            let [batch, steps, _] = x.dims();
            let device = x.device();
            let mut outputs = vec![0.0f32; batch * steps * self.hidden];
            self.run_fused(x, Some(&mut outputs));
            Tensor::from_data(
                TensorData::new(outputs, [batch, steps, self.hidden]),
                &device,
            )
        }
    }

    /// The last hidden state only `[B, T, D] -> [B, H]`.
    pub fn forward_last(&self, x: Tensor<3>) -> Tensor<2> {
        if Self::recurrence_op_applies(&x) {
            self.forward_last_op(x)
        } else if x.is_autodiff() {
            self.forward_last_ops(x)
        } else {
            let [batch, _, _] = x.dims();
            let device = x.device();
            let h = self.run_fused(x, None);
            Tensor::from_data(TensorData::new(h, [batch, self.hidden]), &device)
        }
    }

    /// [`forward_sequence`](Self::forward_sequence) in burn tensor ops (differentiable).
    pub(crate) fn forward_sequence_ops(&self, x: Tensor<3>) -> Tensor<3> {
        let steps = x.dims()[1];
        let mut outputs: Vec<Option<Tensor<2>>> = vec![None; steps];
        self.run(x, |t, h| outputs[t] = Some(h.clone()));
        let outputs: Vec<Tensor<2>> = outputs.into_iter().flatten().collect();
        Tensor::stack(outputs, 1)
    }

    /// [`forward_last`](Self::forward_last) in burn tensor ops (differentiable).
    pub(crate) fn forward_last_ops(&self, x: Tensor<3>) -> Tensor<2> {
        self.run(x, |_, _| {})
    }

    /// Inference recurrence on plain buffers, batch-major `[B, T, D]`; returns the final hidden
    /// state `[B * H]` and, with `outputs`, writes every step's `h` there as `[B, T, H]`.
    /// The input projection is one GEMM over all steps on every rayon thread (burn's matmul
    /// ran it on the calling thread alone: CNN-LSTM batch 1 3.43 k -> 3.75 k samples/s,
    /// LLAFormerNet batch 1024 31.7 k -> 34.1 k, side by side); the recurrence then runs on one
    /// block of samples per rayon thread (samples are independent, so no synchronisation per
    /// step), each block's `h`, `c` and `h @ W_hh` in buffers made once per call. The gate
    /// nonlinearities and the cell update are one hand-written pass per step: the tensor-op
    /// cell makes about ten temporaries and strided gate copies per step, and libm's scalar
    /// exp/tanh dominated the small models. (Per-step burn GEMMs on one thread, as before this
    /// kernel: LLAFormerNet at batch 1024 scored 7.7k samples/s, `bench/models/run.sh`.)
    fn run_fused(&self, x: Tensor<3>, outputs: Option<&mut [f32]>) -> Vec<f32> {
        let [batch, steps, d_input] = x.dims();
        let hidden = self.hidden;
        let width = 4 * hidden;
        // Batch-major projection: the row of (b, t) is b * T + t, no transpose needed.
        let inputs = F32Values::of(x.reshape([batch * steps, d_input]));
        let input_weight = F32Values::of(self.input_weight.val());
        let mut projected = vec![0.0f32; batch * steps * width];
        gemm(
            &mut projected,
            width,
            Matrix::rows(inputs.as_slice(), d_input),
            Matrix::rows(input_weight.as_slice(), width),
            [batch * steps, d_input, width],
            false,
            Threads::All,
        );
        let projected = &projected[..];
        let mut bias = F32Values::of(self.bias.val()).as_slice().to_vec();
        if let Some(second) = &self.recurrent_bias {
            for (b, s) in bias.iter_mut().zip(F32Values::of(second.val()).as_slice()) {
                *b += s;
            }
        }
        let recurrent = F32Values::of(self.recurrent_weight.val());
        let recurrent = recurrent.as_slice();
        let rows = rows_per_chunk(batch);
        let mut h = vec![0.0f32; batch * hidden];
        let output_blocks: Vec<Option<&mut [f32]>> = match outputs {
            Some(out) => out.chunks_mut(rows * steps * hidden).map(Some).collect(),
            None => (0..batch.div_ceil(rows)).map(|_| None).collect(),
        };
        let run_block = |projected: &[f32], h: &mut [f32], outputs: Option<&mut [f32]>| {
            let block = RecurrenceBlock {
                projected,
                recurrent,
                bias: &bias,
                steps,
                reverse: self.reverse,
            };
            block.run(h, outputs, rows == batch);
        };
        if rows == batch {
            // One block (one sample, or one thread): on this thread. Handing it to the pool
            // costs two context switches, a fifth of a one-sample hybrid call.
            run_block(
                projected,
                &mut h,
                output_blocks.into_iter().next().flatten(),
            );
        } else {
            projected
                .par_chunks(rows * steps * width)
                .zip(h.par_chunks_mut(rows * hidden))
                .zip(output_blocks)
                .for_each(|((projected, h), outputs)| run_block(projected, h, outputs));
        }
        h
    }
}

/// Logistic function on [`exp`].
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x) = 1 - 2 / (1 + e^(2x))` on [`exp`] (absolute error ~1e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

/// e^x with ~1 ulp relative error (Cephes `expf` polynomial). Branch-free so the cell loop
/// vectorises; libm's `expf` is an opaque scalar call. Inputs are clamped to [-87, 88], where
/// 2^n stays a normal float (e^88 is already far past saturating sigmoid and tanh).
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let poly = p * r * r + r + 1.0;
    // 2^n: n sits in the low bits of `shifted`; rebuild it as an exponent field.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    poly * f32::from_bits(((n_bits + 127) << 23) as u32)
}

/// Splits `[T, B, G]` into T tensors `[B, G]` by recursive halving. The backward pass of a
/// slice materialises a zero tensor as large as the sliced input, so T direct slices cost
/// O(T x size) there; halving costs O(log T x size).
fn split_time_major(sequence: Tensor<3>, out: &mut Vec<Tensor<2>>) {
    let [steps, batch, width] = sequence.dims();
    if steps == 1 {
        out.push(sequence.reshape([batch, width]));
        return;
    }
    let half = steps / 2;
    split_time_major(sequence.clone().narrow(0, 0, half), out);
    split_time_major(sequence.narrow(0, half, steps - half), out);
}

/// Bidirectional LSTM, outputs concatenated `[forward, backward]` per step: `[B, T, 2H]`.
#[derive(Module, Debug)]
pub struct BiLstm {
    pub forward: Lstm,
    pub backward: Lstm,
}

impl BiLstm {
    pub fn new(d_input: usize, hidden: usize, bias: LstmBias, device: &Device) -> Self {
        Self {
            forward: Lstm::new(d_input, hidden, bias, false, device),
            backward: Lstm::new(d_input, hidden, bias, true, device),
        }
    }

    /// At inference the two directions run at once, one per rayon thread (they share only the
    /// input): a one-sample call has one block of samples per direction, which otherwise ran
    /// one after the other on one thread. Training keeps one autodiff graph built in order.
    pub fn forward_sequence(&self, x: Tensor<3>) -> Tensor<3> {
        let (forward, backward) = if x.is_autodiff() {
            (
                self.forward.forward_sequence(x.clone()),
                self.backward.forward_sequence(x),
            )
        } else {
            let shared = x.clone();
            rayon::join(
                || self.forward.forward_sequence(x),
                || self.backward.forward_sequence(shared),
            )
        };
        Tensor::cat(vec![forward, backward], 2)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_sigmoid_tanh_match_libm() {
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.005;
            if (-87.0..=88.0).contains(&x) {
                let e = super::exp(x);
                assert!((e - x.exp()).abs() <= 4e-7 * x.exp(), "exp({x}) = {e}");
            }
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((super::sigmoid(x) - s).abs() < 1e-6, "sigmoid({x})");
            assert!((super::tanh(x) - x.tanh()).abs() < 1e-6, "tanh({x})");
        }
        assert!(super::sigmoid(-200.0) < 1e-37 && super::sigmoid(200.0) == 1.0);
        assert!(super::tanh(-200.0) == -1.0 && super::tanh(200.0) == 1.0);
    }
}
