//! Live detection (`nadir watch`): the `detect` pipeline on an interface.
//!
//! Three threads joined by bounded queues, so capture never waits on scoring or on the output:
//!
//! ```text
//! capture (libpcap ring -> decode -> flow table -> feature rows)
//!    -- rows, bounded: full => flow counted as dropped -->
//! scoring (batches of rows -> preprocessing -> model -> threshold -> explanations)
//!    -- records, bounded: full => record counted as dropped -->
//! writer (JSON lines to stdout or a size-rotated file)
//! ```
//!
//! A row waits at most `flush_after` for its batch to fill: a partial batch is scored when
//! its oldest row has waited that long, so a flow's verdict comes in milliseconds on a quiet
//! network and on a busy one alike. When the stop flag is set (SIGINT/SIGTERM), the
//! capture ends like a file does: every live flow is flushed through scoring and written,
//! then the summary is returned.

use std::fs::File;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nadir_capture::{LiveCounters, LiveOptions, LiveSource};
use nadir_decode::SkipCounts;
use nadir_pipeline::{Input, Progress, RunSummary};

use crate::alert::Verdict;
use crate::alert::{Alert, AlertWriter};
use crate::detect::{
    flow_rows, wall_clock_ns, AlertSink, DetectOptions, DetectSummary, RowInfo, RowQueue, Scoring,
};
use crate::metrics::{model_info, MetricsServer, WatchMetrics};
use crate::queue::{bounded, BoundedSender};
use crate::{DetectError, Detector};

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub live: LiveOptions,
    pub detect: DetectOptions,
    /// Serve `/metrics` and `/healthz` here (port 0: any free port).
    pub listen: Option<SocketAddr>,
    /// Flows that may wait for scoring.
    pub row_queue: usize,
    /// Records that may wait for the writer.
    pub record_queue: usize,
    /// A partial batch is scored when its oldest row has waited this long.
    pub flush_after: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            live: LiveOptions::default(),
            detect: DetectOptions::default(),
            listen: None,
            row_queue: 65_536,
            record_queue: 65_536,
            flush_after: Duration::from_millis(2),
        }
    }
}

/// What a watch run did; the counts add up (see [`WatchSummary::check_accounting`]).
#[derive(Debug, Default)]
pub struct WatchSummary {
    /// Packets, flows, scores and alerts, as `detect` counts them (`detect.dropped`: flows the
    /// scoring queue had no room for).
    pub detect: DetectSummary,
    /// Records the writer wrote.
    pub records_written: u64,
    /// Records the writer's queue had no room for (a slow output), or that came after the
    /// output failed.
    pub records_dropped: u64,
    pub kernel_drops: u64,
    pub interface_drops: u64,
    /// Why the output stopped, if it did (a closed pipe: the reader went away).
    pub output_error: Option<DetectError>,
    /// Where `/metrics` was served.
    pub metrics_addr: Option<SocketAddr>,
    /// From each written record's deciding moment to its write.
    pub latency: LatencyStats,
}

/// Verdict latencies in log-spaced buckets (16 per doubling, so a quantile is within 4.4 %),
/// for the summary's p50/p99: bounded memory however long the sensor runs, unlike a list of
/// samples, and finer than the Prometheus histogram's doublings.
#[derive(Debug, Clone)]
pub struct LatencyStats {
    counts: Vec<u64>,
    count: u64,
    max_ns: u64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            counts: vec![0; Self::BUCKETS],
            count: 0,
            max_ns: 0,
        }
    }
}

impl LatencyStats {
    const PER_DOUBLING: f64 = 16.0;
    /// Up to 2^48 ns (3.3 days).
    const BUCKETS: usize = 48 * 16;

    fn bucket(ns: u64) -> usize {
        let index = ((ns.max(1) as f64).log2() * Self::PER_DOUBLING) as usize;
        index.min(Self::BUCKETS - 1)
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// The `q` quantile (0..=1), as its bucket's upper edge (never above the maximum).
    pub fn quantile_ns(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = 2f64.powf((index + 1) as f64 / Self::PER_DOUBLING);
                return Some((upper as u64).min(self.max_ns));
            }
        }
        Some(self.max_ns)
    }
}

impl WatchSummary {
    /// `detect`'s identities, and records produced = written + dropped.
    pub fn check_accounting(&self) -> Result<(), String> {
        self.detect.check_accounting()?;
        if self.detect.written != self.records_written + self.records_dropped {
            return Err(format!(
                "records {} != written {} + dropped {}",
                self.detect.written, self.records_written, self.records_dropped
            ));
        }
        Ok(())
    }
}

/// One finished flow on its way to scoring.
type QueuedRow = (Vec<f32>, RowInfo);

