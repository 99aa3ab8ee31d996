//! Capture files: classic pcap (µs/ns, both byte orders, the modified format) and
//! pcapng (sections, interfaces, EPB/SPB/obsolete packet blocks), optionally gzip-
//! or zstd-compressed, from a path or stdin. Parsing is pcap-parser's; this module
//! adds format and compression detection, per-interface timestamps, validation that
//! pcap-parser leaves to the caller, and errors that say where and what.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::{Block, OptionCode};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use crate::{CaptureError, CaptureErrorKind, LinkType, PacketSource, RawPacket};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Bits 16-25 of the classic pcap link-type field must be zero (bits 26-31 carry FCS info).
const LINKTYPE_RESERVED_MASK: u32 = 0x03ff_0000;
/// pcapng obsolete Packet Block type.
const OBSOLETE_PACKET_BLOCK: u32 = 0x0000_0002;
/// libpcap's limits: a longer section header block, or any longer block, is a corrupt
/// length field, not a file cut short (it would otherwise read as truncation at EOF).
const MAX_SHB_LEN: u32 = 1 << 20;
const MAX_BLOCK_LEN: u32 = 16 << 20;

/// Which container a capture uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        nanosecond: bool,
        big_endian: bool,
        modified: bool,
    },
    PcapNg,
}

impl std::fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            CaptureFormat::PcapNg => f.write_str("pcapng"),
            CaptureFormat::Pcap {
                nanosecond,
                big_endian,
                modified,
            } => write!(
                f,
                "pcap{} ({} timestamps, {})",
                if modified { ", modified format" } else { "" },
                if nanosecond { "ns" } else { "µs" },
                if big_endian {
                    "big-endian"
                } else {
                    "little-endian"
                }
            ),
        }
    }
}

/// Compression wrapped around a capture, found from the name or the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// How to open a capture.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Initial read buffer; it grows up to `max_record` for larger records.
    pub buffer_size: usize,
    /// Largest record or block accepted; larger ones are reported as corrupt (pcapng
    /// blocks are also capped at libpcap's 16 MiB).
    pub max_record: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            buffer_size: 1 << 20,
            max_record: 64 << 20,
        }
    }
}

/// One pcapng interface: how to read its packets.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    /// Timestamp units per second (`None`: the IDB's if_tsresol is invalid).
    units_per_second: Option<u64>,
    offset_seconds: i64,
}

enum Reader {
    Legacy(LegacyPcapReader<Input>),
    Ng(PcapNGReader<Input>),
}

impl Reader {
    fn inner(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Reader::Legacy(r) => r,
            Reader::Ng(r) => r,
        }
    }
}

/// A capture file (or stdin) read as a stream of packets in constant memory.
pub struct FileSource {
    name: String,
    compression: Compression,
    reader: Reader,
    state: State,
    /// Bytes of the block returned last, consumed on the next call.
    pending: usize,
    max_record: usize,
    raw_bytes: Arc<AtomicU64>,
    /// What the stream's last failed read said (see `FillReader`).
    read_fault: Arc<Mutex<Option<String>>>,
    finished: bool,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("name", &self.name)
            .field("format", &self.state.format)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

/// What is known about the stream so far: how to turn its blocks into packets.
struct State {
    format: CaptureFormat,
    /// Classic pcap: the file's link type and timestamp unit.
    legacy_link: LinkType,
    legacy_nanos: bool,
    /// pcapng: interfaces and byte order of the current section.
    interfaces: Vec<Interface>,
    big_endian: bool,
    /// Timestamp of the last packet, for pcapng Simple Packet Blocks (which have none).
    last_ts_ns: i64,
    /// Classic pcap records whose sub-second field was a whole second or more.
    subsecond_out_of_range: u64,
}

type Input = FillReader<Box<dyn Read + Send>>;

impl FileSource {
    /// Open a capture file; `-` reads stdin. Compression is detected from the name
    /// (`.gz`, `.zst`) or, failing that, from the first bytes.
    pub fn open(path: impl AsRef<Path>, options: &OpenOptions) -> Result<FileSource, CaptureError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let raw: Box<dyn Read + Send> = if name == "-" {
            Box::new(io::stdin())
        } else {
            match File::open(path) {
                Ok(f) => Box::new(f),
                Err(e) => return Err(error(&name, 0, CaptureErrorKind::Io(e))),
            }
        };
        FileSource::from_reader(name, raw, options)
    }

