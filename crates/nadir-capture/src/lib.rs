//! Packet sources: the first stage of the nadir pipeline.
//!
//! A [`PacketSource`] yields [`RawPacket`]s (timestamp, lengths, link type and the
//! captured bytes) one at a time, borrowing each packet's bytes from an internal
//! buffer until the next call, so a capture of any size is read in constant memory.

mod error;
mod file;
mod link;
#[cfg(feature = "live")]
mod live;

pub use error::{CaptureError, CaptureErrorKind};
pub use file::{CaptureFormat, Compression, FileSource, OpenOptions};
pub use link::LinkType;
#[cfg(feature = "live")]
pub use live::{LiveCounters, LiveOptions, LiveSource};

/// One captured frame, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct RawPacket<'a> {
    /// Capture time in nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// Length of the frame on the wire.
    pub wire_len: u32,
    /// Link-layer type of the interface the frame was captured on.
    pub link_type: LinkType,
    /// Interface index within the capture (0 for classic pcap).
    pub interface: u32,
    /// Captured bytes (`data.len()` is the captured length, at most `wire_len`
    /// unless the file is inconsistent).
    pub data: &'a [u8],
}

/// What a source hands over next: a packet, or (from a live source) a quiet moment.
#[derive(Debug, Clone, Copy)]
pub enum SourceEvent<'a> {
    Packet(RawPacket<'a>),
    /// Nothing arrived for a while: packet time stands at `now_ns` (the wall clock, which
    /// live timestamps follow), so flows idle that long can end without waiting for the next
    /// packet.
    Quiet {
        now_ns: i64,
    },
}

/// Anything that yields packets: capture files now, live interfaces later.
pub trait PacketSource {
    /// The next packet, `Ok(None)` at the clean end of the input, or the error that
    /// ended the input. After an error, the source yields `Ok(None)`.
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError>;

    /// The next packet or quiet moment; files have only packets.
    fn next_event(&mut self) -> Result<Option<SourceEvent<'_>>, CaptureError> {
        Ok(self.next_packet()?.map(SourceEvent::Packet))
    }

    /// Human-readable name of the source (file path, `-` for stdin, interface name).
    fn name(&self) -> &str;

    /// Bytes of the underlying input consumed so far (compressed bytes for
    /// compressed files), for progress bars.
    fn bytes_read(&self) -> u64;

    /// Records so far whose sub-second timestamp field held a whole second or more
    /// (pcap microseconds >= 1,000,000, nanoseconds >= 10^9): read with the excess
    /// carried into the seconds, and counted for a warning.
    fn subsecond_out_of_range(&self) -> u64 {
        0
    }
}
