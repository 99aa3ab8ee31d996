//! `bytes` features: the first N packets x first M bytes of each flow, as a u8
//! tensor (LDPI, seeds-spec §4.2; defaults N = 4, M = 60).
//!
//! Each packet contributes its IP packet (inner packet for tunnelled traffic, from
//! the IP header on), with everything that identifies the hosts zeroed in place:
//! IPv4 addresses (bytes 12..20) and header checksum (10..12, it is computed over
//! the addresses); IPv6 addresses (8..40); TCP/UDP/SCTP ports; and the TCP, UDP
//! and ICMPv6 checksums, whose pseudo-header covers the addresses. Masking in place
//! (rather than deleting bytes 12..20 as LDPI does) keeps IPv4 and IPv6 layouts
//! aligned and handles IPv6 correctly. Each packet is cut or zero-padded to M bytes,
//! missing packets are zero rows.
//!
//! A flow's sample is emitted once: after its N-th packet (through the flow table's
//! early snapshot) or, for shorter flows, when the flow ends (TCP FIN/RST, timeout,
//! eviction or end of input), so flows LDPI would drop (< N packets without FIN,
//! RST-terminated) are kept.

use nadir_decode::{ip_proto, PacketRecord};
use nadir_flow::{Direction, FlowMeta, FlowState};

/// LDPI's defaults.
pub const DEFAULT_FIRST_PACKETS: usize = 4;
pub const DEFAULT_FIRST_BYTES: usize = 60;
/// Upper bounds that keep one flow's tensor small (64 x 1500 = 96 KB).
pub const MAX_FIRST_PACKETS: usize = 64;
pub const MAX_FIRST_BYTES: usize = 1500;

/// Shape of the tensor, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstBytesConfig {
    packets: usize,
    bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirstBytesConfigError {
    #[error("--first-packets must be between 1 and {MAX_FIRST_PACKETS}, got {0}")]
    Packets(usize),
    #[error("--first-bytes must be between 1 and {MAX_FIRST_BYTES}, got {0}")]
    Bytes(usize),
}

impl Default for FirstBytesConfig {
    fn default() -> Self {
        FirstBytesConfig {
            packets: DEFAULT_FIRST_PACKETS,
            bytes: DEFAULT_FIRST_BYTES,
        }
    }
}

impl FirstBytesConfig {
    pub fn new(packets: usize, bytes: usize) -> Result<Self, FirstBytesConfigError> {
        if packets == 0 || packets > MAX_FIRST_PACKETS {
            return Err(FirstBytesConfigError::Packets(packets));
        }
        if bytes == 0 || bytes > MAX_FIRST_BYTES {
            return Err(FirstBytesConfigError::Bytes(bytes));
        }
        Ok(FirstBytesConfig { packets, bytes })
    }
    /// N: packets per sample.
    pub fn packets(&self) -> usize {
        self.packets
    }
    /// M: bytes per packet.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    /// Column name of byte `byte` of packet `packet`: `b{packet}_{byte}`.
    pub fn column_name(packet: usize, byte: usize) -> String {
        format!("b{packet}_{byte}")
    }
}

/// The first-bytes tensor of one flow; also its [`FlowState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstBytes {
    bytes_per_packet: u16,
    capacity: u8,
    filled: u8,
    /// `capacity` rows of `bytes_per_packet`, row-major; zero where nothing was written.
    tensor: Box<[u8]>,
}

impl FirstBytes {
    /// An all-zero tensor (one allocation per flow, none per packet).
    pub fn new(cfg: FirstBytesConfig) -> Self {
        FirstBytes {
            // Both fit: FirstBytesConfig bounds them by 64 and 1500.
            bytes_per_packet: cfg.bytes as u16,
            capacity: cfg.packets as u8,
            filled: 0,
            tensor: vec![0u8; cfg.packets * cfg.bytes].into_boxed_slice(),
        }
    }

    /// Writes the masked IP bytes of `pkt` (its frame is `frame`) as the next row;
    /// ignored once N packets are in.
    pub fn push(&mut self, pkt: &PacketRecord, frame: &[u8]) {
        if self.filled >= self.capacity {
            return;
        }
        let width = usize::from(self.bytes_per_packet);
        let start = usize::from(self.filled) * width;
        let row = &mut self.tensor[start..start + width];
        let ip = ip_packet_bytes(pkt, frame);
        let copied = ip.len().min(width);
        row[..copied].copy_from_slice(&ip[..copied]);
        mask_identifiers(pkt, row);
        self.filled += 1;
    }

