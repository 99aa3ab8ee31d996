//! Canonical bidirectional flow keys.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nadir_decode::{ip_proto, PacketRecord, TunnelKind};
use serde::{Deserialize, Serialize};

/// Direction of a packet relative to its flow: forward = sent by the flow's source
/// (the first packet's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Forward,
    Backward,
}

/// One side of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// The identity of a bidirectional flow: both endpoints in canonical order (lower
/// address/port first), the transport protocol, the VLAN id and the tunnel (kind +
/// VNI/key), so identical inner tuples on different overlays stay apart. `Copy`,
/// no heap. Ports are 0 for protocols other than TCP and UDP (CICFlowMeter keys
/// ICMP and the rest without ports, so an echo request and its reply share a flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowKey {
    /// Addresses as IPv6 bits (IPv4 mapped), so v4 and v6 share one fixed-size form.
    lo_addr: u128,
    hi_addr: u128,
    lo_port: u16,
    hi_port: u16,
    protocol: u8,
    ip_version: u8,
    vlan: u16,
    /// 0 = no tunnel, else 1 + TunnelKind discriminant.
    tunnel_kind: u8,
    tunnel_id: u32,
}

/// Which canonical side a packet's source is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySide {
    Lo,
    Hi,
}

fn addr_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn tunnel_kind_code(kind: TunnelKind) -> u8 {
    match kind {
        TunnelKind::Vxlan => 1,
        TunnelKind::Geneve => 2,
        TunnelKind::Gre => 3,
        TunnelKind::IpInIp => 4,
    }
}

/// Ports that take part in the key: TCP and UDP only.
pub(crate) fn keyed_ports(pkt: &PacketRecord) -> (u16, u16) {
    match pkt.protocol {
        ip_proto::TCP | ip_proto::UDP => (pkt.src_port, pkt.dst_port),
        _ => (0, 0),
    }
}

impl FlowKey {
    /// The key of `pkt`'s flow and the side its source sits on.
    pub(crate) fn of_packet(pkt: &PacketRecord) -> (FlowKey, KeySide) {
        let (sport, dport) = keyed_ports(pkt);
        let src = (addr_bits(pkt.src), sport);
        let dst = (addr_bits(pkt.dst), dport);
        let (lo, hi, side) = if src <= dst {
            (src, dst, KeySide::Lo)
        } else {
            (dst, src, KeySide::Hi)
        };
        let (tunnel_kind, tunnel_id) = match pkt.tunnel {
            Some(t) => (tunnel_kind_code(t.kind), t.id),
            None => (0, 0),
        };
        let key = FlowKey {
            lo_addr: lo.0,
            hi_addr: hi.0,
            lo_port: lo.1,
            hi_port: hi.1,
            protocol: pkt.protocol,
            ip_version: pkt.ip_version,
            vlan: pkt.vlan,
            tunnel_kind,
            tunnel_id,
        };
        (key, side)
    }

    /// The key of the flow `pkt` belongs to.
    pub fn from_packet(pkt: &PacketRecord) -> FlowKey {
        Self::of_packet(pkt).0
    }

    fn endpoint(&self, bits: u128, port: u16) -> Endpoint {
        let v6 = Ipv6Addr::from(bits);
        let addr = match (self.ip_version, v6.to_ipv4_mapped()) {
            (4, Some(v4)) => IpAddr::V4(v4),
            (4, None) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            _ => IpAddr::V6(v6),
        };
        Endpoint { addr, port }
    }

    /// The two endpoints in canonical order (lower first); not forward/backward.
    pub fn endpoints(&self) -> (Endpoint, Endpoint) {
        (
            self.endpoint(self.lo_addr, self.lo_port),
            self.endpoint(self.hi_addr, self.hi_port),
        )
    }
    pub fn protocol(&self) -> u8 {
        self.protocol
    }
    pub fn vlan(&self) -> u16 {
        self.vlan
    }
    /// VXLAN/Geneve VNI or GRE key of the tunnel the flow was carried in (0 if none).
    pub fn tunnel_id(&self) -> u32 {
        self.tunnel_id
    }

    /// The shard (0..shards) that owns this key; the same for both directions and
    /// stable across runs (fixed-seed hash), so sharded output is reproducible.
    pub fn shard(&self, shards: usize) -> usize {
        if shards <= 1 {
            return 0;
        }
        let hash = foldhash::fast::FixedState::with_seed(0x6e61_6469_7266_6c77).hash_one(self);
        // Multiply-shift maps the hash onto 0..shards without a division.
        ((u128::from(hash) * shards as u128) >> 64) as usize
    }
}
