//! Link-layer types (the LINKTYPE_* registry used by pcap and pcapng).

use serde::{Deserialize, Serialize};

/// A pcap/pcapng link type number (LINKTYPE_*, not the DLT_* values of some platforms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    /// OpenBSD's DLT_RAW value as some files write it.
    pub const RAW_OPENBSD: LinkType = LinkType(12);
    /// DLT_RAW on BSDs.
    pub const RAW_BSD: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The registry name, e.g. `ETHERNET`, or `LINKTYPE_<n>` for others.
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        let known = match self.0 {
            0 => "NULL",
            1 => "ETHERNET",
            9 => "PPP",
            12 | 14 | 101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            239 => "NFLOG",
            276 => "LINUX_SLL2",
            _ => return format!("LINKTYPE_{}", self.0).into(),
        };
        known.into()
    }
}

impl std::fmt::Display for LinkType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}
