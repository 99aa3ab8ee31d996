//! The decoder: link layer -> (VLAN/MPLS/PPPoE)* -> IP -> transport, opening overlay
//! tunnels on the way. IPv4/IPv6/extension/TCP/UDP headers are sliced by etherparse;
//! the small fixed headers etherparse lacks (SLL2, BSD NULL, PPP, PPPoE, MPLS, VXLAN,
//! Geneve, GRE, ERSPAN) are read here, each behind an explicit length check.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice, TcpHeaderSlice,
};
use nadir_capture::{LinkType, RawPacket};

use crate::record::{ip_proto, Fragment, PacketRecord, Tunnel, TunnelKind};
use crate::skip::{SkipCounts, SkipReason};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_TEB: u16 = 0x6558; // transparent Ethernet bridging (GRE, Geneve)
const ETHERTYPE_PPP: u16 = 0x880b; // PPP in GRE (PPTP)
const ETHERTYPE_ERSPAN2: u16 = 0x88be;
const ETHERTYPE_ERSPAN3: u16 = 0x22eb;
const ETHERTYPE_WCCP: u16 = 0x883e;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const GRE_IN_UDP_PORT: u16 = 4754;

/// Decoder settings.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// UDP destination ports carrying VXLAN (IANA 4789; Linux/flannel default 8472).
    pub vxlan_ports: Vec<u16>,
    /// UDP destination ports carrying Geneve.
    pub geneve_ports: Vec<u16>,
    /// Open overlays so the record describes the inner packet. When false the
    /// outer packet is reported as it is.
    pub open_tunnels: bool,
    /// Nested tunnels beyond this depth are skipped (`tunnel-too-deep`).
    pub max_tunnel_depth: u8,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            vxlan_ports: vec![4789, 8472],
            geneve_ports: vec![6081],
            open_tunnels: true,
            max_tunnel_depth: 8,
        }
    }
}

/// Decodes packets and counts the ones it skips, by reason.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    config: DecoderConfig,
    skipped: SkipCounts,
    decoded: u64,
    tunnelled: u64,
}

/// Where the next header starts and what it is.
#[derive(Clone, Copy)]
enum Next {
    Ether(u16),
    Ip(u8),
}

impl Decoder {
    pub fn new(config: DecoderConfig) -> Decoder {
        Decoder {
            config,
            ..Decoder::default()
        }
    }

    /// Packets skipped so far, by reason.
    pub fn skipped(&self) -> &SkipCounts {
        &self.skipped
    }

    /// Packets decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Decoded packets that came through at least one tunnel.
    pub fn tunnelled(&self) -> u64 {
        self.tunnelled
    }

    /// Decode one packet; a packet that cannot be decoded is counted under its
    /// reason and returned as `Err`.
    pub fn decode(&mut self, packet: &RawPacket<'_>) -> Result<PacketRecord, SkipReason> {
        let mut record = PacketRecord::default();
        self.decode_into(packet, &mut record).map(|()| record)
    }

    /// [`Self::decode`] into a record the caller reuses: a packet loop then moves
    /// no ~150-byte record per packet. `record` is overwritten whole; after an
    /// `Err` its contents are unspecified.
    pub fn decode_into(
        &mut self,
        packet: &RawPacket<'_>,
        record: &mut PacketRecord,
    ) -> Result<(), SkipReason> {
        *record = PacketRecord::empty(packet);
        match self.decode_layers(packet.link_type, packet.data, record) {
            Ok(()) => {
                self.decoded += 1;
                if record.tunnel.is_some() {
                    self.tunnelled += 1;
                }
                Ok(())
            }
            Err(reason) => {
                self.skipped.add(reason);
                Err(reason)
            }
        }
    }

    fn decode_layers(
        &self,
        link: LinkType,
        data: &[u8],
        rec: &mut PacketRecord,
    ) -> Result<(), SkipReason> {
        let (next, offset) = link_layer(link, data)?;
        if let (LinkType::IPV4, Next::Ip(6)) | (LinkType::IPV6, Next::Ip(4)) = (link, next) {
            return Err(SkipReason::LinkIpMismatch);
        }
        self.network(data, offset, next, rec, 0)
    }

