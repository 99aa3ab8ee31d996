#!/usr/bin/env python3
"""Packets in a classic pcap file (the format make_bench_capture writes): the common
denominator of packets/s for both sides, independent of what either tool accounts."""
import struct
import sys

MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
          b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}

with open(sys.argv[1], "rb") as f:
    header = f.read(24)
    order = MAGICS.get(header[:4])
    if order is None:
        sys.exit(f"{sys.argv[1]}: not a classic pcap file (pcapng? compressed?)")
    record = struct.Struct(order + "IIII")
    packets = 0
    while True:
        head = f.read(16)
        if len(head) < 16:
            break
        f.seek(record.unpack(head)[2], 1)
        packets += 1
print(packets)
