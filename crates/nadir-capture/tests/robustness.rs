//! Every file of `../shared/data/pcap-robustness/` (and the labelled captures) is read
//! to its end: valid files yield exactly the packet count the data README's `rec`
//! column gives; invalid files end with the specific error listed below, at the
//! byte offset listed, after every good packet before the fault.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use nadir_capture::{CaptureError, FileSource, OpenOptions, PacketSource};

/// Files that must end in an error: (file, error code, byte offset).
const INVALID: &[(&str, &str, u64)] = &[
    (
        "libpcap-tests/linktype-reserved-field-not-zero.pcap",
        "link-type-reserved-bits",
        20,
    ),
    ("libpcap-tests/pcap-empty-file.pcap", "empty", 0),
    (
        "libpcap-tests/pcap-invalid-version-1.pcap",
        "unsupported-version",
        4,
    ),
    ("libpcap-tests/pcap-truncated-hdr-23.pcap", "truncated", 0),
    (
        "libpcap-tests/pcapng-block-len-not-mult4.pcapng",
        "bad-block-length",
        28,
    ),
    (
        "libpcap-tests/pcapng-block-len-too-small.pcapng",
        "bad-block-length",
        28,
    ),
    (
        "libpcap-tests/pcapng-idb-endofopt-badlen.pcapng",
        "malformed-block",
        28,
    ),
    (
        "libpcap-tests/pcapng-idb-tsoffset-badlen.pcapng",
        "malformed-block",
        28,
    ),
    (
        "libpcap-tests/pcapng-idb-tsresol-badlen.pcapng",
        "malformed-block",
        28,
    ),
    (
        "libpcap-tests/pcapng-idb-tsresol-bin-high.pcapng",
        "bad-timestamp-resolution",
        28,
    ),
    (
        "libpcap-tests/pcapng-idb-tsresol-dec-high.pcapng",
        "bad-timestamp-resolution",
        28,
    ),
    (
        "libpcap-tests/pcapng-invalid-vers-1.pcapng",
        "unsupported-version",
        0,
    ),
    (
        "libpcap-tests/pcapng-invalid-vers-2.pcapng",
        "unsupported-version",
        0,
    ),
    (
        "libpcap-tests/pcapng-packet-before-idb.pcapng",
        "unknown-interface",
        28,
    ),
    // A 2 MiB section header block in a 28-byte file: a corrupt length, not truncation.
    (
        "libpcap-tests/pcapng-shb-len-insane.pcapng",
        "bad-block-length",
        0,
    ),
    (
        "libpcap-tests/pcapng-shb-len-too-small.pcapng",
        "bad-block-length",
        0,
    ),
    ("libpcap-tests/pcapng-truncated-shb.pcapng", "truncated", 0),
    (
        "libpcap-tests/shb-option-too-long.pcapng",
        "bad-block-length",
        0,
    ),
    ("pcap-parser-assets/assets__err-eof.bin", "not-a-capture", 0),
    (
        "pcapplusplus-tests/Tests__Pcap++Test__PcapExamples__file_heuristics__bogus-content.txt",
        "not-a-capture",
        0,
    ),
];

/// Valid files whose count is not in the `rec` column (compressed: capinfos' count).
const EXTRA_COUNTS: &[(&str, u64)] =
    &[("pcapplusplus-tests/Tests__Pcap++Test__PcapExamples__file_heuristics__pcapng-example.pcapng.zst", 159)];

/// `file -> rec` for every capture listed in the data README's per-file tables.
fn readme_record_counts(readme: &str) -> BTreeMap<String, Option<u64>> {
    let mut counts = BTreeMap::new();
    let mut section = String::new();
    for line in readme.lines() {
        if let Some(rest) = line.strip_prefix("### `") {
            section = rest
                .split('`')
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string();
            continue;
        }
        if !line.starts_with("| `") || section.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let file = cells[1].trim_matches('`');
        counts.insert(format!("{section}/{file}"), cells[3].parse().ok());
    }
    counts
}

