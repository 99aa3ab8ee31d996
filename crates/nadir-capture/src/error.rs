//! Capture errors: which input, where in it, and what was wrong.

use std::fmt;

/// An error that ended reading a capture. Packets yielded before it are valid.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: at byte {offset}: {kind}")]
pub struct CaptureError {
    /// File path (or `-` for stdin).
    pub source_name: String,
    /// Byte offset of the fault in the (decompressed) capture stream.
    pub offset: u64,
    pub kind: CaptureErrorKind,
}

/// What was wrong with the input.
#[derive(Debug, thiserror::Error)]
pub enum CaptureErrorKind {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("empty file: not a capture")]
    Empty,
    #[error("not a pcap or pcapng capture (starts with {})", Hex(.0))]
    NotACapture(Vec<u8>),
    #[error("file ends inside the {what} ({have} of {need} bytes)")]
    Truncated {
        what: &'static str,
        have: u64,
        need: u64,
    },
    #[error("unsupported {format} version {major}.{minor}")]
    UnsupportedVersion {
        format: &'static str,
        major: u16,
        minor: u16,
    },
    #[error("pcap link-type field has reserved bits set (0x{0:08x})")]
    LinkTypeReservedBits(u32),
    #[error(
        "record claims {caplen} captured bytes, more than the {limit}-byte limit (corrupt length?)"
    )]
    RecordTooLarge { caplen: u64, limit: u64 },
    #[error("pcapng block of type 0x{block_type:08x} has invalid length {length}: {why}")]
    BadBlockLength {
        block_type: u32,
        length: u32,
        why: &'static str,
    },
    #[error("pcapng {block} is malformed: {why}")]
    MalformedBlock { block: &'static str, why: String },
    #[error("{}", unknown_interface(*interface, *defined))]
    UnknownInterface { interface: u32, defined: usize },
    #[error(
        "interface {interface} has an invalid timestamp resolution (if_tsresol 0x{tsresol:02x})"
    )]
    BadTimestampResolution { interface: u32, tsresol: u8 },
    /// A live interface would not open or stopped delivering (the text names the fix).
    #[error("{0}")]
    Live(String),
}

fn unknown_interface(interface: u32, defined: usize) -> String {
    match defined {
        0 => format!(
            "packet refers to interface {interface}, but no interface description block came before it"
        ),
        n => format!(
            "packet refers to interface {interface}, but the section defines only {n} (0..={})",
            n - 1
        ),
    }
}

/// First bytes of a file, as hex, for "not a capture" messages.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl CaptureErrorKind {
    /// A short stable name for counting and tests (`truncated`, `bad-block-length`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            CaptureErrorKind::Io(_) => "io",
            CaptureErrorKind::Empty => "empty",
            CaptureErrorKind::NotACapture(_) => "not-a-capture",
            CaptureErrorKind::Truncated { .. } => "truncated",
            CaptureErrorKind::UnsupportedVersion { .. } => "unsupported-version",
            CaptureErrorKind::LinkTypeReservedBits(_) => "link-type-reserved-bits",
            CaptureErrorKind::RecordTooLarge { .. } => "record-too-large",
            CaptureErrorKind::BadBlockLength { .. } => "bad-block-length",
            CaptureErrorKind::MalformedBlock { .. } => "malformed-block",
            CaptureErrorKind::UnknownInterface { .. } => "unknown-interface",
            CaptureErrorKind::BadTimestampResolution { .. } => "bad-timestamp-resolution",
            CaptureErrorKind::Live(_) => "live",
        }
    }
}
