#!/usr/bin/env python3
"""Golden fixtures: reference forward passes of the published designs, for
crates/nadir-model/tests/golden.rs.

Each family is rebuilt in its own framework (seeds-spec.md: §1.3 LLAFormerNet and §3.2 hybrid
in Keras, §4.3 LDPI ResCNN encoder + head and §5.1 CNN-LSTM in PyTorch) at small widths, with
seeded random weights (batch-norm running statistics and PReLU slope randomised too, so their
layouts are exercised), and written with one input batch and the reference output to
crates/nadir-model/tests/golden/<family>.json:

    {"family", "config": {...nadir widths...}, "tensors": {framework name: {"shape", "data"}},
     "input": {"shape", "data"}, "output": {"shape", "data"}}

Tensors keep the framework's own names and layouts; golden.rs maps them onto nadir's.

Run by hand from the repository root (CPU wheels from plain PyPI):

    python3 -m venv /tmp/golden-venv
    /tmp/golden-venv/bin/pip install torch numpy tensorflow-cpu
    /tmp/golden-venv/bin/python tools/golden/export.py            # all families
    /tmp/golden-venv/bin/python tools/golden/export.py cnn_lstm   # some of them
"""

import json
import os
import sys

import numpy as np

OUT_DIR = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "nadir-model", "tests", "golden"
))


def array(a):
    a = np.asarray(a, dtype=np.float32)
    # float32 -> shortest repr that round-trips, so the fixture holds the exact weights.
    return {"shape": list(a.shape), "data": [float(repr_f32(v)) for v in a.reshape(-1)]}


def repr_f32(v):
    return np.format_float_positional(np.float32(v), unique=True, trim="-")


FRAMEWORK = {}


def write(family, config, tensors, x, y):
    os.makedirs(OUT_DIR, exist_ok=True)
    doc = {
        "family": family,
        "framework": FRAMEWORK["name"],
        "config": config,
        "tensors": {name: array(t) for name, t in tensors.items()},
        "input": array(x),
        "output": array(y),
    }
    path = os.path.join(OUT_DIR, f"{family}.json")
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path)} bytes, output {np.asarray(y).shape}")


# ---------------------------------------------------------------- PyTorch


def torch_setup():
    import torch

    torch.manual_seed(0)
    FRAMEWORK["name"] = f"torch {torch.__version__}"
    torch.set_default_dtype(torch.float32)
    return torch


def calibrate_batch_norms(torch, model, forward, x):
    """Running statistics of the activations `x` produces (as a trained model has), then random
    gamma/beta. With default stats (0, 1) the tiny activations of a fresh model fade layer after
    layer and the output barely depends on the input."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for m in norms:
        m.momentum = 1.0  # running stats := this batch's
    model.train()
    with torch.no_grad():
        forward(x)
        for m in norms:
            m.momentum = 0.1
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.3, 0.3)
    model.eval()


def torch_tensors(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def export_cnn_lstm():
    """seeds-spec §5.1: Conv1d(k3, p1) -> BN -> ReLU -> MaxPool(2), twice -> Dropout -> LSTM ->
    Linear on the last step's hidden state."""
    torch = torch_setup()
    nn = torch.nn
    cfg = dict(channels=3, length=16, conv1_channels=8, conv2_channels=12, kernel_size=3, padding=1,
               pool=2, lstm_hidden=10, lstm_layers=2, n_classes=3)

    class CNN_LSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(cfg["channels"], cfg["conv1_channels"], 3, padding=1)
            self.bn1 = nn.BatchNorm1d(cfg["conv1_channels"])
            self.conv2 = nn.Conv1d(cfg["conv1_channels"], cfg["conv2_channels"], 3, padding=1)
            self.bn2 = nn.BatchNorm1d(cfg["conv2_channels"])
            self.pool = nn.MaxPool1d(2)
            self.dropout = nn.Dropout(0.3)
            self.lstm = nn.LSTM(cfg["conv2_channels"], cfg["lstm_hidden"], num_layers=cfg["lstm_layers"],
                                batch_first=True, dropout=0.3)
            self.fc = nn.Linear(cfg["lstm_hidden"], cfg["n_classes"])

        def forward(self, x):  # (N, C, L)
            x = self.pool(torch.relu(self.bn1(self.conv1(x))))
            x = self.pool(torch.relu(self.bn2(self.conv2(x))))
            x = self.dropout(x).permute(0, 2, 1)
            out, _ = self.lstm(x)
            return self.fc(out[:, -1, :])

    model = CNN_LSTM()
    with torch.no_grad():
        # PyTorch's default init leaves the last step nearly input-independent at these widths;
        # larger recurrent weights make the output depend on the whole front end.
        for name, p in model.lstm.named_parameters():
            p.mul_(3.0)
    calibration = 2.0 * torch.randn(64, cfg["channels"], cfg["length"])
    calibrate_batch_norms(torch, model, model, calibration)
    x = calibration[:4]
    with torch.no_grad():
        y = model(x)
    write("cnn_lstm", cfg, torch_tensors(model), x.numpy(), y.numpy())