    /// From an ethertype or IP version at `offset` down to the transport layer.
    fn network(
        &self,
        data: &[u8],
        mut offset: usize,
        mut next: Next,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        loop {
            match next {
                Next::Ip(version) => return self.ip(data, offset, version, rec, depth),
                Next::Ether(ETHERTYPE_IPV4) => next = Next::Ip(4),
                Next::Ether(ETHERTYPE_IPV6) => next = Next::Ip(6),
                Next::Ether(ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) => {
                    let tag = bytes::<4>(data, offset).ok_or(SkipReason::TruncatedLink)?;
                    if rec.vlan == 0 && depth == 0 {
                        rec.vlan = u16::from_be_bytes([tag[0], tag[1]]) & 0x0fff;
                    }
                    next = Next::Ether(u16::from_be_bytes([tag[2], tag[3]]));
                    offset += 4;
                }
                Next::Ether(ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST) => {
                    // Labels until bottom-of-stack, then IP told apart by its version nibble.
                    loop {
                        let label = bytes::<4>(data, offset).ok_or(SkipReason::TruncatedLink)?;
                        offset += 4;
                        if label[2] & 0x01 != 0 {
                            break;
                        }
                    }
                    next = ip_by_version(data, offset)?;
                }
                Next::Ether(ETHERTYPE_PPPOE_SESSION) => {
                    let h = bytes::<8>(data, offset).ok_or(SkipReason::TruncatedLink)?;
                    next = ppp_protocol(u16::from_be_bytes([h[6], h[7]]))?;
                    offset += 8;
                }
                Next::Ether(_) => return Err(SkipReason::NotIp),
            }
        }
    }

    fn ip(
        &self,
        data: &[u8],
        offset: usize,
        version: u8,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        let slice = data.get(offset..).ok_or(SkipReason::TruncatedIp)?;
        let (header_len, claimed_len, protocol, transport_follows) = match version {
            4 => {
                let ip = Ipv4HeaderSlice::from_slice(slice).map_err(|e| match e {
                    etherparse::err::ipv4::HeaderSliceError::Len(_) => SkipReason::TruncatedIp,
                    etherparse::err::ipv4::HeaderSliceError::Content(_) => SkipReason::MalformedIp,
                })?;
                let header_len = ip.ihl() as usize * 4;
                let total = ip.total_len() as usize;
                // Total length 0 appears on TSO/GSO captures: the capture is the truth then.
                let claimed = if total == 0 { slice.len() } else { total };
                if claimed < header_len {
                    return Err(SkipReason::MalformedIp);
                }
                rec.ip_version = 4;
                rec.src = IpAddr::V4(Ipv4Addr::from(ip.source()));
                rec.dst = IpAddr::V4(Ipv4Addr::from(ip.destination()));
                rec.ttl = ip.ttl();
                rec.ip_id = ip.identification() as u32;
                let frag_offset = ip.fragments_offset().value() as u32 * 8;
                rec.fragment = Fragment {
                    offset: frag_offset,
                    more_fragments: ip.more_fragments(),
                };
                (header_len, claimed, ip.protocol().0, frag_offset == 0)
            }
            6 => {
                let ip = Ipv6HeaderSlice::from_slice(slice).map_err(|e| match e {
                    etherparse::err::ipv6::HeaderSliceError::Len(_) => SkipReason::TruncatedIp,
                    etherparse::err::ipv6::HeaderSliceError::Content(_) => SkipReason::MalformedIp,
                })?;
                rec.ip_version = 6;
                rec.src = IpAddr::V6(ip.source_addr());
                rec.dst = IpAddr::V6(ip.destination_addr());
                rec.ttl = ip.hop_limit();
                let payload = ip.payload_length() as usize;
                // Payload length 0 with a hop-by-hop header is a jumbogram (or BIG TCP).
                let claimed = if payload == 0 {
                    slice.len()
                } else {
                    40 + payload
                };
                let ext_end = claimed.min(slice.len());
                let (exts, next, _) =
                    Ipv6ExtensionsSlice::from_slice(ip.next_header(), &slice[40..ext_end.max(40)])
                        .map_err(|e| match e {
                            etherparse::err::ipv6_exts::HeaderSliceError::Len(_) => {
                                SkipReason::TruncatedIp
                            }
                            etherparse::err::ipv6_exts::HeaderSliceError::Content(_) => {
                                SkipReason::MalformedIp
                            }
                        })?;
                let mut first_fragment = true;
                for ext in exts.clone() {
                    if let Ipv6ExtensionSlice::Fragment(frag) = ext {
                        let frag_offset = frag.fragment_offset().value() as u32 * 8;
                        rec.ip_id = frag.identification();
                        rec.fragment = Fragment {
                            offset: frag_offset,
                            more_fragments: frag.more_fragments(),
                        };
                        first_fragment = frag_offset == 0;
                    }
                }
                (40 + exts.slice().len(), claimed, next.0, first_fragment)
            }
            _ => return Err(SkipReason::MalformedIp),
        };
        rec.ip_offset = offset as u32;
        rec.ip_len = claimed_len as u32;
        rec.ip_header_len = header_len as u16;
        rec.protocol = protocol;
        let l4_start = offset + header_len;
        // Ethernet padding past the IP length is not payload.
        let ip_end = (offset + claimed_len).min(data.len());
        let l4 = data.get(l4_start..ip_end.max(l4_start)).unwrap_or(&[]);
        let l4_claimed = claimed_len.saturating_sub(header_len);
        if !transport_follows {
            // A non-first fragment: no transport header; ports stay 0 (see `Fragment`).
            self.set_payload(rec, l4_start, 0, l4_claimed, l4.len());
            return Ok(());
        }
        self.transport(data, l4_start, l4, l4_claimed, rec, depth)
    }