    /// Read a capture from any byte stream; `name` is used in errors.
    pub fn from_reader(
        name: String,
        input: Box<dyn Read + Send>,
        options: &OpenOptions,
    ) -> Result<FileSource, CaptureError> {
        let raw_bytes = Arc::new(AtomicU64::new(0));
        let counted = CountingReader {
            inner: input,
            count: raw_bytes.clone(),
        };
        let (magic, counted) = peek(counted, 4).map_err(|e| error(&name, 0, e.into()))?;
        let by_name = if name.ends_with(".gz") || name.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else if name.ends_with(".zst") || name.ends_with(".zstd") {
            Some(Compression::Zstd)
        } else {
            None
        };
        let compression = by_name.unwrap_or(if magic.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if magic.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        });
        let decompressed: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(counted),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(counted)),
            Compression::Zstd => match zstd::stream::read::Decoder::new(counted) {
                Ok(d) => Box::new(d),
                Err(e) => return Err(error(&name, 0, CaptureErrorKind::Io(e))),
            },
        };
        let (head, rest) = peek(decompressed, 24).map_err(|e| error(&name, 0, e.into()))?;
        let format = sniff_format(&name, &head)?;
        let read_fault = Arc::new(Mutex::new(None));
        let input = FillReader {
            inner: Box::new(rest) as Box<dyn Read + Send>,
            deferred: None,
            fault: Arc::clone(&read_fault),
        };
        let buffer = options.buffer_size.max(512);
        let (reader, legacy_link, legacy_nanos) = match format {
            CaptureFormat::Pcap { nanosecond, .. } => {
                let link = validate_pcap_header(&name, &head)?;
                let reader = LegacyPcapReader::new(buffer, input).map_err(|e| {
                    error(&name, 0, map_open_error(e, "pcap file header", &read_fault))
                })?;
                (Reader::Legacy(reader), link, nanosecond)
            }
            CaptureFormat::PcapNg => {
                let reader = PcapNGReader::new(buffer, input)
                    .map_err(|e| error(&name, 0, map_ng_open_error(e, &head, &read_fault)))?;
                (Reader::Ng(reader), LinkType::ETHERNET, false)
            }
        };
        Ok(FileSource {
            name,
            compression,
            reader,
            state: State {
                format,
                legacy_link,
                legacy_nanos,
                interfaces: Vec::new(),
                big_endian: false,
                last_ts_ns: 0,
                subsecond_out_of_range: 0,
            },
            pending: 0,
            max_record: options.max_record,
            raw_bytes,
            read_fault,
            finished: false,
        })
    }

    pub fn format(&self) -> CaptureFormat {
        self.state.format
    }

    pub fn compression(&self) -> Compression {
        self.compression
    }

    fn fail(&mut self, offset: u64, kind: CaptureErrorKind) -> CaptureError {
        self.finished = true;
        error(&self.name, offset, kind)
    }
}

/// Where a packet's bytes sit in the reader's buffer, so the borrow can be taken
/// again after the block (which borrows the reader) is dropped.
struct Located {
    start: usize,
    len: usize,
    ts_ns: i64,
    wire_len: u32,
    link_type: LinkType,
    interface: u32,
}

