//! `nadir inspect-capture`: what a capture holds, before anything else is done with it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use nadir_capture::{Compression, FileSource, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig, SkipCounts, TunnelKind};
use serde::Serialize;

/// Summarise capture files: packets, bytes, time span, link types, protocol mix,
/// tunnels, and packets skipped by reason.
///
/// Each file is read as a stream (pcap or pcapng; gzip/zstd by name or content;
/// `-` is stdin). A file that ends in an error is summarised up to the fault and
/// the error says where and what; the command then exits with status 1.
///
/// Examples:
///   nadir inspect-capture capture.pcap
///   nadir inspect-capture --json a.pcapng b.pcap.gz
///   tcpdump -w - -i eth0 | nadir inspect-capture -
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Capture files (pcap, pcapng; .gz/.zst compressed; `-` for stdin).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Print one JSON object per file instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Everything `inspect-capture` reports about one file.
#[derive(Debug, Default, Serialize)]
pub struct CaptureSummary {
    pub file: String,
    pub format: String,
    pub packets: u64,
    pub wire_bytes: u64,
    pub captured_bytes: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub link_types: BTreeMap<String, u64>,
    pub protocols: BTreeMap<String, u64>,
    pub tunnels: BTreeMap<String, u64>,
    pub decoded: u64,
    pub skipped: SkipCounts,
    /// Records whose sub-second timestamp field held a whole second or more.
    pub subsecond_out_of_range: u64,
    pub error: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in &args.files {
        let summary = summarize(path);
        failed |= summary.error.is_some();
        if args.json {
            outln!("{}", serde_json::to_string(&summary)?);
        } else {
            print_summary(&summary)?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Read one capture to its end (or its first fault) and count what is in it.
pub fn summarize(path: &std::path::Path) -> CaptureSummary {
    let mut summary = CaptureSummary {
        file: path.display().to_string(),
        ..Default::default()
    };
    let mut source = match FileSource::open(path, &OpenOptions::default()) {
        Ok(source) => source,
        Err(e) => {
            summary.error = Some(e.to_string());
            return summary;
        }
    };
    summary.format = match source.compression() {
        Compression::None => source.format().to_string(),
        Compression::Gzip => format!("{}, gzip-compressed", source.format()),
        Compression::Zstd => format!("{}, zstd-compressed", source.format()),
    };
    let mut decoder = Decoder::new(DecoderConfig::default());
    // Counts keyed by small integers; names are made once at the end.
    let mut links: BTreeMap<u16, u64> = BTreeMap::new();
    let mut protocols: BTreeMap<u8, u64> = BTreeMap::new();
    let mut tunnels: BTreeMap<TunnelKind, u64> = BTreeMap::new();
    loop {
        match source.next_packet() {
            Ok(Some(packet)) => {
                summary.packets += 1;
                summary.wire_bytes += packet.wire_len as u64;
                summary.captured_bytes += packet.data.len() as u64;
                summary.first_ts_ns = Some(
                    summary
                        .first_ts_ns
                        .map_or(packet.ts_ns, |t| t.min(packet.ts_ns)),
                );
                summary.last_ts_ns = Some(
                    summary
                        .last_ts_ns
                        .map_or(packet.ts_ns, |t| t.max(packet.ts_ns)),
                );
                *links.entry(packet.link_type.0).or_default() += 1;
                if let Ok(record) = decoder.decode(&packet) {
                    *protocols.entry(record.protocol).or_default() += 1;
                    if let Some(tunnel) = record.tunnel {
                        *tunnels.entry(tunnel.kind).or_default() += 1;
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                summary.error = Some(e.to_string());
                break;
            }
        }
    }
    summary.decoded = decoder.decoded();
    summary.skipped = *decoder.skipped();
    summary.subsecond_out_of_range = source.subsecond_out_of_range();
    summary.link_types = links
        .into_iter()
        .map(|(l, n)| (nadir_capture::LinkType(l).to_string(), n))
        .collect();
    summary.protocols = protocols
        .into_iter()
        .map(|(p, n)| (protocol_name(p), n))
        .collect();
    summary.tunnels = tunnels
        .into_iter()
        .map(|(t, n)| (format!("{t:?}").to_lowercase(), n))
        .collect();
    summary
}

fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        other => format!("ip-proto-{other}"),
    }
}

fn print_summary(s: &CaptureSummary) -> std::io::Result<()> {
    outln!("{}", s.file);
    if !s.format.is_empty() {
        outln!("  format        {}", s.format);
    }
    outln!(
        "  packets       {} ({} decoded, {} skipped)",
        s.packets,
        s.decoded,
        s.skipped.total()
    );
    outln!(
        "  bytes         {} on the wire, {} captured",
        s.wire_bytes,
        s.captured_bytes
    );
    if let (Some(first), Some(last)) = (s.first_ts_ns, s.last_ts_ns) {
        outln!(
            "  time          {} .. {} ({:.6} s)",
            format_ts(first),
            format_ts(last),
            (last - first) as f64 / 1e9
        );
    }
    let list = |m: &BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !s.link_types.is_empty() {
        outln!("  link types    {}", list(&s.link_types));
    }
    if !s.protocols.is_empty() {
        outln!("  protocols     {}", list(&s.protocols));
    }
    if !s.tunnels.is_empty() {
        outln!("  tunnels       {}", list(&s.tunnels));
    }
    if s.skipped.total() > 0 {
        let skipped: Vec<String> = s.skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
        outln!("  skipped       {}", skipped.join(", "));
    }
    if s.subsecond_out_of_range > 0 {
        outln!(
            "  WARNING       {} packets had a sub-second timestamp field of a whole second or more (corrupt?); read with the excess carried into the seconds",
            s.subsecond_out_of_range
        );
    }
    if let Some(error) = &s.error {
        outln!("  ERROR         {error}");
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS.nnnnnnnnn` UTC.
pub fn format_ts(ts_ns: i64) -> String {
    // Every i64 of ns is within jiff's range.
    let ts = jiff::Timestamp::from_nanosecond(i128::from(ts_ns)).unwrap_or_default();
    jiff::fmt::temporal::DateTimePrinter::new()
        .separator(b' ')
        .precision(Some(9))
        .datetime_to_string(&jiff::tz::Offset::UTC.to_datetime(ts))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_known_timestamps() {
        assert_eq!(super::format_ts(0), "1970-01-01 00:00:00.000000000");
        // 2020-03-31 00:35:29.942838 UTC, the first slowloris packet.
        assert_eq!(
            super::format_ts(1_585_614_929_942_838_000),
            "2020-03-31 00:35:29.942838000"
        );
        assert_eq!(
            super::format_ts(4_354_819_200_000_000_000),
            "2108-01-01 00:00:00.000000000"
        );
    }
}
