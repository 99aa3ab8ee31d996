#!/usr/bin/env python3
"""Wall-clock seconds from a `/usr/bin/time -v` report."""
import sys

for line in open(sys.argv[1]):
    if "Elapsed (wall clock) time" in line:
        value = line.rsplit(": ", 1)[1].strip()
        seconds = 0.0
        for part in value.split(":"):
            seconds = seconds * 60 + float(part)
        print(f"{seconds:.3f}")
        break
