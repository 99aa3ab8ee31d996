#!/usr/bin/env bash
# nadir's main job on data and a model that ship with the repo: `nadir demo` scores
# captures it never saw with a bundle trained on real Kubernetes flows and shows the
# alerts with their explanations. Then the rest of the pipeline on the shipped data:
# look at the captures, turn them into CICFlowMeter-compatible flow features labelled
# by rules, summarise a shipped dataset, train models on it, score held-out data with
# a saved bundle and show what the bundle holds. Output goes to demo-out/.
#
#   ./demo.sh                                # builds nadir (release), writes demo-out/
#   NADIR=path/to/nadir OUT=dir ./demo.sh    # a nadir built already (the tests run it so)
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${NADIR:-}" ]; then
  # `watch` needs libpcap's headers; without them, build everything else.
  if pkg-config --exists libpcap 2>/dev/null; then
    cargo build --release -q -p nadir
  else
    echo "(libpcap-dev not installed: building nadir without \`watch\`)"
    cargo build --release -q -p nadir --no-default-features --features ml
  fi
  NADIR=${CARGO_TARGET_DIR:-target}/release/nadir
fi
OUT=${OUT:-demo-out}
mkdir -p "$OUT"

echo "== 1. Detection: a shipped bundle scores three captures it never saw"
"$NADIR" demo --out "$OUT"

echo
echo "== 2. What the captures hold"
"$NADIR" inspect-capture examples/data/*.pcap

echo
echo "== 3. Flows and CICFlowMeter features (87 columns), labelled by rules"
"$NADIR" extract examples/data/k8s-nmap-tcp-syn-scan.pcap examples/data/k8s-nmap-udp-scan.pcap \
  --labels examples/labels/demo-k8s-nmap.toml -o "$OUT/k8s-nmap-flows.csv"
"$NADIR" extract examples/data/cicids2017-tls-benign.pcap -o "$OUT/benign-flows.parquet" --format parquet
"$NADIR" extract examples/data/k8s-nmap-tcp-syn-scan.pcap --features bytes -o "$OUT/k8s-nmap-first-bytes.csv"

echo
echo "== 4. A shipped NSL-KDD sample, as a dataset"
"$NADIR" dataset summarize examples/data/nslkdd-train-sample.txt.gz

echo
echo "== 5. Train the hybrid model (LSTM + attention + Transformer) on it, binary,"
echo "==    threshold at 1% false positives on validation, tested on the test sample"
"$NADIR" train --data examples/data/nslkdd-train-sample.txt.gz \
  --test examples/data/nslkdd-test-sample.txt.gz \
  --model hybrid --epochs 8 --threshold fpr:0.01 --resamples 200 -o "$OUT/nslkdd-hybrid.nadir"
echo
echo "==    and the autoencoder on the benign rows only (signed-log features; threshold at the"
echo "==    99th percentile of held-out benign scores: no attack is seen before the test)"
"$NADIR" train --data examples/data/nslkdd-train-sample.txt.gz \
  --test examples/data/nslkdd-test-sample.txt.gz \
  --model autoencoder --log --resamples 200 -o "$OUT/nslkdd-autoencoder.nadir"

echo
echo "== 6. Score data with the saved bundle, and look inside it"
"$NADIR" evaluate --model "$OUT/nslkdd-hybrid.nadir" \
  --data examples/data/nslkdd-test-sample.txt.gz --resamples 200 --out "$OUT/nslkdd-hybrid-eval"
"$NADIR" inspect "$OUT/nslkdd-hybrid.nadir"

echo
echo "Wrote $(ls "$OUT" | wc -l) files to $OUT/"
