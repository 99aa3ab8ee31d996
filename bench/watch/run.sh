#!/usr/bin/env bash
# Live detection benchmark: the bench capture replayed into a veth pair at fixed rates
# (tcpreplay --pps) with `nadir watch` on the other end, beside `tcpdump -w /dev/null` on the
# same replay (the capture floor: what libpcap alone keeps up with), then a sensor's footprint
# at a steady rate over minutes.
#
#   sudo bash bench/watch/run.sh                            # 50k..400k packets/s, 5-minute footprint
#   FOOTPRINT_SECS=60 RATES="100000" sudo bash bench/watch/run.sh   # quick
#
# Per rate: packets sent (tcpreplay's count) and the rate it reached, packets nadir read and
# the kernel's drops (pcap_stats), flows dropped at the scoring queue and records dropped at
# the output (both counted, never silent), verdict latency p50/p99/max (from each flow's
# deciding packet to its record written, the summary's figures), nadir's CPU share (CPU
# seconds / replay seconds, all threads) and peak RSS; tcpdump's received and dropped counts on
# the same replay with the same ring size (-B, 16 MiB: nadir's default --ring-mb).
# Targets (issue 16): 0 drops and p99 latency <= 10 ms at 100k packets/s; footprint at 20k
# packets/s <= 0.1 core and <= 128 MiB with 0 lost packets.
#
# What the replay changes: packets get the replay's timestamps, so flows are shorter and their
# timing features differ from the file's; `watch` scores them as they end (TCP close, timeouts
# on packet time) and every live flow at SIGTERM. After a replay, watch gets up to LINGER (3)
# seconds to end its flows by their idle timeout before SIGTERM (with the default 120 s timeout
# the slowloris connections are still open then, and end in the SIGTERM flush).
# tcpreplay uses one of the two cores.
#
# Knobs: MIN_MB (60: bench/out/bench-sessions-60mb.pcap, made as bench/detect/run.sh makes it),
# RATES ("50000 100000 200000 400000"), FOOTPRINT_PPS (20000), FOOTPRINT_SECS (300; 0 skips),
# MODEL (hybrid; bench/out/detect/$MODEL.nadir, trained as bench/detect/run.sh trains it),
# NADIR (a built binary), EPOCHS (2), NADIR_SHARED_DATA, CARGO_TARGET_DIR ($ROOT/target),
# WATCH_ARGS (more `nadir watch` options, e.g. "--flow-timeout 1": the capture's slowloris
# sessions stay open for minutes, so with the default 120 s timeout every verdict waits for the
# SIGTERM flush; a short timeout ends flows during the replay and measures live latency).
# Needs root (network namespace, capture), iproute2, tcpreplay and tcpdump (installed with
# apt-get when missing). Results: bench/out/watch/results.tsv and the table printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="${NADIR_SHARED_DATA:-$ROOT/../shared/data}"
OUT="$ROOT/bench/out/watch"
MIN_MB="${MIN_MB:-60}"
RATES="${RATES:-50000 100000 200000 400000}"
FOOTPRINT_PPS="${FOOTPRINT_PPS:-20000}"
FOOTPRINT_SECS="${FOOTPRINT_SECS:-300}"
LINGER="${LINGER:-3}"
MODEL="${MODEL:-hybrid}"
EPOCHS="${EPOCHS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export RAYON_NUM_THREADS=2
mkdir -p "$OUT"

