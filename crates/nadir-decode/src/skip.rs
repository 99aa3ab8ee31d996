//! Why a packet was skipped, and how many were, per reason.

use serde::Serialize;

/// The reason a packet produced no record. Every skip is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// Zero captured bytes.
    Empty,
    /// A link type nadir does not decode (e.g. USER13, DBUS, NFLOG).
    UnsupportedLinkType,
    /// Not IPv4/IPv6 (ARP, LLDP, STP, an unknown ethertype, PPP control...).
    NotIp,
    /// The link, VLAN, MPLS or PPPoE header is cut short.
    TruncatedLink,
    /// The IP header (or an IPv6 extension header) is cut short.
    TruncatedIp,
    /// The IP header is inconsistent (bad version, header length, total length).
    MalformedIp,
    /// A LINKTYPE_IPV4 file holding IPv6 or the reverse.
    LinkIpMismatch,
    /// The TCP/UDP/ICMP header is cut short.
    TruncatedTransport,
    /// The TCP header is inconsistent (data offset < 5).
    MalformedTransport,
    /// A tunnel header is cut short.
    TruncatedTunnel,
    /// A tunnel header is inconsistent (unknown version).
    MalformedTunnel,
    /// The packet inside a tunnel could not be decoded (cut short or malformed).
    UndecodableInner,
    /// More nested tunnels than `max_tunnel_depth`.
    TunnelTooDeep,
}

impl SkipReason {
    pub const ALL: [SkipReason; 13] = [
        SkipReason::Empty,
        SkipReason::UnsupportedLinkType,
        SkipReason::NotIp,
        SkipReason::TruncatedLink,
        SkipReason::TruncatedIp,
        SkipReason::MalformedIp,
        SkipReason::LinkIpMismatch,
        SkipReason::TruncatedTransport,
        SkipReason::MalformedTransport,
        SkipReason::TruncatedTunnel,
        SkipReason::MalformedTunnel,
        SkipReason::UndecodableInner,
        SkipReason::TunnelTooDeep,
    ];

    /// Stable kebab-case name, as printed in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Empty => "empty",
            SkipReason::UnsupportedLinkType => "unsupported-link-type",
            SkipReason::NotIp => "not-ip",
            SkipReason::TruncatedLink => "truncated-link",
            SkipReason::TruncatedIp => "truncated-ip",
            SkipReason::MalformedIp => "malformed-ip",
            SkipReason::LinkIpMismatch => "link-ip-mismatch",
            SkipReason::TruncatedTransport => "truncated-transport",
            SkipReason::MalformedTransport => "malformed-transport",
            SkipReason::TruncatedTunnel => "truncated-tunnel",
            SkipReason::MalformedTunnel => "malformed-tunnel",
            SkipReason::UndecodableInner => "undecodable-inner",
            SkipReason::TunnelTooDeep => "tunnel-too-deep",
        }
    }

    /// A failure inside an opened tunnel is reported as such (too-deep stays itself).
    pub(crate) fn inside_tunnel(self) -> SkipReason {
        match self {
            SkipReason::TunnelTooDeep
            | SkipReason::TruncatedTunnel
            | SkipReason::MalformedTunnel => self,
            SkipReason::UndecodableInner | SkipReason::NotIp => self,
            _ => SkipReason::UndecodableInner,
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Skipped packets per reason. A fixed array: counting never allocates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason) {
        self.0[reason as usize] += 1;
    }

    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0[reason as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Add another set of counts (e.g. from another file or thread).
    pub fn merge(&mut self, other: &SkipCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// Non-zero counts, in the order of [`SkipReason::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (SkipReason, u64)> + '_ {
        SkipReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

impl Serialize for SkipCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (reason, n) in self.iter() {
            map.serialize_entry(reason.as_str(), &n)?;
        }
        map.end()
    }
}