/// The capture side's [`RowQueue`]: rows go to the scoring thread, never waiting for it.
struct RowSender<'m> {
    raw: Vec<f32>,
    tx: BoundedSender<QueuedRow>,
    metrics: &'m WatchMetrics,
    dropped: u64,
}

impl RowQueue for RowSender<'_> {
    fn raw(&mut self) -> &mut Vec<f32> {
        &mut self.raw
    }

    fn queued(&mut self, info: RowInfo) -> Result<(), DetectError> {
        if let Some(end) = info.end {
            let labels = vec![("reason", end.as_str().to_string())];
            self.metrics.flows_ended.get_or_create(&labels).inc();
        }
        let row = (std::mem::take(&mut self.raw), info);
        match self.tx.try_send(row) {
            Ok(()) => {
                self.metrics.score_queue.inc();
                Ok(())
            }
            Err(TrySendError::Full((mut raw, _))) => {
                self.dropped += 1;
                self.metrics.flows_dropped.inc();
                raw.clear();
                self.raw = raw;
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(DetectError::Input(
                "the scoring thread stopped (see the error above)".into(),
            )),
        }
    }
}

/// The scoring side's [`AlertSink`]: records go to the writer thread, never waiting for it.
struct RecordSender<'m> {
    tx: BoundedSender<(Alert, i64)>,
    metrics: &'m WatchMetrics,
    dropped: u64,
}

impl AlertSink for RecordSender<'_> {
    fn send(&mut self, alert: Alert, decided_ns: i64) -> Result<(), DetectError> {
        if let (Verdict::Anomaly, Some(pods)) = (alert.verdict, &alert.pods) {
            for (side, peer) in [("src", &pods.src), ("dst", &pods.dst)] {
                if let Some(workload) = &peer.workload {
                    let namespace = peer.namespace.as_deref().unwrap_or("");
                    let labels = vec![
                        ("side", side.to_string()),
                        ("namespace", namespace.to_string()),
                        ("workload", workload.to_string()),
                    ];
                    self.metrics.workload_alerts.get_or_create(&labels).inc();
                }
            }
        }
        if self.tx.try_send((alert, decided_ns)).is_err() {
            // Full (a slow output) or the writer gave up on a failed output: counted.
            self.dropped += 1;
            self.metrics.records_dropped.inc();
        }
        Ok(())
    }
}

/// Mirrors the scoring counts into the metrics.
fn publish(summary: &DetectSummary, metrics: &WatchMetrics) {
    metrics
        .flows_scored
        .inner()
        .store(summary.scored, Ordering::Relaxed);
    for (class, &n) in &summary.anomalies_by_class {
        let labels = vec![("class", class.clone())];
        metrics
            .alerts
            .get_or_create(&labels)
            .inner()
            .store(n, Ordering::Relaxed);
    }
}

