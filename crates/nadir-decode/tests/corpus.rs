//! The decoder on real captures: every packet of the robustness corpus is decoded or
//! counted under a skip reason (never a panic), and known captures decode to what
//! their descriptions in the data README say.

use std::net::IpAddr;
use std::path::Path;

use nadir_capture::{FileSource, OpenOptions, PacketSource};
use nadir_decode::{tcp_flags, Decoder, DecoderConfig, PacketRecord, SkipReason, TunnelKind};

/// Decode a whole capture: (records, decoder with its counts, packets read).
fn decode_file(path: &Path) -> (Vec<PacketRecord>, Decoder, u64) {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut records = Vec::new();
    let mut packets = 0;
    let Ok(mut source) = FileSource::open(path, &OpenOptions::default()) else {
        return (records, decoder, 0);
    };
    while let Ok(Some(packet)) = source.next_packet() {
        packets += 1;
        if let Ok(record) = decoder.decode(&packet) {
            assert!(
                record.payload_offset as usize <= packet.data.len() || record.payload_captured == 0
            );
            assert!(record.payload_captured <= record.payload_len.max(record.payload_captured));
            records.push(record);
        }
    }
    (records, decoder, packets)
}

fn corpus(relative: &str) -> Option<std::path::PathBuf> {
    nadir_testdata::shared_data(&format!("pcap-robustness/{relative}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_corpus_packet_is_decoded_or_counted() {
    let Some(root) = corpus("") else { return };
    let mut files = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let (records, decoder, packets) = decode_file(&path);
            assert_eq!(records.len() as u64, decoder.decoded());
            assert_eq!(
                decoder.decoded() + decoder.skipped().total(),
                packets,
                "{}",
                path.display()
            );
            files += 1;
        }
    }
    assert!(files > 250);
}

#[test]
fn vxlan_on_both_ports_opens_to_the_inner_packet() {
    for file in [
        "tcpdump-tests/vxlan.pcap",
        "tcpdump-tests/vxlan_port_8472.pcap",
    ] {
        let Some(path) = corpus(file) else { return };
        let (records, decoder, _) = decode_file(&path);
        let first = records[0];
        let tunnel = first.tunnel.expect("tunnel context kept");
        assert_eq!(
            (tunnel.kind, tunnel.id, tunnel.depth),
            (TunnelKind::Vxlan, 100, 1)
        );
        assert_eq!(
            (first.src, first.dst, first.protocol),
            (ip("192.168.203.3"), ip("192.168.203.5"), 1)
        );
        assert_ne!(tunnel.outer_src, first.src);
        // The two ARP frames inside the tunnel are not IP.
        assert_eq!(decoder.skipped().get(SkipReason::NotIp), 2);
    }
}

#[test]
fn geneve_nested_vxlan_gre_and_ip_in_ip() {
    let Some(path) = corpus("zeek-traces/tunnels__geneve-many-options.pcap") else {
        return;
    };
    let (records, _, packets) = decode_file(&path);
    assert_eq!(records.len() as u64, packets);
    let t = records[0].tunnel.unwrap();
    assert_eq!((t.kind, t.id), (TunnelKind::Geneve, 786_734));
    assert_eq!(
        (records[0].dst, records[0].dst_port, records[0].tcp_flags),
        (ip("95.217.228.176"), 80, tcp_flags::SYN)
    );

    let Some(path) = corpus("zeek-traces/tunnels__vxlan-triple-v2.pcap") else {
        return;
    };
    let (records, _, _) = decode_file(&path);
    let t = records[0].tunnel.unwrap();
    assert_eq!((t.kind, t.id, t.depth), (TunnelKind::Vxlan, 3, 3));
    assert_eq!((records[0].src_port, records[0].dst_port), (53, 53));

    let Some(path) = corpus("zeek-traces/tunnels__gre-pptp.pcap") else {
        return;
    };
    let (records, _, _) = decode_file(&path);
    assert_eq!(records[0].tunnel.unwrap().kind, TunnelKind::Gre);
    assert_eq!((records[0].dst, records[0].dst_port), (ip("8.8.8.8"), 53));

    let Some(path) = corpus("zeek-traces/tunnels__6in4.pcap") else {
        return;
    };
    let (records, _, _) = decode_file(&path);
    assert_eq!(records[0].tunnel.unwrap().kind, TunnelKind::IpInIp);
    assert_eq!(
        (records[0].ip_version, records[0].src),
        (6, ip("dead::beef"))
    );

    let Some(path) = corpus("zeek-traces/tunnels__gre-erspan3-dot1q.pcap") else {
        return;
    };
    let (records, _, packets) = decode_file(&path);
    assert_eq!(records.len() as u64, packets);
    assert!(records
        .iter()
        .all(|r| r.tunnel.unwrap().kind == TunnelKind::Gre && r.protocol == 1));
}

