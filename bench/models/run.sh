#!/usr/bin/env bash
# Training and inference throughput of nadir's `cnn-lstm` (C=6, L=128, 2 classes) and `hybrid`
# (F=10, sequence length 1) beside the same models in PyTorch, in the same run, on 2 CPU threads.
# Prints samples/s, nadir/PyTorch ratios against the targets, and peak RSS per process.
#
#   bench/models/run.sh                 # full run
#   SECONDS_PER_INFER=2 SAMPLES=1024 bench/models/run.sh   # quicker
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/bench/.venv-models"
threads="${THREADS:-2}"
samples="${SAMPLES:-4096}"
epochs="${EPOCHS:-2}"
infer_seconds="${SECONDS_PER_INFER:-5}"

# PyTorch from PyPI into a private venv (first run downloads ~1-3 GB).
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "$venv/bin/pip" install --quiet torch
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# BENCH_MODELS=path uses a bench_models binary built already (e.g. by a workspace release build:
# building nadir-model alone unifies features differently and rebuilds burn).
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
    (cd "$root" && cargo build --release -p nadir-model --example bench_models)
    nadir_bin="$CARGO_TARGET_DIR/release/examples/bench_models"
fi

# Same thread budget for both: rayon (burn-flex) and OpenMP/intra-op (PyTorch, not spinning).
export RAYON_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
export OMP_WAIT_POLICY=PASSIVE

results="$(mktemp)"
trap 'rm -f "$results"' EXIT
for model in cnn-lstm hybrid; do
    for phase in train infer-1024 infer-1; do
        common=(--model "$model" --phase "$phase" --samples "$samples" --epochs "$epochs" --seconds "$infer_seconds")
        "$nadir_bin" "${common[@]}" >>"$results"
        "$venv/bin/python" "$here/torch_models.py" "${common[@]}" --threads "$threads" >>"$results"
    done
done

"$venv/bin/python" - "$results" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
by = {(r["impl"], r["model"], r["phase"]): r for r in rows}
targets = {"train": 1.0, "infer-1024": 1.0, "infer-1": 3.0}
torch_version = next((r.get("torch") for r in rows if r.get("torch")), "?")
print(f"\nnadir (burn-flex) vs PyTorch {torch_version}, 2 threads, samples/s (higher is better)")
print(f"{'model':9} {'phase':11} {'nadir':>10} {'pytorch':>10} {'ratio':>7} {'target':>7} {'ok':>3} {'rss nadir':>10} {'rss torch':>10}")
failed = 0
for model in ("cnn-lstm", "hybrid"):
    for phase in ("train", "infer-1024", "infer-1"):
        n, t = by[("nadir", model, phase)], by[("pytorch", model, phase)]
        ratio = n["samples_per_s"] / t["samples_per_s"]
        ok = ratio >= targets[phase]
        failed += not ok
        print(f"{model:9} {phase:11} {n['samples_per_s']:10.1f} {t['samples_per_s']:10.1f} {ratio:6.2f}x {targets[phase]:6.1f}x {'yes' if ok else 'NO':>3} "
              f"{n['peak_rss_mib']:8.1f}Mi {t['peak_rss_mib']:8.1f}Mi")
print(f"\n{6 - failed}/6 targets met")
EOF