    fn transport(
        &self,
        data: &[u8],
        start: usize,
        l4: &[u8],
        l4_claimed: usize,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        match rec.protocol {
            ip_proto::TCP => {
                let tcp = TcpHeaderSlice::from_slice(l4).map_err(|e| match e {
                    etherparse::err::tcp::HeaderSliceError::Len(_) => {
                        SkipReason::TruncatedTransport
                    }
                    etherparse::err::tcp::HeaderSliceError::Content(_) => {
                        SkipReason::MalformedTransport
                    }
                })?;
                let raw = tcp.slice();
                rec.src_port = tcp.source_port();
                rec.dst_port = tcp.destination_port();
                rec.tcp_flags = raw[13] as u16 | ((raw[12] as u16 & 0x01) << 8);
                rec.tcp_window = tcp.window_size();
                rec.tcp_seq = tcp.sequence_number();
                rec.tcp_ack = tcp.acknowledgment_number();
                let hl = raw.len();
                self.set_payload(rec, start, hl, l4_claimed, l4.len());
                Ok(())
            }
            ip_proto::UDP => {
                let udp = bytes::<8>(l4, 0).ok_or(SkipReason::TruncatedTransport)?;
                rec.src_port = u16::from_be_bytes([udp[0], udp[1]]);
                rec.dst_port = u16::from_be_bytes([udp[2], udp[3]]);
                self.set_payload(rec, start, 8, l4_claimed, l4.len());
                if self.config.open_tunnels {
                    self.udp_tunnel(data, start + 8, rec, depth)
                } else {
                    Ok(())
                }
            }
            ip_proto::ICMP | ip_proto::ICMPV6 => {
                let icmp = bytes::<4>(l4, 0).ok_or(SkipReason::TruncatedTransport)?;
                rec.src_port = icmp[0] as u16;
                rec.dst_port = icmp[1] as u16;
                let hl = 8.min(l4.len());
                self.set_payload(rec, start, hl, l4_claimed, l4.len());
                Ok(())
            }
            47 if self.config.open_tunnels => {
                self.set_payload(rec, start, 0, l4_claimed, l4.len());
                self.gre(data, start, rec, depth)
            }
            4 | 41 if self.config.open_tunnels => {
                let version = if rec.protocol == 4 { 4 } else { 6 };
                self.enter_tunnel(rec, TunnelKind::IpInIp, 0, depth)?;
                self.ip(data, start, version, rec, depth + 1)
                    .map_err(SkipReason::inside_tunnel)
            }
            _ => {
                self.set_payload(rec, start, 0, l4_claimed, l4.len());
                Ok(())
            }
        }
    }

