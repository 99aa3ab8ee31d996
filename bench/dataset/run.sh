#!/usr/bin/env bash
# Load + median imputation + standard scaling + PCA (95 % variance) of a generated
# ROWS x COLS numeric CSV (default 3,000,000 x 80, ~2 GB): nadir (release build) beside
# pandas + scikit-learn doing the same steps, in the same run. Prints seconds, peak RSS
# (/usr/bin/time -v) and the ratios. Target: nadir >= 5x faster, peak memory no higher.
#
#   bench/dataset/run.sh                 # full size
#   ROWS=200000 bench/dataset/run.sh     # quick look
set -euo pipefail
ROWS=${ROWS:-3000000}
COLS=${COLS:-80}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/nadir-bench-dataset}
mkdir -p "$WORK"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PY=${PYTHON:-python3}
VENV="$ROOT/bench/.venv-dataset"

# BUILD_PROFILE=release by default; BUILD_PROFILE=dev uses the (cached) dev dependencies with
# nadir-dataset itself at opt-level 3, for machines where a release build of arrow takes too long.
BUILD_PROFILE=${BUILD_PROFILE:-release}
if [ "$BUILD_PROFILE" = release ]; then
  (cd "$ROOT" && cargo build --release -q -p nadir-dataset --example make_table --example prepare)
  BIN="$CARGO_TARGET_DIR/release/examples"
else
  (cd "$ROOT" && cargo build -q -p nadir-dataset --example make_table --example prepare \
    --config 'profile.dev.package.nadir-dataset.opt-level=3' \
    --config 'profile.dev.package.nadir-dataset.debug-assertions=false' \
    --config 'profile.dev.package.nadir-dataset.overflow-checks=false')
  BIN="$CARGO_TARGET_DIR/debug/examples"
fi
TABLE="$WORK/table_${ROWS}x${COLS}.csv"
if [ ! -s "$TABLE" ]; then
  echo "generating $TABLE ..."
  "$BIN/make_table" "$TABLE" "$ROWS" "$COLS"
fi
ls -l "$TABLE"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q pandas scikit-learn
fi
"$VENV/bin/python" -c 'import pandas, sklearn, numpy; print("pandas", pandas.__version__, "scikit-learn", sklearn.__version__, "numpy", numpy.__version__)'

# Both sides get the same 2 threads.
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
NCPU=$(nproc)
echo "cores: $NCPU"

measure() { # name, command...
  local name=$1; shift
  # Warm the page cache so both sides read the file from memory.
  cat "$TABLE" > /dev/null
  /usr/bin/time -v "$@" > "$WORK/$name.out" 2> "$WORK/$name.time"
  cat "$WORK/$name.out"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$WORK/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time")
  echo "$name wall_s=$wall peak_rss_mib=$((rss / 1024))"
  eval "${name}_wall=$wall ${name}_rss=$rss"
}

measure nadir taskset -c 0-1 "$BIN/prepare" "$TABLE" label
measure pandas taskset -c 0-1 "$VENV/bin/python" "$HERE/pandas_sklearn.py" "$TABLE" label

awk -v nw="$nadir_wall" -v pw="$pandas_wall" -v nr="$nadir_rss" -v pr="$pandas_rss" 'BEGIN {
  printf "speedup (pandas+sklearn wall / nadir wall): %.2fx   (target >= 5x)\n", pw / nw;
  printf "peak memory (nadir / pandas+sklearn): %.2f   (target <= 1)\n", nr / pr;
}'
