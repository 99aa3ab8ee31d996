//! Packets per second through the flow table alone (no decoding), on synthetic
//! traffic: N concurrent TCP connections interleaved, plus a SYN flood variant.
//!
//! `cargo run --release -p nadir-flow --example flow_throughput -- [packets] [connections]`

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use nadir_capture::LinkType;
use nadir_decode::{ip_proto, tcp_flags, Fragment, PacketRecord};
use nadir_flow::{FlowConfig, FlowMeta, FlowTable, ShardedFlowTable};

fn packet(i: u64, connections: u64, flood: bool) -> PacketRecord {
    let conn = if flood { i } else { i % connections };
    let c = (conn as u32).wrapping_mul(0x9E37_79B1);
    let forward = flood || (i / connections) & 1 == 0;
    let (client, server) = (
        IpAddr::V4(Ipv4Addr::from(c)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    );
    let (src, dst, sport, dport) = if forward {
        (client, server, (c >> 16) as u16, 443)
    } else {
        (server, client, 443, (c >> 16) as u16)
    };
    PacketRecord {
        ts_ns: i as i64 * 1_000,
        wire_len: 100,
        cap_len: 100,
        link_type: LinkType::ETHERNET,
        vlan: 0,
        ip_version: 4,
        src,
        dst,
        protocol: ip_proto::TCP,
        src_port: sport,
        dst_port: dport,
        ttl: 64,
        ip_id: 0,
        fragment: Fragment::default(),
        ip_offset: 14,
        ip_len: 86,
        ip_header_len: 20,
        tcp_flags: if flood {
            tcp_flags::SYN
        } else {
            tcp_flags::ACK
        },
        tcp_window: 100,
        tcp_seq: 0,
        tcp_ack: 0,
        l4_header_len: 20,
        payload_offset: 54,
        payload_len: 46,
        payload_captured: 46,
        tunnel: None,
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let packets = args.first().copied().unwrap_or(10_000_000);
    let connections = args.get(1).copied().unwrap_or(10_000);
    let records: Vec<PacketRecord> = (0..packets)
        .map(|i| packet(i, connections, false))
        .collect();
    let flood: Vec<PacketRecord> = (0..packets).map(|i| packet(i, connections, true)).collect();

    for (name, input) in [
        ("interleaved connections", &records),
        ("SYN flood, max_flows 1M", &flood),
    ] {
        for threads in [1, 2] {
            let cfg = FlowConfig {
                threads,
                data_bytes: 0,
                ..FlowConfig::default()
            };
            let start = Instant::now();
            let mut flows = 0u64;
            let stats = if threads == 1 {
                let mut table = FlowTable::new(cfg, |_: &FlowMeta| ()).expect("valid");
                for p in input.iter() {
                    table.push(p, &[], &mut |_| flows += 1);
                }
                table.finish(&mut |_| flows += 1);
                table.stats()
            } else {
                let mut table = ShardedFlowTable::new(cfg, |_: &FlowMeta| ()).expect("valid");
                for p in input.iter() {
                    table.push(p, &[], &mut |_| flows += 1);
                }
                table.finish(&mut |_| flows += 1).expect("no panic")
            };
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{name:<26} threads {threads}: {packets} packets in {secs:.3} s = {:.2} M packets/s; {flows} flows, {} evicted, peak live {}",
                packets as f64 / secs / 1e6,
                stats.evicted,
                stats.peak_live_flows
            );
        }
    }
}
