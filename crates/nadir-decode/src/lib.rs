//! Packet decoding: the second stage of the nadir pipeline.
//!
//! [`Decoder::decode`] turns a [`nadir_capture::RawPacket`] into a [`PacketRecord`]
//! (addresses, ports, flags, lengths, tunnel context) or a counted [`SkipReason`].
//! It never allocates and never panics on malformed input.
//!
//! IP fragments are not reassembled: every fragment is decoded and keyed correctly
//! (first fragments carry ports; later ones have ports 0 and the fragment offset
//! set), so a flow table can group them by addresses and protocol.

mod decoder;
mod record;
mod skip;

pub use decoder::{Decoder, DecoderConfig};
pub use record::{ip_proto, tcp_flags, Fragment, PacketRecord, Tunnel, TunnelKind};
pub use skip::{SkipCounts, SkipReason};
