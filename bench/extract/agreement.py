#!/usr/bin/env python3
"""Per-feature agreement between `nadir extract --cic-mode compat` and the PyPI
`cicflowmeter` 0.5.0 (hieulw), on the robustness and labelled captures.

Run with the cicflowmeter venv's Python (run.sh makes it):
  bench/.venv-cicflowmeter/bin/python bench/extract/agreement.py \
      --nadir target/release/nadir [--out bench/out/extract/agreement] [CAPTURE|DIR ...]
Default inputs: ../shared/data/labelled and ../shared/data/pcap-robustness.

Python cicflowmeter runs in this process through cic_patched.py (the same four
patches as the benchmark). Flows are matched by protocol + unordered endpoint pair,
then in start-time order within a pair. It only reads IPv4 TCP/UDP, so nadir's other
flows (IPv6, ICMP, ...) are left out of the comparison and counted.

Expected, documented differences (seeds-spec §6.2.8): the Python tool expires flows
240 s after their last packet (nadir compat: 120 s after the first) and ends a flow
at the first FIN; its bulk/clump gap is 1 s in this version and its active timeout
5 s, but it uses packet time in seconds for both; `subflow_*` are totals (the Java
fork divides by the packet count); `cwr_flag_count` is the forward URG count;
`init_bwd_win_byts` and `fwd_seg_size_min` follow other definitions; `timestamp`
has one-second resolution; every packet length (`totlen_*`, `*_pkt_len_*`,
`pkt_len_*`, `pkt_size_avg`, segment sizes) is scapy's `len(packet)`, the whole
frame from the link header on (cicflowmeter/features/packet_length.py), where the
fork counts payload bytes: those differ on every flow by the header bytes. And
0.5.0 counts each flow's first packet twice: `Flow.__init__` stores it in
`self.packets`, then `FlowSession.process` calls `flow.add_packet` with the same
packet (flow_session.py). So its forward count, SYN count, forward header length
and lengths hold the first packet twice, and its flow IATs gain a 0 gap. Its
rates are 0 over a zero duration, where the Java fork prints Infinity. The report
lists every feature with its agreement.
"""
import argparse
import collections
import csv
import ipaddress
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# python cicflowmeter column -> nadir (Kubernetes dataset) column.
MAPPING = {
    "src_ip": "Src IP", "dst_ip": "Dst IP", "src_port": "Src Port", "dst_port": "Dst Port",
    "protocol": "Protocol",
    "flow_duration": "Flow Duration", "flow_byts_s": "Flow Bytes/s", "flow_pkts_s": "Flow Packets/s",
    "fwd_pkts_s": "Fwd Packets/s", "bwd_pkts_s": "Bwd Packets/s",
    "tot_fwd_pkts": "Total Fwd Packet", "tot_bwd_pkts": "Total Bwd packets",
    "totlen_fwd_pkts": "Total Length of Fwd Packet", "totlen_bwd_pkts": "Total Length of Bwd Packet",
    "fwd_pkt_len_max": "Fwd Packet Length Max", "fwd_pkt_len_min": "Fwd Packet Length Min",
    "fwd_pkt_len_mean": "Fwd Packet Length Mean", "fwd_pkt_len_std": "Fwd Packet Length Std",
    "bwd_pkt_len_max": "Bwd Packet Length Max", "bwd_pkt_len_min": "Bwd Packet Length Min",
    "bwd_pkt_len_mean": "Bwd Packet Length Mean", "bwd_pkt_len_std": "Bwd Packet Length Std",
    "pkt_len_max": "Packet Length Max", "pkt_len_min": "Packet Length Min",
    "pkt_len_mean": "Packet Length Mean", "pkt_len_std": "Packet Length Std",
    "pkt_len_var": "Packet Length Variance",
    "fwd_header_len": "Fwd Header Length", "bwd_header_len": "Bwd Header Length",
    "fwd_seg_size_min": "Fwd Seg Size Min", "fwd_act_data_pkts": "Fwd Act Data Pkts",
    "flow_iat_mean": "Flow IAT Mean", "flow_iat_max": "Flow IAT Max", "flow_iat_min": "Flow IAT Min",
    "flow_iat_std": "Flow IAT Std",
    "fwd_iat_tot": "Fwd IAT Total", "fwd_iat_max": "Fwd IAT Max", "fwd_iat_min": "Fwd IAT Min",
    "fwd_iat_mean": "Fwd IAT Mean", "fwd_iat_std": "Fwd IAT Std",
    "bwd_iat_tot": "Bwd IAT Total", "bwd_iat_max": "Bwd IAT Max", "bwd_iat_min": "Bwd IAT Min",
    "bwd_iat_mean": "Bwd IAT Mean", "bwd_iat_std": "Bwd IAT Std",
    "fwd_psh_flags": "Fwd PSH Flags", "bwd_psh_flags": "Bwd PSH Flags",
    "fwd_urg_flags": "Fwd URG Flags", "bwd_urg_flags": "Bwd URG Flags",
    "fin_flag_cnt": "FIN Flag Count", "syn_flag_cnt": "SYN Flag Count", "rst_flag_cnt": "RST Flag Count",
    "psh_flag_cnt": "PSH Flag Count", "ack_flag_cnt": "ACK Flag Count", "urg_flag_cnt": "URG Flag Count",
    "ece_flag_cnt": "ECE Flag Count", "cwr_flag_count": "CWR Flag Count",
    "down_up_ratio": "Down/Up Ratio", "pkt_size_avg": "Average Packet Size",
    "init_fwd_win_byts": "FWD Init Win Bytes", "init_bwd_win_byts": "Bwd Init Win Bytes",
    "active_max": "Active Max", "active_min": "Active Min", "active_mean": "Active Mean", "active_std": "Active Std",
    "idle_max": "Idle Max", "idle_min": "Idle Min", "idle_mean": "Idle Mean", "idle_std": "Idle Std",
    "fwd_byts_b_avg": "Fwd Bytes/Bulk Avg", "fwd_pkts_b_avg": "Fwd Packet/Bulk Avg",
    "bwd_byts_b_avg": "Bwd Bytes/Bulk Avg", "bwd_pkts_b_avg": "Bwd Packet/Bulk Avg",
    "fwd_blk_rate_avg": "Fwd Bulk Rate Avg", "bwd_blk_rate_avg": "Bwd Bulk Rate Avg",
    "fwd_seg_size_avg": "Fwd Segment Size Avg", "bwd_seg_size_avg": "Bwd Segment Size Avg",
    "subflow_fwd_pkts": "Subflow Fwd Packets", "subflow_bwd_pkts": "Subflow Bwd Packets",
    "subflow_fwd_byts": "Subflow Fwd Bytes", "subflow_bwd_byts": "Subflow Bwd Bytes",
}
IDENTITY = ("src_ip", "dst_ip", "src_port", "dst_port", "protocol")
REL_TOL, ABS_TOL = 1e-4, 1e-3