/// Watches `options.live.interface` until `stop` is set (or the capture fails), writing
/// records to `writer`. `on_ready` runs once capture and metrics are up (with the metrics
/// address), before the first packet is read.
pub fn watch(
    detector: &Detector,
    options: &WatchOptions,
    mut writer: AlertWriter,
    stop: Arc<AtomicBool>,
    on_ready: impl FnOnce(Option<SocketAddr>),
) -> Result<WatchSummary, DetectError> {
    let live_counters = Arc::new(LiveCounters::default());
    let skips = Arc::new(Mutex::new(SkipCounts::default()));
    let source = LiveSource::open(&options.live, Arc::clone(&stop), Arc::clone(&live_counters))
        .map_err(|e| DetectError::Input(e.to_string()))?;
    let live_flows = Arc::new(AtomicU64::new(0));
    let metrics = Arc::new(WatchMetrics::new(
        model_info(detector, &options.live.interface),
        Arc::clone(&live_counters),
        Arc::clone(&skips),
        Arc::clone(&live_flows),
        options.detect.pods.clone(),
    ));
    let server = match options.listen {
        Some(addr) => Some(MetricsServer::start(addr, Arc::clone(&metrics))?),
        None => None,
    };
    let mut summary = WatchSummary {
        metrics_addr: server.as_ref().map(|s| s.addr),
        ..WatchSummary::default()
    };
    on_ready(summary.metrics_addr);

    let (row_tx, row_rx) = bounded::<QueuedRow>(options.row_queue);
    let (record_tx, record_rx) = bounded::<(Alert, i64)>(options.record_queue);
    let mut run = RunSummary::default();
    let mut progress = Progress::hidden()
        .publishing_skips(Arc::clone(&skips))
        .publishing_live_flows(live_flows);
    let metrics_ref: &WatchMetrics = &metrics;

    let (capture_result, scoring_result, writer_result) = std::thread::scope(|scope| {
        let stop = &stop;
        let writer_thread = scope.spawn(move || {
            let mut written = 0u64;
            let mut dropped = 0u64;
            // Handed to the writer since its last successful flush: written only once they
            // reach the output (a full disk fails the flush, and they are lost, not written).
            let mut unflushed = 0u64;
            let mut latency = LatencyStats::default();
            let mut failure = None;
            let mut next = record_rx.recv().ok();
            while let Some((alert, decided_ns)) = next.take() {
                if failure.is_some() {
                    dropped += 1;
                    metrics_ref.records_dropped.inc();
                } else {
                    match writer.write(&alert) {
                        Ok(()) => {
                            unflushed += 1;
                            let waited = (wall_clock_ns() - decided_ns).max(0) as u64;
                            latency.record(waited);
                            metrics_ref.verdict_latency.observe(waited as f64 / 1e9);
                        }
                        Err(err) => {
                            dropped += 1;
                            metrics_ref.records_dropped.inc();
                            failure = Some(err);
                        }
                    }
                }
                // Flushed whenever the queue runs empty (the log pipeline sees each alert now,
                // and a burst costs one write), and every `FLUSH_EVERY` records of a burst that
                // never lets it, so the written count and /metrics keep up.
                let queued = record_rx.try_recv();
                let idle = matches!(queued, Err(mpsc::TryRecvError::Empty));
                if idle || unflushed >= FLUSH_EVERY {
                    if failure.is_none() {
                        failure = writer.flush().err();
                    }
                    settle(
                        &mut unflushed,
                        failure.is_none(),
                        &mut written,
                        &mut dropped,
                        metrics_ref,
                    );
                }
                next = match queued {
                    Ok(record) => Some(record),
                    Err(mpsc::TryRecvError::Disconnected) => None,
                    Err(mpsc::TryRecvError::Empty) => record_rx.recv().ok(),
                };
                if matches!(failure, Some(DetectError::ClosedOutput { .. })) {
                    // The reader went away (`| head`): stop watching, as a Unix tool does.
                    stop.store(true, Ordering::Relaxed);
                }
            }
            let finished = match failure {
                None => writer.finish().map(|_| ()),
                Some(err) => Err(err),
            };
            settle(
                &mut unflushed,
                finished.is_ok(),
                &mut written,
                &mut dropped,
                metrics_ref,
            );
            (written, dropped, latency, finished.err())
        });

        let scoring_thread = scope.spawn(move || {
            if !nadir_model::compute_on_this_thread() {
                tracing::debug!("the model threads were set up before scoring began");
            }
            let mut detect = DetectSummary::for_captures(detector, &options.detect)?;
            let mut sink = RecordSender {
                tx: record_tx,
                metrics: metrics_ref,
                dropped: 0,
            };
            let result = {
                let mut scoring = Scoring::new(detector, &options.detect, &mut sink, &mut detect);
                let mut result = Ok(());
                // When the oldest pending row is due to be scored.
                let mut due: Option<Instant> = None;
                loop {
                    let wait = due.map_or(options.flush_after, |due| {
                        due.saturating_duration_since(Instant::now())
                    });
                    match row_rx.recv_timeout(wait) {
                        Ok((raw, info)) => {
                            metrics_ref.score_queue.dec();
                            scoring.raw().extend_from_slice(&raw);
                            let first = scoring.pending() == 0;
                            result = scoring.queued(info);
                            due = match scoring.pending() {
                                0 => None, // the batch filled and was scored
                                _ if first => Some(Instant::now() + options.flush_after),
                                _ => due,
                            };
                            if result.is_ok() && due.is_some_and(|due| Instant::now() >= due) {
                                // Rows kept coming: the oldest has waited long enough.
                                result = scoring.flush();
                                due = None;
                            }
                        }
                        Err(RecvTimeoutError::Timeout) if scoring.pending() > 0 => {
                            result = scoring.flush();
                            due = None;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            result = scoring.flush();
                            break;
                        }
                    }
                    if result.is_err() {
                        break;
                    }
                    publish(scoring.summary(), metrics_ref);
                }
                publish(scoring.summary(), metrics_ref);
                result
            };
            // Records the writer's queue had no room for.
            result.map(|()| (detect, sink.dropped))
        });

        let mut rows = RowSender {
            raw: Vec::new(),
            tx: row_tx,
            metrics: metrics_ref,
            dropped: 0,
        };
        let source: Box<dyn nadir_capture::PacketSource + Send> = Box::new(source);
        let capture = flow_rows(
            detector,
            [Input::Source(source)],
            &options.detect,
            &mut rows,
            &mut progress,
            &mut run,
        );
        let dropped = rows.dropped;
        drop(rows); // closes the row queue: scoring drains it, then the writer's.
        let scoring = scoring_thread
            .join()
            .unwrap_or_else(|_| Err(DetectError::Input("the scoring thread panicked".into())));
        let written = writer_thread.join().unwrap_or_else(|_| {
            let panicked = DetectError::Input("the writer thread panicked".into());
            (0, 0, LatencyStats::default(), Some(panicked))
        });
        (capture.map(|()| dropped), scoring, written)
    });
    drop(server);

    let dropped = capture_result?;
    let (mut detect, records_not_queued) = scoring_result?;
    detect.dropped = dropped;
    detect.run = run;
    let (written, records_dropped, latency, output_error) = writer_result;
    summary.latency = latency;
    summary.detect = detect;
    summary.records_written = written;
    summary.records_dropped = records_dropped + records_not_queued;
    summary.output_error = output_error;
    summary.kernel_drops = live_counters.kernel_drops.load(Ordering::Relaxed);
    summary.interface_drops = live_counters.interface_drops.load(Ordering::Relaxed);
    Ok(summary)
}

