//! Live interfaces through libpcap (`pcap` crate).
//!
//! Why libpcap and not an AF_PACKET crate: on Linux libpcap already reads a TPACKET_V3
//! memory-mapped ring, compiles BPF filters, handles `any` (SLL2 framing) and reports the
//! kernel's drop counters (`pcap_stats`); the maintained pure-Rust AF_PACKET crates do the ring
//! but neither the filter compiler nor `any`.
//!
//! The ring is TPACKET_V3 (packets in blocks, one wake-up per block; the kernel hands over a
//! partly filled block after `BLOCK_TIMEOUT_MS`) unless `immediate` is asked for, which makes
//! libpcap fall back to TPACKET_V2 (one wake-up per packet: lower latency, more CPU). The
//! handle is non-blocking and waited on with our own `poll`: a blocking TPACKET_V3 read
//! sleeps until a packet comes, however long, so an idle interface would never see its stop
//! flag.
//!
//! A [`LiveSource`] is a [`PacketSource`]: it yields packets until its stop flag is set
//! (SIGINT/SIGTERM in `nadir watch`), then `Ok(None)`, the clean end, so the pipeline flushes
//! its live flows exactly as at the end of a file.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap::{Active, Capture, Precision};

use crate::{CaptureError, CaptureErrorKind, LinkType, PacketSource, RawPacket, SourceEvent};

/// How to open an interface.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Interface name, or `any` for every interface (Linux).
    pub interface: String,
    /// BPF filter expression (`tcpdump` syntax), e.g. `not port 22`.
    pub filter: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    pub promiscuous: bool,
    /// Kernel ring size in bytes.
    pub buffer_bytes: u32,
    /// Each packet as it arrives (TPACKET_V2) instead of ring blocks (TPACKET_V3).
    pub immediate: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            interface: "any".into(),
            filter: None,
            snaplen: 262_144,
            promiscuous: true,
            buffer_bytes: 64 << 20,
            immediate: false,
        }
    }
}

/// Counters a live source keeps current, readable from other threads (metrics).
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Packets handed to the pipeline.
    pub packets: AtomicU64,
    /// Bytes on the wire of those packets.
    pub wire_bytes: AtomicU64,
    /// Packets the kernel dropped because the ring was full (`pcap_stats` ps_drop).
    pub kernel_drops: AtomicU64,
    /// Packets the interface or driver dropped (ps_ifdrop).
    pub interface_drops: AtomicU64,
}

/// How often the kernel's drop counters are read.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// How often an idle capture looks at its stop flag.
const POLL_TIMEOUT_MS: i32 = 100;
/// The longest a packet waits in a partly filled TPACKET_V3 block (the kernel rounds it up to
/// its timer tick, 4 ms at HZ=250).
const BLOCK_TIMEOUT_MS: i32 = 1;

/// A live interface as a packet source.
pub struct LiveSource {
    capture: Capture<Active>,
    name: String,
    link_type: LinkType,
    stop: Arc<AtomicBool>,
    counters: Arc<LiveCounters>,
    stats_at: Instant,
    /// The current packet's bytes.
    buffer: Vec<u8>,
    /// Last values of libpcap's 32-bit counters, to accumulate across their wrap.
    last_stats: (u32, u32),
}

