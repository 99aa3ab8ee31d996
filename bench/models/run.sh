#!/usr/bin/env bash
# Training and inference throughput of nadir's `cnn-lstm` (C=6, L=128, 2 classes) and `hybrid`
# (F=10, sequence length 1), and LDPI's Deep SAD scoring and SimCLR pretraining (240 bytes,
# seeds-spec §4.3-4.5), beside the same models in PyTorch, in the same run, on 2 CPU threads.
# Each (model, phase) runs ROUNDS times, nadir and PyTorch alternating; prints the median
# samples/s, nadir/PyTorch ratios against the targets, and the highest peak RSS per process.
#
#   bench/models/run.sh                 # full run
#   SECONDS_PER_INFER=2 SAMPLES=1024 bench/models/run.sh   # quicker
#   MODELS=ldpi ROUNDS=3 bench/models/run.sh               # LDPI only (issue 18)
#   RESULTS=rows.jsonl ...                                  # keep every process's JSON line
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/bench/.venv-models"
threads="${THREADS:-2}"
samples="${SAMPLES:-4096}"
epochs="${EPOCHS:-2}"
infer_seconds="${SECONDS_PER_INFER:-5}"
models="${MODELS:-cnn-lstm hybrid ldpi}"
rounds="${ROUNDS:-1}"
# SimCLR pretraining: samples (random [0, 1] vectors of 240) and epochs (one: the target is
# per epoch); PyTorch's eager ResCNN runs tens of samples/s on 2 threads, so fewer than SAMPLES.
ldpi_samples="${LDPI_SAMPLES:-1024}"
ldpi_epochs="${LDPI_EPOCHS:-1}"

# PyTorch from PyPI into a private venv (first run downloads ~1-3 GB).
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "$venv/bin/pip" install --quiet torch numpy
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
    trap 'rm -f "$results"' EXIT
fi
for model in $models; do
    if [ "$model" = ldpi ]; then
        phases=(pretrain infer-1024 infer-1)
    else
        phases=(train infer-1024 infer-1)
    fi
    for phase in "${phases[@]}"; do
        if [ "$model" = ldpi ]; then
            common=(--model "$model" --phase "$phase" --samples "$ldpi_samples" --epochs "$ldpi_epochs" --seconds "$infer_seconds")
        else
            common=(--model "$model" --phase "$phase" --samples "$samples" --epochs "$epochs" --seconds "$infer_seconds")
        fi
        for _ in $(seq "$rounds"); do
            "$nadir_bin" "${common[@]}" >>"$results"
            "$venv/bin/python" "$here/torch_models.py" "${common[@]}" --threads "$threads" >>"$results"
            # LDPI at batch 1: also PyTorch through torch.jit.trace (+ freeze).
            if [ "$model" = ldpi ] && [ "$phase" = infer-1 ]; then
                "$venv/bin/python" -W ignore "$here/torch_models.py" "${common[@]}" --threads "$threads" --jit >>"$results"
            fi
        done
    done
done

"$venv/bin/python" - "$results" $models <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
models = sys.argv[2:]
runs = {}
for r in rows:
    runs.setdefault((r["impl"], r["model"], r["phase"]), []).append(r)
def median(key):
    return statistics.median(r["samples_per_s"] for r in runs[key])
def rss(key):
    return max(r["peak_rss_mib"] for r in runs[key])
# LDPI: Deep SAD scoring 1.5x at batch 1024, 3x at batch 1, pretraining 1.0x (issue 18).
targets = {"train": 1.0, "infer-1024": 1.0, "infer-1": 3.0, "pretrain": 1.0}
ldpi_targets = {"infer-1024": 1.5}
torch_version = next((r.get("torch") for r in rows if r.get("torch")), "?")
rounds = max(len(v) for v in runs.values())
print(f"\nnadir (burn-flex) vs PyTorch {torch_version}, 2 threads, samples/s (higher is better), median of {rounds} round(s)")
print(f"{'model':9} {'phase':11} {'peer':12} {'nadir':>10} {'pytorch':>10} {'ratio':>7} {'target':>7} {'ok':>3} {'rss nadir':>10} {'rss torch':>10}")
failed = total = 0
for model in models:
    phases = ("pretrain", "infer-1024", "infer-1") if model == "ldpi" else ("train", "infer-1024", "infer-1")
    for phase in phases:
        nkey = ("nadir", model, phase)
        peers = [p for p in ("pytorch", "pytorch-jit") if (p, model, phase) in runs]
        target = ldpi_targets.get(phase, targets[phase]) if model == "ldpi" else targets[phase]
        # The target is judged against the fastest PyTorch variant.
        best = max(peers, key=lambda p: median((p, model, phase)))
        for peer in peers:
            tkey = (peer, model, phase)
            ratio = median(nkey) / median(tkey)
            judged = peer == best
            ok = ratio >= target
            if judged:
                total += 1
                failed += not ok
            print(f"{model:9} {phase:11} {peer:12} {median(nkey):10.1f} {median(tkey):10.1f} {ratio:6.2f}x {target:6.1f}x {('yes' if ok else 'NO') if judged else '-':>3} "
                  f"{rss(nkey):8.1f}Mi {rss(tkey):8.1f}Mi")
        share = [r["augment_share"] for r in runs.get(("pytorch", model, phase), []) if "augment_share" in r]
        if share:
            print(f"{'':21} PyTorch spent {statistics.median(share):.1%} of its pretraining time in the numpy augmentations")
print(f"\n{total - failed}/{total} targets met")
EOF
