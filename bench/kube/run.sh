#!/usr/bin/env bash
# What Kubernetes attribution costs.
#
#   bash bench/kube/run.sh                  # 60 MB captures, 3 alternating rounds
#   MIN_MB=220 RUNS=5 bash bench/kube/run.sh
#
# 1. `nadir extract --features cic` on the bench captures (bench/extract/run.sh makes them)
#    with a pods file of 10,000 pods and 1,000 services vs without, same threads, same
#    output format (CSV to a file), alternating rounds, medians of CPU time (user + system).
#    The pods file names every address the capture holds (so every flow is a hit: the
#    costly case), topped up with pods on other addresses to 10,000.
#    Then the per-flow part alone: every flow's pod columns through one writer's last
#    lookups, in the file's order and shuffled (crates/nadir-kube/examples/lookup_cost.rs).
# 2. Keeping the map current: the snapshot of 10,000 pods + 1,000 services, and the share of
#    a core that 1,000 pod events/s cost with at most one publish per second
#    (crates/nadir-kube/examples/snapshot_cost.rs). Publishing happens on the pod-map thread;
#    capture only loads the current snapshot (a lock-free pointer read per flow).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${NADIR_SHARED_DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/kube"
MIN_MB="${MIN_MB:-60}"
RUNS="${RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$OUT"

echo "== build (release)"
cargo build --release -q -p nadir --no-default-features --manifest-path "$ROOT/Cargo.toml"
cargo build --release -q -p nadir-decode --example make_bench_capture --manifest-path "$ROOT/Cargo.toml"
cargo build --release -q -p nadir-kube --example snapshot_cost --example lookup_cost --manifest-path "$ROOT/Cargo.toml"
NADIR="$CARGO_TARGET_DIR/release/nadir"
EXAMPLES="$CARGO_TARGET_DIR/release/examples"

declare -A CAPTURE=(
  [mix]="$ROOT/bench/out/bench-${MIN_MB}mb.pcap"
  [sessions]="$ROOT/bench/out/bench-sessions-${MIN_MB}mb.pcap"
)
[[ -s "${CAPTURE[mix]}" ]] || "$EXAMPLES/make_bench_capture" "${CAPTURE[mix]}" "$MIN_MB" \
  "$DATA/labelled/kihy-slowloris/slowloris.pcap" "$DATA/labelled/chrissanders-synscan/synscan.pcapng" \
  "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap" \
  "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-tcp-syn-version__dump.pcap" \
  "$DATA/cicflowmeter-reference/concap-examples/example__completed__nmap-udp-version__dump.pcap"
[[ -s "${CAPTURE[sessions]}" ]] || "$EXAMPLES/make_bench_capture" "${CAPTURE[sessions]}" "$MIN_MB" \
  "$DATA/labelled/kihy-slowloris/slowloris.pcap" "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap"

cpu_seconds() { # prints user+system seconds of the command (rusage, to the microsecond:
  # /usr/bin/time rounds to 10 ms, a tenth of the difference measured here)
  python3 - "$@" 2>"$OUT/stderr.txt" <<'PY' || { cat "$OUT/stderr.txt"; exit 1; }
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{usage.ru_utime + usage.ru_stime:.4f}")
PY
}

for kind in mix sessions; do
  capture="${CAPTURE[$kind]}"
  pods="$OUT/pods-$kind.json"
  if [[ ! -s "$pods" ]]; then
    "$NADIR" extract "$capture" -o "$OUT/plain-$kind.csv" 2>/dev/null
    python3 - "$OUT/plain-$kind.csv" "$pods" <<'PY'
import csv, json, sys
seen = []
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f):
        for ip in (row["Src IP"], row["Dst IP"]):
            if ip not in seen and len(seen) < 10000:
                seen.append(ip)
ips = list(dict.fromkeys(seen))
i = 0
while len(ips) < 10000:
    ips.append(f"10.{200 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"); i += 1
items = []
for n, ip in enumerate(ips):
    items.append({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{n}", "namespace": f"ns-{n % 100}", "uid": f"u{n}",
                     "labels": {"app": f"app-{n % 1000}", "pod-template-hash": "h"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"app-{n % 1000}-h", "uid": "r", "controller": True}]},
        "spec": {"nodeName": f"node-{n % 50}", "containers": [{"name": "c"}]},
        "status": {"podIP": ip}})
for n in range(1000):
    items.append({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"svc-{n}", "namespace": f"ns-{n % 100}", "uid": f"s{n}"},
        "spec": {"clusterIP": f"10.96.{n >> 8}.{n & 255}", "selector": {"app": f"app-{n}"}}})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(sys.argv[2], "w"))
print(f"pods file: {len(ips)} pods ({len(seen)} addresses of the capture), 1000 services")
PY
  fi
  plain=(); named=(); load=(); empty=()
  tiny="$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap"
  for run in $(seq "$RUNS"); do
    # Each run writes a new file, as a user's extract does: overwriting the last run's
    # output would charge truncating it (freeing its page cache, ~0.4-0.5 GB here) to the run,
    # more to the one with pods, whose file is larger.
    rm -f "$OUT/plain-$kind.csv"
    plain+=("$(cpu_seconds "$NADIR" extract "$capture" -o "$OUT/plain-$kind.csv")")
    rm -f "$OUT/named-$kind.csv"
    named+=("$(cpu_seconds "$NADIR" extract "$capture" --pods "$pods" -o "$OUT/named-$kind.csv")")
    # The fixed part: reading the pods file, on a 35-packet capture.
    empty+=("$(cpu_seconds "$NADIR" extract "$tiny" -o "$OUT/tiny.csv")")
    load+=("$(cpu_seconds "$NADIR" extract "$tiny" --pods "$pods" -o "$OUT/tiny.csv")")
  done
  size() { stat -c %s "$1"; }
  python3 - "$kind" "${plain[*]}" "${named[*]}" "${empty[*]}" "${load[*]}" \
    "$(size "$OUT/plain-$kind.csv")" "$(size "$OUT/named-$kind.csv")" <<'PY'
import statistics, sys
kind = sys.argv[1]
plain, named, empty, load = (statistics.median(map(float, a.split())) for a in sys.argv[2:6])
plain_bytes, named_bytes = int(sys.argv[6]), int(sys.argv[7])
print(f"{kind}: extract cic CPU s, medians of {len(sys.argv[2].split())}: without pods {plain:.3f}, with 10k pods {named:.3f} -> {100 * (named / plain - 1):+.1f} % (target <= +10 %)")
print(f"  of which reading the pods file once: {load - empty:.4f} s; the rest: {100 * ((named - (load - empty)) / plain - 1):+.1f} %, "
      f"with {100 * (named_bytes / plain_bytes - 1):+.1f} % more output bytes (the pod columns)")
PY
  echo "  the pod columns of its flows alone, through one writer's last lookups:"
  echo "  $("$EXAMPLES/lookup_cost" "$pods" "$OUT/plain-$kind.csv")"
done

echo "== keeping the map current"
"$EXAMPLES/snapshot_cost" 10000 1000 5000
