#!/usr/bin/env python3
"""Counts the records of a classic pcap (the kind make_capture.py writes), streaming."""
import struct
import sys

with open(sys.argv[1], "rb") as f:
    magic = f.read(24)[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    count = 0
    while True:
        header = f.read(16)
        if len(header) < 16:
            break
        caplen = struct.unpack(endian + "I", header[8:12])[0]
        f.seek(caplen, 1)
        count += 1
print(count)
