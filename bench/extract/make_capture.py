#!/usr/bin/env python3
"""Builds the extract benchmark capture: real public captures replicated into one
large Ethernet pcap, each copy with shifted IP addresses and times.

Stdlib only. Reads classic pcap (us/ns, either byte order) and pcapng (EPB/SPB/
obsolete PB, several sections/interfaces); keeps Ethernet frames. Copy k:
  * times shifted by k * (span / OVERLAP) so about OVERLAP copies run at once
    (the flow table holds several copies' flows concurrently, as on a busy node);
  * IPv4 addresses: second and third octets XOR (k+1) (so copies never share
    flows); IPv6: bytes 4-5 of each address likewise; the IPv4 header checksum is
    recomputed (TCP/UDP checksums are left stale: no tool here verifies them).
Copies are merged in time order (heap merge; the base packets are held once).

  make_capture.py --min-mb 200 -o bench.pcap BASE.pcap [BASE.pcapng ...]
  make_capture.py --slice 20000 -i bench.pcap -o slice.pcap   # first N packets
"""

import argparse
import heapq
import struct
import sys

ETHERNET = 1
OVERLAP = 4


def read_pcap(data):
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return None
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    out = []
    while off + 16 <= len(data):
        sec, frac, caplen, _wire = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        if caplen > len(data) - off:
            break
        ts = sec * 1_000_000_000 + (frac if nano else frac * 1000)
        out.append((ts, linktype, data[off:off + caplen]))
        off += caplen
    return out


def read_pcapng(data):
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        return None
    out = []
    off = 0
    endian = "<"
    ifaces = []  # (linktype, ticks per second)
    while off + 12 <= len(data):
        btype_raw = data[off:off + 4]
        if btype_raw == b"\x0a\x0d\x0d\x0a":
            bom = data[off + 8:off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        btype, blen = struct.unpack(endian + "II", data[off:off + 8])
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8:off + blen - 4]
        if btype == 1:  # IDB
            linktype = struct.unpack(endian + "H", body[:2])[0]
            tsresol = 1_000_000
            opt = 8
            while opt + 4 <= len(body):
                code, olen = struct.unpack(endian + "HH", body[opt:opt + 4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:
                    r = body[opt + 4]
                    tsresol = 2 ** (r & 0x7F) if r & 0x80 else 10 ** r
                opt += 4 + ((olen + 3) & ~3)
            ifaces.append((linktype, tsresol))
        elif btype == 6 and len(body) >= 20:  # EPB
            iface, hi, lo, caplen, _wire = struct.unpack(endian + "IIIII", body[:20])
            if iface < len(ifaces):
                linktype, res = ifaces[iface]
                ticks = (hi << 32) | lo
                ts = ticks * 1_000_000_000 // res
                out.append((ts, linktype, body[20:20 + caplen]))
        elif btype == 3 and ifaces:  # SPB: no timestamp
            wire = struct.unpack(endian + "I", body[:4])[0]
            ts = out[-1][0] if out else 0
            out.append((ts, ifaces[0][0], body[4:4 + wire]))
        elif btype == 2 and len(body) >= 20:  # obsolete packet block
            iface, _drops, hi, lo, caplen, _wire = struct.unpack(endian + "HHIIII", body[:20])
            if iface < len(ifaces):
                linktype, res = ifaces[iface]
                out.append((((hi << 32) | lo) * 1_000_000_000 // res, linktype, body[20:20 + caplen]))
        off += blen
    return out


def read_capture(path):
    with open(path, "rb") as f:
        data = f.read()
    packets = read_pcap(data)
    if packets is None:
        packets = read_pcapng(data)
    if packets is None:
        sys.exit(f"{path}: not a pcap or pcapng file")
    return packets


def ip_offset(frame):
    """Offset and version of the IP header in an Ethernet frame (VLAN tags skipped)."""
    off = 12
    while off + 2 <= len(frame):
        ethertype = struct.unpack(">H", frame[off:off + 2])[0]
        if ethertype in (0x8100, 0x88A8):
            off += 4
            continue
        if ethertype == 0x0800:
            return off + 2, 4
        if ethertype == 0x86DD:
            return off + 2, 6
        return None, None
    return None, None


def ipv4_checksum(header):
    total = 0
    for i in range(0, len(header), 2):
        total += (header[i] << 8) + header[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def shifted(frame, copy):
    if copy == 0:
        return frame
    ip, version = ip_offset(frame)
    if ip is None:
        return frame
    b = bytearray(frame)
    hi, lo = (copy >> 8) & 0xFF, copy & 0xFF
    if version == 4 and ip + 20 <= len(b):
        for addr in (ip + 12, ip + 16):
            b[addr + 1] ^= hi
            b[addr + 2] ^= lo
        ihl = (b[ip] & 0x0F) * 4
        if ihl >= 20 and ip + ihl <= len(b):
            b[ip + 10:ip + 12] = b"\0\0"
            b[ip + 10:ip + 12] = struct.pack(">H", ipv4_checksum(b[ip:ip + ihl]))
    elif version == 6 and ip + 40 <= len(b):
        for addr in (ip + 8, ip + 24):
            b[addr + 4] ^= hi
            b[addr + 5] ^= lo
    return bytes(b)


def write_header(out):
    out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, ETHERNET))


def write_packet(out, ts, frame):
    out.write(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, len(frame), len(frame)))
    out.write(frame)


def build(args):
    base = []
    for path in args.inputs:
        packets = [(ts, f) for ts, lt, f in read_capture(path) if lt == ETHERNET]
        if not packets:
            print(f"note: {path} has no Ethernet packets, skipped", file=sys.stderr)
            continue
        t0 = min(ts for ts, _ in packets)
        base.extend((ts - t0, f) for ts, f in packets)  # every capture starts at 0
    base.sort(key=lambda p: p[0])
    if not base:
        sys.exit("no Ethernet packets in the inputs")
    base_bytes = sum(16 + len(f) for _, f in base)
    copies = max(1, -(-args.min_mb * 1_000_000 // base_bytes))
    span = max(1, base[-1][0]) + 1_000_000_000
    step = span // OVERLAP
    start = 1_700_000_000 * 1_000_000_000

    def copy_stream(k):
        shift = start + k * step
        for ts, f in base:
            yield ts + shift, k, f

    written = 0
    with open(args.output, "wb") as out:
        write_header(out)
        for ts, k, f in heapq.merge(*(copy_stream(k) for k in range(copies))):
            write_packet(out, ts, shifted(f, k))
            written += 1
    size = 24 + base_bytes * copies
    print(f"{args.output}: {written} packets, {size / 1e6:.1f} MB, {copies} copies of {len(base)} packets "
          f"from {len(args.inputs)} captures", file=sys.stderr)


def make_slice(args):
    with open(args.input, "rb") as f:
        data = f.read()
    packets = read_pcap(data)
    if packets is None:
        sys.exit(f"{args.input}: expected the classic pcap this script writes")
    with open(args.output, "wb") as out:
        write_header(out)
        for ts, _lt, frame in packets[:args.slice]:
            write_packet(out, ts, frame)
    print(f"{args.output}: first {min(args.slice, len(packets))} of {len(packets)} packets", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--min-mb", type=int, default=200)
    p.add_argument("--slice", type=int, help="write the first N packets of --input")
    p.add_argument("-i", "--input")
    p.add_argument("inputs", nargs="*")
    args = p.parse_args()
    if args.slice:
        make_slice(args)
    else:
        build(args)


if __name__ == "__main__":
    main()
