#!/usr/bin/env python3
"""Prints packets/s, packets/s per core and ratios from run.sh's results.tsv
(rows named CAPTURE/TOOL), one block per capture."""
import sys

rows = {}
for line in open(sys.argv[1]):
    name, packets, wall, rss = line.rstrip("\n").split("\t")
    rows[name] = (int(packets), float(wall), int(rss))


def rate(name):
    packets, wall, _ = rows[name]
    return packets / wall if wall > 0 else float("inf")


threads = {"nadir-cic-2threads": 2}
captures = list(dict.fromkeys(name.split("/")[0] for name in rows))
for capture in captures:
    print(f"-- capture {capture}")
    print(f"{'tool':24} {'packets':>10} {'wall s':>9} {'packets/s':>12} {'/s per core':>12} {'peak RSS MiB':>13}")
    for name, (packets, wall, rss) in rows.items():
        if not name.startswith(capture + "/"):
            continue
        tool = name.split("/", 1)[1]
        per_core = rate(name) / threads.get(tool, 1)
        print(f"{tool:24} {packets:>10} {wall:>9.3f} {rate(name):>12,.0f} {per_core:>12,.0f} {rss / 1024:>13.1f}")
    base = f"{capture}/nadir-cic-1thread"
    if base not in rows:
        continue
    verdict = "meets" if rate(base) >= 3e6 else "MISSES"
    print(f"target >= 3,000,000 packets/s per core: nadir 1 thread = {rate(base):,.0f} packets/s ({verdict})")
    for peer, target in (("cicflowmeter-py-slice", 100), ("nfstream-stats", 10)):
        peer = f"{capture}/{peer}"
        if peer in rows:
            ratio = rate(base) / rate(peer)
            note = " (cicflowmeter on a slice: packets/s compared)" if "slice" in peer else ""
            verdict = "meets" if ratio >= target else "MISSES"
            print(f"nadir / {peer.split('/')[1]}: {ratio:,.1f}x (target >= {target}x: {verdict}){note}")
    cat = f"{capture}/cat"
    if cat in rows:
        print(f"nadir wall / cat wall: {rows[base][1] / max(rows[cat][1], 1e-9):.1f}x")
    print()
