//! Write a large benchmark capture by replicating real captures with shifted
//! addresses and times, so anyone can regenerate the same file:
//!
//! `cargo run --release -p nadir-decode --example make_bench_capture -- OUT.pcap MIN_MB INPUT...`
//!
//! `... -- --first N IN.pcap OUT.pcap` writes the first N packets of a capture instead
//! (the slice that slow peers such as Python cicflowmeter are timed on).
//!
//! Each copy k moves every IPv4 address by k in its second octet (IPv6: byte 2) and
//! every timestamp by k times the inputs' span, so copies form distinct flows in
//! time order. Inputs must be Ethernet captures; the output is classic pcap (µs).
use std::io::{BufWriter, Write};

use nadir_capture::{FileSource, LinkType, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig};

struct Template {
    ts_ns: i64,
    wire_len: u32,
    data: Vec<u8>,
    /// Offset of the IP header, and its version, when the packet is IP.
    ip: Option<(usize, u8)>,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--first") && args.len() == 4 {
        return write_first(args[1].parse()?, &args[2], &args[3]);
    }
    if args.len() < 3 {
        return Err(
            "usage: make_bench_capture OUT.pcap MIN_MB INPUT... | --first N IN OUT.pcap".into(),
        );
    }
    let min_bytes = args[1].parse::<u64>()? << 20;
    let mut templates = Vec::new();
    let mut decoder = Decoder::new(DecoderConfig {
        open_tunnels: false,
        ..DecoderConfig::default()
    });
    for input in &args[2..] {
        let mut source = FileSource::open(input, &OpenOptions::default())?;
        let mut first_ts = None;
        // Inputs are laid end to end in time: each starts 1 ms after the previous one ends.
        let offset = templates
            .last()
            .map_or(0, |t: &Template| t.ts_ns + 1_000_000);
        while let Some(p) = source.next_packet()? {
            if p.link_type != LinkType::ETHERNET {
                return Err(format!("{input}: only Ethernet captures can be replicated").into());
            }
            let base = *first_ts.get_or_insert(p.ts_ns);
            let ip = decoder
                .decode(&p)
                .ok()
                .map(|r| (r.ip_offset as usize, r.ip_version));
            templates.push(Template {
                ts_ns: offset + (p.ts_ns - base),
                wire_len: p.wire_len,
                data: p.data.to_vec(),
                ip,
            });
        }
    }
    let span = templates.last().ok_or("no packets in the inputs")?.ts_ns + 1_000_000;
    let mut out = create_pcap(&args[0])?;
    let (mut written, mut packets, mut copy) = (24u64, 0u64, 0i64);
    let start_ns = 1_700_000_000_000_000_000i64;
    while written < min_bytes {
        for t in &templates {
            let mut data = t.data.clone();
            match t.ip {
                Some((at, 4)) if data.len() >= at + 20 => {
                    data[at + 13] = data[at + 13].wrapping_add(copy as u8);
                    data[at + 17] = data[at + 17].wrapping_add(copy as u8);
                }
                Some((at, 6)) if data.len() >= at + 40 => {
                    data[at + 10] = data[at + 10].wrapping_add(copy as u8);
                    data[at + 26] = data[at + 26].wrapping_add(copy as u8);
                }
                _ => {}
            }
            write_record(
                &mut out,
                start_ns + copy * span + t.ts_ns,
                t.wire_len,
                &data,
            )?;
            written += 16 + data.len() as u64;
            packets += 1;
        }
        copy += 1;
    }
    out.flush()?;
    eprintln!(
        "{}: {packets} packets, {} bytes, {copy} copies of {} packets",
        args[0],
        written,
        templates.len()
    );
    Ok(())
}

/// A classic pcap (µs, snaplen 262144, Ethernet) with its file header written.
fn create_pcap(path: &str) -> Result<BufWriter<std::fs::File>> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0])?;
    out.write_all(&262_144u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    Ok(out)
}

fn write_record(out: &mut impl Write, ts_ns: i64, wire_len: u32, data: &[u8]) -> Result<()> {
    out.write_all(&((ts_ns / 1_000_000_000) as u32).to_le_bytes())?;
    out.write_all(&((ts_ns % 1_000_000_000 / 1000) as u32).to_le_bytes())?;
    out.write_all(&(data.len() as u32).to_le_bytes())?;
    out.write_all(&wire_len.to_le_bytes())?;
    out.write_all(data)?;
    Ok(())
}

/// Copies the first `n` packets of an Ethernet capture.
fn write_first(n: u64, input: &str, output: &str) -> Result<()> {
    let mut source = FileSource::open(input, &OpenOptions::default())?;
    let mut out = create_pcap(output)?;
    let mut copied = 0u64;
    while copied < n {
        let Some(p) = source.next_packet()? else {
            break;
        };
        if p.link_type != LinkType::ETHERNET {
            return Err(format!("{input}: only Ethernet captures can be sliced").into());
        }
        write_record(&mut out, p.ts_ns, p.wire_len, p.data)?;
        copied += 1;
    }
    out.flush()?;
    eprintln!("{output}: the first {copied} packets of {input}");
    Ok(())
}
