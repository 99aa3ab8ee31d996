//! Golden tests: nadir's forward pass against the published framework's (seeds-spec §1.3, §3.2,
//! §4.3, §5.1). Each fixture in `tests/golden/` holds a small reference model's weights under
//! their PyTorch / Keras names and layouts, one input batch and the reference output; it is
//! written by `tools/golden/export.py`. Each test loads those weights into nadir's model of the
//! same widths and compares the inference outputs.

use std::collections::HashMap;
use std::path::Path;

use burn::module::{Param, RunningState};
use burn::nn::{BatchNorm, LayerNorm, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use nadir_model::arch::Network;
use nadir_model::layers::{ForwardCtx, Lstm};
use nadir_model::*;
use serde_json::Value;

/// Max abs difference allowed between nadir's output and the reference (f32 arithmetic in a
/// different order: observed diffs are ~1e-6).
const TOLERANCE: f32 = 1e-4;

struct Array {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Array {
    fn from_json(v: &Value) -> Self {
        let shape = v["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim") as usize)
            .collect();
        let data = v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|x| x.as_f64().expect("float") as f32)
            .collect();
        Self { shape, data }
    }

    fn tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        assert_eq!(self.shape.len(), D, "rank of {:?}", self.shape);
        Tensor::from_data(
            TensorData::new(self.data.clone(), self.shape.clone()),
            device,
        )
    }
}

struct Fixture {
    config: Value,
    tensors: HashMap<String, Array>,
    /// Names not yet loaded: every reference weight must land somewhere in nadir's model.
    unused: std::cell::RefCell<Vec<String>>,
    input: Array,
    output: Array,
    device: Device,
}

impl Fixture {
    fn load(family: &str) -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{family}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run tools/golden/export.py)", path.display()));
        let doc: Value = serde_json::from_str(&text).expect("fixture JSON");
        let tensors: HashMap<String, Array> = doc["tensors"]
            .as_object()
            .expect("tensors")
            .iter()
            .map(|(name, v)| (name.clone(), Array::from_json(v)))
            .collect();
        let mut unused: Vec<String> = tensors.keys().cloned().collect();
        unused.sort();
        Self {
            config: doc["config"].clone(),
            tensors,
            unused: std::cell::RefCell::new(unused),
            input: Array::from_json(&doc["input"]),
            output: Array::from_json(&doc["output"]),
            device: Device::flex(),
        }
    }

    fn usize(&self, key: &str) -> usize {
        self.config[key].as_u64().expect(key) as usize
    }

    fn usizes<const N: usize>(&self, key: &str) -> [usize; N] {
        let v: Vec<usize> = self.config[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|d| d.as_u64().expect(key) as usize)
            .collect();
        v.try_into().expect(key)
    }

    fn tensor<const D: usize>(&self, name: &str) -> Tensor<D> {
        let array = self
            .tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture has no tensor {name}"));
        self.unused.borrow_mut().retain(|n| n != name);
        array.tensor(&self.device)
    }

    fn input(&self) -> Tensor<3> {
        self.input.tensor(&self.device)
    }

    fn assert_all_used(&self) {
        let unused = self.unused.borrow();
        assert!(
            unused.is_empty(),
            "reference weights not loaded: {unused:?}"
        );
    }

    /// Max abs diff between `actual` and the reference output; fails above [`TOLERANCE`].
    fn assert_matches(&self, family: &str, actual: Tensor<2>) {
        assert_eq!(actual.dims().to_vec(), self.output.shape, "output shape");
        // A reference that barely depends on its input would let a wrong layer pass.
        let width = self.output.shape[1];
        let spread = (0..width)
            .map(|j| {
                let column = self.output.data.iter().skip(j).step_by(width);
                let (lo, hi) =
                    column.fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                hi - lo
            })
            .fold(0.0f32, f32::max);
        assert!(
            spread > 100.0 * TOLERANCE,
            "{family}: reference outputs spread only {spread} across the batch"
        );
        let actual = actual
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        let diff = actual
            .iter()
            .zip(&self.output.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "{family}: max abs diff {diff:e} over {} values",
            actual.len()
        );
        assert!(
            diff <= TOLERANCE,
            "{family}: max abs diff {diff} > {TOLERANCE}\nnadir     {actual:?}\nreference {:?}",
            self.output.data
        );
    }
}

