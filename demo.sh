#!/usr/bin/env bash
# nadir's main job on data that ships with the repo (examples/data): look at the
# captures, turn them into CICFlowMeter-compatible flow features labelled by rules,
# and summarise a shipped dataset. Output goes to demo-out/.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -q -p nadir
NADIR=${CARGO_TARGET_DIR:-target}/release/nadir
OUT=demo-out
mkdir -p "$OUT"

echo "== 1. What the captures hold"
"$NADIR" inspect-capture examples/data/*.pcap

echo
echo "== 2. Flows and CICFlowMeter features (87 columns), labelled by rules"
"$NADIR" extract examples/data/k8s-nmap-tcp-syn-scan.pcap examples/data/k8s-nmap-udp-scan.pcap \
  --labels examples/labels/demo-k8s-nmap.toml -o "$OUT/k8s-nmap-flows.csv"
"$NADIR" extract examples/data/cicids2017-tls-benign.pcap -o "$OUT/benign-flows.parquet" --format parquet
"$NADIR" extract examples/data/k8s-nmap-tcp-syn-scan.pcap --features bytes -o "$OUT/k8s-nmap-first-bytes.csv"

echo
echo "== 3. A shipped NSL-KDD sample, as a dataset (training data for the model issue)"
"$NADIR" dataset summarize examples/data/nslkdd-train-sample.txt.gz

echo
echo "Wrote $(ls "$OUT" | wc -l) files to $OUT/"