impl State {
    /// Turn one parsed block into a packet location, nothing (metadata), or an error.
    fn step(
        &mut self,
        block: PcapBlockOwned<'_>,
        buffer_start: usize,
    ) -> Result<Option<Located>, CaptureErrorKind> {
        let at = |data: &[u8]| data.as_ptr() as usize - buffer_start;
        match block {
            PcapBlockOwned::LegacyHeader(_) => Ok(None),
            PcapBlockOwned::Legacy(b) => {
                // Out of range: kept, the excess carried into the seconds (as the sum
                // below does), and counted so the summary can warn.
                let one_second = if self.legacy_nanos {
                    1_000_000_000
                } else {
                    1_000_000
                };
                if b.ts_usec >= one_second {
                    self.subsecond_out_of_range += 1;
                }
                let sub = if self.legacy_nanos {
                    b.ts_usec as i64
                } else {
                    b.ts_usec as i64 * 1000
                };
                Ok(Some(Located {
                    start: at(b.data),
                    len: b.data.len(),
                    ts_ns: (b.ts_sec as i64) * 1_000_000_000 + sub,
                    wire_len: b.origlen,
                    link_type: self.legacy_link,
                    interface: 0,
                }))
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let iface = self.interface(epb.if_id)?;
                let len = (epb.caplen as usize).min(epb.data.len());
                Ok(Some(Located {
                    start: at(epb.data),
                    len,
                    ts_ns: ng_timestamp(&iface, epb.ts_high, epb.ts_low),
                    wire_len: epb.origlen,
                    link_type: iface.link_type,
                    interface: epb.if_id,
                }))
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let iface = self.interface(0)?;
                // The block is padded to 32 bits; the packet is min(original length, snaplen).
                let mut len = (spb.origlen as usize).min(spb.data.len());
                if iface.snaplen > 0 {
                    len = len.min(iface.snaplen as usize);
                }
                Ok(Some(Located {
                    start: at(spb.data),
                    len,
                    ts_ns: self.last_ts_ns,
                    wire_len: spb.origlen,
                    link_type: iface.link_type,
                    interface: 0,
                }))
            }
            PcapBlockOwned::NG(Block::Unknown(b)) if b.block_type == OBSOLETE_PACKET_BLOCK => {
                // Obsolete Packet Block: if_id u16, drops u16, ts high, ts low, caplen, len.
                let d = b.data;
                if d.len() < 20 {
                    return Err(CaptureErrorKind::MalformedBlock {
                        block: "obsolete packet block",
                        why: format!("body is {} bytes, shorter than its 20-byte header", d.len()),
                    });
                }
                let big = self.big_endian;
                let u16_at = |i: usize| {
                    let v = [d[i], d[i + 1]];
                    if big {
                        u16::from_be_bytes(v)
                    } else {
                        u16::from_le_bytes(v)
                    }
                };
                let u32_at = |i: usize| {
                    let v = [d[i], d[i + 1], d[i + 2], d[i + 3]];
                    if big {
                        u32::from_be_bytes(v)
                    } else {
                        u32::from_le_bytes(v)
                    }
                };
                let if_id = u16_at(0) as u32;
                let iface = self.interface(if_id)?;
                let caplen = (u32_at(12) as usize).min(d.len() - 20);
                Ok(Some(Located {
                    start: at(&d[20..]),
                    len: caplen,
                    ts_ns: ng_timestamp(&iface, u32_at(4), u32_at(8)),
                    wire_len: u32_at(16),
                    link_type: iface.link_type,
                    interface: if_id,
                }))
            }
            PcapBlockOwned::NG(block) => {
                self.on_ng_block(&block)?;
                Ok(None)
            }
        }
    }

