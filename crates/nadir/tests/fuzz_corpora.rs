//! Replays every input of the fuzz corpora (`fuzz/corpus/<target>/`) through the same
//! entry point as its fuzz target, so CI (`cargo test`) catches a regression on any input
//! the fuzzers found interesting, crashers included (they are copied into the corpus once
//! fixed). A missing or empty corpus fails: the replay must not pass by finding nothing.
//!
//! The targets are in `fuzz/fuzz_targets/`; each replay below copies its target's body.
//! `read_capture` and `decode_packet` have no committed corpus (theirs are regenerated from
//! the captures), so a corpus directory for them is tolerated; any other directory must have
//! a replay here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nadir_dataset::load::{FileFormat, LoadOptions, RowErrorPolicy};
use nadir_features::labels::{LabelRules, LabelTarget};

/// Every file of `fuzz/corpus/<target>/`, sorted; panics if there are none.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<(PathBuf, Vec<u8>)> = entries
        .map(|entry| entry.expect("a readable corpus entry").path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    assert!(!files.is_empty(), "fuzz corpus {} is empty", dir.display());
    files.sort();
    files
}

/// The targets replayed here (each needs a non-empty corpus).
const REPLAYED: [&str; 3] = ["load_dataset", "load_bundle", "label_rules"];
/// Targets whose corpora are not committed and not replayed.
const NOT_COMMITTED: [&str; 2] = ["read_capture", "decode_packet"];

#[test]
fn every_corpus_directory_is_replayed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("fuzz corpora {} are missing: {e}", root.display()));
    for entry in entries {
        let path = entry.expect("a readable corpus entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        assert!(
            REPLAYED.contains(&name) || NOT_COMMITTED.contains(&name),
            "fuzz corpus {} has no replay in this file",
            path.display()
        );
    }
    for target in REPLAYED {
        assert!(!corpus(target).is_empty());
    }
}

/// As `fuzz_targets/load_dataset.rs`: the first byte picks the options.
fn load_dataset(data: &[u8], scratch: &Path) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    std::fs::write(scratch, body).expect("write the scratch file");
    let opts = LoadOptions {
        format: match selector & 3 {
            1 => Some(FileFormat::Csv),
            2 => Some(FileFormat::Parquet),
            _ => None,
        },
        on_bad_row: if selector & 4 != 0 {
            RowErrorPolicy::Skip
        } else {
            RowErrorPolicy::Fail
        },
        unlabelled: selector & 8 != 0,
        threads: 1,
        ..LoadOptions::default()
    };
    let result = if selector & 16 != 0 {
        nadir_dataset::load::load_many(&[scratch.to_path_buf(), scratch.to_path_buf()], &opts)
    } else {
        nadir_dataset::load::load(scratch, &opts)
    };
    if let Ok(dataset) = result {
        assert_eq!(dataset.y.len(), dataset.x.rows);
    }
}

#[test]
fn dataset_corpus_loads_or_errs_without_panicking() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let scratch = dir.path().join("input");
    let files = corpus("load_dataset");
    let mut loaded = 0;
    for (path, data) in &files {
        let outcome = std::panic::catch_unwind(|| load_dataset(data, &scratch));
        assert!(outcome.is_ok(), "{} panicked", path.display());
        loaded += 1;
    }
    assert_eq!(loaded, files.len());
}

/// As `fuzz_targets/label_rules.rs`.
fn label_rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = LabelRules::parse(text, Path::new("fuzz.toml")) else {
        return;
    };
    let v4 = LabelTarget {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        src_port: 40000,
        dst: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2)),
        dst_port: 80,
        protocol: 6,
        first_ts_ns: 1_499_000_000_000_000_000,
    };
    let v6 = LabelTarget {
        src: IpAddr::V6(Ipv6Addr::LOCALHOST),
        dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        protocol: 17,
        first_ts_ns: i64::MIN,
        ..v4
    };
    for file in ["capture.pcap", "dir/other.pcapng", ""] {
        let labeler = rules.for_file(Path::new(file));
        for flow in [&v4, &v6] {
            let _ = labeler.label(flow);
        }
    }
}