def export_ldpi():
    """seeds-spec §4.3: tsai ResCNN(c_in=1, separable=True) with its Linear dropped, then the
    projection head; the output is `encode(x)` (unnormalised). Module names follow tsai."""
    torch = torch_setup()
    nn = torch.nn
    cfg = dict(length=24, block_channels=[8, 12, 16, 10], block1_kernels=[7, 5, 3], head_layers=2,
               embedding_dim=6, leaky_relu_slope=0.2, elu_alpha=0.3)

    class SeparableConv1d(nn.Module):
        def __init__(self, ni, nf, ks):
            super().__init__()
            self.depthwise_conv = nn.Conv1d(ni, ni, ks, padding=ks // 2, groups=ni, bias=False)
            self.pointwise_conv = nn.Conv1d(ni, nf, 1, bias=False)

        def forward(self, x):
            return self.pointwise_conv(self.depthwise_conv(x))

    class ConvBlock(nn.Module):
        def __init__(self, ni, nf, ks, act=None, separable=True):
            super().__init__()
            conv = SeparableConv1d(ni, nf, ks) if separable else nn.Conv1d(ni, nf, ks, padding=ks // 2, bias=False)
            layers = [conv, nn.BatchNorm1d(nf)] + ([act] if act is not None else [])
            self.seq = nn.Sequential(*layers)

        def forward(self, x):
            return self.seq(x)

    w1, w2, w3, w4 = cfg["block_channels"]
    k1, k2, k3 = cfg["block1_kernels"]

    class ResCNNBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.convblock1 = ConvBlock(1, w1, k1, nn.ReLU())
            self.convblock2 = ConvBlock(w1, w1, k2, nn.ReLU())
            self.convblock3 = ConvBlock(w1, w1, k3)
            self.shortcut = ConvBlock(1, w1, 1, separable=False)

        def forward(self, x):
            res = self.convblock3(self.convblock2(self.convblock1(x)))
            return torch.relu(res + self.shortcut(x))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.block1 = ResCNNBlock()
            self.block2 = ConvBlock(w1, w2, k3, nn.LeakyReLU(cfg["leaky_relu_slope"]))
            self.block3 = ConvBlock(w2, w3, k3, nn.PReLU())
            self.block4 = ConvBlock(w3, w4, k3, nn.ELU(cfg["elu_alpha"]))

        def forward(self, x):
            x = self.block4(self.block3(self.block2(self.block1(x))))
            return x.mean(dim=2)  # GAP1d + squeeze

    class ResCNNContrastive(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            e = cfg["embedding_dim"]
            layers = []
            for i in range(cfg["head_layers"]):
                layers += [nn.Linear(w4 if i == 0 else e, e, bias=False), nn.BatchNorm1d(e), nn.ReLU()]
            layers.append(nn.Linear(e if cfg["head_layers"] else w4, e))
            self.head = nn.Sequential(*layers)

        def encode(self, x):
            return self.head(self.encoder(x))

    model = ResCNNContrastive()
    with torch.no_grad():
        model.encoder.block3.seq[2].weight.fill_(0.1)  # PReLU slope (default 0.25)

    def bytes_batch(n):
        # bytes / 255 in [0, 1]; per-sample powers give the samples different means and shapes.
        return torch.rand(n, 1, cfg["length"]) ** torch.logspace(-0.3, 0.3, n).reshape(n, 1, 1)

    calibration = bytes_batch(64)
    calibrate_batch_norms(torch, model, model.encode, calibration)
    x = calibration[[5, 25, 45, 60]]
    with torch.no_grad():
        y = model.encode(x)
    write("ldpi", cfg, torch_tensors(model), x.numpy(), y.numpy())


# ---------------------------------------------------------------- Keras


def keras_setup():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import keras

    keras.utils.set_random_seed(0)
    FRAMEWORK["name"] = f"keras {keras.__version__}"
    return keras


def keras_tensors(model):
    # Layer name / variable name, e.g. "lstm/kernel" (Keras 3 `variable.path`).
    return {v.path: np.asarray(v.numpy()) for v in model.weights}


def randomise_layer_norms(keras, model, rng):
    # Fresh LayerNorms have gamma 1, beta 0: random values test which tensor goes where.
    for layer in model.layers:
        if isinstance(layer, keras.layers.LayerNormalization):
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape).astype(np.float32))
            layer.beta.assign(rng.uniform(-0.3, 0.3, layer.beta.shape).astype(np.float32))


def randomise_biases(model, rng):
    # Keras zero-initialises biases; random ones catch a dropped or misplaced bias.
    for v in model.weights:
        if v.path.endswith("bias") or v.path.endswith("/b"):
            v.assign(rng.uniform(-0.3, 0.3, v.shape).astype(np.float32))


def export_llaformer():
    """seeds-spec §1.3, the notebook's functional graph at small widths."""
    keras = keras_setup()
    L = keras.layers
    cfg = dict(features=12, conv_filters=6, kernel_size=3, lstm_units=5, tcn_dilation=2,
               layer_norm_eps=1e-3)
    inp = keras.Input((cfg["features"], 1))
    x = L.Conv1D(cfg["conv_filters"], 3, padding="same", activation="relu", name="conv")(inp)
    x = L.LayerNormalization(epsilon=1e-3, name="conv_norm")(x)
    h = L.LSTM(cfg["lstm_units"], return_sequences=True, name="lstm")(x)
    gate = L.Multiply()([L.Dense(cfg["lstm_units"], activation="tanh", name="gate_tanh")(h),
                         L.Dense(cfg["lstm_units"], activation="sigmoid", name="gate_sigmoid")(h)])
    t = L.Conv1D(cfg["lstm_units"], 3, dilation_rate=2, padding="causal", activation="relu", name="tcn")(x)
    t = L.LayerNormalization(epsilon=1e-3, name="tcn_norm")(t)
    z = L.GlobalAveragePooling1D()(L.Add()([gate, t]))
    z = L.Dropout(0.3)(z)
    out = L.Dense(1, activation="sigmoid", name="classifier")(z)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    randomise_layer_norms(keras, model, rng)
    randomise_biases(model, rng)
    x = rng.normal(size=(4, cfg["features"], 1)).astype(np.float32)
    y = model.predict(x, verbose=0)  # P(attack), inference mode (dropout off)
    write("llaformer", cfg, keras_tensors(model), x, y)


def export_hybrid(steps):
    """seeds-spec §3.2, `create_anomaly_detection_model((steps, F))` at small widths. steps = 1 is
    the published tabular use; steps > 1 is nadir's windows input (the same graph, longer input)."""
    keras = keras_setup()
    L = keras.layers
    import tensorflow as tf

    cfg = dict(features=5, steps=steps, lstm_units=8, heads=2, key_dim=6, ffn_units=12,
               layer_norm_eps=1e-6)

    class Attention(L.Layer):
        # The document's custom layer: e = tanh(x W + b), b one entry per time step.
        def build(self, input_shape):
            self.W = self.add_weight(name="W", shape=(input_shape[-1], 1), initializer="random_normal")
            self.b = self.add_weight(name="b", shape=(input_shape[1], 1), initializer="zeros")

        def call(self, x):
            e = tf.tanh(tf.tensordot(x, self.W, axes=1) + self.b)
            a = tf.nn.softmax(e, axis=1)
            return tf.reduce_sum(x * a, axis=1)

    inp = keras.Input((steps, cfg["features"]))
    x = L.LSTM(cfg["lstm_units"], return_sequences=True, name="lstm")(inp)
    x = Attention(name="attention")(x)
    x = L.Dropout(0.2)(x)
    x = L.Reshape((1, cfg["lstm_units"]))(x)  # expand_dims(axis 1)
    a = L.MultiHeadAttention(num_heads=cfg["heads"], key_dim=cfg["key_dim"], name="mha")(x, x)
    x = L.LayerNormalization(epsilon=1e-6, name="attention_norm")(L.Add()([x, a]))
    f = L.Dense(cfg["ffn_units"], activation="relu", name="ffn_in")(x)
    f = L.Dense(cfg["lstm_units"], name="ffn_out")(f)
    x = L.LayerNormalization(epsilon=1e-6, name="ffn_norm")(L.Add()([x, f]))
    out = L.Dense(1, activation="sigmoid", name="classifier")(L.Flatten()(x))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(1)
    randomise_layer_norms(keras, model, rng)
    randomise_biases(model, rng)
    # Its random_normal(0.05) init makes the softmax over steps nearly uniform; larger weights
    # make the pooling's weighting matter.
    attention = model.get_layer("attention")
    attention.W.assign(rng.normal(size=attention.W.shape).astype(np.float32))
    x = rng.normal(size=(4, steps, cfg["features"])).astype(np.float32)
    y = model.predict(x, verbose=0)
    name = "hybrid" if steps == 1 else f"hybrid_steps{steps}"
    write(name, cfg, keras_tensors(model), x, y)


FAMILIES = {
    "cnn_lstm": export_cnn_lstm,
    "ldpi": export_ldpi,
    "llaformer": export_llaformer,
    "hybrid": lambda: export_hybrid(1),
    "hybrid_steps4": lambda: export_hybrid(4),
}

if __name__ == "__main__":
    for name in sys.argv[1:] or FAMILIES:
        FAMILIES[name]()
