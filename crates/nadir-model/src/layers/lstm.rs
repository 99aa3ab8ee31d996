//! LSTM with the four gates fused into one matrix (burn's LSTM runs one GEMM per gate).
//!
//! The input projection of all time steps is one GEMM before the recurrence; each step then does
//! a single `h @ W_hh` for all four gates and one sigmoid over the whole gate block. Gate order
//! i, f, g, o (as Keras and PyTorch).

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::{Device, Tensor, TensorData};

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

    /// Input projection of every step at once, time-major: `[B, T, D] -> [T, B, 4H]`.
    fn project_inputs(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, steps, d_input] = x.dims();
        let mut bias = self.bias.val();
        if let Some(second) = &self.recurrent_bias {
            bias = bias + second.val();
        }
        let projected = x
            .swap_dims(0, 1)
            .reshape([steps * batch, d_input])
            .matmul(self.input_weight.val())
            + bias.unsqueeze_dim::<2>(0);
        projected.reshape([steps, batch, 4 * self.hidden])
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
            let activated = sigmoid(gates.clone());
            let input_gate = activated.clone().narrow(1, 0, h_width);
            let forget_gate = activated.clone().narrow(1, h_width, h_width);
            let output_gate = activated.narrow(1, 3 * h_width, h_width);
            let candidate = tanh(gates.narrow(1, 2 * h_width, h_width));
            c = if i == 0 {
                input_gate * candidate
            } else {
                forget_gate * c + input_gate * candidate
            };
            h = output_gate * tanh(c.clone());
            on_step(t, &h);
        }
        h
    }

    /// All hidden states `[B, T, D] -> [B, T, H]` (in time order, also when `reverse`).
    pub fn forward_sequence(&self, x: Tensor<3>) -> Tensor<3> {
        let steps = x.dims()[1];
        let mut outputs: Vec<Option<Tensor<2>>> = vec![None; steps];
        self.run(x, |t, h| outputs[t] = Some(h.clone()));
        let outputs: Vec<Tensor<2>> = outputs.into_iter().flatten().collect();
        Tensor::stack(outputs, 1)
    }

    /// The last hidden state only `[B, T, D] -> [B, H]`.
    pub fn forward_last(&self, x: Tensor<3>) -> Tensor<2> {
        self.run(x, |_, _| {})
    }
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

    pub fn forward_sequence(&self, x: Tensor<3>) -> Tensor<3> {
        let forward = self.forward.forward_sequence(x.clone());
        let backward = self.backward.forward_sequence(x);
        Tensor::cat(vec![forward, backward], 2)
    }
}