/// Records written between two flushes at most, while the record queue never runs empty.
const FLUSH_EVERY: u64 = 1024;

/// Counts the records handed to the writer since its last flush as written when that flush
/// succeeded, else as dropped (a failed flush may have written part of them; none is claimed).
fn settle(
    unflushed: &mut u64,
    flushed: bool,
    written: &mut u64,
    dropped: &mut u64,
    metrics: &WatchMetrics,
) {
    let records = std::mem::take(unflushed);
    if flushed {
        *written += records;
        metrics.records_written.inc_by(records);
    } else {
        *dropped += records;
        metrics.records_dropped.inc_by(records);
    }
}

/// A file that is renamed to `NAME.1` (older ones to `.2` ... `.{keep}`) and started again once
/// it holds `max_bytes`, so a sensor's alert log cannot fill the disk. A path that is not a
/// regular file (a FIFO to a log shipper, `/dev/null`) is written in place and never rotated:
/// renaming it would replace it.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    keep: usize,
    rotates: bool,
    /// The last byte written ended a line: a rotation here keeps records whole.
    at_line_start: bool,
}

impl RotatingFile {
    pub fn create(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let rotates = !nadir_features::output::writes_in_place(path);
        let file = File::options().create(true).append(true).open(path)?;
        Ok(RotatingFile {
            path: path.to_path_buf(),
            written: file.metadata()?.len(),
            file,
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
            rotates,
            at_line_start: true,
        })
    }

    fn numbered(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        for n in (1..self.keep).rev() {
            let from = self.numbered(n);
            if from.exists() {
                std::fs::rename(&from, self.numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.numbered(1))?;
        self.file = File::create(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    /// Rotates only at a line boundary, so every file holds whole records (and goes over
    /// `max_bytes` by at most one write).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.rotates && self.written >= self.max_bytes && self.at_line_start {
            self.rotate()?;
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if n > 0 {
            self.at_line_start = buf[n - 1] == b'\n';
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::{LatencyStats, RotatingFile};

    /// A FIFO as `--out` (a log shipper reading it) gets every record and stays a FIFO: no
    /// rotation renames it, however small the size limit.
    #[test]
    fn a_fifo_output_is_written_in_place_never_rotated() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let Some(fifo) = nadir_testdata::fifo(dir.path(), "alerts") else {
            return;
        };
        let reading = fifo.clone();
        let reader = std::thread::spawn(move || std::fs::read_to_string(reading).unwrap());
        let mut out = RotatingFile::create(&fifo, 1, 2).unwrap();
        out.write_all(b"one\n").unwrap();
        out.write_all(b"two\n").unwrap();
        drop(out);
        assert_eq!(reader.join().unwrap(), "one\ntwo\n");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(!dir.path().join("alerts.1").exists());
    }

    #[test]
    fn latency_quantiles_are_within_a_bucket_of_the_samples() {
        let mut stats = LatencyStats::default();
        assert_eq!(stats.quantile_ns(0.5), None);
        // 1 .. 1000 µs.
        for us in 1..=1000u64 {
            stats.record(us * 1000);
        }
        let within = |got: u64, want: f64| (got as f64 - want).abs() <= want * 0.045;
        assert!(
            within(stats.quantile_ns(0.5).unwrap(), 500_000.0),
            "{:?}",
            stats.quantile_ns(0.5)
        );
        assert!(
            within(stats.quantile_ns(0.99).unwrap(), 990_000.0),
            "{:?}",
            stats.quantile_ns(0.99)
        );
        assert_eq!(stats.quantile_ns(1.0), Some(1_000_000));
        assert_eq!(stats.max_ns(), 1_000_000);
        assert_eq!(stats.count(), 1000);
    }
}
