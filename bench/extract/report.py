#!/usr/bin/env python3
"""Prints packets/s, packets/s per core and ratios from run.sh's results.tsv
(rows named CAPTURE/TOOL), one block per capture. Per core is packets per CPU
second (user + system): on a shared machine wall time also counts the time other
tenants hold the core."""
import sys

rows = {}
for line in open(sys.argv[1]):
    name, packets, wall, cpu, rss = line.rstrip("\n").split("\t")
    rows[name] = (int(packets), float(wall), float(cpu), int(rss))


def rate(name):
    packets, wall, _, _ = rows[name]
    return packets / wall if wall > 0 else float("inf")


def per_cpu_second(name):
    packets, _, cpu, _ = rows[name]
    return packets / cpu if cpu > 0 else float("inf")


captures = list(dict.fromkeys(name.split("/")[0] for name in rows))
for capture in captures:
    print(f"-- capture {capture}")
    print(f"{'tool':24} {'packets':>10} {'wall s':>8} {'CPU s':>8} {'packets/s':>12} {'per CPU s':>12} {'peak RSS MiB':>13}")
    for name, (packets, wall, cpu, rss) in rows.items():
        if not name.startswith(capture + "/"):
            continue
        tool = name.split("/", 1)[1]
        print(f"{tool:24} {packets:>10} {wall:>8.3f} {cpu:>8.3f} {rate(name):>12,.0f} {per_cpu_second(name):>12,.0f} {rss / 1024:>13.1f}")
    base = f"{capture}/nadir-cic-1thread"
    if base not in rows:
        continue
    for what, value in (("per CPU second", per_cpu_second(base)), ("by wall time", rate(base))):
        verdict = "meets" if value >= 3e6 else "MISSES"
        print(f"target >= 3,000,000 packets/s per core: nadir 1 thread {what} = {value:,.0f} ({verdict})")
    # The nDPI row has no target: it does work nadir does not (shown for reference).
    for peer, target in (("cicflowmeter-py-slice", 100), ("nfstream-stats", 10), ("nfstream-stats-ndpi", None)):
        peer = f"{capture}/{peer}"
        if peer in rows:
            ratio = rate(base) / rate(peer)
            note = " (cicflowmeter on a slice: packets/s compared)" if "slice" in peer else ""
            if target is None:
                verdict = "no target: NFStream also runs nDPI"
            else:
                verdict = f"target >= {target}x: " + ("meets" if ratio >= target else "MISSES")
            print(f"nadir / {peer.split('/')[1]}: {ratio:,.1f}x ({verdict}){note}")
    cat = f"{capture}/cat"
    if cat in rows:
        print(f"nadir wall / cat wall: {rows[base][1] / max(rows[cat][1], 1e-9):.1f}x")
    print()
