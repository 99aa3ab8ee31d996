#!/usr/bin/env bash
# Ingestion benchmark: read + decode a >= 200 MB capture held in the page cache, on
# one core, beside `cat FILE > /dev/null` (the physical floor) in the same run.
#   bench/ingest/run.sh [MIN_MB]        (default 220)
# The capture is generated from the real captures in ../shared/data (replicated with
# shifted addresses and times) into bench/out/, so anyone can reproduce it.
set -euo pipefail
cd "$(dirname "$0")/../.."
MIN_MB=${1:-220}
DATA=${NADIR_SHARED_DATA:-../shared/data}
OUT=bench/out
mkdir -p "$OUT"
CAPTURE="$OUT/bench-${MIN_MB}mb.pcap"
cargo build --release -q -p nadir-decode --example make_bench_capture --example read_decode
BIN=${CARGO_TARGET_DIR:-target}/release/examples
if [ ! -f "$CAPTURE" ]; then
  "$BIN/make_bench_capture" "$CAPTURE" "$MIN_MB" \
    "$DATA/labelled/kihy-slowloris/slowloris.pcap" \
    "$DATA/labelled/chrissanders-synscan/synscan.pcapng" \
    "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap" \
    "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-tcp-syn-version__dump.pcap" \
    "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-udp-version__dump.pcap"
fi
cat "$CAPTURE" > /dev/null  # into the page cache
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Each run: wall, user and system seconds (CPU time is what a core spent, which stays
# meaningful when a shared machine descheduled us; wall is reported beside it).
: > "$OUT/ingest-cat.txt"; : > "$OUT/ingest-runs.txt"
for i in 1 2 3 4 5; do
  /usr/bin/time -f "%e %U %S" -a -o "$OUT/ingest-cat.txt" cat "$CAPTURE" > /dev/null
  /usr/bin/time -f "%e %U %S" -a -o "$OUT/ingest-runs.txt" taskset -c 0 "$BIN/read_decode" "$CAPTURE" > "$OUT/ingest-last.json"
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
def times(name):
    rows = [list(map(float, l.split())) for l in open(f"{out}/{name}") if l.strip()]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] + r[2] for r in rows)
cat_wall, cat_cpu = times("ingest-cat.txt")
wall, cpu = times("ingest-runs.txt")
r = json.load(open(f"{out}/ingest-last.json"))
mb, n = r["bytes"] / 1e6, r["packets"]
print(f"capture: {mb:.1f} MB, {n} packets ({r['decoded']} decoded, {r['skipped']} skipped)")
print(f"cat > /dev/null:   wall {cat_wall:.3f} s, cpu {cat_cpu:.3f} s   (median of 5)")
print(f"nadir read+decode: wall {wall:.3f} s, cpu {cpu:.3f} s   (median of 5, one thread)")
print(f"  packets/s per core: {n/cpu/1e6:.2f} M by CPU time, {n/wall/1e6:.2f} M by wall time (target >= 10 M)")
print(f"  MB/s per core:      {mb/cpu:.0f} by CPU time, {mb/wall:.0f} by wall time")
print(f"  vs cat:             {wall/max(cat_wall,1e-3):.2f}x cat's wall time, {cpu/max(cat_cpu,1e-3):.2f}x its CPU time")
PY
