//! Prometheus metrics of a live sensor (`nadir watch`), served as OpenMetrics text on
//! `/metrics` (and `ok` on `/healthz`) by a small HTTP server (tiny_http) on its own thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nadir_capture::LiveCounters;
use nadir_decode::SkipCounts;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::{DetectError, Detector};

type Labels = Vec<(&'static str, String)>;

/// Every metric of a watch run. Counters the capture side keeps in its own atomics
/// ([`LiveCounters`], the decoder's skips) are copied in when `/metrics` is read.
pub struct WatchMetrics {
    registry: Registry,
    live: Arc<LiveCounters>,
    skips: Arc<Mutex<SkipCounts>>,
    packets: Counter,
    bytes: Counter,
    kernel_drops: Counter,
    interface_drops: Counter,
    decoder_skips: Family<Labels, Counter>,
    /// Flows the flow table ended, by reason (`evicted` is the memory bound at work).
    pub flows_ended: Family<Labels, Counter>,
    pub flows_scored: Counter,
    /// Flows not scored: the scoring queue was full.
    pub flows_dropped: Counter,
    pub alerts: Family<Labels, Counter>,
    pub records_written: Counter,
    /// Records not written: the writer's queue was full (a slow sink).
    pub records_dropped: Counter,
    /// Flows waiting for scoring.
    pub score_queue: Gauge,
    /// From a verdict's deciding moment to its record written, seconds.
    pub verdict_latency: Histogram,
}

impl WatchMetrics {
    pub fn new(
        detector: &Detector,
        interface: &str,
        live: Arc<LiveCounters>,
        skips: Arc<Mutex<SkipCounts>>,
    ) -> Self {
        let mut registry = Registry::with_prefix("nadir");
        let metrics = WatchMetrics {
            registry: Registry::default(),
            live,
            skips,
            packets: Counter::default(),
            bytes: Counter::default(),
            kernel_drops: Counter::default(),
            interface_drops: Counter::default(),
            decoder_skips: Family::default(),
            flows_ended: Family::default(),
            flows_scored: Counter::default(),
            flows_dropped: Counter::default(),
            alerts: Family::default(),
            records_written: Counter::default(),
            records_dropped: Counter::default(),
            score_queue: Gauge::default(),
            // 50 µs .. ~1.6 s.
            verdict_latency: Histogram::new(exponential_buckets(50e-6, 2.0, 16)),
        };
        let r = &mut registry;
        r.register(
            "packets",
            "Packets read from the interface",
            metrics.packets.clone(),
        );
        r.register(
            "bytes",
            "Bytes on the wire of the packets read",
            metrics.bytes.clone(),
        );
        r.register(
            "kernel_drops",
            "Packets the kernel dropped: the capture ring was full",
            metrics.kernel_drops.clone(),
        );
        r.register(
            "interface_drops",
            "Packets the interface or its driver dropped",
            metrics.interface_drops.clone(),
        );
        r.register(
            "decoder_skips",
            "Packets read but not decoded, by reason",
            metrics.decoder_skips.clone(),
        );
        r.register(
            "flows_ended",
            "Flows ended by the flow table, by reason",
            metrics.flows_ended.clone(),
        );
        r.register("flows_scored", "Flows scored", metrics.flows_scored.clone());
        r.register(
            "flows_dropped",
            "Flows not scored because the scoring queue was full",
            metrics.flows_dropped.clone(),
        );
        r.register(
            "alerts",
            "Flows flagged as anomalies, by class",
            metrics.alerts.clone(),
        );
        r.register(
            "records_written",
            "Records written to the output",
            metrics.records_written.clone(),
        );
        r.register(
            "records_dropped",
            "Records not written because the output was too slow (its queue was full)",
            metrics.records_dropped.clone(),
        );
        r.register(
            "score_queue",
            "Flows waiting to be scored",
            metrics.score_queue.clone(),
        );
        r.register(
            "verdict_latency_seconds",
            "From a flow's deciding packet (or its end in the flow table) to its record written",
            metrics.verdict_latency.clone(),
        );
        let bundle = &detector.bundle().manifest;
        r.register(
            "model",
            "The bundle in use",
            Info::new(vec![
                ("kind", bundle.model_kind.to_string()),
                ("weights_sha256", bundle.weights_sha256.clone()),
                ("schema", bundle.schema_fingerprint.clone()),
                ("threshold", detector.threshold().value.to_string()),
                ("trained_by", bundle.nadir_version.clone()),
                ("interface", interface.to_string()),
            ]),
        );
        WatchMetrics {
            registry,
            ..metrics
        }
    }

    /// The OpenMetrics text of every metric now.
    pub fn render(&self) -> String {
        let set = |counter: &Counter, value: u64| {
            // The capture side owns these counts; the metric mirrors them.
            counter.inner().store(value, Ordering::Relaxed);
        };
        set(&self.packets, self.live.packets.load(Ordering::Relaxed));
        set(&self.bytes, self.live.wire_bytes.load(Ordering::Relaxed));
        set(
            &self.kernel_drops,
            self.live.kernel_drops.load(Ordering::Relaxed),
        );
        set(
            &self.interface_drops,
            self.live.interface_drops.load(Ordering::Relaxed),
        );
        if let Ok(skips) = self.skips.lock() {
            for (reason, n) in skips.iter().filter(|(_, n)| *n > 0) {
                let labels = vec![("reason", reason.as_str().to_string())];
                set(&self.decoder_skips.get_or_create(&labels), n);
            }
        }
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// A running `/metrics` server; stops when dropped.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: any free port, see [`MetricsServer::addr`]).
    pub fn start(addr: SocketAddr, metrics: Arc<WatchMetrics>) -> Result<Self, DetectError> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            DetectError::Input(format!(
                "cannot serve metrics on {addr}: {e} (another nadir watch there? choose another with --listen)"
            ))
        })?;
        let bound = server.server_addr().to_ip().ok_or_else(|| {
            DetectError::Input(format!("metrics server on {addr} has no IP address"))
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("nadir-metrics".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    let Ok(Some(request)) = server.recv_timeout(Duration::from_millis(100)) else {
                        continue;
                    };
                    let (status, body, kind) = match request.url() {
                        "/metrics" => (
                            200,
                            metrics.render(),
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                        "/healthz" => (200, "ok\n".to_string(), "text/plain"),
                        _ => (404, "try /metrics or /healthz\n".to_string(), "text/plain"),
                    };
                    let mut response =
                        tiny_http::Response::from_string(body).with_status_code(status);
                    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", kind) {
                        response = response.with_header(header);
                    }
                    // A scraper that hung up is its own problem.
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| DetectError::Input(format!("cannot start the metrics thread: {e}")))?;
        Ok(MetricsServer {
            stop,
            thread: Some(thread),
            addr: bound,
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
