//! The per-flow detection record and its writers.
//!
//! JSON lines (for log pipelines) carry the explanation as a nested object; CSV and Parquet
//! flatten it into `top_features` (readable) and `explanation` (the same JSON as text), after
//! the fixed columns of [`TABLE_COLUMNS`].

use std::io::{BufWriter, Write};

use nadir_features::output::{open_sink, ColumnType, OutputFormat, RowSink, TableSchema, Value};
use nadir_features::roles::ColumnRole;
use serde::Serialize;

use nadir_kube::{Attribution as PodAttribution, ATTRIBUTION_COLUMNS};

use crate::explain::Explanation;
use crate::DetectError;

/// The verdict on one flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Score at or above the threshold.
    Anomaly,
    Normal,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Anomaly => "anomaly",
            Verdict::Normal => "normal",
        }
    }
}

/// One scored flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The flow's id as `extract` writes it (`Flow ID` for cic, `flow_id` otherwise); with
    /// `start_ns` it joins the flow's feature row.
    pub flow_id: String,
    /// The capture or table the flow came from.
    pub source: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub protocol: u8,
    /// Outer tunnel (`vxlan vni 42 10.0.0.1 -> 10.0.0.2`) when the flow was inside one.
    pub tunnel: Option<String>,
    /// Who sent and received it (`--kube`/`--pods`): `src_namespace`, `src_pod`, ... as flat
    /// fields; in tables, columns after [`TABLE_COLUMNS`].
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodAttribution>,
    /// First packet, RFC 3339 UTC with microseconds.
    pub start: String,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Packets of the flow when it was scored (unknown for table rows without counts).
    pub packets: Option<u64>,
    /// Payload bytes both ways (cic features) when known.
    pub bytes: Option<u64>,
    pub score: f32,
    pub threshold: f64,
    pub verdict: Verdict,
    /// Most likely class (multiclass bundles).
    pub class: Option<String>,
    /// Scored before the flow ended, after its first `early_packets` packets.
    pub early: bool,
    pub early_packets: Option<u64>,
    /// Time from the flow's first packet to the deciding packet, for early verdicts.
    pub early_after_ms: Option<f64>,
    pub explanation: Option<Explanation>,
}

/// The CSV/Parquet columns, in order (JSON lines use the same names, `top_features` aside).
pub const TABLE_COLUMNS: [(&str, ColumnType); 25] = [
    ("flow_id", ColumnType::Utf8),
    ("source", ColumnType::Utf8),
    ("src_ip", ColumnType::Utf8),
    ("src_port", ColumnType::UInt16),
    ("dst_ip", ColumnType::Utf8),
    ("dst_port", ColumnType::UInt16),
    ("protocol", ColumnType::UInt16),
    ("tunnel", ColumnType::Utf8),
    ("start", ColumnType::Utf8),
    ("start_ns", ColumnType::Int64),
    ("end_ns", ColumnType::Int64),
    ("packets", ColumnType::Float64),
    ("bytes", ColumnType::Float64),
    ("score", ColumnType::Float64),
    ("threshold", ColumnType::Float64),
    ("verdict", ColumnType::Utf8),
    ("class", ColumnType::Utf8),
    ("early", ColumnType::Utf8),
    ("early_packets", ColumnType::Float64),
    ("early_after_ms", ColumnType::Float64),
    ("explain_method", ColumnType::Utf8),
    ("baseline_score", ColumnType::Float64),
    ("completeness_error", ColumnType::Float64),
    ("top_features", ColumnType::Utf8),
    ("explanation", ColumnType::Utf8),
];

/// An alert table is a record of verdicts, not training data: besides the flow's identity and
/// time, every column is the model's output or a fact it already saw, so none is a feature.
fn alert_column_role(name: &str) -> ColumnRole {
    match name {
        "flow_id" | "source" | "src_ip" | "src_port" | "dst_ip" | "dst_port" | "tunnel" => {
            ColumnRole::Identity
        }
        "start" | "start_ns" | "end_ns" => ColumnRole::Time,
        _ => ColumnRole::Ignored,
    }
}

/// RFC 3339 UTC with microseconds (truncated, not rounded).
pub fn rfc3339_micros(ts_ns: i64) -> String {
    // Every i64 of ns is within jiff's range.
    let ts = jiff::Timestamp::from_nanosecond(i128::from(ts_ns)).unwrap_or_default();
    format!("{ts:.6}")
}