def number(text):
    text = (text or "").strip()
    if text in ("", "None"):
        return None
    if text in ("NaN", "nan"):
        return math.nan
    if text in ("Infinity", "inf"):
        return math.inf
    if text in ("-Infinity", "-inf"):
        return -math.inf
    try:
        return float(text)
    except ValueError:
        return None


def equal(a, b):
    if a is None or b is None:
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= ABS_TOL + REL_TOL * max(abs(a), abs(b))


def pair_key(src, sport, dst, dport, proto):
    ends = sorted([(src, int(sport)), (dst, int(dport))])
    return (int(proto), ends[0], ends[1])


def run_python_cicflowmeter(capture, out_csv):
    import cic_patched  # noqa: F401  (applies the patches)
    from cicflowmeter import sniffer as cic_sniffer
    sniff, session = cic_sniffer.create_sniffer(
        input_file=str(capture), input_interface=None, output_mode="csv", output=str(out_csv))
    sniff.start()
    sniff.join()
    session.flush_flows()


def read_rows(path):
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def is_ipv4(text):
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def compare(nadir_rows, py_rows, stats, examples, capture):
    by_pair_nadir = collections.defaultdict(list)
    by_pair_py = collections.defaultdict(list)
    skipped_nadir = 0
    for row in nadir_rows:
        if row["Protocol"] not in ("6", "17") or not is_ipv4(row["Src IP"]):
            skipped_nadir += 1
            continue
        key = pair_key(row["Src IP"], row["Src Port"], row["Dst IP"], row["Dst Port"], row["Protocol"])
        by_pair_nadir[key].append(row)
    for row in py_rows:
        key = pair_key(row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["protocol"])
        by_pair_py[key].append(row)
    matched = 0
    for key in set(by_pair_nadir) | set(by_pair_py):
        ours, theirs = by_pair_nadir.get(key, []), by_pair_py.get(key, [])
        # Rows of one pair are written in end order; pair them in start order.
        theirs = sorted(theirs, key=lambda r: r["timestamp"])
        for a, b in zip(ours, theirs):
            matched += 1
            for py_col, our_col in MAPPING.items():
                x, y = a.get(our_col), b.get(py_col)
                if py_col in ("src_ip", "dst_ip"):
                    ok = x == y
                else:
                    ok = equal(number(x), number(y))
                stats[py_col][0] += 1
                stats[py_col][1] += ok
                if not ok and len(examples[py_col]) < 3:
                    examples[py_col].append(f"{Path(capture).name} {key[1][0]}:{key[1][1]}-{key[2][0]}:{key[2][1]}"
                                            f" nadir={x} cicflowmeter={y}")
        stats["_only_nadir"][0] += max(0, len(ours) - len(theirs))
        stats["_only_python"][0] += max(0, len(theirs) - len(ours))
    stats["_matched"][0] += matched
    stats["_nadir_not_ipv4_tcp_udp"][0] += skipped_nadir