    /// Handle a non-packet pcapng block; `Err` ends the stream.
    fn on_ng_block(&mut self, block: &Block<'_>) -> Result<(), CaptureErrorKind> {
        match block {
            Block::SectionHeader(shb) => {
                if shb.major_version != 1 || shb.minor_version != 0 {
                    return Err(CaptureErrorKind::UnsupportedVersion {
                        format: "pcapng section",
                        major: shb.major_version,
                        minor: shb.minor_version,
                    });
                }
                self.interfaces.clear();
                // Later blocks of the section are in its byte order (for the checks
                // made on raw block headers).
                self.big_endian = shb.big_endian();
            }
            Block::InterfaceDescription(idb) => {
                let interface = self.interfaces.len() as u32;
                let (mut tsresol, mut offset_seconds) = (6u8, 0i64);
                for opt in &idb.options {
                    let malformed = |why: String| CaptureErrorKind::MalformedBlock {
                        block: "interface description block",
                        why,
                    };
                    match opt.code {
                        OptionCode::IfTsresol => match opt.as_bytes() {
                            Ok([v]) => tsresol = *v,
                            _ => {
                                return Err(malformed(format!(
                                    "if_tsresol has length {} (must be 1)",
                                    opt.len
                                )))
                            }
                        },
                        OptionCode::IfTsoffset => match opt.len {
                            8 => offset_seconds = idb.if_tsoffset,
                            n => {
                                return Err(malformed(format!(
                                    "if_tsoffset has length {n} (must be 8)"
                                )))
                            }
                        },
                        OptionCode::EndOfOpt if opt.len != 0 => {
                            return Err(malformed(format!(
                                "opt_endofopt has length {} (must be 0)",
                                opt.len
                            )))
                        }
                        _ => {}
                    }
                }
                let units_per_second = pcap_parser::pcapng::build_ts_resolution(tsresol)
                    .filter(|u| *u > 0 && *u <= 1_000_000_000_000_000_000);
                if units_per_second.is_none() {
                    return Err(CaptureErrorKind::BadTimestampResolution { interface, tsresol });
                }
                self.interfaces.push(Interface {
                    link_type: LinkType(idb.linktype.0 as u16),
                    snaplen: idb.snaplen,
                    units_per_second,
                    offset_seconds,
                });
            }
            // Name resolution, statistics, journal, secrets, custom and unknown blocks
            // carry no packets: skipped, as the format says readers may.
            _ => {}
        }
        Ok(())
    }

    fn interface(&self, id: u32) -> Result<Interface, CaptureErrorKind> {
        self.interfaces
            .get(id as usize)
            .copied()
            .ok_or(CaptureErrorKind::UnknownInterface {
                interface: id,
                defined: self.interfaces.len(),
            })
    }
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        let located = loop {
            if self.pending > 0 {
                // No shift here: `consume` moves the unread half of the buffer to its
                // front each time half is read (a second copy of every byte);
                // `refill` moves only the partial record left at the end.
                self.reader.inner().consume_noshift(self.pending);
                self.pending = 0;
            }
            let offset = self.reader.inner().consumed() as u64;
            let reader = match &mut self.reader {
                Reader::Legacy(r) => r as &mut dyn PcapReaderIterator,
                Reader::Ng(r) => r as &mut dyn PcapReaderIterator,
            };
            let buffer_start = reader.data().as_ptr() as usize;
            // pcap-parser accepts some impossible block lengths; check each block's
            // header (and trailer, when buffered) before parsing it.
            if matches!(self.state.format, CaptureFormat::PcapNg) {
                if let Some(kind) = diagnose_ng_block(reader.data(), self.state.big_endian) {
                    return Err(self.fail(offset, kind));
                }
            }
            match reader.next() {
                Ok((size, block)) => {
                    let step = self.state.step(block, buffer_start);
                    self.pending = size;
                    match step {
                        Ok(Some(located)) => break located,
                        Ok(None) => continue,
                        Err(kind) => return Err(self.fail(offset, kind)),
                    }
                }
                Err(PcapError::Eof) => {
                    self.finished = true;
                    return Ok(None);
                }
                Err(PcapError::Incomplete(_)) => {
                    if let Err(e) = reader.refill() {
                        let kind = map_read_error(e, &self.read_fault);
                        return Err(self.fail(offset, kind));
                    }
                    if reader.reader_exhausted() && reader.data().is_empty() {
                        self.finished = true;
                        return Ok(None);
                    }
                }
                Err(PcapError::BufferTooSmall) => {
                    let have = reader.data().len();
                    let need = self.claimed_record_len();
                    if need > self.max_record as u64 {
                        return Err(self.fail(
                            offset,
                            CaptureErrorKind::RecordTooLarge {
                                caplen: need,
                                limit: self.max_record as u64,
                            },
                        ));
                    }
                    let reader = self.reader.inner();
                    let target = (need as usize + 64).max(have * 2).min(self.max_record + 64);
                    if !reader.grow(target) {
                        return Err(self.fail(
                            offset,
                            CaptureErrorKind::RecordTooLarge {
                                caplen: need,
                                limit: self.max_record as u64,
                            },
                        ));
                    }
                    if let Err(e) = reader.refill() {
                        let kind = map_read_error(e, &self.read_fault);
                        return Err(self.fail(offset, kind));
                    }
                }
                Err(e) => {
                    let e = e.to_owned_vec();
                    let kind = self.diagnose(e);
                    return Err(self.fail(offset, kind));
                }
            }
        };
        self.state.last_ts_ns = located.ts_ns;
        let data = &self.reader.inner().data()[located.start..located.start + located.len];
        Ok(Some(RawPacket {
            ts_ns: located.ts_ns,
            wire_len: located.wire_len,
            link_type: located.link_type,
            interface: located.interface,
            data,
        }))
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn bytes_read(&self) -> u64 {
        self.raw_bytes.load(Ordering::Relaxed)
    }