    fn set_payload(
        &self,
        rec: &mut PacketRecord,
        l4_start: usize,
        header_len: usize,
        l4_claimed: usize,
        l4_captured: usize,
    ) {
        rec.l4_header_len = header_len as u16;
        rec.payload_offset = (l4_start + header_len) as u32;
        rec.payload_len = l4_claimed.saturating_sub(header_len) as u32;
        rec.payload_captured = l4_captured.saturating_sub(header_len) as u32;
    }

    /// VXLAN, Geneve and GRE-in-UDP, recognised by UDP destination port.
    fn udp_tunnel(
        &self,
        data: &[u8],
        payload: usize,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        let port = rec.dst_port;
        if self.config.vxlan_ports.contains(&port) {
            let h = bytes::<8>(data, payload).ok_or(SkipReason::TruncatedTunnel)?;
            let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
            self.enter_tunnel(rec, TunnelKind::Vxlan, vni, depth)?;
            return self.ethernet_inner(data, payload + 8, rec, depth + 1);
        }
        if self.config.geneve_ports.contains(&port) {
            let h = bytes::<8>(data, payload).ok_or(SkipReason::TruncatedTunnel)?;
            if h[0] >> 6 != 0 {
                return Err(SkipReason::MalformedTunnel);
            }
            let options = (h[0] & 0x3f) as usize * 4;
            let protocol = u16::from_be_bytes([h[2], h[3]]);
            let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
            self.enter_tunnel(rec, TunnelKind::Geneve, vni, depth)?;
            let inner = payload + 8 + options;
            return self.tunnel_payload(data, inner, protocol, rec, depth + 1);
        }
        if port == GRE_IN_UDP_PORT {
            return self.gre(data, payload, rec, depth);
        }
        Ok(())
    }

    /// An inner Ethernet frame (VXLAN, Geneve/GRE with TEB, ERSPAN).
    fn ethernet_inner(
        &self,
        data: &[u8],
        offset: usize,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        let (next, start) = ethernet(data, offset).map_err(SkipReason::inside_tunnel)?;
        self.network(data, start, next, rec, depth)
            .map_err(SkipReason::inside_tunnel)
    }

    /// What a Geneve or GRE protocol type says follows.
    fn tunnel_payload(
        &self,
        data: &[u8],
        offset: usize,
        protocol: u16,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        match protocol {
            ETHERTYPE_TEB => self.ethernet_inner(data, offset, rec, depth),
            ETHERTYPE_PPP => {
                // PPTP carries PPP, with or without the ff03 address/control bytes.
                let mut at = offset;
                if data.get(at..at + 2) == Some(&[0xff, 0x03]) {
                    at += 2;
                }
                let p = bytes::<2>(data, at).ok_or(SkipReason::TruncatedTunnel)?;
                let next =
                    ppp_protocol(u16::from_be_bytes(p)).map_err(SkipReason::inside_tunnel)?;
                self.network(data, at + 2, next, rec, depth)
                    .map_err(SkipReason::inside_tunnel)
            }
            ETHERTYPE_ERSPAN2 => self.ethernet_inner(data, offset + 8, rec, depth),
            ETHERTYPE_ERSPAN3 => {
                let h = bytes::<12>(data, offset).ok_or(SkipReason::TruncatedTunnel)?;
                // The O flag announces an 8-byte platform-specific subheader.
                let sub = if h[11] & 0x01 != 0 { 8 } else { 0 };
                self.ethernet_inner(data, offset + 12 + sub, rec, depth)
            }
            ETHERTYPE_WCCP => self
                .network(data, offset + 4, Next::Ether(ETHERTYPE_IPV4), rec, depth)
                .map_err(SkipReason::inside_tunnel),
            other => self
                .network(data, offset, Next::Ether(other), rec, depth)
                .map_err(SkipReason::inside_tunnel),
        }
    }