    /// Packets written into the tensor (at most N).
    pub fn packets(&self) -> usize {
        usize::from(self.filled)
    }
    pub fn is_full(&self) -> bool {
        self.filled >= self.capacity
    }
    /// N x M bytes, row-major (packet, byte).
    pub fn tensor(&self) -> &[u8] {
        &self.tensor
    }
    /// Row `packet` (zeros if the flow had fewer packets).
    pub fn row(&self, packet: usize) -> Option<&[u8]> {
        let width = usize::from(self.bytes_per_packet);
        self.tensor.get(packet * width..(packet + 1) * width)
    }
}

impl FlowState for FirstBytes {
    fn on_packet(&mut self, _meta: &FlowMeta, pkt: &PacketRecord, _dir: Direction, data: &[u8]) {
        self.push(pkt, data);
    }
}

/// Whether a finished flow's sample should be written: the early snapshot taken at
/// N packets, or the flow's end when it never reached N packets (so no flow is
/// written twice and none is lost).
pub fn should_emit(meta: &FlowMeta, state: &FirstBytes) -> bool {
    match meta.end {
        nadir_flow::EndReason::Early => true,
        _ => !state.is_full(),
    }
}

/// The captured bytes of the (inner) IP packet: from the IP header to the end of
/// the IP packet (Ethernet padding excluded), or to the end of the capture.
fn ip_packet_bytes<'a>(pkt: &PacketRecord, frame: &'a [u8]) -> &'a [u8] {
    let start = (pkt.ip_offset as usize).min(frame.len());
    let available = &frame[start..];
    match pkt.ip_len as usize {
        0 => available, // IPv4 TSO / IPv6 jumbograms write 0: take what was captured
        len => &available[..len.min(available.len())],
    }
}

/// Zeroes a byte range of `row`, clipped to its length.
fn zero(row: &mut [u8], from: usize, to: usize) {
    let to = to.min(row.len());
    if from < to {
        row[from..to].fill(0);
    }
}

/// Zeroes addresses, ports and address-dependent checksums in `row`, which starts
/// at the IP header.
fn mask_identifiers(pkt: &PacketRecord, row: &mut [u8]) {
    if pkt.ip_version == 6 {
        zero(row, 8, 40);
    } else {
        zero(row, 10, 20);
    }
    // A non-first fragment has no transport header at the start of its payload.
    if pkt.fragment.offset != 0 {
        return;
    }
    let l4 = usize::from(pkt.ip_header_len);
    match pkt.protocol {
        ip_proto::TCP => {
            zero(row, l4, l4 + 4);
            zero(row, l4 + 16, l4 + 18);
        }
        ip_proto::UDP | UDP_LITE => {
            zero(row, l4, l4 + 4);
            zero(row, l4 + 6, l4 + 8);
        }
        SCTP => zero(row, l4, l4 + 4),
        ip_proto::ICMPV6 => zero(row, l4 + 2, l4 + 4),
        _ => {}
    }
}

const UDP_LITE: u8 = 136;
const SCTP: u8 = 132;

#[cfg(test)]
mod tests {
    use super::*;
    use nadir_decode::Fragment;
    use std::net::IpAddr;

    /// A record for a frame that starts with a 14-byte Ethernet header.
    fn record(ip_version: u8, protocol: u8, ip_header_len: u16, ip_len: u32) -> PacketRecord {
        let (src, dst): (IpAddr, IpAddr) = if ip_version == 4 {
            (
                "10.0.0.1".parse().expect("v4"),
                "10.0.0.2".parse().expect("v4"),
            )
        } else {
            (
                "2001:db8::1".parse().expect("v6"),
                "2001:db8::2".parse().expect("v6"),
            )
        };
        PacketRecord {
            ts_ns: 0,
            wire_len: 14 + ip_len,
            cap_len: 14 + ip_len,
            link_type: nadir_capture::LinkType(1),
            vlan: 0,
            ip_version,
            src,
            dst,
            protocol,
            src_port: 1234,
            dst_port: 80,
            ttl: 64,
            ip_id: 0,
            fragment: Fragment::default(),
            ip_offset: 14,
            ip_len,
            ip_header_len,
            tcp_flags: 0,
            tcp_window: 0,
            tcp_seq: 0,
            tcp_ack: 0,
            l4_header_len: 20,
            payload_offset: 14 + u32::from(ip_header_len) + 20,
            payload_len: 0,
            payload_captured: 0,
            tunnel: None,
        }
    }

    /// Frame of `ip_len` IP bytes where byte i of the IP packet is `(i % 251) + 1` (never 0).
    fn frame(ip_len: usize, trailer: usize) -> Vec<u8> {
        let mut f = vec![0xEEu8; 14];
        f.extend((0..ip_len).map(|i| (i % 251) as u8 + 1));
        f.extend(std::iter::repeat_n(0xAB, trailer));
        f
    }