/// Read a source to its end: (packets, error).
fn drain(source: &mut dyn PacketSource) -> (u64, Option<CaptureError>) {
    let mut packets = 0;
    loop {
        match source.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= 64 << 20);
                packets += 1;
            }
            Ok(None) => return (packets, None),
            Err(e) => {
                // After an error the source is finished.
                assert!(matches!(source.next_packet(), Ok(None)));
                return (packets, Some(e));
            }
        }
    }
}

fn read_file(path: &Path) -> (u64, Option<CaptureError>) {
    match FileSource::open(path, &OpenOptions::default()) {
        Ok(mut source) => drain(&mut source),
        Err(e) => (0, Some(e)),
    }
}

#[test]
fn every_robustness_capture_reads_to_its_count_or_a_specific_error() {
    let Some(root) = nadir_testdata::shared_data("") else {
        return;
    };
    let readme = std::fs::read_to_string(root.join("README.md")).expect("data README");
    let counts = readme_record_counts(&readme);
    let capture_like = |f: &str| {
        !f.ends_with(".txt")
            && !f.ends_with(".csv")
            && !f.ends_with(".json")
            && !f.ends_with(".yaml")
            && !f.ends_with(".gz")
            || f.ends_with("bogus-content.txt")
    };
    let mut checked = 0;
    for (file, rec) in &counts {
        if !(file.starts_with("pcap-robustness/") || file.starts_with("labelled/"))
            || !capture_like(file)
        {
            continue;
        }
        let path = root.join(file);
        let (packets, error) = read_file(&path);
        let short = file.trim_start_matches("pcap-robustness/");
        if let Some((_, code, offset)) = INVALID.iter().find(|(f, _, _)| *f == short) {
            let error = error
                .unwrap_or_else(|| panic!("{file}: expected error {code}, read {packets} packets"));
            assert_eq!(error.kind.code(), *code, "{file}: {error}");
            assert_eq!(error.offset, *offset, "{file}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(file.rsplit('/').next().unwrap()),
                "error must name the file: {message}"
            );
            assert!(message.contains(&format!("at byte {offset}")), "{message}");
        } else {
            assert!(
                error.is_none(),
                "{file}: unexpected error {}",
                error.unwrap()
            );
            let expected = EXTRA_COUNTS
                .iter()
                .find(|(f, _)| *f == short)
                .map(|(_, n)| *n)
                .or(*rec);
            let expected = expected.unwrap_or_else(|| panic!("{file}: no expected count"));
            assert_eq!(packets, expected, "{file}: packet count");
        }
        checked += 1;
    }
    assert!(checked >= 200, "only {checked} captures found");
}

fn slowloris() -> Option<Vec<u8>> {
    let path = nadir_testdata::shared_data("labelled/kihy-slowloris/slowloris.pcap")?;
    Some(std::fs::read(path).unwrap())
}

/// Byte offsets where each classic pcap record starts.
fn record_offsets(pcap: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        offsets.push(at);
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    offsets
}

#[test]
fn truncated_capture_yields_every_packet_before_the_cut_then_names_the_offset() {
    let Some(bytes) = slowloris() else { return };
    let offsets = record_offsets(&bytes);
    assert_eq!(offsets.len(), 3754);
    // Cut inside record 1000's data.
    let cut = offsets[1000] + 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.pcap");
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let (packets, error) = read_file(&path);
    assert_eq!(packets, 1000);
    let error = error.expect("truncation is an error");
    assert_eq!(error.kind.code(), "truncated");
    assert_eq!(error.offset, offsets[1000] as u64);
}

