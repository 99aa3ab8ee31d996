#!/usr/bin/env bash
# Extract benchmark: nadir extract --features cic against `cat`, Python cicflowmeter
# and NFStream (statistical_analysis=True, timeouts as nadir's: 120 s active and idle),
# side by side on the same capture: without nDPI dissection (n_dissections=0, the headline
# peer: nadir does no dissection) and with NFStream's default dissection on.
#
#   bash bench/extract/run.sh            # the 220 MB ingestion capture, 3 runs each
#   MIN_MB=50 RUNS=1 bash bench/extract/run.sh
#
# Two captures, each made by the make_bench_capture example from real captures in
# ../shared/data, replicated with shifted addresses and times:
#   mix       the ingestion benchmark's capture (bench/ingest/run.sh): every shared
#             real capture, mostly scans: 2.69 M packets make 1.08 M flows, ~2.5
#             packets per flow (a CSV row for every other packet: the worst case
#             for a flow meter);
#   sessions  the TCP connections only (slowloris + a TLS session), ~12.5 packets
#             per flow.
# Python cicflowmeter runs ~1.2k
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

SHARED_CAPTURES=(
  "$DATA/labelled/kihy-slowloris/slowloris.pcap"
  "$DATA/labelled/chrissanders-synscan/synscan.pcapng"
  "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap"
  "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-tcp-syn-version__dump.pcap"
  "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-udp-version__dump.pcap"
)
declare -A CAPTURE=(
  [mix]="$ROOT/bench/out/bench-${MIN_MB}mb.pcap"
  [sessions]="$ROOT/bench/out/bench-sessions-${MIN_MB}mb.pcap"
)
[[ -s "${CAPTURE[mix]}" ]] || "$EXAMPLES/make_bench_capture" "${CAPTURE[mix]}" "$MIN_MB" "${SHARED_CAPTURES[@]}"
[[ -s "${CAPTURE[sessions]}" ]] || "$EXAMPLES/make_bench_capture" "${CAPTURE[sessions]}" "$MIN_MB" \
  "${SHARED_CAPTURES[0]}" "${SHARED_CAPTURES[2]}"

packets() { "$EXAMPLES/read_decode" "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["packets"])'; }
declare -A PACKETS SLICE SLICE_PACKETS
for kind in mix sessions; do
  SLICE[$kind]="$OUT/slice-$kind-${CIC_SLICE}.pcap"
  [[ -s "${SLICE[$kind]}" ]] || "$EXAMPLES/make_bench_capture" --first "$CIC_SLICE" "${CAPTURE[$kind]}" "${SLICE[$kind]}"
  PACKETS[$kind]=$(packets "${CAPTURE[$kind]}")
  SLICE_PACKETS[$kind]=$(packets "${SLICE[$kind]}")
  echo "capture $kind: ${CAPTURE[$kind]}, ${PACKETS[$kind]} packets, $(stat -c %s "${CAPTURE[$kind]}") bytes; slice: ${SLICE_PACKETS[$kind]} packets"
done

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

# run NAME PACKETS CMD...: RUNS timed runs under /usr/bin/time -v; records the
# median wall seconds, the median CPU (user + system) seconds and the max peak RSS
# (KiB) in $OUT/results.tsv. CPU time gives "per core" on a shared machine, where
# wall time also counts the time other tenants hold the core.
: > "$OUT/results.tsv"
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() {
  local name="$1" packets="$2"; shift 2
  local walls=() cpus=() rss=0 file="${name//\//-}"
  for ((i = 0; i < RUNS; i++)); do
    # Every tool writes a new file: truncating the last run's output (380 MB of
    # page cache for nadir on mix) is not extraction work.
    rm -f "$OUT"/nadir-*.csv "$OUT"/nfstream-*.csv "$OUT"/cicflowmeter-*.csv
    /usr/bin/time -v -o "$OUT/time-$file.txt" "$@" > "$OUT/stdout-$file.txt" 2> "$OUT/stderr-$file.txt" || {
      echo "!! $name failed (exit $?); see $OUT/stderr-$file.txt"; tail -3 "$OUT/stderr-$file.txt"; return 0; }
    local seconds; read -ra seconds <<< "$(python3 "$ROOT/bench/extract/time_seconds.py" "$OUT/time-$file.txt")"
    walls+=("${seconds[0]}"); cpus+=("${seconds[1]}")
    local r; r=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$OUT/time-$file.txt")
    (( r > rss )) && rss=$r
  done
  local wall cpu
  wall=$(printf '%s\n' "${walls[@]}" | median)
  cpu=$(printf '%s\n' "${cpus[@]}" | median)
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$packets" "$wall" "$cpu" "$rss" >> "$OUT/results.tsv"
  printf '%-28s %10s packets  %8.3f s wall  %8.3f s CPU  peak RSS %8d KiB\n' "$name" "$packets" "$wall" "$cpu" "$rss"
}

for kind in mix sessions; do
  capture="${CAPTURE[$kind]}" packets="${PACKETS[$kind]}"
  echo "== $kind: runs (median of $RUNS)"
  run "$kind/cat" "$packets" sh -c "cat '$capture' > /dev/null"
  run "$kind/nadir-cic-1thread" "$packets" "$NADIR" extract "$capture" --features cic --threads 1 --no-progress -o "$OUT/nadir-$kind.csv"
  run "$kind/nadir-cic-2threads" "$packets" "$NADIR" extract "$capture" --features cic --threads 2 --no-progress -o "$OUT/nadir-$kind-2t.csv"
  # Headline peer: no nDPI dissection (nadir does none); NFStream's default (nDPI on) beside it.
  run "$kind/nfstream-stats" "$packets" "$ROOT/bench/.venv-nfstream/bin/python" "$ROOT/bench/extract/nfstream_run.py" "$capture" "$OUT/nfstream-$kind.csv"
  run "$kind/nfstream-stats-ndpi" "$packets" "$ROOT/bench/.venv-nfstream/bin/python" "$ROOT/bench/extract/nfstream_run.py" "$capture" "$OUT/nfstream-$kind-ndpi.csv" --ndpi
  RUNS_SAVED=$RUNS; RUNS=1
  run "$kind/cicflowmeter-py-slice" "${SLICE_PACKETS[$kind]}" "$ROOT/bench/.venv-cicflowmeter/bin/python" "$ROOT/bench/extract/cic_patched.py" -f "${SLICE[$kind]}" -c "$OUT/cicflowmeter-$kind.csv"
  RUNS=$RUNS_SAVED
done

echo "== summary"
python3 "$ROOT/bench/extract/report.py" "$OUT/results.tsv"