#[test]
fn label_rules_corpus_parses_or_errs_without_panicking() {
    let files = corpus("label_rules");
    let mut parsed = 0;
    for (path, data) in &files {
        let outcome = std::panic::catch_unwind(|| label_rules(data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
        if std::str::from_utf8(data)
            .ok()
            .and_then(|t| LabelRules::parse(t, path).ok())
            .is_some()
        {
            parsed += 1;
        }
    }
    // The seeds are the example rules files: a parser that rejected everything is broken.
    assert!(parsed > 0, "no label-rules corpus file parsed");
}

#[cfg(feature = "ml")]
mod bundle {
    use nadir_detect::bundle::{Bundle, HEADER_LEN, MAGIC};

    /// As `fuzz_targets/load_bundle.rs`: an odd first byte rewrites the header checksum.
    fn prepare(data: &[u8]) -> Option<Vec<u8>> {
        let (&selector, body) = data.split_first()?;
        let mut bytes = body.to_vec();
        if selector & 1 != 0 && bytes.len() >= HEADER_LEN && bytes[..8] == MAGIC {
            let mut covered = bytes[..28].to_vec();
            covered.extend_from_slice(&bytes[HEADER_LEN..]);
            bytes[28..HEADER_LEN].copy_from_slice(&sha256(&covered));
        }
        Some(bytes)
    }

    fn load_bundle(data: &[u8]) {
        let Some(bytes) = prepare(data) else { return };
        if let Ok(bundle) = Bundle::from_bytes(&bytes) {
            let again = bundle.to_bytes().expect("an accepted bundle writes out");
            Bundle::from_bytes(&again).expect("a written bundle reads back");
        }
    }

    #[test]
    fn bundle_corpus_loads_or_errs_without_panicking_and_garbage_errs() {
        let files = super::corpus("load_bundle");
        let mut accepted = 0;
        for (path, data) in &files {
            let outcome = std::panic::catch_unwind(|| load_bundle(data));
            assert!(outcome.is_ok(), "{} panicked", path.display());
            let Some(bytes) = prepare(data) else { continue };
            if Bundle::from_bytes(&bytes).is_err() {
                continue;
            }
            accepted += 1;
            // Garbage must be refused: any flipped byte (magic, header or body) or a
            // missing last byte breaks the magic, the lengths or the checksum.
            for at in [0, 9, 13, 30, HEADER_LEN, bytes.len() / 2, bytes.len() - 1] {
                let mut bad = bytes.clone();
                bad[at] ^= 0x5a;
                assert!(
                    Bundle::from_bytes(&bad).is_err(),
                    "{} with byte {at} flipped was accepted",
                    path.display()
                );
            }
            assert!(Bundle::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        }
        // The seeds include the example bundle: a loader that refused everything is broken.
        assert!(accepted > 0, "no bundle corpus file was accepted");
    }

    #[test]
    fn sha256_here_matches_the_example_bundles_checksum() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/models/demo-k8s-autoencoder.nadir");
        let bytes = std::fs::read(&path).expect("the example bundle");
        let mut covered = bytes[..28].to_vec();
        covered.extend_from_slice(&bytes[HEADER_LEN..]);
        assert_eq!(sha256(&covered)[..], bytes[28..HEADER_LEN]);
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// SHA-256 (FIPS 180-4), so the replay needs no hashing crate of its own.
    fn sha256(message: &[u8]) -> [u8; 32] {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut padded = message.to_vec();
        padded.push(0x80);
        while padded.len() % 64 != 56 {
            padded.push(0);
        }
        padded.extend_from_slice(&((message.len() as u64) * 8).to_be_bytes());
        for block in padded.chunks_exact(64) {
            let mut w = [0u32; 64];
            for (i, word) in block.chunks_exact(4).enumerate() {
                w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
            for (k, wi) in K.iter().zip(w) {
                let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
                let ch = (e & f) ^ (!e & g);
                let t1 = hh
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(*k)
                    .wrapping_add(wi);
                let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t2 = s0.wrapping_add(maj);
                hh = g;
                g = f;
                f = e;
                e = d.wrapping_add(t1);
                d = c;
                c = b;
                b = a;
                a = t1.wrapping_add(t2);
            }
            for (slot, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
                *slot = slot.wrapping_add(v);
            }
        }
        let mut out = [0u8; 32];
        for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        out
    }
}
