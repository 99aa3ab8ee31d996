//! The compact per-packet record that every later stage consumes.

use std::net::IpAddr;

use nadir_capture::LinkType;
use serde::{Deserialize, Serialize};

/// TCP flag bits as they sit in the header (byte 13), plus NS (bit 8).
pub mod tcp_flags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    pub const NS: u16 = 0x100;
}

/// IP protocol numbers nadir treats specially.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMPV6: u8 = 58;
}

/// The overlay a packet was carried in; the record describes the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TunnelKind {
    Vxlan,
    Geneve,
    Gre,
    /// IPv4 or IPv6 carried directly in IPv4 or IPv6 (protocols 4 and 41).
    IpInIp,
}

/// The outermost tunnel a packet came through (its endpoints and id), kept as context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    pub kind: TunnelKind,
    /// VXLAN/Geneve VNI or GRE key; 0 when the tunnel has none.
    pub id: u32,
    pub outer_src: IpAddr,
    pub outer_dst: IpAddr,
    /// How many tunnel layers were opened (nested overlays count each layer).
    pub depth: u8,
}

/// IP fragmentation state. nadir does not reassemble: a non-first fragment has no
/// transport header, so its ports are 0 and flows key it by (addresses, protocol);
/// first fragments carry the ports. `id` lets a later stage reassemble if it wants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    /// Fragment offset in bytes.
    pub offset: u32,
    pub more_fragments: bool,
}

impl Fragment {
    /// True when the packet is any part of a fragmented datagram.
    pub fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more_fragments
    }
}

/// The decoded view of one packet. `Copy`, no heap: the decoder fills one per packet
/// without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PacketRecord {
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: i64,
    pub wire_len: u32,
    pub cap_len: u32,
    pub link_type: LinkType,
    /// Outermost 802.1Q/802.1ad VLAN id (0 when untagged).
    pub vlan: u16,
    /// 4 or 6.
    pub ip_version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol (IPv6: the last next-header after extension headers).
    pub protocol: u8,
    /// TCP/UDP ports; ICMP: type in `src_port`, code in `dst_port`; else 0.
    pub src_port: u16,
    pub dst_port: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification, or the IPv6 fragment header's identification.
    pub ip_id: u32,
    pub fragment: Fragment,
    /// Offset of the (inner) IP header in the captured bytes.
    pub ip_offset: u32,
    /// IP packet length claimed by the header (header + payload, IPv6 incl. the fixed header).
    pub ip_len: u32,
    /// Length of the IP header including IPv6 extension headers.
    pub ip_header_len: u16,
    /// TCP flags (see [`tcp_flags`]); 0 for other protocols.
    pub tcp_flags: u16,
    pub tcp_window: u16,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    /// Transport header length: TCP data offset x 4, UDP 8, ICMP 8, else 0.
    pub l4_header_len: u16,
    /// Offset of the transport payload in the captured bytes.
    pub payload_offset: u32,
    /// Transport payload length from the headers' lengths (what was sent, even if
    /// the capture cut it short).
    pub payload_len: u32,
    /// Payload bytes actually present in the capture.
    pub payload_captured: u32,
    pub tunnel: Option<Tunnel>,
}

impl PacketRecord {
    pub fn is_tcp(&self) -> bool {
        self.protocol == ip_proto::TCP
    }
    pub fn is_udp(&self) -> bool {
        self.protocol == ip_proto::UDP
    }
    pub fn has_flag(&self, flag: u16) -> bool {
        self.tcp_flags & flag != 0
    }
}
