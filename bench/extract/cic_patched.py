#!/usr/bin/env python3
"""Runs the PyPI `cicflowmeter` 0.5.0 CLI on capture files with three documented
patches, nothing else changed:

1. Its `get_min_forward_header_bytes` calls min() over the forward packets, which
   raises ValueError ("min() arg is an empty sequence") for a flow that has only
   reverse-direction packets and stops the whole run; min()/max() in its feature
   modules return 0 on an empty sequence instead (what Java CICFlowMeter writes).
2. Its BPF filter "ip and (tcp or udp)" needs the tcpdump binary for offline files
   (scapy compiles it with tcpdump); the same filter is applied in Python instead.
3. Its background "periodic GC" thread expires flows against the wall clock
   (time.time()) every second, which for an offline capture cuts flows at random
   points depending on machine speed; it is not started. Flows still expire on
   packet time (EXPIRED_UPDATE = 240 s), at FIN, and at the end of the file.
4. Its `main()` passes `fields` and `verbose` positionally into the wrong
   parameters of `create_sniffer` (input_directory, fields), so `-f FILE -c OUT`
   crashes with "'bool' object has no attribute 'split'"; this script calls
   `create_sniffer` with keywords, then joins and flushes as `main()` does.

usage: cic_patched.py -f CAPTURE -c OUT.csv
"""
import argparse
import builtins
import sys

from scapy.layers.inet import IP, TCP, UDP

import cicflowmeter.features.flow_bytes as cic_flow_bytes
import cicflowmeter.features.packet_length as cic_packet_length
import cicflowmeter.sniffer as cic_sniffer

_min, _max = builtins.min, builtins.max


def _empty_is_zero(reduce):
    def guarded(*args, **kwargs):
        if len(args) == 1 and "default" not in kwargs:
            return reduce(*args, default=0, **kwargs)
        return reduce(*args, **kwargs)
    return guarded


for module in (cic_flow_bytes, cic_packet_length):
    module.min = _empty_is_zero(_min)
    module.max = _empty_is_zero(_max)

_AsyncSniffer = cic_sniffer.AsyncSniffer


def _python_filtered_sniffer(*args, filter=None, prn=None, **kwargs):
    assert filter in (None, "ip and (tcp or udp)"), filter

    def keep(pkt):
        if IP in pkt and (TCP in pkt or UDP in pkt):
            return prn(pkt)
        return None

    return _AsyncSniffer(*args, prn=keep, **kwargs)


cic_sniffer.AsyncSniffer = _python_filtered_sniffer
cic_sniffer._start_periodic_gc = lambda session, interval=None: None



def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-f", "--file", required=True, dest="input_file")
    parser.add_argument("-c", "--csv", required=True, dest="output")
    args = parser.parse_args()
    sniffer, session = cic_sniffer.create_sniffer(
        input_file=args.input_file, input_interface=None, output_mode="csv", output=args.output
    )
    sniffer.start()
    sniffer.join()
    session.flush_flows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
