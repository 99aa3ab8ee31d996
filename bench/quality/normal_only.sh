#!/usr/bin/env bash
# Learning from normal traffic only (issue 18): Deep SAD (LDPI encoder, SimCLR pretraining)
# and the autoencoder, trained on benign rows, tested on attacks never seen in training.
#
#   bench/quality/normal_only.sh                 # Kubernetes dev split and NSL-KDD
#   SETS=k8s MODES=deepsad bench/quality/normal_only.sh
#
# - k8s: ../shared/data/k8s-misuse-dev/dev.csv. Its benign rows (the earliest 70 % of the
#   benign capture) are split by time: earliest 70 % train, next 15 % validation (the
#   threshold: 99th percentile of their scores), latest 15 % test. All five attack scenarios
#   are test anomalies; each is reported against the held-out benign rows (ROC-AUC with a
#   95 % bootstrap interval, recall at the threshold and at 1 % FPR).
# - nsl-kdd: KDDTrain+ normal rows (MAX_TRAIN_ROWS of them, default 10000: CPU time),
#   threshold from a validation split of KDDTrain+ normal rows, scored on all of KDDTest+.
#
# Env: SETS (k8s nsl-kdd), MODES (deepsad autoencoder), EPOCHS (overrides bench/quality/deepsad.toml),
# MAX_TRAIN_ROWS, SEED, OUT (default bench/out/normal-only), DATA (../shared/data), NADIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/normal-only}
SETS=${SETS:-"k8s nsl-kdd"}
MODES=${MODES:-"deepsad autoencoder"}
SEED=${SEED:-42}
MAX_TRAIN_ROWS=${MAX_TRAIN_ROWS:-10000}
mkdir -p "$OUT"

# NADIR=path/to/nadir skips the (release) build.
if [[ -z "${NADIR:-}" ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
  cargo build --release -p nadir --bin nadir
  NADIR="$CARGO_TARGET_DIR/release/nadir"
fi

config=bench/quality/deepsad.toml

run() { # set mode -> trains, evaluates, prints the per-attack-type table
  local set=$1 mode=$2 bundle="$OUT/$1-$2.nadir"
  local args=(train --mode "$mode" --seed "$SEED" --quiet -o "$bundle")
  [[ $mode == deepsad ]] && args+=(--config "$config")
  [[ -n "${EPOCHS:-}" ]] && args+=(--epochs "$EPOCHS")
  case $set in
    k8s) args+=(--data "$DATA/k8s-misuse-dev/dev.csv" --split time) ;;
    nsl-kdd) args+=(--data "$DATA/nsl-kdd/KDDTrain+.txt.gz" --test "$DATA/nsl-kdd/KDDTest+.txt.gz"
                    --max-train-rows "$MAX_TRAIN_ROWS") ;;
  esac
  echo "=== $set, $mode" >&2
  local start
  start=$(date +%s)
  "$NADIR" "${args[@]}" >"$OUT/$set-$mode.txt"
  echo "    $(( $(date +%s) - start )) s; report $OUT/$set-$mode.txt" >&2
  python3 bench/quality/per_attack_table.py "$bundle.report/evaluation.json" "$set, $mode"
}

for set in $SETS; do
  for mode in $MODES; do
    run "$set" "$mode"
  done
done