[[ "$(id -u)" == 0 ]] || { echo "!! needs root: a network namespace and live capture"; exit 1; }
missing=()
for tool in ip tcpreplay tcpdump; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if (( ${#missing[@]} )); then
  echo "== apt-get install iproute2 tcpreplay tcpdump"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    iproute2 tcpreplay tcpdump >/dev/null
fi

# ---- capture and bundle (the same files as bench/detect/run.sh)
CAPTURE="$ROOT/bench/out/bench-sessions-${MIN_MB}mb.pcap"
if [[ ! -s "$CAPTURE" ]]; then
  echo "== make $CAPTURE"
  cargo build --release -q -p nadir-decode --example make_bench_capture --manifest-path "$ROOT/Cargo.toml"
  "$CARGO_TARGET_DIR/release/examples/make_bench_capture" "$CAPTURE" "$MIN_MB" \
    "$DATA/labelled/kihy-slowloris/slowloris.pcap" \
    "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap"
fi
if [[ -z "${NADIR:-}" ]]; then
  echo "== build nadir (release)"
  cargo build --release -q -p nadir --manifest-path "$ROOT/Cargo.toml"
  NADIR="$CARGO_TARGET_DIR/release/nadir"
fi
BUNDLE="$ROOT/bench/out/detect/$MODEL.nadir"
if [[ ! -s "$BUNDLE" ]]; then
  echo "== train $MODEL bundle on k8s-misuse-dev/dev.csv ($EPOCHS epochs; not timed)"
  mkdir -p "$(dirname "$BUNDLE")"
  "$NADIR" train --data "$DATA/k8s-misuse-dev/dev.csv" --model "$MODEL" --split group \
    --epochs "$EPOCHS" --quiet --no-plots --resamples 0 -o "$BUNDLE" > "$OUT/train.log" 2>&1
fi

# ---- the veth pair: watch and tcpdump on $HOST, tcpreplay into $PEER (inside $NS)
NS=nadirbench HOST=nbh0 PEER=nbp0
cleanup() {
  [[ -n "${WATCH_PID:-}" ]] && kill "$WATCH_PID" 2>/dev/null || true
  ip link del "$HOST" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$NS"
ip link add "$HOST" type veth peer name "$PEER" netns "$NS"
sysctl -qw "net.ipv6.conf.$HOST.disable_ipv6=1"
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$PEER.disable_ipv6=1"
ip link set "$HOST" up
ip -n "$NS" link set "$PEER" up

# replay PPS LOOPS LOG: tcpreplay into the peer; prints "sent rated_pps seconds".
replay() {
  ip netns exec "$NS" tcpreplay -i "$PEER" --pps="$1" --loop="$2" "$CAPTURE" > "$3" 2>&1
  python3 - "$3" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
sent = re.search(r"Actual: (\d+) packets .* sent in ([\d.]+) seconds", text)
rated = re.search(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps", text)
print(sent.group(1), rated.group(1), sent.group(2))
PY
}

cpu_seconds() {  # utime + stime of a process, all threads
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
peak_rss_mib() { awk '/VmHWM/ { print $2 / 1024 }' "/proc/$1/status"; }
metric() {  # metric NAME: its value on /metrics, 0 if absent
  curl -s "http://$METRICS/metrics" | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}

# start_watch TAG: nadir watch on $HOST; sets WATCH_PID and METRICS.
start_watch() {
  rm -f "$OUT/alerts-$1.jsonl"*
  "$NADIR" watch -i "$HOST" --model "$BUNDLE" --listen 127.0.0.1:0 \
    --out "$OUT/alerts-$1.jsonl" --rotate-mb 256 --keep 1 ${WATCH_ARGS:-} 2> "$OUT/watch-$1.err" &
  WATCH_PID=$!
  for _ in $(seq 200); do
    METRICS=$(grep -o 'metrics on http://[^/]*' "$OUT/watch-$1.err" | sed 's|.*http://||' || true)
    [[ -n "$METRICS" ]] && return 0
    sleep 0.05
  done
  echo "!! watch did not start"; cat "$OUT/watch-$1.err"; exit 1
}

# stop_watch SENT: waits until nadir has read SENT packets (or 30 s), then SIGTERM and the summary.
stop_watch() {
  for _ in $(seq 300); do
    [[ "$(metric nadir_packets_total)" -ge "$1" ]] && break
    sleep 0.1
  done
  # Flows end by their idle timeout once the replay stops (a quiet interface moves packet
  # time on): give them LINGER seconds, so live verdicts are measured as live, not as the
  # SIGTERM flush of flows still open.
  for _ in $(seq $(( LINGER * 10 ))); do
    [[ "$(metric nadir_live_flows)" == 0 ]] && break
    sleep 0.1
  done
  RSS=$(peak_rss_mib "$WATCH_PID")
  kill -TERM "$WATCH_PID"
  wait "$WATCH_PID" || echo "!! watch exited with $?"
  WATCH_PID=
}

# summary TAG: "read kernel_drops flows_dropped records_dropped p50 p99 max" from the summary.
summary() {
  python3 - "$OUT/watch-$1.err" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def grab(pattern, default="?"):
    m = re.search(pattern, text)
    return m.group(1) if m else default
print(grab(r"packets read (\d+)"), grab(r"kernel drops (\d+)"),
      grab(r"\+ dropped (\d+) \(scoring queue full\)", "0"),
      grab(r"records \d+ = written \d+ \+ dropped (\d+)"),
      grab(r"ms: p50 (\S+)"), grab(r"p99 (\S+)"), grab(r"max (\S+) over"))
PY
}

RESULTS="$OUT/results.tsv"
printf 'run\ttarget_pps\treached_pps\tsent\tnadir_read\tkernel_drops\tflows_dropped\trecords_dropped\tp50_ms\tp99_ms\tmax_ms\tcpu_share\tpeak_rss_mib\ttcpdump_received\ttcpdump_dropped\n' > "$RESULTS"

for pps in $RATES; do
  echo "== $pps packets/s"
  # The floor: tcpdump with the same ring size, writing nothing.
  tcpdump -i "$HOST" -n -B 16384 -w /dev/null 2> "$OUT/tcpdump-$pps.err" &
  dump=$!
  sleep 1
  replay "$pps" 1 "$OUT/tcpreplay-dump-$pps.log" > /dev/null
  sleep 1
  kill -INT "$dump"; wait "$dump" || true
  dump_received=$(grep -o '[0-9]* packets received by filter' "$OUT/tcpdump-$pps.err" | cut -d' ' -f1)
  dump_dropped=$(grep -o '[0-9]* packets dropped by kernel' "$OUT/tcpdump-$pps.err" | cut -d' ' -f1)

  start_watch "$pps"
  cpu0=$(cpu_seconds "$WATCH_PID")
  read -r sent reached seconds < <(replay "$pps" 1 "$OUT/tcpreplay-$pps.log")
  cpu1=$(cpu_seconds "$WATCH_PID")
  stop_watch "$sent"
  read -r nread kdrops fdrops rdrops p50 p99 max < <(summary "$pps")
  share=$(python3 -c "print(round(($cpu1 - $cpu0) / $seconds, 3))")
  printf 'rate\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$pps" "$reached" "$sent" \
    "$nread" "$kdrops" "$fdrops" "$rdrops" "$p50" "$p99" "$max" "$share" "$RSS" \
    "$dump_received" "$dump_dropped" >> "$RESULTS"
  echo "   sent $sent at $reached pps; nadir read $nread, kernel drops $kdrops, flows dropped $fdrops, records dropped $rdrops; latency ms p50 $p50 p99 $p99 max $max; CPU $share core, peak RSS $RSS MiB; tcpdump received $dump_received, dropped $dump_dropped"
done

if (( FOOTPRINT_SECS > 0 )); then
  packets=$(python3 "$ROOT/bench/detect/pcap_packets.py" "$CAPTURE")
  loops=$(( (FOOTPRINT_PPS * FOOTPRINT_SECS + packets - 1) / packets ))
  echo "== footprint: $FOOTPRINT_PPS packets/s for ~$(( loops * packets / FOOTPRINT_PPS )) s ($loops loops of the capture)"
  start_watch footprint
  cpu0=$(cpu_seconds "$WATCH_PID")
  replay "$FOOTPRINT_PPS" "$loops" "$OUT/tcpreplay-footprint.log" > "$OUT/footprint-replay.txt" &
  replayer=$!
  : > "$OUT/footprint-samples.tsv"
  while kill -0 "$replayer" 2>/dev/null; do
    sleep 10
    printf '%s\t%s\t%s\n' "$(date +%s)" "$(cpu_seconds "$WATCH_PID")" \
      "$(awk '/VmRSS/ { print $2 / 1024 }' "/proc/$WATCH_PID/status")" >> "$OUT/footprint-samples.tsv"
  done
  wait "$replayer"
  read -r sent reached seconds < "$OUT/footprint-replay.txt"
  cpu1=$(cpu_seconds "$WATCH_PID")
  stop_watch "$sent"
  read -r nread kdrops fdrops rdrops p50 p99 max < <(summary footprint)
  share=$(python3 -c "print(round(($cpu1 - $cpu0) / $seconds, 3))")
  printf 'footprint\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t-\t-\n' "$FOOTPRINT_PPS" "$reached" \
    "$sent" "$nread" "$kdrops" "$fdrops" "$rdrops" "$p50" "$p99" "$max" "$share" "$RSS" >> "$RESULTS"
  echo "   sent $sent in $seconds s; nadir read $nread, kernel drops $kdrops, flows dropped $fdrops, records dropped $rdrops; CPU $share core, peak RSS $RSS MiB (samples: $OUT/footprint-samples.tsv)"
fi

echo
echo "== results ($RESULTS)"
column -t -s $'\t' "$RESULTS"