/// Replaces `param` by `value`, which must have the shape nadir built it with.
fn set<const D: usize>(param: &mut Param<Tensor<D>>, value: Tensor<D>) {
    assert_eq!(param.val().dims(), value.dims(), "parameter shape");
    *param = Param::from_tensor(value);
}

fn set_running(state: &mut RunningState<Tensor<1>>, value: Tensor<1>) {
    assert_eq!(state.value().dims(), value.dims(), "running-stat shape");
    *state = RunningState::new(value);
}

/// PyTorch `BatchNorm1d` (weight, bias, running stats) onto burn's.
fn set_torch_batch_norm(f: &Fixture, norm: &mut BatchNorm, prefix: &str) {
    set(&mut norm.gamma, f.tensor(&format!("{prefix}.weight")));
    set(&mut norm.beta, f.tensor(&format!("{prefix}.bias")));
    set_running(
        &mut norm.running_mean,
        f.tensor(&format!("{prefix}.running_mean")),
    );
    set_running(
        &mut norm.running_var,
        f.tensor(&format!("{prefix}.running_var")),
    );
    assert_eq!(norm.epsilon, 1e-5, "PyTorch's BatchNorm epsilon");
}

/// PyTorch `Linear` (`weight [out, in]`) onto burn's (`weight [in, out]`).
fn set_torch_linear(f: &Fixture, linear: &mut Linear, prefix: &str) {
    set(
        &mut linear.weight,
        f.tensor::<2>(&format!("{prefix}.weight")).transpose(),
    );
    match &mut linear.bias {
        Some(bias) => set(bias, f.tensor(&format!("{prefix}.bias"))),
        None => assert!(!f.tensors.contains_key(&format!("{prefix}.bias"))),
    }
}

/// PyTorch `Conv1d` (`weight [out, in / groups, k]`, burn's layout too).
fn set_torch_conv(f: &Fixture, conv: &mut burn::nn::conv::Conv1d, prefix: &str) {
    set(&mut conv.weight, f.tensor(&format!("{prefix}.weight")));
    match &mut conv.bias {
        Some(bias) => set(bias, f.tensor(&format!("{prefix}.bias"))),
        None => assert!(!f.tensors.contains_key(&format!("{prefix}.bias"))),
    }
}

/// Layer `layer` of a PyTorch `nn.LSTM`: `weight_ih [4H, in]`, `weight_hh [4H, H]` and two
/// biases, gate order i, f, g, o as nadir's.
fn set_torch_lstm(f: &Fixture, lstm: &mut Lstm, prefix: &str, layer: usize) {
    let name = |n: &str| format!("{prefix}.{n}_l{layer}");
    set(
        &mut lstm.input_weight,
        f.tensor::<2>(&name("weight_ih")).transpose(),
    );
    set(
        &mut lstm.recurrent_weight,
        f.tensor::<2>(&name("weight_hh")).transpose(),
    );
    set(&mut lstm.bias, f.tensor(&name("bias_ih")));
    set(
        lstm.recurrent_bias.as_mut().expect("PyTorch bias layout"),
        f.tensor(&name("bias_hh")),
    );
}

fn build(cfg: ModelConfig) -> Network {
    let checked = cfg.check().expect("fixture config checks");
    Network::new(&checked, &Device::flex(), 0)
}

