#!/usr/bin/env python3
"""Summarises bench/detect/run.sh's runs.tsv: the median of each configuration's runs, a table,
the targets, and results.json / results.csv beside runs.tsv.

runs.tsv columns: capture, model, side, round, packets, wall_s, cpu_s, rss_kib, flows, alerts,
written. side is nadir-explain (explanations on alerts, the default), nadir-no-explain or python.
Per core = packets per CPU second (user + system of the process and its children): on a shared
machine wall time also counts the time other tenants hold the cores.
"""
import csv
import json
import os
import statistics
import sys

TARGET_PER_CPU_S = 1_000_000  # nadir, `sessions`, scoring with explanations on alerts
TARGET_RATIO = 20.0  # nadir / Python, both captures
TARGET_RSS_MIB = 128.0

path = sys.argv[1]
out_dir = os.path.dirname(os.path.abspath(path))
runs = {}
for row in csv.reader(open(path), delimiter="\t"):
    if not row:
        continue
    capture, model, side, _round, packets, wall, cpu, rss, flows, alerts, written = row
    key = (capture, model, side)
    runs.setdefault(key, []).append(
        (int(packets), float(wall), float(cpu), int(rss), flows, alerts, written))


def num(x):
    return int(x) if x not in ("", "?") else None


results = []
for (capture, model, side), rs in runs.items():
    packets = rs[0][0]
    wall = statistics.median(r[1] for r in rs)
    cpu = statistics.median(r[2] for r in rs)
    results.append({
        "capture": capture, "model": model, "side": side, "runs": len(rs), "packets": packets,
        "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "packets_per_s": round(packets / wall) if wall > 0 else None,
        "packets_per_cpu_s": round(packets / cpu) if cpu > 0 else None,
        "peak_rss_mib": round(max(r[3] for r in rs) / 1024, 1),
        "flows": num(rs[-1][4]), "alerts": num(rs[-1][5]), "written": num(rs[-1][6]),
    })
by = {(r["capture"], r["model"], r["side"]): r for r in results}

print(f"{'capture':9} {'model':12} {'side':17} {'packets':>10} {'wall s':>8} {'CPU s':>8} "
      f"{'packets/s':>11} {'per CPU s':>11} {'RSS MiB':>8} {'flows':>9} {'alerts':>8}")
for r in results:
    fmt = lambda v: "?" if v is None else f"{v:,}"
    print(f"{r['capture']:9} {r['model']:12} {r['side']:17} {r['packets']:>10} {r['wall_s']:>8.3f} "
          f"{r['cpu_s']:>8.3f} {fmt(r['packets_per_s']):>11} {fmt(r['packets_per_cpu_s']):>11} "
          f"{r['peak_rss_mib']:>8.1f} {fmt(r['flows']):>9} {fmt(r['alerts']):>8}")

checks = []


def check(what, value, target, ok, unit=""):
    checks.append({"check": what, "value": value, "target": target, "met": ok})
    print(f"  {'meets ' if ok else 'MISSES'}  {what}: {value}{unit} (target {target}{unit})")


print("\ntargets")
for (capture, model, side), r in sorted(by.items()):
    if side == "nadir-explain" and capture == "sessions":
        v = r["packets_per_cpu_s"]
        check(f"{capture}/{model} nadir (explanations on alerts) packets per CPU second",
              "?" if v is None else f"{v:,}", f">= {TARGET_PER_CPU_S:,}", v is not None and v >= TARGET_PER_CPU_S)
for (capture, model, side), r in sorted(by.items()):
    if not side.startswith("nadir"):
        continue
    py = by.get((capture, model, "python"))
    if py is None or not r["cpu_s"] or not r["wall_s"]:
        continue
    cpu_ratio = py["cpu_s"] / r["cpu_s"]  # same packets on both sides
    wall_ratio = py["wall_s"] / r["wall_s"]
    check(f"{capture}/{model} {side} / python, per CPU second", f"{cpu_ratio:.1f}",
          f">= {TARGET_RATIO:.0f}", cpu_ratio >= TARGET_RATIO, "x")
    check(f"{capture}/{model} {side} / python, by wall time", f"{wall_ratio:.1f}",
          f">= {TARGET_RATIO:.0f}", wall_ratio >= TARGET_RATIO, "x")
for (capture, model, side), r in sorted(by.items()):
    if side.startswith("nadir"):
        check(f"{capture}/{model} {side} peak RSS", r["peak_rss_mib"], f"<= {TARGET_RSS_MIB:.0f}",
              r["peak_rss_mib"] <= TARGET_RSS_MIB, " MiB")
met = sum(c["met"] for c in checks)
print(f"\n{met}/{len(checks)} checks met")

with open(os.path.join(out_dir, "results.json"), "w") as f:
    json.dump({"results": results, "checks": checks}, f, indent=2)
with open(os.path.join(out_dir, "results.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(results[0].keys()) if results else ["capture"])
    w.writeheader()
    w.writerows(results)
print(f"results: {out_dir}/results.json, {out_dir}/results.csv")
