#!/usr/bin/env bash
# Detection benchmark, end to end: capture -> flows -> features -> preprocessing -> model ->
# verdicts, `nadir detect` against the pipeline a user would otherwise assemble in Python from the
# published designs: NFStream (statistical_analysis=True) flow features + the same model in
# PyTorch (2 threads, OMP_WAIT_POLICY=PASSIVE), in the same run, on the same captures.
#
#   bash bench/detect/run.sh                       # 220 MB captures, 3 rounds
#   MIN_MB=20 RUNS=1 bash bench/detect/run.sh      # quick
#   PY_ONLY=1 SESSIONS_PCAP=x.pcap CAPTURES=sessions bash bench/detect/run.sh   # Python side only
#
# Captures (made exactly as bench/extract/run.sh makes them, and shared with it: the
# make_bench_capture example of nadir-decode replicates real captures of ../shared/data with
# shifted addresses and times; existing files are reused):
#   sessions  bench/out/bench-sessions-${MIN_MB}mb.pcap: slowloris + a TLS session, TCP
#             connections only, ~12.5 packets per flow;
#   mix       bench/out/bench-${MIN_MB}mb.pcap: every shared real capture, mostly scans,
#             ~2.5 packets per flow (the worst case: a model call for every other packet).
# SESSIONS_PCAP / MIX_PCAP point either at another classic pcap file instead.
#
# Models: hybrid and autoencoder. nadir scores with bundles that `nadir train` fits (EPOCHS,
# default 2) on ../shared/data/k8s-misuse-dev/dev.csv (CICFlowMeter columns), kept in
# bench/out/detect/*.nadir and reused (RETRAIN=1 refits them); training is not timed. Each model
# runs twice on the nadir side: with explanations on alerts (the default) and without.
#
# What differs between the two sides' work, plainly:
# - Features: nadir computes the bundle's CICFlowMeter-compatible columns (CICFlowMeter flow and
#   activity timeouts, 120 s / 5 s); NFStream computes its own statistical feature set (59 model
#   inputs: its packet-size, inter-arrival and TCP-flag statistics per direction, plus protocol
#   and destination port; idle/active timeouts 120 s / 1800 s), so the two sides need not cut
#   the same flows: both flow counts are printed. NFStream runs with n_dissections=0 (no nDPI
#   application detection: nadir does none); NFSTREAM_DISSECTIONS=20 gives NFStream's default,
#   as bench/extract times it.
# - Model: the same architectures (bench/models/torch_models.py `Hybrid`, sequence length 1; an
#   autoencoder F -> 10 (ReLU) -> F, linear output, as nadir's defaults), but the PyTorch weights
#   are RANDOM (seeded), and the input width differs (59 NFStream inputs against the bundle's
#   preprocessed CIC columns). This measures throughput only; the Python verdicts mean nothing.
# - Preprocessing: Python replaces NaN/inf by 0 and standard-scales with mean/std fitted on the
#   capture's first batch of 1024 flows; nadir applies the bundle's fitted pipeline (training
#   medians for NaN/inf, its scaler, whatever else `nadir train` fitted).
# - Threshold: Python flags scores >= the 99th percentile of the first batch's scores (~1% of
#   flows); nadir uses the bundle's calibrated default threshold. Alert counts are printed: they
#   set how many records are written (and, for nadir, explained).
# - Explanations: nadir explains every alert (integrated gradients for the hybrid, per-feature
#   reconstruction-error shares for the autoencoder) unless told not to; Python explains nothing.
#   Compare the nadir-no-explain rows for like-for-like work.
# - Output: both write one JSON line per alert (flow identity, score, threshold, verdict); nadir's
#   records are richer (tunnel, times, class, explanation).
# - Processes: NFStream meters in a second process (n_meters=1) and PyTorch uses 2 intra-op
#   threads; nadir runs one flow-table thread (--threads default 1) and RAYON_NUM_THREADS=2 for
#   the model. CPU time counts every process and thread on both sides; peak RSS is GNU time's
#   %M, the largest single process (NFStream's meter process is not added to Python's main one).
# - Start-up counts on both sides (Python imports torch and NFStream; nadir loads the bundle).
#
# Throughput = packets in the capture file / time. Per core = packets per CPU second (user +
# system). Targets: >= 1 M packets per CPU second for nadir on `sessions` with explanations on
# alerts; >= 20x the Python pipeline on both captures; nadir peak RSS <= 128 MiB.
# Rounds alternate nadir-first / Python-first; each figure is the median of RUNS rounds.
# Results: bench/out/detect/runs.tsv (every run), results.json and results.csv (medians, checks).
#
# Knobs: MIN_MB (220), RUNS (3), MODELS ("hybrid autoencoder"), CAPTURES ("sessions mix"),
# THREADS (2), EPOCHS (2), NADIR (a built binary: skips the cargo build), PY_ONLY=1 (Python side
# only, no cargo), VENV (a venv with nfstream and torch), PYTHON (makes the venv; python3),
# NFSTREAM_DISSECTIONS (0), RETRAIN=1, NADIR_SHARED_DATA, CARGO_TARGET_DIR ($ROOT/target).
# Peers install from PyPI into bench/.venv-detect (made on first use; torch is ~1-3 GB).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/bench/detect"
DATA="${NADIR_SHARED_DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/detect"
MIN_MB="${MIN_MB:-220}"
RUNS="${RUNS:-3}"
THREADS="${THREADS:-2}"
EPOCHS="${EPOCHS:-2}"
MODELS="${MODELS:-hybrid autoencoder}"
CAPTURES="${CAPTURES:-sessions mix}"
PY_ONLY="${PY_ONLY:-0}"
NFSTREAM_DISSECTIONS="${NFSTREAM_DISSECTIONS:-0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# The same thread budget on both sides, and no spinning OpenMP workers.
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" \
  RAYON_NUM_THREADS="$THREADS"