#[test]
fn cnn_lstm_matches_pytorch() {
    let f = Fixture::load("cnn_lstm");
    let arch = CnnLstmConfig {
        conv1_channels: f.usize("conv1_channels"),
        conv2_channels: f.usize("conv2_channels"),
        kernel_size: f.usize("kernel_size"),
        padding: f.usize("padding"),
        pool: f.usize("pool"),
        lstm_hidden: f.usize("lstm_hidden"),
        lstm_layers: f.usize("lstm_layers"),
        dropout: 0.3,
    };
    let cfg = ModelConfig {
        n_classes: f.usize("n_classes"),
        head: Head::Softmax,
        input: InputShape::Windows {
            channels: f.usize("channels"),
            length: f.usize("length"),
        },
        arch: ArchConfig::CnnLstm(arch),
    };
    let Network::CnnLstm(mut m) = build(cfg) else {
        unreachable!()
    };
    set_torch_conv(&f, &mut m.front.conv1, "conv1");
    set_torch_batch_norm(&f, &mut m.front.norm1, "bn1");
    set_torch_conv(&f, &mut m.front.conv2, "conv2");
    set_torch_batch_norm(&f, &mut m.front.norm2, "bn2");
    for (layer, lstm) in m.lstm.iter_mut().enumerate() {
        set_torch_lstm(&f, lstm, "lstm", layer);
    }
    set_torch_linear(&f, &mut m.classifier, "fc");
    f.assert_all_used();

    let logits = Network::CnnLstm(m).forward(f.input(), &mut ForwardCtx::inference());
    f.assert_matches("cnn_lstm", logits);
}

#[test]
fn ldpi_encoder_matches_pytorch() {
    let f = Fixture::load("ldpi");
    let arch = LdpiConfig {
        block_channels: f.usizes("block_channels"),
        block1_kernels: f.usizes("block1_kernels"),
        head_layers: f.usize("head_layers"),
        embedding_dim: f.usize("embedding_dim"),
        leaky_relu_slope: f.config["leaky_relu_slope"].as_f64().unwrap(),
        elu_alpha: f.config["elu_alpha"].as_f64().unwrap(),
    };
    let cfg = ModelConfig {
        n_classes: 2,
        head: Head::Sigmoid,
        input: InputShape::Bytes {
            length: f.usize("length"),
        },
        arch: ArchConfig::Ldpi(arch),
    };
    let Network::Ldpi(mut m) = build(cfg) else {
        unreachable!()
    };
    // tsai ConvBlock = Sequential(conv, BatchNorm1d, act): `seq.0` conv, `seq.1` norm.
    let blocks = [
        (&mut m.block1a, "encoder.block1.convblock1"),
        (&mut m.block1b, "encoder.block1.convblock2"),
        (&mut m.block1c, "encoder.block1.convblock3"),
        (&mut m.block2, "encoder.block2"),
        (&mut m.block3, "encoder.block3"),
        (&mut m.block4, "encoder.block4"),
    ];
    for (block, prefix) in blocks {
        let conv = format!("{prefix}.seq.0");
        set_torch_conv(
            &f,
            &mut block.conv.depthwise,
            &format!("{conv}.depthwise_conv"),
        );
        set_torch_conv(
            &f,
            &mut block.conv.pointwise,
            &format!("{conv}.pointwise_conv"),
        );
        set_torch_batch_norm(&f, &mut block.norm, &format!("{prefix}.seq.1"));
    }
    set_torch_conv(&f, &mut m.shortcut_conv, "encoder.block1.shortcut.seq.0");
    set_torch_batch_norm(&f, &mut m.shortcut_norm, "encoder.block1.shortcut.seq.1");
    set(&mut m.prelu_alpha, f.tensor("encoder.block3.seq.2.weight"));
    // Head: Sequential of [Linear, BatchNorm1d, ReLU] x head_layers, then Linear.
    for (i, layer) in m.head.iter_mut().enumerate() {
        set_torch_linear(&f, &mut layer.linear, &format!("head.{}", 3 * i));
        set_torch_batch_norm(&f, &mut layer.norm, &format!("head.{}", 3 * i + 1));
    }
    let last = 3 * m.head.len();
    set_torch_linear(&f, &mut m.projection, &format!("head.{last}"));
    f.assert_all_used();

    // The reference output is `encode(x)`; nadir's supervised classifier on top is its own.
    let embedding = Network::Ldpi(m)
        .encode(f.input())
        .expect("LDPI has an embedding");
    f.assert_matches("ldpi", embedding);
}