def captures_from(paths):
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.suffix in (".pcap", ".pcapng", ".cap"):
                    yield f
        elif p.exists():
            yield p


def main():
    root = HERE.parent.parent
    data = Path(os.environ.get("NADIR_SHARED_DATA", root.parent / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nadir", default=str(root / "target" / "release" / "nadir"))
    ap.add_argument("--out", default=str(root / "bench" / "out" / "extract" / "agreement"))
    ap.add_argument("inputs", nargs="*", default=[str(data / "labelled"), str(data / "pcap-robustness")])
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TZ"] = "UTC"

    stats = collections.defaultdict(lambda: [0, 0])
    examples = collections.defaultdict(list)
    files = failures = 0
    for capture in captures_from(args.inputs):
        files += 1
        stem = out / capture.name
        ours = stem.with_suffix(".nadir.csv")
        theirs = stem.with_suffix(".cicflowmeter.csv")
        proc = subprocess.run([args.nadir, "extract", str(capture), "--cic-mode", "compat", "--no-progress",
                               "-o", str(ours)], capture_output=True, text=True)
        if proc.returncode != 0:
            stats["_nadir_errors"][0] += 1  # a broken capture: the flows before the fault are still written
        try:
            if theirs.exists():
                theirs.unlink()
            run_python_cicflowmeter(capture, theirs)
        except Exception as err:  # the Python tool's own crashes are counted, not fatal
            failures += 1
            print(f"cicflowmeter failed on {capture.name}: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        compare(read_rows(ours), read_rows(theirs), stats, examples, capture)

    print(f"captures: {files}; python cicflowmeter failed on {failures}; nadir exited non-zero on "
          f"{stats['_nadir_errors'][0]} (corrupt/truncated inputs)")
    print(f"flows matched: {stats['_matched'][0]}; only nadir: {stats['_only_nadir'][0]}; "
          f"only cicflowmeter: {stats['_only_python'][0]}; nadir flows outside IPv4 TCP/UDP (not compared): "
          f"{stats['_nadir_not_ipv4_tcp_udp'][0]}")
    print(f"{'cicflowmeter column':22} {'nadir column':28} {'agree':>8} {'of':>7} {'%':>7}")
    for py_col, our_col in MAPPING.items():
        n, ok = stats[py_col]
        pct = 100.0 * ok / n if n else float("nan")
        print(f"{py_col:22} {our_col:28} {ok:>8} {n:>7} {pct:>6.1f}%")
    print("\nexamples of differences (first 3 per feature):")
    for py_col in MAPPING:
        for line in examples[py_col]:
            print(f"  {py_col}: {line}")


if __name__ == "__main__":
    main()
