#!/usr/bin/env bash
# Learning from normal traffic on captures (issue 18): `bytes` (LDPI's first 4 packets x 60
# bytes, addresses masked) and `cic` features of the benign captures in ../shared/data
# (pcap-robustness: ~250 captures from the test suites of libpcap, tcpdump, zeek, suricata,
# ...; the CIC-IDS2017 slice of cicflowmeter-reference) train Deep SAD and the autoencoder;
# the labelled attack captures (synscan, slowloris, the two ConCap nmap runs in Kubernetes
# pods) are the test anomalies, each reported against held-out benign flows (ROC-AUC with a
# 95 % bootstrap interval, recall at the p99 threshold and at 1 % FPR).
#
#   bench/quality/captures.sh
#   FEATURES=bytes MODES=deepsad bench/quality/captures.sh
#
# The data are small: a few thousand benign flows of very mixed origin and four attack
# captures; the figures say whether the models separate these attacks from that mix, not how
# they would do on a real network. The benign flows are split at random (70/15/15): the
# captures have no common clock.
#
# Env: FEATURES (bytes cic), MODES (deepsad autoencoder), EPOCHS (overrides bench/quality/deepsad.toml), SEED,
# OUT (default bench/out/captures), DATA (../shared/data), NADIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data}
OUT=${OUT:-bench/out/captures}
FEATURES=${FEATURES:-"bytes cic"}
MODES=${MODES:-"deepsad autoencoder"}
SEED=${SEED:-42}
mkdir -p "$OUT"

if [[ -z "${NADIR:-}" ]]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
  cargo build --release -p nadir --bin nadir
  NADIR="$CARGO_TARGET_DIR/release/nadir"
fi

# Ground truth of the attack captures (../shared/data/README.md); every other flow is benign.
rules="$OUT/labels.toml"
cat >"$rules" <<'EOF'
unlabelled = "benign"

[[rule]]
label = "synscan"
files = ["synscan.pcapng"]
attacker = ["172.16.0.8"]
victim = ["64.13.134.52"]

[[rule]]
label = "slowloris"
files = ["slowloris.pcap"]
attacker = ["10.0.2.15"]
victim = ["192.168.56.102"]

[[rule]]
label = "nmap-tcp-syn-version"
files = ["example__completed__nmap-tcp-syn-version__dump.pcap"]
attacker = ["192.168.126.228"]
victim = ["192.168.126.224"]

[[rule]]
label = "nmap-udp-version"
files = ["example__completed__nmap-udp-version__dump.pcap"]
attacker = ["192.168.177.151"]
victim = ["192.168.126.204"]
EOF

mapfile -t captures < <(
  find "$DATA/pcap-robustness" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) | sort
  echo "$DATA/cicflowmeter-reference/cicflowmeter-sample-latria/sample.pcap"
  echo "$DATA/labelled/chrissanders-synscan/synscan.pcapng"
  echo "$DATA/labelled/kihy-slowloris/slowloris.pcap"
  ls "$DATA"/cicflowmeter-reference/concap-examples/*__dump.pcap
)

config=bench/quality/deepsad.toml

for features in $FEATURES; do
  table="$OUT/$features.csv"
  # Some robustness captures are truncated or corrupt on purpose: extract keeps every flow
  # read before a fault and exits non-zero; the summary says what was skipped.
  "$NADIR" extract "${captures[@]}" --features "$features" --labels "$rules" -o "$table" \
    2>"$OUT/$features-extract.log" || true
  tail -n 4 "$OUT/$features-extract.log" >&2
  for mode in $MODES; do
    bundle="$OUT/$features-$mode.nadir"
    args=(train --data "$table" --mode "$mode" --seed "$SEED" --quiet -o "$bundle")
    [[ $mode == deepsad ]] && args+=(--config "$config")
    [[ -n "${EPOCHS:-}" ]] && args+=(--epochs "$EPOCHS")
    echo "=== $features, $mode" >&2
    start=$(date +%s)
    "$NADIR" "${args[@]}" >"$OUT/$features-$mode.txt"
    echo "    $(( $(date +%s) - start )) s; report $OUT/$features-$mode.txt" >&2
    python3 bench/quality/per_attack_table.py "$bundle.report/evaluation.json" "captures $features, $mode"
  done
done
