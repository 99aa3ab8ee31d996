//! `nadir extract` end to end on the shipped captures: every family in every
//! format, read back and checked; labels from the example rules; a capture that
//! breaks off mid-file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, UInt8Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const SLOWLORIS: &str = "labelled/kihy-slowloris/slowloris.pcap";
const SYNSCAN: &str = "labelled/chrissanders-synscan/synscan.pcapng";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn nadir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nadir"))
        .args(args)
        .output()
        .expect("run nadir")
}

fn extract(capture: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "extract",
        capture.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    let output = nadir(&args);
    assert!(
        output.status.success(),
        "nadir extract {extra:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A table read back from any of the three formats: header and rows as text.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn column(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }
    fn values(&self, name: &str) -> Vec<&str> {
        let c = self.column(name);
        self.rows.iter().map(|r| r[c].as_str()).collect()
    }
}

fn read_csv(path: &Path) -> Table {
    let mut reader = csv::Reader::from_path(path).expect("csv");
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("record").iter().map(String::from).collect())
        .collect();
    Table { header, rows }
}

fn read_jsonl(path: &Path) -> Table {
    let text = std::fs::read_to_string(path).expect("read");
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).expect("json line");
        if header.is_empty() {
            // serde_json's map sorts keys; recover the order the writer used.
            header = object.keys().cloned().collect();
            header.sort_by_key(|key| {
                let quoted = serde_json::to_string(key).expect("key");
                line.find(&format!("{quoted}:")).unwrap_or(usize::MAX)
            });
        }
        assert_eq!(object.len(), header.len());
        rows.push(
            header
                .iter()
                .map(|key| &object[key])
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    Table { header, rows }
}

fn read_parquet(path: &Path) -> Table {
    let file = std::fs::File::open(path).expect("open");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
    let header = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for batch in builder.build().expect("reader") {
        let batch = batch.expect("batch");
        for r in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| arrow::util::display::array_value_to_string(c, r).expect("value"))
                    .collect(),
            );
        }
    }
    Table { header, rows }
}

fn read(path: &Path) -> Table {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => read_csv(path),
        Some("jsonl") => read_jsonl(path),
        Some("parquet") => read_parquet(path),
        other => panic!("unexpected extension {other:?}"),
    }
}

