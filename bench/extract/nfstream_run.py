#!/usr/bin/env python3
"""NFStream with statistical analysis on a capture, flows written to CSV (one process).

    nfstream_run.py CAPTURE OUT.csv          # n_dissections=0: flow statistics only, as nadir
    nfstream_run.py CAPTURE OUT.csv --ndpi   # NFStream's default: nDPI dissection on too

Timeouts match nadir extract's defaults: a flow ends 120 s after its first packet
(nadir --flow-timeout, NFStream active_timeout) or after 120 s idle (nadir's idle expiry
is its flow timeout; NFStream idle_timeout). nadir's --activity-timeout (5 s) only splits
active/idle periods inside a flow and has no NFStream counterpart.
"""
import sys

from nfstream import NFStreamer

capture, out = sys.argv[1], sys.argv[2]
ndpi = "--ndpi" in sys.argv[3:]
# n_meters=1: one metering process, comparable with nadir --threads 1.
streamer = NFStreamer(
    source=capture,
    statistical_analysis=True,
    n_dissections=20 if ndpi else 0,  # 20 is NFStream's default
    idle_timeout=120,
    active_timeout=120,
    n_meters=1,
)
rows = streamer.to_csv(path=out)
print(f"nfstream ({'nDPI on' if ndpi else 'no dissection'}): {rows} flows", file=sys.stderr)