#[test]
fn corrupt_record_length_is_reported_after_the_good_packets() {
    let Some(mut bytes) = slowloris() else { return };
    let offsets = record_offsets(&bytes);
    // Record 2000 claims 3 GB.
    bytes[offsets[2000] + 8..offsets[2000] + 12].copy_from_slice(&3_000_000_000u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.pcap");
    std::fs::write(&path, &bytes).unwrap();
    let (packets, error) = read_file(&path);
    assert_eq!(packets, 2000);
    let error = error.unwrap();
    assert_eq!(error.kind.code(), "record-too-large", "{error}");
    assert_eq!(error.offset, offsets[2000] as u64);
}

#[test]
fn corrupt_pcapng_block_is_reported_after_the_good_packets() {
    let Some(path) = nadir_testdata::shared_data("labelled/chrissanders-synscan/synscan.pcapng")
    else {
        return;
    };
    let mut bytes = std::fs::read(path).unwrap();
    // Walk the blocks to the 501st packet block, then break its length.
    let (mut at, mut packets) = (0usize, 0);
    loop {
        let block_type = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if block_type == 6 {
            if packets == 500 {
                break;
            }
            packets += 1;
        }
        at += len;
    }
    bytes[at + 4..at + 8].copy_from_slice(&13u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corrupt.pcapng");
    std::fs::write(&file, &bytes).unwrap();
    let (read, error) = read_file(&file);
    assert_eq!(read, 500);
    let error = error.unwrap();
    assert_eq!(error.kind.code(), "bad-block-length", "{error}");
    assert_eq!(error.offset, at as u64);
}

#[test]
fn gzip_zstd_and_trickling_streams_read_the_same_packets() {
    let Some(bytes) = slowloris() else { return };
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("s.pcap.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&bytes).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    assert_eq!(read_file(&gz).0, 3754);

    // Compressed but named without a suffix: detected from the content.
    let zst = dir.path().join("s.capture");
    std::fs::write(&zst, zstd::encode_all(&bytes[..], 1).unwrap()).unwrap();
    let (packets, error) = read_file(&zst);
    assert!(error.is_none());
    assert_eq!(packets, 3754);

    // A pipe that returns a few bytes per read (like stdin) loses nothing.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }
    let mut source = FileSource::from_reader(
        "-".into(),
        Box::new(Trickle(std::io::Cursor::new(bytes.clone()), 0)),
        &OpenOptions::default(),
    )
    .unwrap();
    let mut timestamps = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        timestamps.push(p.ts_ns);
    }
    assert_eq!(timestamps.len(), 3754);
    assert_eq!(timestamps[0], 1_585_614_929_942_838_000);
}

#[test]
fn cut_short_gzip_yields_every_packet_that_decompressed_before_the_fault() {
    let Some(bytes) = slowloris() else { return };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&bytes).unwrap();
    let gz = encoder.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for keep in [gz.len() * 96 / 100, gz.len() / 3, gz.len() - 10] {
        // What a decompressor recovers from the cut file, and the whole pcap records in it.
        let mut recovered = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(&gz[..keep]);
        let mut chunk = [0u8; 4096];
        let decoder_error = loop {
            match decoder.read(&mut chunk) {
                Ok(0) => panic!("a cut gzip stream must end in an error"),
                Ok(n) => recovered.extend_from_slice(&chunk[..n]),
                Err(e) => break e.to_string(),
            }
        };
        let (mut whole_records, mut at) = (0u64, 24);
        while at + 16 <= recovered.len() {
            let caplen = u32::from_le_bytes(recovered[at + 8..at + 12].try_into().unwrap());
            if at + 16 + caplen as usize > recovered.len() {
                break;
            }
            at += 16 + caplen as usize;
            whole_records += 1;
        }
        assert!(whole_records > 0);

        let file = dir.path().join(format!("cut-{keep}.pcap.gz"));
        std::fs::write(&file, &gz[..keep]).unwrap();
        let (read, error) = read_file(&file);
        assert_eq!(read, whole_records, "cut at {keep} of {} bytes", gz.len());
        let error = error.expect("the cut is reported");
        assert_eq!(error.offset, at as u64, "{error}");
        assert!(
            error.to_string().contains(&decoder_error),
            "the decompressor's words are kept: {error} (it said: {decoder_error})"
        );
    }
}

#[test]
fn small_buffers_grow_for_large_records() {
    let Some(path) = nadir_testdata::shared_data(
        "pcap-robustness/pcap-parser-assets/assets__err-buffertoosmall.pcapng",
    ) else {
        return;
    };
    let options = OpenOptions {
        buffer_size: 512,
        ..OpenOptions::default()
    };
    let mut source = FileSource::open(path, &options).unwrap();
    assert_eq!(drain(&mut source).0, 27);
}

fn from_bytes(bytes: Vec<u8>) -> Result<FileSource, CaptureError> {
    FileSource::from_reader(
        "mem".into(),
        Box::new(std::io::Cursor::new(bytes)),
        &OpenOptions::default(),
    )
}

/// A little-endian pcapng block: type, total length, body, total length.
fn ng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let len = (12 + body.len()) as u32;
    let mut out = block_type.to_le_bytes().to_vec();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

fn ng_shb_and_idb() -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    let mut out = ng_block(0x0a0d_0d0a, &shb);
    // Ethernet, snaplen 65535.
    out.extend(ng_block(1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0]));
    out
}