    fn subsecond_out_of_range(&self) -> u64 {
        self.state.subsecond_out_of_range
    }
}

impl FileSource {
    /// The length the record at the head of the buffer claims (for size errors).
    fn claimed_record_len(&mut self) -> u64 {
        let format = self.state.format;
        let data = self.reader.inner().data();
        if data.len() < 16 {
            return 0;
        }
        let le = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let be = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        match format {
            CaptureFormat::Pcap {
                big_endian,
                modified,
                ..
            } => {
                let caplen = if big_endian { be(8) } else { le(8) };
                caplen as u64 + if modified { 24 } else { 16 }
            }
            CaptureFormat::PcapNg => {
                if ng_big_endian(data, self.state.big_endian) {
                    be(4) as u64
                } else {
                    le(4) as u64
                }
            }
        }
    }

    /// A specific reason for a parse failure, from the bytes at the fault.
    fn diagnose(&mut self, e: PcapError<&'static [u8]>) -> CaptureErrorKind {
        let format = self.state.format;
        let data = self.reader.inner().data().to_vec();
        if let CaptureFormat::PcapNg = format {
            if let Some(kind) = diagnose_ng_block(&data, self.state.big_endian) {
                return kind;
            }
        }
        if matches!(e, PcapError::UnexpectedEof) {
            let need = self.claimed_record_len().max(data.len() as u64 + 1);
            let what = match format {
                CaptureFormat::Pcap { .. } => "packet record",
                CaptureFormat::PcapNg => "pcapng block",
            };
            return CaptureErrorKind::Truncated {
                what,
                have: data.len() as u64,
                need,
            };
        }
        CaptureErrorKind::MalformedBlock {
            block: match format {
                CaptureFormat::Pcap { .. } => "pcap record",
                CaptureFormat::PcapNg => "block",
            },
            why: describe_pcap_error(&e),
        }
    }
}

