//! Who each row of a feature table is: the identity and time columns `extract` writes (cic's
//! `Flow ID ... Timestamp` or the `flow_id ... end_reason` of the other families), read beside
//! the dataset loader, which keeps only the model's columns.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::DetectError;

/// The identity of one table row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableIdentity {
    pub flow_id: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub protocol: u8,
    pub start_ns: i64,
    pub end_ns: i64,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    /// `end_reason` is `early`.
    pub early: bool,
}

/// Column names of each identity field, in the spellings `extract` writes.
const FIELDS: [(&str, &[&str]); 14] = [
    ("flow_id", &["Flow ID", "flow_id"]),
    ("src_ip", &["Src IP", "src_ip"]),
    ("src_port", &["Src Port", "src_port"]),
    ("dst_ip", &["Dst IP", "dst_ip"]),
    ("dst_port", &["Dst Port", "dst_port"]),
    ("protocol", &["Protocol", "protocol"]),
    ("first_ts_ns", &["first_ts_ns"]),
    ("last_ts_ns", &["last_ts_ns"]),
    ("duration_us", &["Flow Duration"]),
    ("fwd_packets", &["Total Fwd Packet", "packets"]),
    ("bwd_packets", &["Total Bwd packets"]),
    ("fwd_bytes", &["Total Length of Fwd Packet"]),
    ("bwd_bytes", &["Total Length of Bwd Packet"]),
    ("end_reason", &["end_reason"]),
];

/// Where each field is in the header.
fn field_positions(header: &[String]) -> [Option<usize>; FIELDS.len()] {
    FIELDS.map(|(_, names)| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim() == *n))
    })
}

fn identity_of(
    cell: impl Fn(usize) -> Option<String>,
    positions: &[Option<usize>],
) -> TableIdentity {
    let text = |f: usize| positions[f].and_then(&cell).unwrap_or_default();
    let number = |f: usize| -> Option<f64> { text(f).trim().parse::<f64>().ok() };
    let int = |f: usize| {
        number(f)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64)
    };
    // Nanosecond timestamps need all 64 bits (an f64 would round them).
    let nanos = |f: usize| text(f).trim().parse::<i64>().ok();
    let start_ns = nanos(6).unwrap_or(0);
    let end_ns = match (nanos(7), number(8)) {
        (Some(last), _) => last,
        (None, Some(duration_us)) if duration_us.is_finite() => {
            start_ns + (duration_us * 1000.0) as i64
        }
        _ => start_ns,
    };
    let packets = match (int(9), int(10)) {
        (Some(f), Some(b)) => Some(f + b),
        (one, None) => one,
        (None, other) => other,
    };
    let bytes = match (int(11), int(12)) {
        (Some(f), Some(b)) => Some(f + b),
        _ => None,
    };
    TableIdentity {
        flow_id: text(0),
        src_ip: text(1),
        src_port: int(2).map_or(0, |v| v as u16),
        dst_ip: text(3),
        dst_port: int(4).map_or(0, |v| v as u16),
        protocol: int(5).map_or(0, |v| v as u8),
        start_ns,
        end_ns,
        packets,
        bytes,
        early: text(13) == "early",
    }
}

/// The identity of every row of `path` (CSV, gzip CSV or Parquet); `rows` is what the dataset
/// loader read, and the two must agree. A table without a header (NSL-KDD; the loader's
/// [`nadir_dataset::LoadReport::has_header`]) has rows but no identity.
pub fn read_identities(
    path: &Path,
    rows: usize,
    has_header: bool,
) -> Result<Vec<TableIdentity>, DetectError> {
    let io = |e: std::io::Error| DetectError::Input(format!("{}: {e}", path.display()));
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(io)?;
    let n = file.read(&mut magic).map_err(io)?;
    let identities = if n == 4 && &magic == b"PAR1" {
        read_parquet(path)?
    } else {
        let file = File::open(path).map_err(io)?;
        let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(BufReader::new(file))
        };
        read_csv(path, reader, has_header)?
    };
    if identities.len() != rows {
        return Err(DetectError::Input(format!(
            "{}: {} rows with identity columns but {} feature rows were loaded",
            path.display(),
            identities.len(),
            rows
        )));
    }
    Ok(identities)
}

fn read_csv(
    path: &Path,
    reader: Box<dyn Read>,
    has_header: bool,
) -> Result<Vec<TableIdentity>, DetectError> {
    let bad = |e: csv::Error| DetectError::Input(format!("{}: {e}", path.display()));
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(has_header)
        .from_reader(reader);
    let header: Vec<String> = if has_header {
        csv.headers()
            .map_err(bad)?
            .iter()
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    let positions = field_positions(&header);
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    while csv.read_record(&mut record).map_err(bad)? {
        // The dataset loader skips blank lines; so does this.
        if record.len() == 1 && record.get(0).is_some_and(str::is_empty) {
            continue;
        }
        out.push(identity_of(
            |i| record.get(i).map(str::to_string),
            &positions,
        ));
    }
    Ok(out)
}

fn read_parquet(path: &Path) -> Result<Vec<TableIdentity>, DetectError> {
    let bad = |e: &dyn std::fmt::Display| DetectError::Input(format!("{}: {e}", path.display()));
    let file = File::open(path).map_err(|e| bad(&e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let positions = field_positions(&header);
    let mut reader = builder.build().map_err(|e| bad(&e))?;
    let mut out = Vec::new();
    while let Some(batch) = nadir_dataset::load::next_parquet_batch(&mut reader) {
        let batch = batch.map_err(|e| bad(&e))?;
        let mut texts: Vec<Option<arrow::array::ArrayRef>> = vec![None; header.len()];
        for &i in positions.iter().flatten() {
            texts[i] = Some(cast(batch.column(i), &DataType::Utf8).map_err(|e| bad(&e))?);
        }
        for row in 0..batch.num_rows() {
            out.push(identity_of(
                |i| {
                    let column = texts.get(i)?.as_ref()?;
                    (!column.is_null(row)).then(|| column.as_string::<i32>().value(row).to_string())
                },
                &positions,
            ));
        }
    }
    Ok(out)
}
