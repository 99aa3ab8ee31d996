#!/usr/bin/env python3
"""The Python peer of `nadir detect` for bench/detect/run.sh: capture -> NFStream flows with
statistical features -> standard scaling -> the same model in PyTorch -> thresholded verdicts
written as JSON lines, streamed in batches of --batch flows, one process (plus NFStream's meter).

  nfstream_torch.py CAPTURE --model hybrid|autoencoder --out FILE.jsonl [--all]

Throughput only: the weights are random (seeded) and the scaler and the threshold are fitted on
the first batch of the capture itself (a fixed affine map and a fixed number afterwards, which
costs the same as ones fitted on training data). The verdicts mean nothing.
The summary goes to stderr in the lines run.sh parses (`packets read`, `flows`, `anomalies`).
"""

import argparse
import json
import os
import resource
import sys
import time
from operator import itemgetter

import numpy as np
import torch
import torch.nn as nn
from nfstream import NFStreamer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from torch_models import Hybrid  # noqa: E402  (bench/models: nadir's hybrid in PyTorch)

# The model inputs: every numeric statistic NFStream's statistical_analysis gives a flow, plus the
# protocol and the destination port (CIC tables keep both), without identifiers (addresses, MACs,
# ids, VLAN/tunnel ids) and absolute timestamps (*_first_seen_ms, *_last_seen_ms).
IDENT = ("id", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
         "bidirectional_first_seen_ms", "bidirectional_last_seen_ms",
         "bidirectional_packets", "bidirectional_bytes")
LEADING = ("protocol", "dst_port")


def feature_names(keys):
    start = keys.index("bidirectional_duration_ms")
    end = keys.index("dst2src_fin_packets") + 1
    stats = [k for k in keys[start:end] if not k.endswith(("_first_seen_ms", "_last_seen_ms"))]
    return list(LEADING) + stats


class Autoencoder(nn.Module):
    """nadir's autoencoder defaults (crates/nadir-model/src/config.rs AutoencoderConfig):
    no hidden layers, code 10 with ReLU, linear decoder output; score = mean squared
    reconstruction error per flow."""

    def __init__(self, features, code=10):
        super().__init__()
        self.enc = nn.Linear(features, code)
        self.dec = nn.Linear(code, features)

    def forward(self, x):  # (B, F)
        return self.dec(torch.relu(self.enc(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--model", choices=["hybrid", "autoencoder"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--all", action="store_true", help="write every flow, not only alerts")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dissections", type=int, default=0,
                    help="NFStream n_dissections (nDPI packets per flow); 0 = no DPI")
    ap.add_argument("--quantile", type=float, default=0.99,
                    help="threshold = this quantile of the first batch's scores")
    args = ap.parse_args()

    start = time.perf_counter()  # after the imports (import torch is ~1-2 s, counted by run.sh)
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    streamer = NFStreamer(source=args.capture, statistical_analysis=True, n_meters=1,
                          n_dissections=args.dissections)

    state = {"net": None, "mean": None, "std": None, "threshold": None}
    counts = {"flows": 0, "packets": 0, "anomalies": 0, "written": 0}
    out = open(args.out, "w", buffering=1 << 20)

    def score(x):
        xt = torch.from_numpy(x)
        if args.model == "hybrid":
            return torch.sigmoid(state["net"](xt.unsqueeze(1))).squeeze(1).numpy()
        return ((state["net"](xt) - xt) ** 2).mean(dim=1).numpy()

    def flush(rows, idents):
        x = np.asarray(rows, dtype=np.float64)
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if state["net"] is None:  # first batch: fit the scaler and the threshold, build the model
            state["mean"] = x.mean(axis=0)
            std = x.std(axis=0)
            state["std"] = np.where(std > 0, std, 1.0)
            f = x.shape[1]
            net = Hybrid(features=f, steps=1) if args.model == "hybrid" else Autoencoder(f)
            state["net"] = net.eval()
        x = ((x - state["mean"]) / state["std"]).astype(np.float32)
        with torch.inference_mode():
            s = score(x)
        if state["threshold"] is None:
            state["threshold"] = float(np.quantile(s, args.quantile))
        thr = state["threshold"]
        flagged = s >= thr
        counts["anomalies"] += int(flagged.sum())
        write = np.ones_like(flagged) if args.all else flagged
        for i in np.flatnonzero(write):
            fid, sip, sport, dip, dport, proto, first, last, pkts, nbytes = idents[i]
            out.write(json.dumps({
                "flow_id": f"{sip}-{dip}-{sport}-{dport}-{proto}", "nfstream_id": fid,
                "src_ip": sip, "src_port": sport, "dst_ip": dip, "dst_port": dport,
                "protocol": proto, "start_ms": first, "end_ms": last, "packets": pkts,
                "bytes": nbytes, "score": float(s[i]), "threshold": thr,
                "verdict": "anomaly" if flagged[i] else "benign"}) + "\n")
            counts["written"] += 1

    names = pick = ident = packets_at = None
    rows, idents = [], []
    for flow in streamer:
        if pick is None:
            keys = flow.keys()
            names = feature_names(keys)
            pick = itemgetter(*[keys.index(n) for n in names])
            ident = itemgetter(*[keys.index(n) for n in IDENT])
            packets_at = keys.index("bidirectional_packets")
        values = flow.values()
        rows.append(pick(values))
        idents.append(ident(values))
        counts["flows"] += 1
        counts["packets"] += values[packets_at]
        if len(rows) == args.batch:
            flush(rows, idents)
            rows, idents = [], []
    if rows:
        flush(rows, idents)
    out.close()

    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    width = len(names) if names else 0
    print(f"detect: {args.model} (PyTorch {torch.__version__}, NFStream statistical features, "
          f"{width} inputs), threshold {state['threshold']} (q{args.quantile} of the first batch)",
          file=sys.stderr)
    print(f"  packets read {counts['packets']} (packets in NFStream flows)", file=sys.stderr)
    print(f"  flows {counts['flows']} = scored {counts['flows']} + unscorable 0", file=sys.stderr)
    print(f"  anomalies {counts['anomalies']} of {counts['flows']} scored; "
          f"{counts['written']} records to {args.out}; 0 explained", file=sys.stderr)
    print(f"  {seconds:.3f} s after imports, main-process peak RSS {peak:.1f} MiB", file=sys.stderr)


if __name__ == "__main__":
    main()