/// Byte order of the pcapng block at the head of `data`: a Section Header Block says
/// so in its byte-order magic; any other block is in its section's order.
fn ng_big_endian(data: &[u8], section_big_endian: bool) -> bool {
    if data.len() >= 12 && data[..4] == PCAPNG_MAGIC {
        return data[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
    }
    section_big_endian
}

/// Explain a malformed pcapng block from its header (and trailer, when buffered).
fn diagnose_ng_block(data: &[u8], section_big_endian: bool) -> Option<CaptureErrorKind> {
    if data.len() < 8 {
        return None;
    }
    let big = ng_big_endian(data, section_big_endian);
    let read = |i: usize| {
        let v = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let block_type = read(0);
    let length = read(4);
    let bad = |why| {
        Some(CaptureErrorKind::BadBlockLength {
            block_type,
            length,
            why,
        })
    };
    if length % 4 != 0 {
        return bad("not a multiple of 4");
    }
    let minimum = match block_type {
        0x0a0d_0d0a => 28,
        0x0000_0001 => 20,
        0x0000_0006 => 32,
        _ => 12,
    };
    if length < minimum {
        return bad("smaller than the minimum for its block type");
    }
    if block_type == 0x0a0d_0d0a && length > MAX_SHB_LEN {
        return bad("more than the 1048576-byte (1 MiB) limit for a section header block: a corrupt length, not a cut-short file");
    }
    if length > MAX_BLOCK_LEN {
        return bad("more than the 16777216-byte (16 MiB) limit for a pcapng block: a corrupt length, not a cut-short file");
    }
    if data.len() >= length as usize {
        let trailer = read(length as usize - 4);
        if trailer != length {
            return bad("the trailing length does not match");
        }
    }
    None
}

fn describe_pcap_error(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("could not parse its fields ({})", kind.description())
        }
        PcapError::HeaderNotRecognized => "header not recognised".to_string(),
        other => format!("{other:?}"),
    }
}

/// pcapng timestamp in ns: (units / units_per_second + offset) seconds. u128 arithmetic
/// so that timestamps past 2106 and fine resolutions do not overflow.
fn ng_timestamp(iface: &Interface, high: u32, low: u32) -> i64 {
    let units = ((high as u128) << 32) | low as u128;
    let per_second = iface.units_per_second.unwrap_or(1_000_000) as u128;
    let ns = units * 1_000_000_000 / per_second;
    let ns = i64::try_from(ns).unwrap_or(i64::MAX);
    ns.saturating_add(iface.offset_seconds.saturating_mul(1_000_000_000))
}

fn sniff_format(name: &str, head: &[u8]) -> Result<CaptureFormat, CaptureError> {
    if head.is_empty() {
        return Err(error(name, 0, CaptureErrorKind::Empty));
    }
    if head.len() < 4 {
        return Err(error(
            name,
            0,
            CaptureErrorKind::Truncated {
                what: "file header",
                have: head.len() as u64,
                need: 24,
            },
        ));
    }
    let magic = [head[0], head[1], head[2], head[3]];
    let pcap = |nanosecond, big_endian, modified| CaptureFormat::Pcap {
        nanosecond,
        big_endian,
        modified,
    };
    Ok(match u32::from_le_bytes(magic) {
        0xa1b2_c3d4 => pcap(false, false, false),
        0xd4c3_b2a1 => pcap(false, true, false),
        0xa1b2_3c4d => pcap(true, false, false),
        0x4d3c_b2a1 => pcap(true, true, false),
        0xa1b2_cd34 => pcap(false, false, true),
        _ if magic == PCAPNG_MAGIC => CaptureFormat::PcapNg,
        _ => {
            return Err(error(
                name,
                0,
                CaptureErrorKind::NotACapture(head[..head.len().min(8)].to_vec()),
            ))
        }
    })
}

/// Check the classic pcap header fields pcap-parser does not: version and link type.
fn validate_pcap_header(name: &str, head: &[u8]) -> Result<LinkType, CaptureError> {
    if head.len() < 24 {
        return Err(error(
            name,
            0,
            CaptureErrorKind::Truncated {
                what: "pcap file header",
                have: head.len() as u64,
                need: 24,
            },
        ));
    }
    let big = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) & 0xffff == 0xb2a1;
    let u16_at = |i: usize| {
        if big {
            u16::from_be_bytes([head[i], head[i + 1]])
        } else {
            u16::from_le_bytes([head[i], head[i + 1]])
        }
    };
    let u32_at = |i: usize| {
        let v = [head[i], head[i + 1], head[i + 2], head[i + 3]];
        if big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let (major, minor) = (u16_at(4), u16_at(6));
    // libpcap reads 2.x (and the odd 2.2/2.3 writers); other majors are a different format.
    if major != 2 {
        return Err(error(
            name,
            4,
            CaptureErrorKind::UnsupportedVersion {
                format: "pcap",
                major,
                minor,
            },
        ));
    }
    let link_field = u32_at(20);
    if link_field & LINKTYPE_RESERVED_MASK != 0 {
        return Err(error(
            name,
            20,
            CaptureErrorKind::LinkTypeReservedBits(link_field),
        ));
    }
    Ok(LinkType((link_field & 0xffff) as u16))
}