#[test]
fn slowloris_every_family_and_format_with_labels() {
    let Some(capture) = nadir_testdata::shared_data(SLOWLORIS) else {
        return;
    };
    let rules = repo_root().join("examples/labels/slowloris.toml");
    let dir = tempfile::tempdir().expect("tmp");
    let mut cic_rows = None;
    for format in ["csv", "parquet", "jsonl"] {
        // cic: 87 columns, the dataset's header, every flow labelled as the attack.
        let out = dir.path().join(format!("cic.{format}"));
        extract(
            &capture,
            &out,
            &[
                "--features",
                "cic",
                "--labels",
                rules.to_str().expect("utf8"),
            ],
        );
        let table = read(&out);
        assert_eq!(table.header.len(), 87, "{format}");
        assert_eq!(table.header[0], "Flow ID");
        assert_eq!(table.header[86], "Label");
        assert!(
            table.rows.len() >= 250,
            "{format}: {} flows",
            table.rows.len()
        );
        assert!(
            table.values("Label").iter().all(|l| *l == "slowloris"),
            "{format}: every flow is the attack"
        );
        let rows = *cic_rows.get_or_insert(table.rows.len());
        assert_eq!(
            rows,
            table.rows.len(),
            "{format}: same flows in every format"
        );

        // bytes: 10 identity columns + packets + 4 x 60 bytes; one row per flow.
        let out = dir.path().join(format!("bytes.{format}"));
        extract(
            &capture,
            &out,
            &[
                "--features",
                "bytes",
                "--labels",
                rules.to_str().expect("utf8"),
            ],
        );
        let table = read(&out);
        assert_eq!(table.header.len(), 10 + 1 + 240, "{format}");
        assert_eq!(
            table.rows.len(),
            rows,
            "{format}: one bytes sample per cic flow"
        );
        assert!(table.values("label").iter().all(|l| *l == "slowloris"));
        for packet in 0..4 {
            for byte in (12..24).chain(36..38) {
                let name = format!("b{packet}_{byte}");
                let column = table.column(&name);
                let packets = table.column("packets");
                for row in &table.rows {
                    if row[packets].parse::<usize>().expect("packets") > packet {
                        assert_eq!(row[column], "0", "{format}: {name} must be masked");
                    }
                }
            }
        }
        // Version/IHL byte of a real packet is 0x45 = 69 (IPv4, no options in this capture).
        assert!(table.values("b0_0").iter().all(|v| *v == "69"), "{format}");

        // packets, flow scope: window 8 stride 8, at most 2 windows per flow.
        let out = dir.path().join(format!("packets.{format}"));
        extract(
            &capture,
            &out,
            &[
                "--features",
                "packets",
                "--window-scope",
                "flow",
                "--window",
                "8",
                "--stride",
                "8",
                "--max-windows-per-flow",
                "2",
            ],
        );
        let table = read(&out);
        assert_eq!(table.header.len(), 10 + 4 + 8 * 10, "{format}");
        assert!(
            table.rows.len() >= rows,
            "{format}: at least one window per flow"
        );
        assert!(
            table.values("label").iter().all(|l| l.is_empty()),
            "no rules: empty label"
        );
        let padding = table.column("padding");
        let first_ip_len = table.column("f0_ip_len");
        for row in &table.rows {
            let pad: usize = row[padding].parse().expect("padding");
            assert!(pad < 8);
            if pad > 0 {
                assert_eq!(
                    row[first_ip_len].parse::<f32>().expect("f32"),
                    0.0,
                    "padded rows come first and are zero"
                );
            }
        }
    }
}

#[test]
fn synscan_capture_windows_cover_the_stream() {
    let Some(capture) = nadir_testdata::shared_data(SYNSCAN) else {
        return;
    };
    let rules = repo_root().join("examples/labels/synscan.toml");
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("windows.jsonl");
    let run = extract(
        &capture,
        &out,
        &[
            "--features",
            "packets",
            "--window",
            "100",
            "--stride",
            "50",
            "--labels",
            rules.to_str().expect("utf8"),
        ],
    );
    let table = read(&out);
    assert_eq!(table.header.len(), 8 + 100 * 10);
    // Windows start every 50 packets: n windows cover 100 + 50 (n - 1) packets.
    let last: u64 = table
        .values("last_packet")
        .last()
        .expect("rows")
        .parse()
        .expect("u64");
    let n = table.rows.len() as u64;
    assert_eq!(last + 1, 100 + 50 * (n - 1));
    let decoded = last + 1;
    assert!(
        decoded > 1900 && decoded <= 2011,
        "synscan has 2011 packets, {decoded} windowed"
    );
    assert!(table.values("label").iter().all(|l| *l == "portscan"));
    let summary = String::from_utf8_lossy(&run.stderr);
    assert!(summary.contains("2011 packets"), "summary: {summary}");

    // cic: the same flows in one thread and two.
    let one = dir.path().join("one.csv");
    let two = dir.path().join("two.csv");
    extract(&capture, &one, &["--threads", "1"]);
    extract(&capture, &two, &["--threads", "2"]);
    let mut a = read(&one).rows;
    let mut b = read(&two).rows;
    a.sort();
    b.sort();
    assert_eq!(a, b, "sharding changes the order only");
}

