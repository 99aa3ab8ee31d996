#!/usr/bin/env python3
"""Prints packets/s, packets/s per core and ratios from run.sh's results.tsv."""
import sys

rows = {}
for line in open(sys.argv[1]):
    name, packets, wall, rss = line.rstrip("\n").split("\t")
    rows[name] = (int(packets), float(wall), int(rss))
cores = int(sys.argv[2]) if len(sys.argv) > 2 else 1


def rate(name):
    packets, wall, _ = rows[name]
    return packets / wall if wall > 0 else float("inf")


threads = {"nadir-cic-2threads": 2}
print(f"{'tool':28} {'packets':>10} {'wall s':>9} {'packets/s':>12} {'/s per core':>12} {'peak RSS MiB':>13}")
for name, (packets, wall, rss) in rows.items():
    per_core = rate(name) / threads.get(name, 1)
    print(f"{name:28} {packets:>10} {wall:>9.3f} {rate(name):>12,.0f} {per_core:>12,.0f} {rss / 1024:>13.1f}")
base = "nadir-cic-1thread"
if base in rows:
    print()
    print(f"target >= 3,000,000 packets/s per core: nadir 1 thread = {rate(base):,.0f} packets/s")
    for peer, target in (("cicflowmeter-py-slice", 100), ("nfstream-stats", 10)):
        if peer in rows:
            ratio = rate(base) / rate(peer)
            note = " (cicflowmeter on a slice: packets/s compared)" if "slice" in peer else ""
            verdict = "meets" if ratio >= target else "MISSES"
            print(f"nadir / {peer}: {ratio:,.1f}x (target >= {target}x: {verdict}){note}")
    if "cat" in rows:
        print(f"nadir wall / cat wall: {rows[base][1] / max(rows['cat'][1], 1e-9):.1f}x")
