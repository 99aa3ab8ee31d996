"""PyTorch peers of nadir's families at their published input shapes for bench/models/run.sh:
`llaformer` (seeds-spec §1.3, 89 features as a sequence), `lln` (§2.4, 100 packets x 8),
`hybrid` (§3.2, one step of 10; `hybrid-K`: K steps), `autoencoder` (§3.1, 64 -> 10 -> 64),
`ldpi` (§4.3-4.5: ResCNN-contrastive encoder, Deep SAD scoring, SimCLR pretraining) and
`cnn-lstm` (§5.1, 6 x 128).

Same layers, sizes, batch sizes, optimiser, clipping, scheduler and validation pass as
`crates/nadir-model/examples/bench_models.rs`; one model and one phase per process; prints one
JSON line like the Rust side. `--jit` scores through `torch.jit.trace` (impl "pytorch-jit");
`--export FILE` writes the model as ONNX (dynamic batch) for `ort_models.py` and exits.
"""

import argparse
import json
import math
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CnnLstm(nn.Module):
    def __init__(self, channels=6, classes=2, hidden=128, dropout=0.3):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, 128, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(128)
        self.conv2 = nn.Conv1d(128, 256, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(256)
        self.pool = nn.MaxPool1d(2)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(256, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):  # (B, C, L)
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = self.dropout(x).transpose(1, 2)
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


class KerasMha(nn.Module):
    """Keras MultiHeadAttention: key_dim per head independent of the model width."""

    def __init__(self, d_model=64, heads=4, key_dim=64):
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        inner = heads * key_dim
        self.q = nn.Linear(d_model, inner)
        self.k = nn.Linear(d_model, inner)
        self.v = nn.Linear(d_model, inner)
        self.o = nn.Linear(inner, d_model)

    def forward(self, x):  # (B, T, D)
        b, t, _ = x.shape
        split = lambda z: z.view(b, t, self.heads, self.key_dim).transpose(1, 2)
        ctx = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        return self.o(ctx.transpose(1, 2).reshape(b, t, self.heads * self.key_dim))


class Llaformer(nn.Module):
    """seeds-spec §1.3: conv over the feature axis, LayerNorm, LSTM + GLU gate, dilated causal conv."""

    def __init__(self, filters=32, units=32, dropout=0.3):
        super().__init__()
        self.conv = nn.Conv1d(1, filters, 3, padding=1)
        self.conv_norm = nn.LayerNorm(filters, eps=1e-3)
        self.lstm = nn.LSTM(filters, units, batch_first=True)
        self.gate_tanh = nn.Linear(units, units)
        self.gate_sigmoid = nn.Linear(units, units)
        self.tcn = nn.Conv1d(filters, units, 3, dilation=2)
        self.tcn_norm = nn.LayerNorm(units, eps=1e-3)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(units, 1)

    def forward(self, x):  # (B, 1, F)
        f = self.conv_norm(F.relu(self.conv(x)).transpose(1, 2))  # (B, F, C)
        h, _ = self.lstm(f)
        gated = torch.tanh(self.gate_tanh(h)) * torch.sigmoid(self.gate_sigmoid(h))
        tcn = F.relu(self.tcn(F.pad(f.transpose(1, 2), (4, 0)))).transpose(1, 2)
        merged = gated + self.tcn_norm(tcn)
        return self.out(self.dropout(merged.mean(dim=1)))


class Lln(nn.Module):
    """seeds-spec §2.4 [REC]: Conv x2 (BN, ReLU, pool) -> BiLSTM -> MHA + residual + LN -> pool -> Dense."""

    def __init__(self, channels=8, units=64, dropout=0.3):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, 64, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(64, eps=1e-3)
        self.conv2 = nn.Conv1d(64, 128, 3, padding=1)
        self.bn2 = nn.BatchNorm1d(128, eps=1e-3)
        self.pool = nn.MaxPool1d(2)
        self.lstm = nn.LSTM(128, units, batch_first=True, bidirectional=True)
        self.mha = KerasMha(2 * units, 4, 32)
        self.norm = nn.LayerNorm(2 * units, eps=1e-3)
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(2 * units, 64)
        self.out = nn.Linear(64, 1)

    def forward(self, x):  # (B, C, L)
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x)))).transpose(1, 2)
        h, _ = self.lstm(x)
        h = self.dropout(self.norm(h + self.mha(h)))
        return self.out(self.dropout(F.relu(self.dense(h.mean(dim=1)))))