    #[test]
    fn ipv4_tcp_addresses_ports_and_checksums_are_zero_rest_is_kept() {
        let pkt = record(4, ip_proto::TCP, 20, 80);
        let mut fb = FirstBytes::new(FirstBytesConfig::default());
        fb.push(&pkt, &frame(80, 0));
        let row = fb.row(0).expect("row 0");
        for (i, &byte) in row.iter().enumerate().take(60) {
            let masked = (10..20).contains(&i) || (20..24).contains(&i) || (36..38).contains(&i);
            let expected = if masked { 0 } else { (i % 251) as u8 + 1 };
            assert_eq!(byte, expected, "byte {i}");
        }
        assert_eq!(fb.packets(), 1);
        assert!(
            fb.row(1).expect("row 1").iter().all(|&b| b == 0),
            "missing packets are zero rows"
        );
    }

    #[test]
    fn ipv6_masks_the_full_addresses_and_udp_ports_after_extension_headers() {
        // 40-byte fixed header + 8-byte extension header, then UDP.
        let pkt = record(6, ip_proto::UDP, 48, 100);
        let cfg = FirstBytesConfig::new(2, 64).expect("cfg");
        let mut fb = FirstBytes::new(cfg);
        fb.push(&pkt, &frame(100, 0));
        let row = fb.row(0).expect("row");
        assert!(row[8..40].iter().all(|&b| b == 0), "IPv6 addresses");
        assert!(row[48..52].iter().all(|&b| b == 0), "UDP ports");
        assert!(row[54..56].iter().all(|&b| b == 0), "UDP checksum");
        assert_eq!(&row[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            &row[40..48],
            &[41, 42, 43, 44, 45, 46, 47, 48],
            "extension header kept"
        );
        assert_eq!(row[52], 53, "UDP length kept");
    }

    #[test]
    fn short_packets_are_zero_padded_and_ethernet_trailer_is_not_copied() {
        let pkt = record(4, ip_proto::ICMP, 20, 28);
        let mut fb = FirstBytes::new(FirstBytesConfig::default());
        fb.push(&pkt, &frame(28, 18)); // 60-byte minimum Ethernet frame with 0xAB padding
        let row = fb.row(0).expect("row");
        assert_eq!(row[27], 28);
        assert!(
            row[28..].iter().all(|&b| b == 0),
            "padding after the IP packet must be zeros"
        );
        // ICMP (v4) checksum does not cover addresses: kept.
        assert_eq!(row[22], 23);
    }

    #[test]
    fn non_first_fragment_keeps_its_payload_bytes() {
        let mut pkt = record(4, ip_proto::TCP, 20, 60);
        pkt.fragment = Fragment {
            offset: 1480,
            more_fragments: false,
        };
        let mut fb = FirstBytes::new(FirstBytesConfig::default());
        fb.push(&pkt, &frame(60, 0));
        let row = fb.row(0).expect("row");
        assert_eq!(row[20], 21, "no ports to mask in a non-first fragment");
        assert!(row[12..20].iter().all(|&b| b == 0));
    }

    #[test]
    fn only_the_first_n_packets_are_kept() {
        let pkt = record(4, ip_proto::TCP, 20, 60);
        let cfg = FirstBytesConfig::new(2, 10).expect("cfg");
        let mut fb = FirstBytes::new(cfg);
        for _ in 0..5 {
            fb.push(&pkt, &frame(60, 0));
        }
        assert_eq!(fb.packets(), 2);
        assert!(fb.is_full());
        assert_eq!(fb.tensor().len(), 20);
    }

    #[test]
    fn truncated_capture_never_panics() {
        let pkt = record(4, ip_proto::TCP, 20, 1500);
        let mut fb = FirstBytes::new(FirstBytesConfig::default());
        fb.push(&pkt, &frame(10, 0)); // snaplen cut inside the IP header
        fb.push(&pkt, &[]); // nothing captured at all
        assert_eq!(fb.packets(), 2);
        assert_eq!(fb.row(0).expect("row")[9], 10);
        assert!(fb.row(1).expect("row").iter().all(|&b| b == 0));
    }

    #[test]
    fn config_bounds() {
        assert!(FirstBytesConfig::new(0, 60).is_err());
        assert!(FirstBytesConfig::new(4, 0).is_err());
        assert!(FirstBytesConfig::new(65, 60).is_err());
        assert!(FirstBytesConfig::new(4, 1501).is_err());
        assert_eq!(FirstBytesConfig::column_name(3, 59), "b3_59");
    }
}
