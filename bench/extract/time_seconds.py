#!/usr/bin/env python3
"""Wall-clock and CPU (user + system) seconds from a `/usr/bin/time -v` report."""
import sys

wall = cpu = 0.0
for line in open(sys.argv[1]):
    label, _, value = line.strip().rpartition(": ")
    if label.startswith("Elapsed (wall clock) time"):
        for part in value.split(":"):
            wall = wall * 60 + float(part)
    elif label in ("User time (seconds)", "System time (seconds)"):
        cpu += float(value)
print(f"{wall:.3f} {cpu:.3f}")