impl Fixture {
    /// Keras variable `var` of layer `layer` (Keras 3 paths: `layer/var` or `layer/cell/var`).
    fn keras<const D: usize>(&self, layer: &str, var: &str) -> Tensor<D> {
        let mut names = self
            .tensors
            .keys()
            .filter(|n| n.starts_with(&format!("{layer}/")) && n.ends_with(&format!("/{var}")));
        let name = names
            .next()
            .unwrap_or_else(|| panic!("fixture has no {layer}/.../{var}"))
            .clone();
        assert!(names.next().is_none(), "{layer}/{var} is ambiguous");
        self.tensor(&name)
    }
}

/// Keras `Dense` (`kernel [in, out]`, burn's layout) with its bias.
fn set_keras_dense(f: &Fixture, linear: &mut Linear, layer: &str) {
    set(&mut linear.weight, f.keras(layer, "kernel"));
    set(linear.bias.as_mut().expect("bias"), f.keras(layer, "bias"));
}

fn set_keras_layer_norm(f: &Fixture, norm: &mut LayerNorm, layer: &str) {
    set(&mut norm.gamma, f.keras(layer, "gamma"));
    set(norm.beta.as_mut().expect("beta"), f.keras(layer, "beta"));
}

/// Keras `Conv1D`: `kernel [k, in, out]` -> burn `[out, in, k]`.
fn set_keras_conv(f: &Fixture, conv: &mut burn::nn::conv::Conv1d, layer: &str) {
    set(
        &mut conv.weight,
        f.keras::<3>(layer, "kernel").permute([2, 1, 0]),
    );
    set(conv.bias.as_mut().expect("bias"), f.keras(layer, "bias"));
}

/// Keras `LSTM`: `kernel [in, 4H]`, `recurrent_kernel [H, 4H]`, one bias; gates i, f, c, o.
fn set_keras_lstm(f: &Fixture, lstm: &mut Lstm, layer: &str) {
    set(&mut lstm.input_weight, f.keras(layer, "kernel"));
    set(
        &mut lstm.recurrent_weight,
        f.keras(layer, "recurrent_kernel"),
    );
    set(&mut lstm.bias, f.keras(layer, "bias"));
    assert!(lstm.recurrent_bias.is_none(), "Keras bias layout");
}

/// nadir's head is a logit; the Keras models end in `Dense(1, sigmoid)`.
fn sigmoid(logits: Tensor<2>) -> Tensor<2> {
    burn::tensor::activation::sigmoid(logits)
}

#[test]
fn llaformer_matches_keras() {
    let f = Fixture::load("llaformer");
    let arch = LlaformerConfig {
        conv_filters: f.usize("conv_filters"),
        kernel_size: f.usize("kernel_size"),
        lstm_units: f.usize("lstm_units"),
        tcn_dilation: f.usize("tcn_dilation"),
        layer_norm_eps: f.config["layer_norm_eps"].as_f64().unwrap(),
        dropout: 0.3,
    };
    let cfg = ModelConfig {
        n_classes: 2,
        head: Head::Sigmoid,
        input: InputShape::Tabular {
            features: f.usize("features"),
        },
        arch: ArchConfig::Llaformer(arch),
    };
    let Network::Llaformer(mut m) = build(cfg) else {
        unreachable!()
    };
    set_keras_conv(&f, &mut m.conv, "conv");
    set_keras_layer_norm(&f, &mut m.conv_norm, "conv_norm");
    set_keras_lstm(&f, &mut m.lstm, "lstm");
    // nadir fuses the gate's two Dense layers into one: tanh half first, then sigmoid half.
    let kernel = Tensor::cat(
        vec![
            f.keras::<2>("gate_tanh", "kernel"),
            f.keras("gate_sigmoid", "kernel"),
        ],
        1,
    );
    let bias = Tensor::cat(
        vec![
            f.keras::<1>("gate_tanh", "bias"),
            f.keras("gate_sigmoid", "bias"),
        ],
        0,
    );
    set(&mut m.gate.weight, kernel);
    set(m.gate.bias.as_mut().unwrap(), bias);
    set_keras_conv(&f, &mut m.tcn, "tcn");
    set_keras_layer_norm(&f, &mut m.tcn_norm, "tcn_norm");
    set_keras_dense(&f, &mut m.classifier, "classifier");
    f.assert_all_used();

    // Keras input (B, F, 1); nadir reads tabular rows as (B, 1, F): same values.
    let [batch, features, _] = f.input().dims();
    let x = f.input().reshape([batch, 1, features]);
    let logits = Network::Llaformer(m).forward(x, &mut ForwardCtx::inference());
    f.assert_matches("llaformer", sigmoid(logits));
}