    /// GRE (RFC 2784/2890) and PPTP's enhanced GRE (RFC 2637). A GRE payload that
    /// is not a known protocol leaves the record describing the GRE packet itself.
    fn gre(
        &self,
        data: &[u8],
        offset: usize,
        rec: &mut PacketRecord,
        depth: u8,
    ) -> Result<(), SkipReason> {
        let h = bytes::<4>(data, offset).ok_or(SkipReason::TruncatedTunnel)?;
        let (flags, version) = (h[0], h[1] & 0x07);
        let protocol = u16::from_be_bytes([h[2], h[3]]);
        let mut len = 4;
        let mut key = 0;
        if version == 0 {
            if flags & 0xc0 != 0 {
                len += 4; // checksum (+ reserved), also present when routing is set
            }
            if flags & 0x20 != 0 {
                let k = bytes::<4>(data, offset + len).ok_or(SkipReason::TruncatedTunnel)?;
                key = u32::from_be_bytes(k);
                len += 4;
            }
            if flags & 0x10 != 0 {
                len += 4;
            }
        } else if version == 1 {
            // Enhanced GRE: key field = payload length + call id; then seq and ack.
            let k = bytes::<4>(data, offset + len).ok_or(SkipReason::TruncatedTunnel)?;
            key = u16::from_be_bytes([k[2], k[3]]) as u32;
            len += 4;
            if flags & 0x10 != 0 {
                len += 4;
            }
            if h[1] & 0x80 != 0 {
                len += 4;
            }
        } else {
            return Err(SkipReason::MalformedTunnel);
        }
        let inner = offset + len;
        let known = matches!(
            protocol,
            ETHERTYPE_IPV4
                | ETHERTYPE_IPV6
                | ETHERTYPE_TEB
                | ETHERTYPE_PPP
                | ETHERTYPE_ERSPAN2
                | ETHERTYPE_ERSPAN3
                | ETHERTYPE_WCCP
                | ETHERTYPE_MPLS
        );
        if !known || data.len() <= inner {
            // Nothing we can open (a keepalive, PPTP control or an unknown payload).
            return Ok(());
        }
        self.enter_tunnel(rec, TunnelKind::Gre, key, depth)?;
        self.tunnel_payload(data, inner, protocol, rec, depth + 1)
    }

    /// Record the tunnel being opened (the innermost one wins: it is the overlay the
    /// inner endpoints live on) and reset the fields the inner packet will set.
    fn enter_tunnel(
        &self,
        rec: &mut PacketRecord,
        kind: TunnelKind,
        id: u32,
        depth: u8,
    ) -> Result<(), SkipReason> {
        if depth + 1 > self.config.max_tunnel_depth {
            return Err(SkipReason::TunnelTooDeep);
        }
        rec.tunnel = Some(Tunnel {
            kind,
            id,
            outer_src: rec.src,
            outer_dst: rec.dst,
            depth: depth + 1,
        });
        rec.src_port = 0;
        rec.dst_port = 0;
        rec.tcp_flags = 0;
        rec.fragment = Fragment::default();
        Ok(())
    }
}

impl PacketRecord {
    /// A record with the capture fields set and everything else empty.
    pub fn empty(packet: &RawPacket<'_>) -> PacketRecord {
        PacketRecord {
            ts_ns: packet.ts_ns,
            wire_len: packet.wire_len,
            cap_len: packet.data.len() as u32,
            link_type: packet.link_type,
            ..PacketRecord::default()
        }
    }
}

/// Every field empty: unspecified IPv4 addresses, zeros, no tunnel, link type NULL.
impl Default for PacketRecord {
    fn default() -> Self {
        PacketRecord {
            ts_ns: 0,
            wire_len: 0,
            cap_len: 0,
            link_type: LinkType::NULL,
            vlan: 0,
            ip_version: 0,
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            ttl: 0,
            ip_id: 0,
            fragment: Fragment::default(),
            ip_offset: 0,
            ip_len: 0,
            ip_header_len: 0,
            tcp_flags: 0,
            tcp_window: 0,
            tcp_seq: 0,
            tcp_ack: 0,
            l4_header_len: 0,
            payload_offset: 0,
            payload_len: 0,
            payload_captured: 0,
            tunnel: None,
        }
    }
}