class Autoencoder(nn.Module):
    """seeds-spec §3.1 step 5 as nadir's default: F -> Dense(10, ReLU) -> Dense(F) (linear output)."""

    def __init__(self, features=64, code=10):
        super().__init__()
        self.encoder = nn.Linear(features, code)
        self.decoder = nn.Linear(code, features)

    def forward(self, x):  # (B, F)
        return self.decoder(F.relu(self.encoder(x)))


class Hybrid(nn.Module):
    def __init__(self, features=10, steps=1, units=64):
        super().__init__()
        self.lstm = nn.LSTM(features, units, batch_first=True)
        self.att_w = nn.Parameter(torch.empty(units, 1))
        nn.init.xavier_uniform_(self.att_w)
        self.att_b = nn.Parameter(torch.zeros(steps, 1))
        self.dropout = nn.Dropout(0.2)
        self.mha = KerasMha(units, 4, 64)
        self.ln1 = nn.LayerNorm(units, eps=1e-6)
        self.ffn1 = nn.Linear(units, 128)
        self.ffn2 = nn.Linear(128, units)
        self.ln2 = nn.LayerNorm(units, eps=1e-6)
        self.out = nn.Linear(units, 1)

    def forward(self, x):  # (B, T, F)
        h, _ = self.lstm(x)
        e = torch.tanh(h @ self.att_w + self.att_b)  # (B, T, 1)
        alpha = torch.softmax(e, dim=1)
        ctx = self.dropout((alpha * h).sum(dim=1)).unsqueeze(1)
        x = self.ln1(ctx + self.mha(ctx))
        x = self.ln2(x + self.ffn2(F.relu(self.ffn1(x))))
        return self.out(x.flatten(1))


class SepConvBlock(nn.Module):
    """tsai separable ConvBlock: depthwise conv (groups = c_in, no bias) + pointwise 1x1 (no bias) + BN."""

    def __init__(self, c_in, c_out, k):
        super().__init__()
        self.depthwise = nn.Conv1d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=False)
        self.pointwise = nn.Conv1d(c_in, c_out, 1, bias=False)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x):
        return self.bn(self.pointwise(self.depthwise(x)))


class ResCnnContrastive(nn.Module):
    """seeds-spec §4.3: tsai ResCNN(c_in=1, separable=True) encoder + 4-layer projection head, 128-d."""

    def __init__(self, dim=128):
        super().__init__()
        self.block1a = SepConvBlock(1, 64, 7)
        self.block1b = SepConvBlock(64, 64, 5)
        self.block1c = SepConvBlock(64, 64, 3)
        self.shortcut = nn.Sequential(nn.Conv1d(1, 64, 1, bias=False), nn.BatchNorm1d(64))
        self.block2 = SepConvBlock(64, 128, 3)
        self.block3 = SepConvBlock(128, 256, 3)
        self.prelu = nn.PReLU()
        self.block4 = SepConvBlock(256, 128, 3)
        layers = []
        for _ in range(4):
            lin = nn.Linear(128, dim, bias=False)
            nn.init.xavier_uniform_(lin.weight)
            layers += [lin, nn.BatchNorm1d(dim), nn.ReLU()]
        out = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(out.weight)
        self.head = nn.Sequential(*layers, out)
        self.register_buffer("center", torch.full((dim,), 0.1))

    def encoder(self, x):  # (B, 1, L) -> (B, 128)
        r = self.block1c(F.relu(self.block1b(F.relu(self.block1a(x)))))
        x = F.relu(r + self.shortcut(x))
        x = F.leaky_relu(self.block2(x), 0.2)
        x = self.prelu(self.block3(x))
        x = F.elu(self.block4(x), 0.3)
        return x.mean(dim=2)

    def encode(self, x):  # unnormalised embedding (Deep SAD, centre, inference)
        return self.head(self.encoder(x))

    def forward(self, x):  # Deep SAD score: squared distance to the centre
        return ((self.encode(x) - self.center) ** 2).sum(dim=1)