fn hybrid_matches_keras(family: &str) {
    let f = Fixture::load(family);
    let (features, steps) = (f.usize("features"), f.usize("steps"));
    let arch = HybridConfig {
        lstm_units: f.usize("lstm_units"),
        attention_dropout: 0.2,
        heads: f.usize("heads"),
        key_dim: f.usize("key_dim"),
        ffn_units: f.usize("ffn_units"),
        layer_norm_eps: f.config["layer_norm_eps"].as_f64().unwrap(),
        sequence_transformer: false,
    };
    let input = if steps == 1 {
        InputShape::Tabular { features }
    } else {
        InputShape::Windows {
            channels: features,
            length: steps,
        }
    };
    let cfg = ModelConfig {
        n_classes: 2,
        head: Head::Sigmoid,
        input,
        arch: ArchConfig::Hybrid(arch),
    };
    let Network::Hybrid(mut m) = build(cfg) else {
        unreachable!()
    };
    set_keras_lstm(&f, &mut m.lstm, "lstm");
    set(&mut m.pooling.weight, f.keras("attention", "W"));
    // Keras' b is (T, 1), one entry per step.
    set(
        &mut m.pooling.bias,
        f.keras::<2>("attention", "b").reshape([steps]),
    );
    // Keras MHA kernels are (d, heads, key_dim) / (heads, key_dim, d): heads-major, as nadir's
    // (d, heads * key_dim) reshape splits them.
    let inner = m.attention.heads * m.attention.key_dim;
    let d_model = m.attention.output.weight.val().dims()[1];
    for (linear, name) in [
        (&mut m.attention.query, "query"),
        (&mut m.attention.key, "key"),
        (&mut m.attention.value, "value"),
    ] {
        let layer = format!("mha/{name}");
        set(
            &mut linear.weight,
            f.keras::<3>(&layer, "kernel").reshape([d_model, inner]),
        );
        set(
            linear.bias.as_mut().unwrap(),
            f.keras::<2>(&layer, "bias").reshape([inner]),
        );
    }
    set(
        &mut m.attention.output.weight,
        f.keras::<3>("mha/attention_output", "kernel")
            .reshape([inner, d_model]),
    );
    set(
        m.attention.output.bias.as_mut().unwrap(),
        f.keras("mha/attention_output", "bias"),
    );
    set_keras_layer_norm(&f, &mut m.attention_norm, "attention_norm");
    set_keras_dense(&f, &mut m.ffn_in, "ffn_in");
    set_keras_dense(&f, &mut m.ffn_out, "ffn_out");
    set_keras_layer_norm(&f, &mut m.ffn_norm, "ffn_norm");
    set_keras_dense(&f, &mut m.classifier, "classifier");
    f.assert_all_used();

    // Keras input (B, T, F); nadir reads tabular rows as (B, 1, F) (the same values for T = 1)
    // and windows channel-major as (B, F, T).
    let x = f.input();
    let x = if steps == 1 { x } else { x.swap_dims(1, 2) };
    let logits = Network::Hybrid(m).forward(x, &mut ForwardCtx::inference());
    f.assert_matches(family, sigmoid(logits));
}

/// The published use: one flow, a sequence of length 1 (nadir short-cuts the softmax over one
/// step and the attention over one token; the reference computes them).
#[test]
fn hybrid_matches_keras_on_tabular_rows() {
    hybrid_matches_keras("hybrid");
}

/// The same graph on windows of 4 flows: LSTM over time and the additive attention pooling.
#[test]
fn hybrid_matches_keras_on_windows() {
    hybrid_matches_keras("hybrid_steps4");
}
