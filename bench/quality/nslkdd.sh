#!/usr/bin/env bash
# NSL-KDD, binary: every model family trained on KDDTrain+ only (threshold chosen
# on a validation split of KDDTrain+), scored on KDDTest+; prints one table with
# 95% bootstrap confidence intervals.
#
#   bench/quality/nslkdd.sh                      # all families, published epochs
#   FAMILIES="hybrid llaformer" EPOCHS=5 MAX_TRAIN_ROWS=20000 bench/quality/nslkdd.sh
#
# Env: FAMILIES (default: all six), EPOCHS, MAX_TRAIN_ROWS, LOG=1 (signed log before
# scaling), THRESHOLD (default
# fixed:0.5; the autoencoder uses best-accuracy on validation unless THRESHOLD_AE is set),
# SEED, OUT (default bench/out/nslkdd), DATA (default ../shared/data/nsl-kdd), NADIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/nsl-kdd}
OUT=${OUT:-bench/out/nslkdd}
FAMILIES=${FAMILIES:-"hybrid llaformer cnn-lstm lln ldpi autoencoder"}
THRESHOLD=${THRESHOLD:-fixed:0.5}
THRESHOLD_AE=${THRESHOLD_AE:-best-accuracy}
SEED=${SEED:-42}
mkdir -p "$OUT"

# NADIR=path/to/nadir skips the (release) build.
if [[ -z "${NADIR:-}" ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
  cargo build --release -p nadir --bin nadir
  NADIR="$CARGO_TARGET_DIR/release/nadir"
fi

extra=()
[[ -n "${EPOCHS:-}" ]] && extra+=(--epochs "$EPOCHS")
[[ -n "${MAX_TRAIN_ROWS:-}" ]] && extra+=(--max-train-rows "$MAX_TRAIN_ROWS")
[[ "${LOG:-0}" == 1 ]] && extra+=(--log)

for family in $FAMILIES; do
  rule=$THRESHOLD
  [[ $family == autoencoder ]] && rule=$THRESHOLD_AE
  echo "=== $family ($rule)" >&2
  start=$(date +%s)
  "$NADIR" train --data "$DATA/KDDTrain+.txt.gz" --test "$DATA/KDDTest+.txt.gz" \
    --model "$family" --threshold "$rule" --seed "$SEED" --quiet "${extra[@]}" \
    -o "$OUT/$family.nadir" > "$OUT/$family.log" 2>&1 || { echo "$family failed: see $OUT/$family.log" >&2; continue; }
  echo "$(( $(date +%s) - start ))" > "$OUT/$family.seconds"
done

python3 - "$OUT" $FAMILIES <<'PY'
import json, os, sys
out, families = sys.argv[1], sys.argv[2:]
def ci(i):
    return f"{i['estimate']:.4f} [{i['lower']:.4f}, {i['upper']:.4f}]" if i else "n/a"
print(f"NSL-KDD binary, trained on KDDTrain+, threshold on a KDDTrain+ validation split, scored on KDDTest+ (95% bootstrap CI)")
print(f"{'family':<12} {'accuracy':<26} {'F1 (attack)':<26} {'ROC-AUC':<26} {'FPR':>7} {'threshold':>10} {'epochs':>6} {'seconds':>7}")
for f in families:
    path = os.path.join(out, f + ".nadir.report", "evaluation.json")
    if not os.path.exists(path):
        print(f"{f:<12} (no result: see {out}/{f}.log)"); continue
    e = json.load(open(path))
    d = e["detection"]; ci_cls = e.get("classification_intervals") or {}; ci_det = d.get("intervals") or {}
    hist = json.load(open(os.path.join(out, f + ".nadir.report", "history.json")))
    secs = open(os.path.join(out, f + ".seconds")).read().strip() if os.path.exists(os.path.join(out, f + ".seconds")) else "?"
    acc = ci(ci_cls.get("accuracy")) if ci_cls else f"{e['classification']['accuracy']:.4f}"
    print(f"{f:<12} {acc:<26} {ci(ci_det.get('f1')):<26} {ci(ci_det.get('roc_auc')):<26} {d['fpr']:>7.4f} {d['threshold']:>10.4f} {len(hist['epochs']):>6} {secs:>7}")
PY