# Augmentations of seeds-spec §4.4 as nadir's deepsad.rs does them, one sample at a time in
# numpy (as a Dataset's __getitem__ would): outlier exposure with p = 0.5 (noise, reversal,
# permutation, inversion), then two views of {time scaling, jitter, 5-segment permutation}
# each followed by a random crop (10-100 %) stretched back over the whole length.
def shift_distribution(x, rng):
    lo, hi = x.min(), x.max()
    kind = rng.integers(4)
    if kind == 0:
        amp = 0.05 * max(hi - lo, np.finfo(np.float32).eps)
        return np.clip(x + rng.uniform(-amp, amp, x.shape).astype(np.float32), lo, hi)
    if kind == 1:
        return x[::-1].copy()
    if kind == 2:
        return x[rng.permutation(len(x))]
    return lo + hi - x


def view_of(x, rng):
    n = len(x)
    lo, hi = x.min(), x.max()
    kind = rng.integers(3)
    if kind == 0:
        at = np.arange(n, dtype=np.float32) / rng.uniform(0.8, 1.2)
        out = np.interp(at, np.arange(n), x, right=0.0).astype(np.float32)
    elif kind == 1:
        sigma = 0.02 * max(hi - lo, np.finfo(np.float32).eps)
        out = np.clip(x + sigma * rng.standard_normal(n).astype(np.float32), lo, hi)
    else:
        segments = np.array_split(x, 5)
        out = np.concatenate([segments[i] for i in rng.permutation(5)])
    crop = min(max(int(round(rng.uniform(0.1, 1.0) * n)), 2), n)
    start = rng.integers(0, n - crop + 1)
    cropped = out[start : start + crop]
    return np.interp(np.arange(n) * ((crop - 1) / (n - 1)), np.arange(crop), cropped).astype(np.float32)


def two_views(x, rng, outlier_exposure=0.5):
    if rng.random() < outlier_exposure:
        x = shift_distribution(x, rng)
    return view_of(x, rng), view_of(x, rng)


