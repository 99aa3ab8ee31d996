"""PyTorch peers of nadir's `cnn-lstm` (seeds-spec §5.1) and `hybrid` (§3.2) for bench/models/run.sh.

Same layers, sizes, batch sizes, optimiser, clipping, scheduler and validation pass as
`crates/nadir-model/examples/bench_models.rs`; one model and one phase per process; prints one
JSON line like the Rust side.
"""

import argparse
import json
import math
import resource
import time

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


def build(model):
    if model == "cnn-lstm":
        return CnnLstm(), (6, 128), 64
    return Hybrid(), (1, 10), 64


def loss_fn(model, logits, y):
    if model == "cnn-lstm":
        return F.cross_entropy(logits, y)
    return F.binary_cross_entropy_with_logits(logits.squeeze(1), y.float())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["cnn-lstm", "hybrid"], required=True)
    ap.add_argument("--phase", choices=["train", "infer-1024", "infer-1"], required=True)
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    net, sample_shape, batch_size = build(args.model)

    if args.phase == "train":
        x = torch.rand(args.samples, *sample_shape) * 2 - 1
        y = torch.arange(args.samples) % 2
        vx = torch.rand(256, *sample_shape) * 2 - 1
        vy = torch.arange(256) % 2
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
                loss = loss_fn(args.model, net(x[idx]), y[idx])
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise SystemExit("diverged")
                loss.backward()
                if args.model == "cnn-lstm":
                    nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
            net.eval()
            with torch.no_grad():
                val_loss = loss_fn(args.model, net(vx), vy).item()
            if sched is not None:
                sched.step(val_loss)
        rate = args.samples * args.epochs / (time.perf_counter() - start)
    else:
        batch = 1 if args.phase == "infer-1" else 1024
        net.eval()
        x = torch.rand(batch, *sample_shape) * 2 - 1
        with torch.inference_mode():
            net(x)
            calls = 0
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                scores = net(x)
                if args.model == "cnn-lstm":
                    torch.softmax(scores, dim=1)
                else:
                    torch.sigmoid(scores)
                calls += 1
            rate = calls * batch / (time.perf_counter() - start)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "pytorch", "model": args.model, "phase": args.phase,
                      "samples_per_s": round(rate, 1), "peak_rss_mib": round(peak_mib, 1),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
