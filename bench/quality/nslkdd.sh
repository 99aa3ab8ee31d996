#!/usr/bin/env bash
# Detection quality on NSL-KDD (issue 19): KDDTrain+ -> KDDTest+ (attack types unseen in
# training included), nadir's families beside scikit-learn's HistGradientBoostingClassifier and
# RandomForestClassifier (defaults, same columns: bench/quality/nslkdd_peers.py).
#
#   bench/quality/nslkdd.sh
#   MODELS="gbdt hybrid hybrid+nadir llaformer" EPOCHS=5 bench/quality/nslkdd.sh
#
# nadir keeps 15 % of KDDTrain+ for validation (threshold, early stopping), stratified; the
# peers fit on all of it. Reported: ROC-AUC and recall at 1 % FPR (threshold at the 99th
# percentile of the test's normal rows' scores) on KDDTest+, with 95 % bootstrap intervals.
# Env: MODELS (FAMILY or FAMILY+RECIPE), EXTRA_ARGS (more `nadir train` options), EPOCHS, SEED, OUT (bench/out/nslkdd-quality), DATA,
# NADIR (skips the build), VENV (bench/.venv-quality), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/nslkdd-quality}
MODELS=${MODELS:-"gbdt hybrid hybrid+nadir llaformer llaformer+nadir"}
SEED=${SEED:-42}
PY=${PYTHON:-python3}
VENV=${VENV:-$ROOT/bench/.venv-quality}
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT/fold-KDDTest+"
OUT=$(realpath "$OUT")
FOLD="$OUT/fold-KDDTest+"

if [[ -z "${NADIR:-}" ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
  cargo build --release -p nadir --bin nadir
  NADIR="$CARGO_TARGET_DIR/release/nadir"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q numpy scikit-learn
fi

train=$(realpath "$DATA/nsl-kdd/KDDTrain+.txt.gz")
test=$(realpath "$DATA/nsl-kdd/KDDTest+.txt.gz")
for model in $MODELS; do
  family=${model%%+*}
  args=(train --data "$train" --test "$test" --model "$family" --seed "$SEED"
        --no-plots --quiet -o "$FOLD/$model.nadir")
  [[ $model == *+* ]] && args+=(--recipe "${model#*+}")
  [[ -n "${EPOCHS:-}" && $family != gbdt ]] && args+=(--epochs "$EPOCHS")
  # shellcheck disable=SC2206 # EXTRA_ARGS is a list of train options, split on spaces.
  args+=(${EXTRA_ARGS:-})
  start=$(date +%s)
  "$NADIR" "${args[@]}" >"$FOLD/$model.txt"
  echo "$model: $(( $(date +%s) - start )) s" >&2
done
start=$(date +%s)
(cd bench/quality && "$VENV/bin/python" nslkdd_peers.py "$train" "$test" "$FOLD/sklearn.json")
echo "scikit-learn: $(( $(date +%s) - start )) s" >&2
"$PY" bench/quality/k8s_folds.py table "$OUT" $MODELS sklearn-hgb sklearn-rf | tee "$OUT/table.md"
