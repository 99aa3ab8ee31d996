//! Hand-built packet records for the flow table tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use nadir_capture::LinkType;
use nadir_decode::{ip_proto, Fragment, PacketRecord, Tunnel, TunnelKind};

pub const SEC: i64 = 1_000_000_000;

pub fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// A TCP packet `src:sport -> dst:dport` at `ts_ns` with `flags` and `payload` bytes.
pub fn tcp(
    ts_ns: i64,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    flags: u16,
    payload: u32,
) -> PacketRecord {
    PacketRecord {
        ts_ns,
        wire_len: 54 + payload,
        cap_len: 54 + payload,
        link_type: LinkType::ETHERNET,
        vlan: 0,
        ip_version: if src.is_ipv4() { 4 } else { 6 },
        src,
        dst,
        protocol: ip_proto::TCP,
        src_port: sport,
        dst_port: dport,
        ttl: 64,
        ip_id: 0,
        fragment: Fragment::default(),
        ip_offset: 14,
        ip_len: 40 + payload,
        ip_header_len: 20,
        tcp_flags: flags,
        tcp_window: 1000,
        tcp_seq: 0,
        tcp_ack: 0,
        l4_header_len: 20,
        payload_offset: 54,
        payload_len: payload,
        payload_captured: payload,
        tunnel: None,
    }
}

pub fn udp(
    ts_ns: i64,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    payload: u32,
) -> PacketRecord {
    PacketRecord {
        protocol: ip_proto::UDP,
        tcp_flags: 0,
        tcp_window: 0,
        l4_header_len: 8,
        ..tcp(ts_ns, src, sport, dst, dport, 0, payload)
    }
}

pub fn in_vxlan(mut pkt: PacketRecord, vni: u32) -> PacketRecord {
    pkt.tunnel = Some(Tunnel {
        kind: TunnelKind::Vxlan,
        id: vni,
        outer_src: v4(192, 168, 0, 1),
        outer_dst: v4(192, 168, 0, 2),
        depth: 1,
    });
    pkt
}

/// A state that records what it saw, to check the table's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub forward: u64,
    pub backward: u64,
    pub ts: Vec<i64>,
    pub bytes_seen: usize,
}

impl nadir_flow::FlowState for Seen {
    fn on_packet(
        &mut self,
        _meta: &nadir_flow::FlowMeta,
        pkt: &PacketRecord,
        dir: nadir_flow::Direction,
        data: &[u8],
    ) {
        match dir {
            nadir_flow::Direction::Forward => self.forward += 1,
            nadir_flow::Direction::Backward => self.backward += 1,
        }
        self.ts.push(pkt.ts_ns);
        self.bytes_seen += data.len();
    }
}