def nt_xent(z, temperature):
    """SimCLR NT-Xent over 2N views (first views, then second views), as nadir's `nt_xent`."""
    rows = z.shape[0]
    z = F.normalize(z, dim=1, eps=1e-12)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(rows, dtype=torch.bool), -1e9)
    target = (torch.arange(rows) + rows // 2) % rows
    return F.cross_entropy(sim, target)


def pretrain_ldpi(net, x, epochs, batch_size=64, temperature=0.2, seed=1):
    """One SimCLR run like nadir's `pretrain_encoder`: Adam 1e-3, drop a 1-sample tail."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    augment_s = 0.0
    n = len(x)
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2:
                continue
            t0 = time.perf_counter()
            pairs = [two_views(x[j], rng) for j in idx]
            views = np.stack([p[0] for p in pairs] + [p[1] for p in pairs])[:, None, :]
            augment_s += time.perf_counter() - t0
            opt.zero_grad()
            loss = nt_xent(net.encode(torch.from_numpy(views)), temperature)
            if not math.isfinite(loss.item()):
                raise SystemExit("diverged")
            loss.backward()
            opt.step()
    return augment_s


def build(model):
    """The network, one sample's shape and the published batch size."""
    if model == "cnn-lstm":
        return CnnLstm(), (6, 128), 64
    if model == "ldpi":
        return ResCnnContrastive(), (1, 240), 64
    if model == "llaformer":
        return Llaformer(), (1, 89), 128
    if model == "lln":
        return Lln(), (8, 100), 32
    if model == "autoencoder":
        return Autoencoder(), (64,), 256
    if model.startswith("hybrid-"):
        steps = int(model.split("-")[1])
        return Hybrid(steps=steps), (steps, 10), 64
    return Hybrid(), (1, 10), 64


def loss_fn(model, net_out, x, y):
    if model == "cnn-lstm":
        return F.cross_entropy(net_out, y)
    if model == "autoencoder":
        return F.mse_loss(net_out, x)
    return F.binary_cross_entropy_with_logits(net_out.squeeze(1), y.float())


class Scored(nn.Module):
    """The network plus what nadir computes after it to score a sample: softmax, sigmoid, or the
    autoencoder's mean squared reconstruction error (LDPI's network already ends in its score)."""

    def __init__(self, net, model):
        super().__init__()
        self.net, self.model = net, model

    def forward(self, x):
        out = self.net(x)
        if self.model == "cnn-lstm":
            return torch.softmax(out, dim=1)
        if self.model == "autoencoder":
            return ((out - x) ** 2).mean(dim=1)
        if self.model == "ldpi":
            return out
        return torch.sigmoid(out)


def export_onnx(net, x, path):
    """The eval-mode model as ONNX with a dynamic batch axis (TorchScript exporter, opset 17)."""
    net.eval()
    kwargs = dict(input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                  opset_version=17)
    try:
        torch.onnx.export(net, (x,), path, dynamo=False, **kwargs)
    except TypeError:  # a torch without the dynamo switch
        torch.onnx.export(net, (x,), path, **kwargs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True,
                    help="llaformer, lln, hybrid, hybrid-K, autoencoder, ldpi or cnn-lstm")
    ap.add_argument("--phase", choices=["train", "pretrain", "infer-1024", "infer-1"], required=True)
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jit", action="store_true", help="score through torch.jit.trace")
    ap.add_argument("--export", metavar="FILE", help="write the model as ONNX and exit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net, sample_shape, batch_size = build(args.model)
    if args.export:
        export_onnx(Scored(net, args.model), torch.rand(2, *sample_shape), args.export)
        return

    extra = {}
    if args.phase == "pretrain":
        x = np.random.default_rng(1).random((args.samples, sample_shape[1]), dtype=np.float32)
        start = time.perf_counter()
        augment_s = pretrain_ldpi(net, x, args.epochs)
        seconds = time.perf_counter() - start
        rate = args.samples * args.epochs / seconds
        extra["augment_share"] = round(augment_s / seconds, 3)
    elif args.phase == "train":
        x = torch.rand(args.samples, *sample_shape) * 2 - 1
        # The autoencoder learns from benign (class 0) rows only, as nadir's does.
        classes = 1 if args.model == "autoencoder" else 2
        y = torch.arange(args.samples) % classes
        vx = torch.rand(256, *sample_shape) * 2 - 1
        vy = torch.arange(256) % classes
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8 if args.model == "cnn-lstm" else 1e-7)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=10) if args.model == "cnn-lstm" else None
        start = time.perf_counter()
        for _ in range(args.epochs):
            net.train()
            order = torch.randperm(args.samples)
            for i in range(0, args.samples, batch_size):
                idx = order[i : i + batch_size]
                if len(idx) < 2:
                    continue
                opt.zero_grad()
                loss = loss_fn(args.model, net(x[idx]), x[idx], y[idx])
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise SystemExit("diverged")
                loss.backward()
                if args.model == "cnn-lstm":
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
            net.eval()
            with torch.no_grad():
                val_loss = loss_fn(args.model, net(vx), vx, vy).item()
            if sched is not None:
                sched.step(val_loss)
        rate = args.samples * args.epochs / (time.perf_counter() - start)
    else:
        batch = 1 if args.phase == "infer-1" else 1024
        scorer = Scored(net, args.model).eval()
        x = torch.rand(batch, *sample_shape) * (1 if args.model == "ldpi" else 2) - (0 if args.model == "ldpi" else 1)
        if args.jit:
            with torch.no_grad():
                scorer = torch.jit.freeze(torch.jit.trace(scorer, x))
                scorer(x)
        with torch.inference_mode():
            scorer(x)
            calls = 0
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                scorer(x)
                calls += 1
            rate = calls * batch / (time.perf_counter() - start)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch-jit" if args.jit else "pytorch", "model": args.model,
                      "phase": args.phase, "samples_per_s": round(rate, 1),
                      "peak_rss_mib": round(peak_mib, 1), "torch": torch.__version__, **extra}))


if __name__ == "__main__":
    main()