/// The link-layer header: what follows and where.
fn link_layer(link: LinkType, data: &[u8]) -> Result<(Next, usize), SkipReason> {
    if data.is_empty() {
        return Err(SkipReason::Empty);
    }
    match link {
        LinkType::ETHERNET => ethernet(data, 0),
        LinkType::LINUX_SLL => {
            let h = bytes::<16>(data, 0).ok_or(SkipReason::TruncatedLink)?;
            Ok((Next::Ether(u16::from_be_bytes([h[14], h[15]])), 16))
        }
        LinkType::LINUX_SLL2 => {
            let h = bytes::<20>(data, 0).ok_or(SkipReason::TruncatedLink)?;
            Ok((Next::Ether(u16::from_be_bytes([h[0], h[1]])), 20))
        }
        LinkType::NULL | LinkType::LOOP => {
            let h = bytes::<4>(data, 0).ok_or(SkipReason::TruncatedLink)?;
            // NULL is host byte order, LOOP network order: accept either.
            let family = u32::from_le_bytes(h).min(u32::from_be_bytes(h));
            match family {
                2 => Ok((Next::Ip(4), 4)),
                10 | 24 | 28 | 30 => Ok((Next::Ip(6), 4)),
                _ => Err(SkipReason::NotIp),
            }
        }
        LinkType::RAW | LinkType::RAW_BSD | LinkType::RAW_OPENBSD => {
            Ok((ip_by_version(data, 0)?, 0))
        }
        LinkType::IPV4 | LinkType::IPV6 => Ok((ip_by_version(data, 0)?, 0)),
        LinkType::PPP => {
            let at = if data.starts_with(&[0xff, 0x03]) {
                2
            } else {
                0
            };
            let p = bytes::<2>(data, at).ok_or(SkipReason::TruncatedLink)?;
            Ok((ppp_protocol(u16::from_be_bytes(p))?, at + 2))
        }
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

/// Ethernet II, or 802.3 with an LLC/SNAP header carrying an ethertype.
fn ethernet(data: &[u8], offset: usize) -> Result<(Next, usize), SkipReason> {
    let h = bytes::<14>(data, offset).ok_or(SkipReason::TruncatedLink)?;
    let ethertype = u16::from_be_bytes([h[12], h[13]]);
    if ethertype >= 0x0600 {
        return Ok((Next::Ether(ethertype), offset + 14));
    }
    // 802.3 length field: only SNAP (AA AA 03 + OUI + type) says what follows.
    let llc = bytes::<8>(data, offset + 14).ok_or(SkipReason::TruncatedLink)?;
    if llc[0] == 0xaa && llc[1] == 0xaa && llc[2] == 0x03 {
        return Ok((
            Next::Ether(u16::from_be_bytes([llc[6], llc[7]])),
            offset + 22,
        ));
    }
    Err(SkipReason::NotIp)
}

fn ip_by_version(data: &[u8], offset: usize) -> Result<Next, SkipReason> {
    let first = *data.get(offset).ok_or(SkipReason::TruncatedIp)?;
    match first >> 4 {
        4 => Ok(Next::Ip(4)),
        6 => Ok(Next::Ip(6)),
        _ => Err(SkipReason::NotIp),
    }
}

fn ppp_protocol(protocol: u16) -> Result<Next, SkipReason> {
    match protocol {
        PPP_IPV4 => Ok(Next::Ip(4)),
        PPP_IPV6 => Ok(Next::Ip(6)),
        _ => Err(SkipReason::NotIp),
    }
}

/// `N` bytes at `offset`, or `None` when the packet is shorter.
#[inline]
fn bytes<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    data.get(offset..offset.checked_add(N)?)?.try_into().ok()
}
