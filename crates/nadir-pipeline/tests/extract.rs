//! `extract` and the drivers on a real capture, into memory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nadir_features::bytes::FirstBytesConfig;
use nadir_features::cic::CicMode;
use nadir_features::labels::LabelRules;
use nadir_features::output::OutputFormat;
use nadir_features::packets::WindowConfig;
use nadir_flow::{CloneFlows, FlowConfig, FlowMeta};
use nadir_pipeline::{
    each_flow, extract, for_each_packet, run_flow_family, ExtractSpec, Family, PipelineError,
    Progress, RunSummary,
};

fn synscan() -> Vec<PathBuf> {
    vec![PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/data/k8s-nmap-tcp-syn-scan.pcap"
    ))]
}

/// A `Write` the test can read back after `extract` consumed the box.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn spec(features: Family, threads: usize) -> ExtractSpec {
    ExtractSpec {
        features,
        cic_mode: CicMode::Compat,
        flow: FlowConfig {
            threads,
            ..FlowConfig::default()
        },
        early_after: None,
        window: WindowConfig::default(),
        first_bytes: FirstBytesConfig::new(4, 60).expect("shape"),
        pods: None,
    }
}

fn run(spec: &ExtractSpec) -> (String, RunSummary) {
    let out = Shared::default();
    let mut summary = RunSummary::default();
    extract(
        spec,
        &synscan(),
        OutputFormat::Csv,
        Box::new(out.clone()),
        &LabelRules::none(),
        &mut Progress::hidden(),
        &mut summary,
    )
    .expect("extract");
    let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf8");
    (text, summary)
}

/// Data rows (the header line is not one).
fn rows(csv: &str) -> Vec<&str> {
    csv.lines().skip(1).collect()
}

#[test]
fn cic_writes_one_row_per_finished_flow_and_counts_every_packet() {
    let (csv, summary) = run(&spec(Family::Cic, 1));
    assert!(csv.starts_with("Flow ID,"), "the cic header comes first");
    let flows = &summary.flows;
    let ended = flows.emitted_timeout
        + flows.emitted_tcp_termination
        + flows.emitted_idle_expired
        + flows.evicted
        + flows.emitted_end_of_input;
    assert!(flows.flows > 10, "the scan probes many ports");
    assert_eq!(ended, flows.flows, "every flow ended exactly once");
    assert_eq!(rows(&csv).len() as u64, flows.flows);
    assert_eq!(summary.rows, flows.flows);
    assert_eq!(summary.files, 1);
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    // Every packet read was either decoded (and went to the table) or skipped.
    assert!(summary.packets_read > 0);
    assert_eq!(
        summary.packets_read,
        flows.packets + summary.skipped.total()
    );
    let on_disk = std::fs::metadata(&synscan()[0]).expect("capture").len();
    assert_eq!(
        summary.bytes_read, on_disk,
        "an uncompressed file is read whole"
    );
}

#[test]
fn for_each_packet_hands_over_every_decoded_packet() {
    let mut summary = RunSummary::default();
    let mut decoded = 0u64;
    let bytes = for_each_packet(&synscan()[0], &Progress::hidden(), &mut summary, |_, _| {
        decoded += 1;
        Ok::<(), PipelineError>(())
    })
    .expect("read");
    assert!(decoded > 0);
    assert_eq!(summary.packets_read, decoded + summary.skipped.total());
    assert_eq!(summary.bytes_read, bytes);
    let (_, extracted) = run(&spec(Family::Cic, 1));
    assert_eq!(
        extracted.flows.packets, decoded,
        "the table saw the same packets"
    );
}

#[test]
fn worker_threads_write_the_same_rows_in_another_order() {
    let (one, _) = run(&spec(Family::Cic, 1));
    let (two, summary) = run(&spec(Family::Cic, 2));
    let mut one = rows(&one);
    let mut two = rows(&two);
    one.sort_unstable();
    two.sort_unstable();
    assert_eq!(summary.flows.evicted, 0);
    assert_eq!(one, two);
}

#[test]
fn bytes_family_writes_each_flow_once() {
    let (csv, summary) = run(&spec(Family::Bytes, 1));
    let flows = &summary.flows;
    // A flow is written at its N-th packet (early snapshot, its end then skipped)
    // or at its end when shorter: one row per flow either way.
    assert_eq!(rows(&csv).len() as u64, flows.flows);
    assert_eq!(summary.rows, flows.flows);
}

#[test]
fn a_missing_capture_is_a_file_error_not_a_run_error() {
    let mut summary = RunSummary::default();
    let missing = vec![PathBuf::from("/nonexistent/nadir-test.pcap")];
    extract(
        &spec(Family::Cic, 1),
        &missing,
        OutputFormat::Csv,
        Box::new(Shared::default()),
        &LabelRules::none(),
        &mut Progress::hidden(),
        &mut summary,
    )
    .expect("the run itself succeeds");
    assert_eq!(summary.errors.len(), 1);
    assert!(
        summary.errors[0].contains("nadir-test.pcap"),
        "{:?}",
        summary.errors
    );
    assert_eq!(summary.packets_read, 0);
}

#[test]
fn invalid_flow_settings_are_refused_before_reading() {
    let mut bad = spec(Family::Cic, 1);
    bad.early_after = Some(0);
    let err = bad.validate().expect_err("early_after 0");
    assert!(matches!(err, PipelineError::FlowConfig(_)), "{err:?}");
    assert_eq!(err.to_string(), "invalid flow settings");
}

/// A writer that fails once past the header: the error says what was written.
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("disk full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn output_errors_say_writing_features() {
    let mut summary = RunSummary::default();
    let err = extract(
        &spec(Family::Cic, 1),
        &synscan(),
        OutputFormat::Csv,
        Box::new(Broken),
        &LabelRules::none(),
        &mut Progress::hidden(),
        &mut summary,
    )
    .expect_err("the output fails");
    assert_eq!(err.to_string(), "writing features");
    let source = std::error::Error::source(&err)
        .expect("a cause")
        .to_string();
    assert!(source.contains("disk full"), "{source}");
    assert!(summary.packets_read > 0, "the capture was still read");
}

/// A caller's own error type reaches it as `PipelineError::Sink`; the run reads
/// the file to its end (counters whole) and stops writing at the first error.
#[test]
fn a_callers_sink_error_is_boxed_and_stops_writing() {
    #[derive(Debug)]
    struct Closed;
    impl std::fmt::Display for Closed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("alert queue closed")
        }
    }
    impl std::error::Error for Closed {}

    let mut summary = RunSummary::default();
    let mut written = 0u64;
    let err = run_flow_family(
        &synscan(),
        FlowConfig::default(),
        |_: &FlowMeta| (),
        &LabelRules::none(),
        &mut Progress::hidden(),
        &mut summary,
        &mut written,
        |_| CloneFlows::default(),
        each_flow::<(), u64, PipelineError>(|_, _, written| {
            *written += 1;
            if *written == 3 {
                return Err(PipelineError::Sink(Box::new(Closed)));
            }
            Ok(())
        }),
    )
    .expect_err("the sink fails");
    assert_eq!(written, 3, "nothing is written after the first error");
    assert!(matches!(err, PipelineError::Sink(_)));
    let source = std::error::Error::source(&err)
        .expect("a cause")
        .to_string();
    assert_eq!(source, "alert queue closed");
    // The file was read to its end: every flow made it into the counters.
    assert!(summary.flows.flows > written, "{:?}", summary.flows);
    assert_eq!(
        summary.packets_read,
        summary.flows.packets + summary.skipped.total()
    );
}
