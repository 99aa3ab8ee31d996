//! Prometheus metrics of a live sensor (`nadir watch`), served as OpenMetrics text on
//! `/metrics` (and `ok` on `/healthz`) by a small HTTP server (tiny_http) on its own thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

use nadir_kube::PodMapHandle;

use crate::{DetectError, Detector};

type Labels = Vec<(&'static str, String)>;

/// The labels of `nadir_model_info`: the bundle in use and the interface.
pub fn model_info(detector: &Detector, interface: &str) -> Labels {
    let bundle = &detector.bundle().manifest;
    vec![
        ("kind", bundle.model_kind.to_string()),
        ("weights_sha256", bundle.weights_sha256.clone()),
        ("schema", bundle.schema_fingerprint.clone()),
        ("threshold", detector.threshold().value.to_string()),
        ("trained_by", bundle.nadir_version.clone()),
        ("interface", interface.to_string()),
    ]
}

/// Every sample name `/metrics` can show (`nadir_packets_total`,
/// `nadir_verdict_latency_seconds_bucket`, ...): what dashboards and alerting rules may use.
pub fn exported_metric_names() -> Vec<String> {
    let metrics = WatchMetrics::new(
        Vec::new(),
        Arc::default(),
        Arc::default(),
        Arc::default(),
        Some(PodMapHandle::new()),
    );
    // A family shows its `# TYPE` line once it has a member.
    let one: Labels = vec![("reason", String::new())];
    for family in [
        &metrics.decoder_skips,
        &metrics.flows_ended,
        &metrics.alerts,
        &metrics.workload_alerts,
    ] {
        family.get_or_create(&one).inc_by(0);
    }
    let mut names = Vec::new();
    for line in metrics.render().lines() {
        let mut words = line.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (words.next(), words.next(), words.next(), words.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        }
    }
    names
}

/// Every metric of a watch run. Counters the capture side keeps in its own atomics
/// ([`LiveCounters`], the decoder's skips) are copied in when `/metrics` is read.
pub struct WatchMetrics {
    registry: Registry,
    live: Arc<LiveCounters>,
    skips: Arc<Mutex<SkipCounts>>,
    /// The flow table's live flows, published by the capture thread.
    live_flows: Arc<AtomicU64>,
    live_flows_gauge: Gauge,
    pods: Option<Arc<PodMapHandle>>,
    kube_synced: Gauge,
    kube_pods: Gauge,
    kube_errors: Counter,
    /// Anomalies by the workload on each side (`side` = src | dst), with a pod map.
    pub workload_alerts: Family<Labels, Counter>,
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
    /// `model`: the labels of `nadir_model_info` ([`model_info`]).
    pub fn new(
        model: Labels,
        live: Arc<LiveCounters>,
        skips: Arc<Mutex<SkipCounts>>,
        live_flows: Arc<AtomicU64>,
        pods: Option<Arc<PodMapHandle>>,
    ) -> Self {
        let mut registry = Registry::with_prefix("nadir");
        let metrics = WatchMetrics {
            registry: Registry::default(),
            live,
            skips,
            live_flows,
            live_flows_gauge: Gauge::default(),
            pods,
            kube_synced: Gauge::default(),
            kube_pods: Gauge::default(),
            kube_errors: Counter::default(),
            workload_alerts: Family::default(),
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
            "live_flows",
            "Flows in the flow table now",
            metrics.live_flows_gauge.clone(),
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
        r.register("model", "The bundle in use", Info::new(model));
        if metrics.pods.is_some() {
            r.register(
                "workload_alerts",
                "Anomalies by workload (namespace, kind/name) on each side of the flow",
                metrics.workload_alerts.clone(),
            );
            r.register(
                "kube_synced",
                "1 while the pod map reflects the cluster (API watched or file loaded), else 0",
                metrics.kube_synced.clone(),
            );
            r.register(
                "kube_pods",
                "Pods in the pod map",
                metrics.kube_pods.clone(),
            );
            r.register(
                "kube_errors",
                "Failed requests to the Kubernetes API or reads of the pods file",
                metrics.kube_errors.clone(),
            );
        }
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
        let live_flows = self.live_flows.load(Ordering::Relaxed);
        self.live_flows_gauge
            .set(i64::try_from(live_flows).unwrap_or(i64::MAX));
        if let Some(pods) = &self.pods {
            let status = pods.status();
            self.kube_synced.set(i64::from(status.synced));
            self.kube_pods.set(status.pods as i64);
            set(&self.kube_errors, status.errors);
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