mkdir -p "$OUT"

# ---- captures (the same files and steps as bench/extract/run.sh)
SHARED_CAPTURES=(
  "$DATA/labelled/kihy-slowloris/slowloris.pcap"
  "$DATA/labelled/chrissanders-synscan/synscan.pcapng"
  "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap"
  "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-tcp-syn-version__dump.pcap"
  "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-udp-version__dump.pcap"
)
declare -A CAPTURE=(
  [mix]="${MIX_PCAP:-$ROOT/bench/out/bench-${MIN_MB}mb.pcap}"
  [sessions]="${SESSIONS_PCAP:-$ROOT/bench/out/bench-sessions-${MIN_MB}mb.pcap}"
)
need_examples=0
for kind in $CAPTURES; do [[ -s "${CAPTURE[$kind]}" ]] || need_examples=1; done
if (( need_examples )); then
  echo "== build make_bench_capture (release)"
  cargo build --release -q -p nadir-decode --example make_bench_capture --manifest-path "$ROOT/Cargo.toml"
  EXAMPLES="$CARGO_TARGET_DIR/release/examples"
  [[ -s "${CAPTURE[mix]}" || " $CAPTURES " != *" mix "* ]] ||
    "$EXAMPLES/make_bench_capture" "${CAPTURE[mix]}" "$MIN_MB" "${SHARED_CAPTURES[@]}"
  [[ -s "${CAPTURE[sessions]}" || " $CAPTURES " != *" sessions "* ]] ||
    "$EXAMPLES/make_bench_capture" "${CAPTURE[sessions]}" "$MIN_MB" \
      "${SHARED_CAPTURES[0]}" "${SHARED_CAPTURES[2]}"
fi
declare -A PACKETS
for kind in $CAPTURES; do
  cat "${CAPTURE[$kind]}" > /dev/null  # into the page cache
  PACKETS[$kind]=$(python3 "$HERE/pcap_packets.py" "${CAPTURE[$kind]}")
  echo "capture $kind: ${CAPTURE[$kind]}, ${PACKETS[$kind]} packets, $(stat -c %s "${CAPTURE[$kind]}") bytes"
done

# ---- the Python peer: a venv with nfstream and torch
has_peers() { [[ -x "$1/bin/python" ]] && "$1/bin/python" -c "import nfstream, torch" 2>/dev/null; }
if [[ -z "${VENV:-}" ]]; then
  VENV="$ROOT/bench/.venv-detect"
  if ! has_peers "$VENV"; then
    for other in "$ROOT/bench/.venv-nfstream" "$ROOT/bench/.venv-models"; do
      if has_peers "$other"; then VENV="$other"; break; fi
    done
  fi
fi
if ! has_peers "$VENV"; then
  echo "== venv for NFStream + PyTorch: $VENV"
  [[ -x "$VENV/bin/python" ]] || "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install -q nfstream==6.6.0 torch
fi
echo "peers: $("$VENV/bin/python" -c 'import nfstream, torch; print(f"NFStream {nfstream.__version__}, PyTorch {torch.__version__}")')"