impl LiveSource {
    /// Opens the interface; a clear error names the fix (missing privilege, unknown interface
    /// with the ones that exist, a filter that does not compile).
    pub fn open(
        options: &LiveOptions,
        stop: Arc<AtomicBool>,
        counters: Arc<LiveCounters>,
    ) -> Result<Self, CaptureError> {
        let name = options.interface.clone();
        let fail = |why: String| CaptureError {
            source_name: name.clone(),
            offset: 0,
            kind: CaptureErrorKind::Live(why),
        };
        let inactive = Capture::from_device(name.as_str())
            .map_err(|e| fail(open_hint(&name, &e.to_string())))?
            .promisc(options.promiscuous)
            .snaplen(i32::try_from(options.snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(options.buffer_bytes).unwrap_or(i32::MAX))
            .timeout(BLOCK_TIMEOUT_MS)
            .immediate_mode(options.immediate)
            .precision(Precision::Nano);
        let mut capture = inactive
            .open()
            .and_then(Capture::setnonblock)
            .map_err(|e| fail(open_hint(&name, &e.to_string())))?;
        if let Some(filter) = &options.filter {
            capture
                .filter(filter, true)
                .map_err(|e| fail(format!("BPF filter {filter:?} does not compile: {e}")))?;
        }
        let link = capture.get_datalink().0;
        let link_type = u16::try_from(link)
            .map(LinkType)
            .map_err(|_| fail(format!("unsupported link type {link}")))?;
        Ok(LiveSource {
            capture,
            name,
            link_type,
            stop,
            counters,
            stats_at: Instant::now(),
            buffer: Vec::with_capacity(options.snaplen.min(1 << 16) as usize),
            last_stats: (0, 0),
        })
    }

    /// Reads libpcap's drop counters into [`LiveCounters`] (they are 32-bit and wrap).
    pub fn refresh_stats(&mut self) {
        self.stats_at = Instant::now();
        if let Ok(stat) = self.capture.stats() {
            let (dropped, if_dropped) = self.last_stats;
            self.counters.kernel_drops.fetch_add(
                u64::from(stat.dropped.wrapping_sub(dropped)),
                Ordering::Relaxed,
            );
            self.counters.interface_drops.fetch_add(
                u64::from(stat.if_dropped.wrapping_sub(if_dropped)),
                Ordering::Relaxed,
            );
            self.last_stats = (stat.dropped, stat.if_dropped);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The one-line fix for the usual reasons an interface does not open.
fn open_hint(interface: &str, error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("permitted") || lower.contains("permission") {
        format!(
            "cannot capture on {interface}: {error}; run as root or grant the capability: \
             sudo setcap cap_net_raw,cap_net_admin=eip $(command -v nadir)"
        )
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        let known: Vec<String> = pcap::Device::list()
            .map(|list| list.into_iter().map(|d| d.name).collect())
            .unwrap_or_default();
        format!(
            "no interface {interface:?} ({error}); interfaces here: {}",
            if known.is_empty() {
                "none visible".to_string()
            } else {
                known.join(", ")
            }
        )
    } else {
        format!("cannot capture on {interface}: {error}")
    }
}

/// What [`LiveSource::wait`] found; a packet's bytes are in `LiveSource::buffer`.
enum Waited {
    Packet { ts_ns: i64, wire_len: u32 },
    Quiet { now_ns: i64 },
    Stopped,
}

impl LiveSource {
    /// Waits for the next packet (copied into `buffer`), for the stop flag, or, when
    /// `report_quiet`, for [`POLL_TIMEOUT_MS`] without a packet.
    fn wait(&mut self, report_quiet: bool) -> Result<Waited, CaptureError> {
        loop {
            if self.stopping() {
                self.refresh_stats();
                return Ok(Waited::Stopped);
            }
            if self.stats_at.elapsed() >= STATS_EVERY {
                self.refresh_stats();
            }
            let header = match self.capture.next_packet() {
                Ok(packet) => {
                    // Copied out of libpcap's ring (one memcpy into a reused buffer): a borrow
                    // returned from inside this retry loop does not pass the borrow checker.
                    self.buffer.clear();
                    self.buffer.extend_from_slice(packet.data);
                    *packet.header
                }
                Err(pcap::Error::TimeoutExpired) => {
                    // Nothing in the ring: sleep until the kernel hands over more, or the
                    // timeout (to look at the stop flag again).
                    let mut fd = libc::pollfd {
                        fd: self.capture.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd, for the duration of the call.
                    let ready = unsafe { libc::poll(&mut fd, 1, POLL_TIMEOUT_MS) };
                    if ready == 0 && report_quiet {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
                        return Ok(Waited::Quiet { now_ns: now });
                    }
                    continue;
                }
                Err(err) => {
                    self.refresh_stats();
                    return Err(CaptureError {
                        source_name: self.name.clone(),
                        offset: 0,
                        kind: CaptureErrorKind::Live(format!(
                            "capture on {} stopped: {err} (interface down or removed?)",
                            self.name
                        )),
                    });
                }
            };
            // Nanosecond precision: tv_usec holds nanoseconds. (The fields are i32 on 32-bit
            // targets, hence the conversions.)
            #[allow(clippy::useless_conversion)]
            let ts_ns = i64::from(header.ts.tv_sec) * 1_000_000_000 + i64::from(header.ts.tv_usec);
            self.counters.packets.fetch_add(1, Ordering::Relaxed);
            self.counters
                .wire_bytes
                .fetch_add(u64::from(header.len), Ordering::Relaxed);
            return Ok(Waited::Packet {
                ts_ns,
                wire_len: header.len,
            });
        }
    }

    fn packet(&self, ts_ns: i64, wire_len: u32) -> RawPacket<'_> {
        RawPacket {
            ts_ns,
            wire_len,
            link_type: self.link_type,
            interface: 0,
            data: &self.buffer,
        }
    }
}

impl PacketSource for LiveSource {
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        Ok(match self.wait(false)? {
            Waited::Packet { ts_ns, wire_len } => Some(self.packet(ts_ns, wire_len)),
            Waited::Quiet { .. } | Waited::Stopped => None,
        })
    }

    fn next_event(&mut self) -> Result<Option<SourceEvent<'_>>, CaptureError> {
        Ok(match self.wait(true)? {
            Waited::Packet { ts_ns, wire_len } => {
                Some(SourceEvent::Packet(self.packet(ts_ns, wire_len)))
            }
            Waited::Quiet { now_ns } => Some(SourceEvent::Quiet { now_ns }),
            Waited::Stopped => None,
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn bytes_read(&self) -> u64 {
        self.counters.wire_bytes.load(Ordering::Relaxed)
    }
}
