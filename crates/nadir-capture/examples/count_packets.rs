//! Count the packets of each capture given on the command line, and say how each ended.
//! `cargo run -p nadir-capture --example count_packets -- FILE...`
use nadir_capture::{FileSource, OpenOptions, PacketSource};

fn main() {
    for path in std::env::args().skip(1) {
        let mut packets = 0u64;
        let end = match FileSource::open(&path, &OpenOptions::default()) {
            Err(e) => format!("ERR {} {e}", e.kind.code()),
            Ok(mut source) => loop {
                match source.next_packet() {
                    Ok(Some(_)) => packets += 1,
                    Ok(None) => break "ok".to_string(),
                    Err(e) => break format!("ERR {} {e}", e.kind.code()),
                }
            },
        };
        println!("{path}\t{packets}\t{end}");
    }
}