# ---- nadir: build, bundles
if [[ "$PY_ONLY" != 1 ]]; then
  if [[ -z "${NADIR:-}" ]]; then
    echo "== build nadir (release)"
    cargo build --release -q -p nadir --manifest-path "$ROOT/Cargo.toml"
    NADIR="$CARGO_TARGET_DIR/release/nadir"
  fi
  detect_help="$("$NADIR" detect --help)" || { echo "!! $NADIR has no working 'detect' verb"; exit 1; }
  # The CLI contract says --no-explain; an `--explain alerts|all|none` form is accepted too.
  if grep -q -- '--no-explain' <<< "$detect_help"; then NO_EXPLAIN=(--no-explain)
  elif grep -q -- '--explain' <<< "$detect_help"; then NO_EXPLAIN=(--explain none)
  else echo "!! nadir detect --help names neither --no-explain nor --explain"; exit 1; fi
  train_help="$("$NADIR" train --help)"
  TRAIN_EXTRA=()
  for flag in --quiet --no-plots; do grep -q -- "$flag" <<< "$train_help" && TRAIN_EXTRA+=("$flag"); done
  grep -q -- '--resamples' <<< "$train_help" && TRAIN_EXTRA+=(--resamples 0)
  for model in $MODELS; do
    bundle="$OUT/$model.nadir"
    if [[ "${RETRAIN:-0}" == 1 || ! -s "$bundle" ]]; then
      echo "== train $model bundle on k8s-misuse-dev/dev.csv ($EPOCHS epochs; not timed)"
      "$NADIR" train --data "$DATA/k8s-misuse-dev/dev.csv" --model "$model" --split group \
        --epochs "$EPOCHS" "${TRAIN_EXTRA[@]}" -o "$bundle" > "$OUT/train-$model.log" 2>&1 ||
        { echo "!! training $model failed; see $OUT/train-$model.log"; tail -5 "$OUT/train-$model.log"; exit 1; }
    fi
  done
fi

# ---- timed runs
# timed CAPTURE MODEL SIDE ROUND CMD...: one run under GNU time; appends wall, CPU (user + sys,
# children included) and peak RSS, with the flows/alerts/records the tool's stderr summary
# reports (the same lines on both sides), to runs.tsv.
RUNS_TSV="$OUT/runs.tsv"
: > "$RUNS_TSV"
timed() {
  local capture="$1" model="$2" side="$3" round="$4"; shift 4
  local tag="$capture-$model-$side" wall user sys rss
  rm -f "$OUT/verdicts-$tag.jsonl"
  if ! /usr/bin/time -f "%e %U %S %M" -o "$OUT/time-$tag.txt" "$@" \
      > "$OUT/stdout-$tag.txt" 2> "$OUT/stderr-$tag.txt"; then
    echo "!! $tag failed; see $OUT/stderr-$tag.txt"; tail -3 "$OUT/stderr-$tag.txt"; return 0
  fi
  read -r wall user sys rss < <(tail -1 "$OUT/time-$tag.txt")
  local counts
  counts=$(python3 - "$OUT/stderr-$tag.txt" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
def grab(pattern):
    m = re.search(pattern, text)
    return m.group(1) if m else "?"
print(grab(r"flows (\d+) ="), grab(r"anomalies (\d+) of"), grab(r"(\d+) records to"))
PY
)
  local flows alerts written cpu
  read -r flows alerts written <<< "$counts"
  cpu=$(python3 -c "print(round($user + $sys, 3))")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$capture" "$model" "$side" "$round" \
    "${PACKETS[$capture]}" "$wall" "$cpu" "$rss" "$flows" "$alerts" "$written" >> "$RUNS_TSV"
  printf '  %-9s %-12s %-17s %8.2f s wall %8.2f s CPU %7.1f MiB  flows %s, alerts %s\n' \
    "$capture" "$model" "$side" "$wall" "$cpu" "$(python3 -c "print($rss / 1024)")" "$flows" "$alerts"
}
run_nadir() {
  local capture="$1" model="$2" round="$3" cap="${CAPTURE[$1]}" bundle="$OUT/$2.nadir"
  timed "$capture" "$model" nadir-explain "$round" "$NADIR" detect --model "$bundle" "$cap" \
    --out "$OUT/verdicts-$capture-$model-nadir-explain.jsonl" --no-progress
  timed "$capture" "$model" nadir-no-explain "$round" "$NADIR" detect --model "$bundle" "$cap" \
    --out "$OUT/verdicts-$capture-$model-nadir-no-explain.jsonl" --no-progress "${NO_EXPLAIN[@]}"
}
run_python() {
  local capture="$1" model="$2" round="$3"
  timed "$capture" "$model" python "$round" "$VENV/bin/python" "$HERE/nfstream_torch.py" \
    "${CAPTURE[$capture]}" --model "$model" --threads "$THREADS" \
    --dissections "$NFSTREAM_DISSECTIONS" --out "$OUT/verdicts-$capture-$model-python.jsonl"
}
for ((round = 1; round <= RUNS; round++)); do
  echo "== round $round of $RUNS"
  for capture in $CAPTURES; do
    for model in $MODELS; do
      if [[ "$PY_ONLY" == 1 ]]; then
        run_python "$capture" "$model" "$round"
      elif (( round % 2 )); then
        run_nadir "$capture" "$model" "$round"; run_python "$capture" "$model" "$round"
      else
        run_python "$capture" "$model" "$round"; run_nadir "$capture" "$model" "$round"
      fi
    done
  done
done

echo "== summary (median of $RUNS; packets = packets in the capture file)"
python3 "$HERE/report.py" "$RUNS_TSV"
