#!/usr/bin/env bash
# Training and inference throughput of every nadir family at its published input shape
# (seeds-spec; `bench_models.rs` names each shape), plus the hybrid over 8 steps, beside the same
# models in PyTorch (eager; `torch.jit.trace` + freeze at batch 1) and in ONNX Runtime (exported
# from the same PyTorch model), and nadir's gbdt beside scikit-learn's HistGradientBoosting; all
# in the same run, on 2 threads. Each (model, phase) runs ROUNDS times, the implementations
# alternating; prints median samples/s, nadir / fastest-peer ratios against the targets, and the
# highest peak RSS per implementation.
#
#   bench/models/run.sh                                     # every family, one round
#   ROUNDS=3 bench/models/run.sh                            # medians of 3 (the README's figures)
#   MODELS="hybrid hybrid-8" SECONDS_PER_INFER=2 bench/models/run.sh   # a quick subset
#   RESULTS=rows.jsonl ...                                  # keep every process's JSON line
#   PHASES="infer-1024 infer-1" ...                         # only these phases
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/bench/.venv-models"
threads="${THREADS:-2}"
samples="${SAMPLES:-4096}"
epochs="${EPOCHS:-2}"
infer_seconds="${SECONDS_PER_INFER:-5}"
models="${MODELS:-llaformer lln hybrid hybrid-8 autoencoder cnn-lstm ldpi gbdt}"
rounds="${ROUNDS:-1}"
# SimCLR pretraining: samples (random [0, 1] vectors of 240) and epochs (one: the target is
# per epoch); PyTorch's eager ResCNN runs tens of samples/s on 2 threads, so fewer than SAMPLES.
ldpi_samples="${LDPI_SAMPLES:-1024}"
ldpi_epochs="${LDPI_EPOCHS:-1}"

# PyTorch from PyPI into a private venv (first run downloads ~1-3 GB).
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch, onnx, onnxscript, onnxruntime, sklearn" 2>/dev/null; then
    "$venv/bin/pip" install --quiet torch numpy onnx onnxscript onnxruntime scikit-learn
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# BENCH_MODELS=path uses a bench_models binary built already (e.g. by a workspace release build:
# building nadir-model alone unifies features differently and rebuilds burn, so the release
# build names nadir too).
# NADIR_BENCH_PROFILE=dev-opt builds with the dev profile at opt-level 2 (reuses a test build's
# dependencies; for quick checks), otherwise the release profile.
if [ -n "${BENCH_MODELS:-}" ]; then
    nadir_bin="$BENCH_MODELS"
elif [ "${NADIR_BENCH_PROFILE:-release}" = dev-opt ]; then
    (cd "$root" && cargo --config 'profile.dev.opt-level=2' --config 'profile.dev.debug=0' \
        --config 'profile.dev.package."*".debug-assertions=false' \
        --config 'profile.dev.package."*".overflow-checks=false' \
        build -p nadir-model --example bench_models)
    nadir_bin="$CARGO_TARGET_DIR/debug/examples/bench_models"
else
    (cd "$root" && cargo build --release -p nadir -p nadir-model --example bench_models)
    nadir_bin="$CARGO_TARGET_DIR/release/examples/bench_models"
fi

# Same thread budget for both: rayon (burn-flex) and OpenMP/intra-op (PyTorch, not spinning).
export RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export OMP_WAIT_POLICY=PASSIVE

# RESULTS=path keeps the raw JSON lines (one per process).
if [ -n "${RESULTS:-}" ]; then
    results="$RESULTS"
    : >"$results"
else
    results="$(mktemp)"
fi
# The ONNX models, exported once from the PyTorch networks.
onnx_dir="$(mktemp -d)"
trap 'rm -rf "$onnx_dir"; [ -n "${RESULTS:-}" ] || rm -f "$results"' EXIT
py="$venv/bin/python"
for model in $models; do
    if [ "$model" != gbdt ]; then
        "$py" -W ignore "$here/torch_models.py" --model "$model" --phase infer-1 --export "$onnx_dir/$model.onnx"
    fi
done