#[test]
fn vlan_pppoe_mpls_and_cooked_links() {
    let Some(path) = corpus("zeek-traces/pppoe-over-qinq.pcap") else {
        return;
    };
    let (records, _, packets) = decode_file(&path);
    assert_eq!(records.len() as u64, packets);
    assert_eq!((records[0].vlan, records[0].dst_port), (3704, 443));

    let Some(path) = corpus("zeek-traces/mpls-in-vlan.pcap") else {
        return;
    };
    let (records, _, packets) = decode_file(&path);
    assert_eq!(records.len() as u64, packets);
    assert_eq!(
        (records[0].vlan, records[0].dst_port, records[0].payload_len),
        (3199, 80, 205)
    );

    let Some(path) = corpus("zeek-traces/linux_dlt_sll2.pcap") else {
        return;
    };
    let (records, decoder, _) = decode_file(&path);
    assert_eq!(decoder.decoded(), 4);
    assert!(records.iter().any(|r| r.ip_version == 6) && records.iter().any(|r| r.ip_version == 4));

    let Some(path) =
        corpus("pcapplusplus-tests/Tests__Pcap++Test__PcapExamples__null_loopback.pcap")
    else {
        return;
    };
    let (records, _, _) = decode_file(&path);
    assert_eq!((records[0].src, records[0].dst_port), (ip("::1"), 81));
}

#[test]
fn fragments_are_keyed_not_reassembled() {
    let Some(path) =
        corpus("pcapplusplus-tests/Tests__Pcap++Test__PcapExamples__ip6_fragments.pcap")
    else {
        return;
    };
    let (records, _, _) = decode_file(&path);
    let later: Vec<_> = records.iter().filter(|r| r.fragment.offset > 0).collect();
    assert!(!later.is_empty());
    assert!(later
        .iter()
        .all(|r| r.src_port == 0 && r.dst_port == 0 && r.ip_id != 0));
    let first = records
        .iter()
        .find(|r| r.fragment.offset == 0 && r.fragment.more_fragments)
        .unwrap();
    assert!(first.src_port != 0 || first.protocol != 17);
}

#[test]
fn link_mismatch_and_unknown_links_are_counted() {
    let Some(path) = corpus("tcpdump-tests/LINKTYPE_IPV4_invalid.pcap") else {
        return;
    };
    assert_eq!(
        decode_file(&path)
            .1
            .skipped()
            .get(SkipReason::LinkIpMismatch),
        1
    );
    let Some(path) = corpus("tcpdump-tests/unsupported-link-type-dbus.pcap") else {
        return;
    };
    assert_eq!(
        decode_file(&path)
            .1
            .skipped()
            .get(SkipReason::UnsupportedLinkType),
        2
    );
}

#[test]
fn slowloris_decodes_to_its_ground_truth() {
    let Some(path) = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap") else {
        return;
    };
    let (records, decoder, packets) = decode_file(&path);
    assert_eq!(packets, 3754);
    assert_eq!(records.len(), 3752);
    assert_eq!(decoder.skipped().get(SkipReason::NotIp), 2); // the two ARP frames
    let (attacker, victim) = (ip("10.0.2.15"), ip("192.168.56.102"));
    for r in &records {
        let forward = r.src == attacker && r.dst == victim && r.dst_port == 80;
        let reverse = r.src == victim && r.dst == attacker && r.src_port == 80;
        assert!(forward || reverse, "{r:?}");
        assert!(r.is_tcp() && r.l4_header_len >= 20);
    }
}
