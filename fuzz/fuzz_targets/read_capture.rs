//! Any bytes as a capture file: reading and decoding must end cleanly or with an
//! error, never panic, and never yield a packet larger than the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nadir_capture::{FileSource, OpenOptions, PacketSource};
use nadir_decode::{Decoder, DecoderConfig};

fuzz_target!(|data: &[u8]| {
    let options = OpenOptions { buffer_size: 512, max_record: 1 << 20 };
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut source) = FileSource::from_reader("fuzz".into(), input, &options) else { return };
    let mut decoder = Decoder::new(DecoderConfig::default());
    while let Ok(Some(packet)) = source.next_packet() {
        assert!(packet.data.len() <= data.len());
        let _ = decoder.decode(&packet);
    }
});