/// Regression: a 2 MiB section header block length (libpcap's limit is 1 MiB) in a short
/// file was reported as "file ends inside the section header block", i.e. truncation.
#[test]
fn implausible_pcapng_block_length_is_reported_as_corrupt_not_truncated() {
    let mut bytes = ng_shb_and_idb();
    bytes[4..8].copy_from_slice(&(2u32 << 20).to_le_bytes());
    let error = from_bytes(bytes).expect_err("a 2 MiB SHB is refused");
    assert_eq!(error.kind.code(), "bad-block-length", "{error}");
    assert_eq!(error.offset, 0);
    let text = error.to_string();
    assert!(
        text.contains("2097152") && text.contains("1048576"),
        "{text}"
    );
    assert!(!text.contains("ends inside"), "{text}");

    // A packet block claiming 32 MiB after good blocks: corrupt at its offset, not
    // truncated and not a record over the 64 MiB read limit.
    let mut bytes = ng_shb_and_idb();
    let at = bytes.len();
    let mut epb = 6u32.to_le_bytes().to_vec();
    epb.extend_from_slice(&(32u32 << 20).to_le_bytes());
    epb.extend_from_slice(&[0; 40]);
    bytes.extend(epb);
    let mut source = from_bytes(bytes).expect("the header blocks are valid");
    let (read, error) = drain(&mut source);
    assert_eq!(read, 0);
    let error = error.expect("the packet block is refused");
    assert_eq!(error.kind.code(), "bad-block-length", "{error}");
    assert_eq!(error.offset, at as u64);
    assert!(error.to_string().contains("16777216"), "{error}");
}

/// A classic pcap with records at the given (seconds, sub-second field) stamps.
fn pcap_with_stamps(nanosecond: bool, stamps: &[(u32, u32)]) -> Vec<u8> {
    let magic: u32 = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut out = magic.to_le_bytes().to_vec();
    out.extend_from_slice(&[2, 0, 4, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for &(sec, sub) in stamps {
        for v in [sec, sub, 14, 14] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[0; 14]);
    }
    out
}

/// Regression: a pcap sub-second field of a whole second or more (microseconds >= 10^6,
/// or nanoseconds >= 10^9 in a nanosecond pcap) was accepted without a word.
#[test]
fn subsecond_field_out_of_range_is_counted() {
    let stamps = [(100, 999_999), (100, 1_000_000), (100, 2_500_000), (101, 0)];
    let mut source = from_bytes(pcap_with_stamps(false, &stamps)).unwrap();
    let mut times = Vec::new();
    while let Some(packet) = source.next_packet().unwrap() {
        times.push(packet.ts_ns);
    }
    assert_eq!(source.subsecond_out_of_range(), 2);
    // Kept, with the excess carried into the seconds.
    let s = 1_000_000_000i64;
    assert_eq!(
        times,
        [100 * s + 999_999_000, 101 * s, 102 * s + s / 2, 101 * s]
    );

    let stamps = [(7, 999_999_999), (7, 1_000_000_000), (7, u32::MAX)];
    let mut source = from_bytes(pcap_with_stamps(true, &stamps)).unwrap();
    let (read, error) = drain(&mut source);
    assert_eq!((read, error.is_none()), (3, true));
    assert_eq!(source.subsecond_out_of_range(), 2);

    let mut source = from_bytes(pcap_with_stamps(true, &[(7, 999_999_999)])).unwrap();
    drain(&mut source);
    assert_eq!(source.subsecond_out_of_range(), 0);
}