#[test]
fn parquet_types_are_sensible() {
    let Some(capture) = nadir_testdata::shared_data(SLOWLORIS) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("bytes.parquet");
    extract(
        &capture,
        &out,
        &[
            "--features",
            "bytes",
            "--first-packets",
            "2",
            "--first-bytes",
            "20",
        ],
    );
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).expect("open"))
            .expect("parquet");
    let schema = builder.schema().clone();
    assert_eq!(
        schema
            .field_with_name("src_ip")
            .expect("src_ip")
            .data_type(),
        &DataType::Utf8
    );
    assert_eq!(
        schema
            .field_with_name("dst_port")
            .expect("dst_port")
            .data_type(),
        &DataType::UInt16
    );
    assert_eq!(
        schema
            .field_with_name("first_ts_ns")
            .expect("ts")
            .data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("b1_19").expect("b1_19").data_type(),
        &DataType::UInt8
    );
    let batch = builder
        .build()
        .expect("reader")
        .next()
        .expect("a batch")
        .expect("batch");
    let column = batch.column(schema.index_of("b0_12").expect("b0_12"));
    assert!(
        column
            .as_primitive::<UInt8Type>()
            .iter()
            .all(|v| v == Some(0)),
        "masked address byte"
    );
    assert_eq!(column.null_count(), 0);
}

#[test]
fn corrupt_capture_keeps_flows_read_before_the_fault_and_fails() {
    let Some(capture) = nadir_testdata::shared_data(SLOWLORIS) else {
        return;
    };
    let mut bytes = std::fs::read(&capture).expect("read");
    // Walk the records to the middle of the file and give that record an absurd length.
    let mut offset = 24;
    let mut records = 0;
    while offset + 16 <= bytes.len() && offset < bytes.len() / 2 {
        let caplen = u32::from_le_bytes(bytes[offset + 8..offset + 12].try_into().expect("4 bytes"))
            as usize;
        offset += 16 + caplen;
        records += 1;
    }
    bytes[offset + 8..offset + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let dir = tempfile::tempdir().expect("tmp");
    let broken = dir.path().join("broken.pcap");
    std::fs::write(&broken, &bytes).expect("write");

    let full = dir.path().join("full.csv");
    extract(&capture, &full, &[]);
    let out = dir.path().join("partial.csv");
    let run = nadir(&[
        "extract",
        broken.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert!(!run.status.success(), "a broken capture is an error");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("broken.pcap"),
        "the error names the file: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{records} packets")),
        "summary counts the packets read: {stderr}"
    );
    let partial = read(&out).rows.len();
    let complete = read(&full).rows.len();
    assert!(
        partial > 0 && partial < complete,
        "kept {partial} of {complete} flows"
    );
}

#[test]
fn dash_writes_csv_to_stdout() {
    let Some(capture) = nadir_testdata::shared_data(SYNSCAN) else {
        return;
    };
    let run = nadir(&["extract", capture.to_str().expect("utf8"), "-o", "-"]);
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).expect("utf8");
    let mut lines = text.lines();
    assert!(lines
        .next()
        .expect("header")
        .starts_with("Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp"));
    assert!(lines.count() > 900, "synscan has about a thousand flows");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let Some(capture) = nadir_testdata::shared_data(SYNSCAN) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("x.csv");
    let run = nadir(&[
        "extract",
        capture.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--features",
        "bytes",
        "--first-packets",
        "0",
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--first-packets"));
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nlabel = \"x\"\nattacker = [\"10.0.0.999\"]\n",
    )
    .expect("write");
    let run = nadir(&[
        "extract",
        capture.to_str().expect("utf8"),
        "-o",
        out.to_str().expect("utf8"),
        "--labels",
        rules.to_str().expect("utf8"),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("10.0.0.999"));
}

/// Regression: `extract missing.pcap -o existing.csv` truncated `existing.csv` before it found
/// that the input does not exist.
#[test]
fn missing_input_leaves_an_existing_output_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing.csv");
    std::fs::write(&existing, "earlier rows\n").unwrap();
    let missing = dir.path().join("missing.pcap");
    let out = nadir(&[
        "extract",
        missing.to_str().unwrap(),
        "-o",
        existing.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing.pcap") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "earlier rows\n"
    );
}