fn map_open_error(
    e: PcapError<&[u8]>,
    what: &'static str,
    fault: &Mutex<Option<String>>,
) -> CaptureErrorKind {
    match e {
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => CaptureErrorKind::Truncated {
            what,
            have: 0,
            need: 24,
        },
        PcapError::ReadError => map_read_error(e, fault),
        other => CaptureErrorKind::MalformedBlock {
            block: what,
            why: describe_pcap_error(&other),
        },
    }
}

fn map_ng_open_error(
    e: PcapError<&[u8]>,
    head: &[u8],
    fault: &Mutex<Option<String>>,
) -> CaptureErrorKind {
    if let Some(kind) = diagnose_ng_block(head, false) {
        return kind;
    }
    match e {
        PcapError::Incomplete(_) | PcapError::UnexpectedEof => {
            let need = if head.len() >= 8 {
                u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64
            } else {
                28
            };
            CaptureErrorKind::Truncated {
                what: "section header block",
                have: head.len() as u64,
                need,
            }
        }
        other => map_open_error(other, "section header block", fault),
    }
}

fn map_read_error(e: PcapError<&[u8]>, fault: &Mutex<Option<String>>) -> CaptureErrorKind {
    match e {
        PcapError::ReadError => {
            let cause = fault.lock().ok().and_then(|mut f| f.take());
            CaptureErrorKind::Io(io::Error::other(match cause {
                Some(cause) => format!("{cause} (a compressed stream may be corrupt or cut short)"),
                None => "read failed (a compressed stream may be corrupt or cut short)".into(),
            }))
        }
        other => CaptureErrorKind::MalformedBlock {
            block: "block",
            why: describe_pcap_error(&other),
        },
    }
}

fn error(name: &str, offset: u64, kind: CaptureErrorKind) -> CaptureError {
    CaptureError {
        source_name: name.to_string(),
        offset,
        kind,
    }
}

/// Read up to `n` bytes from the front of a stream and hand back a stream that still
/// yields them, so sniffing the format consumes nothing.
fn peek<R: Read + Send + 'static>(
    mut inner: R,
    n: usize,
) -> io::Result<(Vec<u8>, impl Read + Send)> {
    let mut head = Vec::with_capacity(n);
    (&mut inner).take(n as u64).read_to_end(&mut head)?;
    Ok((head.clone(), io::Cursor::new(head).chain(inner)))
}

/// Counts bytes read from the underlying input (before decompression) for progress.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Fills the caller's buffer fully (or to end of input): pcap-parser treats a short
/// read as the end of the data, but pipes and decompressors return short reads.
struct FillReader<R> {
    inner: R,
    /// An error met after some bytes of a read: those bytes go out first, the error
    /// with the next read, so nothing decompressed before a fault is lost.
    deferred: Option<io::Error>,
    /// The text of the error that ended the stream: pcap-parser turns every failed
    /// read into a bare `ReadError`, and the decompressor's words are the useful part.
    fault: Arc<Mutex<Option<String>>>,
}

impl<R: Read> Read for FillReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.deferred.take() {
            return Err(self.record(e));
        }
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if filled > 0 => {
                    self.deferred = Some(e);
                    break;
                }
                Err(e) => return Err(self.record(e)),
            }
        }
        Ok(filled)
    }
}

impl<R> FillReader<R> {
    fn record(&self, e: io::Error) -> io::Error {
        if let Ok(mut fault) = self.fault.lock() {
            *fault = Some(e.to_string());
        }
        e
    }
}
