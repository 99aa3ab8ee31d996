#!/usr/bin/env bash
# Extract benchmark: nadir extract --features cic against `cat`, Python cicflowmeter
# and NFStream (statistical_analysis=True), side by side on the same capture.
#
#   bash bench/extract/run.sh            # the 220 MB ingestion capture, 3 runs each
#   MIN_MB=50 RUNS=1 bash bench/extract/run.sh
#
# The capture is the ingestion benchmark's (bench/ingest/run.sh makes it with the
# make_bench_capture example from the real captures in ../shared/data, replicated
# with shifted addresses and times). Python cicflowmeter runs ~1.2k
# packets/s, so it gets the first CIC_SLICE packets of the same file and is compared
# by packets/s (stated in the output). Stock cicflowmeter 0.5.0 stops with a
# ValueError when a flow has only reverse-direction packets (min() of an empty
# list); the script runs it through cic_patched.py, which guards that one call.
# Peers install from PyPI into bench/.venv-* (made on first use).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${NADIR_SHARED_DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/extract"
MIN_MB="${MIN_MB:-220}"
RUNS="${RUNS:-3}"
CIC_SLICE="${CIC_SLICE:-20000}"
PY312="${PY312:-/root/.pyenv/versions/3.12.1/bin/python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"

echo "== build (release, no deep-learning crates)"
cargo build --release -q -p nadir --no-default-features --manifest-path "$ROOT/Cargo.toml"
cargo build --release -q -p nadir-decode --example make_bench_capture --example read_decode \
  --manifest-path "$ROOT/Cargo.toml"
NADIR="$CARGO_TARGET_DIR/release/nadir"
EXAMPLES="$CARGO_TARGET_DIR/release/examples"

CAPTURE="$ROOT/bench/out/bench-${MIN_MB}mb.pcap"
if [[ ! -s "$CAPTURE" ]]; then
  echo "== make capture ($MIN_MB MB)"
  "$EXAMPLES/make_bench_capture" "$CAPTURE" "$MIN_MB" \
    "$DATA/labelled/kihy-slowloris/slowloris.pcap" \
    "$DATA/labelled/chrissanders-synscan/synscan.pcapng" \
    "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap" \
    "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-tcp-syn-version__dump.pcap" \
    "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-udp-version__dump.pcap"
fi
SLICE="$OUT/slice-${CIC_SLICE}.pcap"
[[ -s "$SLICE" ]] || "$EXAMPLES/make_bench_capture" --first "$CIC_SLICE" "$CAPTURE" "$SLICE"

packets() { "$EXAMPLES/read_decode" "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])'; }
PACKETS=$(packets "$CAPTURE")
SLICE_PACKETS=$(packets "$SLICE")
BYTES=$(stat -c %s "$CAPTURE")
echo "capture: $CAPTURE, $PACKETS packets, $BYTES bytes; slice: $SLICE_PACKETS packets"

if [[ ! -x "$ROOT/bench/.venv-nfstream/bin/python" ]]; then
  echo "== venv for NFStream"
  python3 -m venv "$ROOT/bench/.venv-nfstream"
  "$ROOT/bench/.venv-nfstream/bin/pip" install -q nfstream==6.6.0
fi
if [[ ! -x "$ROOT/bench/.venv-cicflowmeter/bin/python" ]]; then
  echo "== venv for cicflowmeter (Python 3.12)"
  "$PY312" -m venv "$ROOT/bench/.venv-cicflowmeter"
  "$ROOT/bench/.venv-cicflowmeter/bin/pip" install -q cicflowmeter==0.5.0
fi

# run NAME PACKETS CMD...: RUNS timed runs under /usr/bin/time -v; records
# median wall seconds and max peak RSS (KiB) in $OUT/results.tsv.
: > "$OUT/results.tsv"
run() {
  local name="$1" packets="$2"; shift 2
  local walls=() rss=0
  for ((i = 0; i < RUNS; i++)); do
    /usr/bin/time -v -o "$OUT/time-$name.txt" "$@" > "$OUT/stdout-$name.txt" 2> "$OUT/stderr-$name.txt" || {
      echo "!! $name failed (exit $?); see $OUT/stderr-$name.txt"; tail -3 "$OUT/stderr-$name.txt"; return 0; }
    walls+=("$(python3 "$ROOT/bench/extract/time_wall.py" "$OUT/time-$name.txt")")
    local r; r=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$OUT/time-$name.txt")
    (( r > rss )) && rss=$r
  done
  local median; median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%s\t%s\t%s\t%s\n' "$name" "$packets" "$median" "$rss" >> "$OUT/results.tsv"
  printf '%-28s %10s packets  %8.3f s  peak RSS %8d KiB\n' "$name" "$packets" "$median" "$rss"
}

echo "== runs (median of $RUNS)"
run cat "$PACKETS" sh -c "cat '$CAPTURE' > /dev/null"
run nadir-cic-1thread "$PACKETS" "$NADIR" extract "$CAPTURE" --features cic --threads 1 --no-progress -o "$OUT/nadir.csv"
run nadir-cic-2threads "$PACKETS" "$NADIR" extract "$CAPTURE" --features cic --threads 2 --no-progress -o "$OUT/nadir-2t.csv"
run nfstream-stats "$PACKETS" "$ROOT/bench/.venv-nfstream/bin/python" "$ROOT/bench/extract/nfstream_run.py" "$CAPTURE" "$OUT/nfstream.csv"
RUNS_SAVED=$RUNS; RUNS=1
run cicflowmeter-py-slice "$SLICE_PACKETS" "$ROOT/bench/.venv-cicflowmeter/bin/python" "$ROOT/bench/extract/cic_patched.py" -f "$SLICE" -c "$OUT/cicflowmeter.csv"
RUNS=$RUNS_SAVED

echo "== summary"
python3 "$ROOT/bench/extract/report.py" "$OUT/results.tsv" "$(nproc)"
