//! The ingestion hot path alone: read a capture and decode every packet, on one
//! core. Prints packets, bytes, seconds, packets/s and MB/s as one JSON line.
//! `cargo run --release -p nadir-decode --example read_decode -- FILE [--read-only]`
use std::time::Instant;

use nadir_capture::{FileSource, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: read_decode FILE [--read-only]")?;
    let read_only = std::env::args().any(|a| a == "--read-only");
    let bytes = std::fs::metadata(&path)?.len();
    let start = Instant::now();
    let mut source = FileSource::open(&path, &OpenOptions::default())?;
    let mut decoder = Decoder::new(DecoderConfig::default());
    let (mut packets, mut payload) = (0u64, 0u64);
    while let Some(packet) = source.next_packet()? {
        packets += 1;
        if read_only {
            payload += packet.data.len() as u64;
            continue;
        }
        if let Ok(record) = decoder.decode(&packet) {
            // Use the record so the work cannot be optimised away.
            payload += record.payload_len as u64 ^ record.src_port as u64;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"packets\":{packets},\"bytes\":{bytes},\"seconds\":{seconds:.4},\"packets_per_s\":{:.0},\"mb_per_s\":{:.1},\"decoded\":{},\"skipped\":{},\"check\":{payload}}}",
        packets as f64 / seconds,
        bytes as f64 / 1e6 / seconds,
        decoder.decoded(),
        decoder.skipped().total()
    );
    Ok(())
}
