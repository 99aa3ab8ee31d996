"""ONNX Runtime peer for bench/models/run.sh: scores an ONNX model exported by
`torch_models.py --export` (the same PyTorch network) at batch 1024 or 1, on `--threads`
intra-op threads (one inter-op thread, sequential execution, all graph optimisations), and
prints one JSON line like the other implementations. Imports no torch, so the peak RSS is
ONNX Runtime's own.
"""

import argparse
import json
import resource
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--phase", choices=["infer-1024", "infer-1"], required=True)
    ap.add_argument("--onnx", required=True, help="the exported model")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    args, _ = ap.parse_known_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(args.onnx, opts, providers=["CPUExecutionProvider"])
    sample_shape = session.get_inputs()[0].shape[1:]
    batch = 1 if args.phase == "infer-1" else 1024
    rng = np.random.default_rng(3)
    lo = 0.0 if args.model == "ldpi" else -1.0
    x = rng.uniform(lo, 1.0, (batch, *sample_shape)).astype(np.float32)
    feed = {"x": x}

    session.run(None, feed)
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        session.run(None, feed)
        calls += 1
    rate = calls * batch / (time.perf_counter() - start)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "onnxruntime", "model": args.model, "phase": args.phase,
                      "samples_per_s": round(rate, 1), "peak_rss_mib": round(peak_mib, 1),
                      "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
