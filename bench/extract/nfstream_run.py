#!/usr/bin/env python3
"""NFStream with statistical analysis on a capture, flows written to CSV (one process)."""
import sys

from nfstream import NFStreamer

capture, out = sys.argv[1], sys.argv[2]
# n_meters=1: one metering process, comparable with nadir --threads 1.
streamer = NFStreamer(source=capture, statistical_analysis=True, n_meters=1)
rows = streamer.to_csv(path=out)
print(f"nfstream: {rows} flows", file=sys.stderr)