for model in $models; do
    if [ "$model" = ldpi ]; then
        phases=(pretrain infer-1024 infer-1)
    else
        phases=(train infer-1024 infer-1)
    fi
    for phase in "${phases[@]}"; do
        if [ -n "${PHASES:-}" ] && [[ " $PHASES " != *" $phase "* ]]; then
            continue
        fi
        if [ "$model" = ldpi ]; then
            common=(--model "$model" --phase "$phase" --samples "$ldpi_samples" --epochs "$ldpi_epochs" --seconds "$infer_seconds")
        else
            common=(--model "$model" --phase "$phase" --samples "$samples" --epochs "$epochs" --seconds "$infer_seconds")
        fi
        for _ in $(seq "$rounds"); do
            "$nadir_bin" "${common[@]}" >>"$results"
            if [ "$model" = gbdt ]; then
                "$py" "$here/sklearn_gbdt.py" "${common[@]}" >>"$results"
                continue
            fi
            "$py" "$here/torch_models.py" "${common[@]}" --threads "$threads" >>"$results"
            case "$phase" in
            infer-*)
                "$py" "$here/ort_models.py" "${common[@]}" --threads "$threads" --onnx "$onnx_dir/$model.onnx" >>"$results"
                if [ "$phase" = infer-1 ]; then
                    "$py" -W ignore "$here/torch_models.py" "${common[@]}" --threads "$threads" --jit >>"$results"
                fi
                ;;
            esac
        done
    done
done

"$py" - "$results" "$threads" $models <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
threads = sys.argv[2]
models = sys.argv[3:]
runs = {}
for r in rows:
    runs.setdefault((r["impl"], r["model"], r["phase"]), []).append(r)
def median(key):
    return statistics.median(r["samples_per_s"] for r in runs[key])
def rss(key):
    return max(r["peak_rss_mib"] for r in runs[key])
# Issue 17: at least the fastest peer at batch 1024 and batch 1, at least PyTorch in training.
targets = {"train": 1.0, "infer-1024": 1.0, "infer-1": 1.0, "pretrain": 1.0}
versions = {k: next((r[k] for r in rows if r.get(k)), "?") for k in ("torch", "onnxruntime", "sklearn")}
rounds = max(len(v) for v in runs.values())
print(f"\nnadir (burn-flex) vs PyTorch {versions['torch']}, ONNX Runtime {versions['onnxruntime']}, "
      f"scikit-learn {versions['sklearn']}; {threads} threads; samples/s (higher is better), median of {rounds} round(s)")
print(f"{'model':11} {'phase':11} {'peer':12} {'nadir':>10} {'peer':>10} {'ratio':>7} {'target':>7} {'ok':>3} {'rss nadir':>10} {'rss peer':>10}")
failed = total = 0
for model in models:
    phases = ("pretrain", "infer-1024", "infer-1") if model == "ldpi" else ("train", "infer-1024", "infer-1")
    for phase in phases:
        nkey = ("nadir", model, phase)
        peers = [p for p in ("pytorch", "pytorch-jit", "onnxruntime", "sklearn") if (p, model, phase) in runs]
        if nkey not in runs or not peers:
            continue
        target = targets[phase]
        # The target is judged against the fastest peer.
        best = max(peers, key=lambda p: median((p, model, phase)))
        for peer in peers:
            tkey = (peer, model, phase)
            ratio = median(nkey) / median(tkey)
            judged = peer == best
            ok = ratio >= target
            if judged:
                total += 1
                failed += not ok
            print(f"{model:11} {phase:11} {peer:12} {median(nkey):10.1f} {median(tkey):10.1f} {ratio:6.2f}x {target:6.1f}x {('yes' if ok else 'NO') if judged else '-':>3} "
                  f"{rss(nkey):8.1f}Mi {rss(tkey):8.1f}Mi")
        share = [r["augment_share"] for r in runs.get(("pytorch", model, phase), []) if "augment_share" in r]
        if share:
            print(f"{'':23} PyTorch spent {statistics.median(share):.1%} of its pretraining time in the numpy augmentations")
print(f"\n{total - failed}/{total} targets met")
EOF