/// `Flow Duration=1.2e6 (+0.31); Fwd IAT Max=... (-0.05)`.
pub fn top_features_text(explanation: &Explanation) -> String {
    explanation
        .top
        .iter()
        .map(|c| match &c.field {
            Some(field) => format!(
                "{} [{field}]={} ({:+.4})",
                c.feature, c.value, c.contribution
            ),
            None => format!("{}={} ({:+.4})", c.feature, c.value, c.contribution),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

enum Inner {
    Json(BufWriter<Box<dyn Write + Send>>),
    Table(Box<dyn RowSink>),
    /// Two lines per alert for a person at a terminal.
    Text(BufWriter<Box<dyn Write + Send>>),
}

fn protocol_name(protocol: u8) -> String {
    match protocol {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmpv6".into(),
        other => format!("proto {other}"),
    }
}

/// The readable form of an alert (`nadir detect` without `--out`, `nadir demo`).
pub fn alert_text(alert: &Alert) -> String {
    let mut text = format!(
        "{}  {}:{} -> {}:{} {}  score {:.4} {} {:.4}",
        alert.start,
        alert.src_ip,
        alert.src_port,
        alert.dst_ip,
        alert.dst_port,
        protocol_name(alert.protocol),
        alert.score,
        if alert.verdict == Verdict::Anomaly {
            ">="
        } else {
            "<"
        },
        alert.threshold,
    );
    if let Some(class) = &alert.class {
        text.push_str(&format!("  class {class}"));
    }
    if let Some(tunnel) = &alert.tunnel {
        text.push_str(&format!("  via {tunnel}"));
    }
    if let Some(pods) = &alert.pods {
        let name = |peer: &nadir_kube::Peer, ip: &str| match (&peer.namespace, &peer.pod) {
            (Some(ns), Some(pod)) => format!("{ns}/{pod}"),
            (Some(ns), None) => match &peer.service {
                Some(service) => format!("{ns}/svc/{service}"),
                None => ip.to_string(),
            },
            _ => match (&peer.workload, &peer.node) {
                (Some(w), Some(node)) => format!("{w} on {node}"),
                _ if pods.unknown => nadir_kube::UNKNOWN.to_string(),
                _ => format!("{ip} (outside the cluster)"),
            },
        };
        text.push_str(&format!(
            "\n    pods: {} -> {}",
            name(&pods.src, &alert.src_ip),
            name(&pods.dst, &alert.dst_ip)
        ));
    }
    if let (true, Some(p)) = (alert.early, alert.early_packets) {
        text.push_str(&format!(
            "  early: after {p} packets, {:.1} ms",
            alert.early_after_ms.unwrap_or(0.0)
        ));
    }
    text.push('\n');
    if let Some(e) = &alert.explanation {
        if e.top.len() <= 5 {
            text.push_str("    why: ");
            text.push_str(&top_features_text(e));
            text.push('\n');
        } else {
            text.push_str(&format!(
                "    why: contributions add up to {:+.6} (score {:.6} - baseline {:.6}){}\n",
                e.total,
                alert.score,
                e.baseline_score,
                e.completeness_error
                    .map(|g| format!(", completeness gap {:.3}%", g * 100.0))
                    .unwrap_or_default()
            ));
            for c in &e.top {
                text.push_str(&format!(
                    "      {:+.6}  {} = {}",
                    c.contribution, c.feature, c.value
                ));
                if let Some(field) = &c.field {
                    text.push_str(&format!("  [{field}]"));
                }
                text.push('\n');
            }
        }
    }
    text
}

/// Writes alerts in one format; counts what it wrote.
pub struct AlertWriter {
    inner: Inner,
    written: u64,
    target: String,
    /// Text output: records past this many are counted, not printed.
    shown: Option<u64>,
}

/// The error of writing to `target`; a reader that went away (`| head`) is
/// [`DetectError::ClosedOutput`], so the caller can stop quietly.
fn output_error<E: std::error::Error + 'static>(target: &str, error: E) -> DetectError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(err) = cause {
        if let Some(io) = err
            .downcast_ref::<std::io::Error>()
            .filter(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return DetectError::ClosedOutput {
                path: target.to_string(),
                source: std::io::Error::new(io.kind(), io.to_string()),
            };
        }
        cause = err.source();
    }
    DetectError::Output {
        path: target.to_string(),
        reason: error.to_string(),
    }
}

impl AlertWriter {
    /// A writer of `format` over `out`; `target` names it in errors.
    /// Tables get the [`ATTRIBUTION_COLUMNS`] after the fixed ones when `pod_columns`.
    pub fn new(
        format: OutputFormat,
        out: Box<dyn Write + Send>,
        target: &str,
        pod_columns: bool,
    ) -> Result<AlertWriter, DetectError> {
        let inner = match format {
            OutputFormat::JsonLines => Inner::Json(BufWriter::with_capacity(1 << 16, out)),
            _ => {
                let mut schema = TableSchema::new();
                for (name, kind) in TABLE_COLUMNS {
                    schema.push(name, kind, alert_column_role(name));
                }
                if pod_columns {
                    for name in ATTRIBUTION_COLUMNS {
                        schema.push(name, ColumnType::Utf8, ColumnRole::Identity);
                    }
                }
                Inner::Table(open_sink(format, schema, out).map_err(|e| output_error(target, e))?)
            }
        };
        Ok(AlertWriter {
            inner,
            written: 0,
            target: target.to_string(),
            shown: None,
        })
    }

    /// A writer of readable lines (two per alert) for a person.
    pub fn text(out: Box<dyn Write + Send>, target: &str) -> AlertWriter {
        AlertWriter {
            inner: Inner::Text(BufWriter::new(out)),
            written: 0,
            target: target.to_string(),
            shown: None,
        }
    }

    /// Shows at most `limit` records (text output); the rest are counted and said at the end.
    pub fn showing_at_most(mut self, limit: u64) -> AlertWriter {
        self.shown = Some(limit);
        self
    }

    /// Alerts written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Pushes buffered JSON lines or text to the output now (tables are written at the end).
    pub fn flush(&mut self) -> Result<(), DetectError> {
        let target = &self.target;
        match &mut self.inner {
            Inner::Json(out) | Inner::Text(out) => out.flush().map_err(|e| output_error(target, e)),
            Inner::Table(_) => Ok(()),
        }
    }

    pub fn write(&mut self, alert: &Alert) -> Result<(), DetectError> {
        let target = &self.target;
        match &mut self.inner {
            Inner::Json(out) => {
                // Encoded first, so an I/O error arrives as itself (serde_json wraps it).
                let mut line = serde_json::to_vec(alert).map_err(|e| output_error(target, e))?;
                line.push(b'\n');
                out.write_all(&line).map_err(|e| output_error(target, e))?;
            }
            Inner::Text(out) => {
                if self.shown.is_none_or(|limit| self.written < limit) {
                    out.write_all(alert_text(alert).as_bytes())
                        .map_err(|e| output_error(target, e))?
                }
            }
            Inner::Table(sink) => {
                let optional = |v: Option<f64>| Value::F64(v.unwrap_or(f64::NAN));
                let e = alert.explanation.as_ref();
                let explanation_json = match e {
                    Some(e) => serde_json::to_string(e).map_err(|err| output_error(target, err))?,
                    None => String::new(),
                };
                let top = e.map(top_features_text).unwrap_or_default();
                sink.put(Value::Str(&alert.flow_id));
                sink.put(Value::Str(&alert.source));
                sink.put(Value::Str(&alert.src_ip));
                sink.put(Value::U16(alert.src_port));
                sink.put(Value::Str(&alert.dst_ip));
                sink.put(Value::U16(alert.dst_port));
                sink.put(Value::U16(u16::from(alert.protocol)));
                sink.put(Value::Str(alert.tunnel.as_deref().unwrap_or("")));
                sink.put(Value::Str(&alert.start));
                sink.put(Value::I64(alert.start_ns));
                sink.put(Value::I64(alert.end_ns));
                sink.put(optional(alert.packets.map(|p| p as f64)));
                sink.put(optional(alert.bytes.map(|b| b as f64)));
                sink.put(Value::F64(f64::from(alert.score)));
                sink.put(Value::F64(alert.threshold));
                sink.put(Value::Str(alert.verdict.as_str()));
                sink.put(Value::Str(alert.class.as_deref().unwrap_or("")));
                sink.put(Value::Str(if alert.early { "true" } else { "false" }));
                sink.put(optional(alert.early_packets.map(|p| p as f64)));
                sink.put(optional(alert.early_after_ms));
                sink.put(Value::Str(e.map_or("", |e| e.method.name())));
                sink.put(optional(e.map(|e| f64::from(e.baseline_score))));
                sink.put(optional(
                    e.and_then(|e| e.completeness_error).map(f64::from),
                ));
                sink.put(Value::Str(&top));
                sink.put(Value::Str(&explanation_json));
                if let Some(pods) = &alert.pods {
                    pods.for_each_value(|v| sink.put(Value::Str(v)));
                }
                sink.end_row().map_err(|e| output_error(target, e))?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Flushes everything (and writes the Parquet footer).
    pub fn finish(self) -> Result<u64, DetectError> {
        let target = self.target;
        let hidden = self
            .shown
            .map_or(0, |limit| self.written.saturating_sub(limit));
        match self.inner {
            Inner::Text(mut out) if hidden > 0 => writeln!(out, "... and {hidden} more")
                .and_then(|()| out.flush())
                .map_err(|e| output_error(&target, e))?,
            Inner::Json(mut out) | Inner::Text(mut out) => {
                out.flush().map_err(|e| output_error(&target, e))?
            }
            Inner::Table(mut sink) => sink.finish().map_err(|e| output_error(&target, e))?,
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_microseconds_and_handles_pre_epoch() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_585_614_929_123_456_789),
            "2020-03-31T00:35:29.123456Z"
        );
        assert_eq!(rfc3339_micros(-1_000), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn rfc3339_truncates_and_crosses_leap_days_and_year_ends() {
        let s = 1_000_000_000;
        assert_eq!(rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339_micros(999), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(1_582_977_600 * s),
            "2020-02-29T12:00:00.000000Z"
        );
        assert_eq!(
            rfc3339_micros(1_577_836_800 * s - 1),
            "2019-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            rfc3339_micros(-2_203_891_200 * s),
            "1900-03-01T00:00:00.000000Z"
        );
        assert_eq!(rfc3339_micros(i64::MIN), "1677-09-21T00:12:43.145224Z");
        assert_eq!(rfc3339_micros(i64::MAX), "2262-04-11T23:47:16.854775Z");
    }
}
