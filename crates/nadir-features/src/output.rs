//! Feature writers: CSV, Parquet and JSON lines behind one streaming [`RowSink`].
//!
//! A family describes its columns once in a [`TableSchema`]; rows are then pushed
//! value by value ([`RowSink::put`]) and closed with [`RowSink::end_row`], so a
//! window of 1,000 values needs no intermediate `Vec` per row. Writers keep their
//! buffers between rows: nothing is allocated per row once they are warm.
//!
//! Type mapping: CSV writes numbers in Rust's shortest round-trip form, NaN as `NaN`
//! and infinities as `Infinity`/`-Infinity` (the spelling of the public CIC CSVs);
//! JSON lines write non-finite floats as `null` (JSON has no NaN); Parquet keeps
//! each column's type (strings UTF-8, counts and ports integers, statistics
//! float64, byte tensors uint8) with Snappy compression.

mod flow_columns;

pub use flow_columns::{
    end_reason_name, push_flow_columns, put_flow_columns, FlowColumnText, FLOW_COLUMNS,
};

use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float32Builder, Float64Builder, Int64Builder, StringBuilder, UInt16Builder,
    UInt64Builder, UInt8Builder,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::cic::format::{write_plain_double, write_plain_single};
use crate::cic::{write_csv_field, write_int, write_uint};
use crate::roles::{ColumnRole, DeclaredRoles, PARQUET_KEY};

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Csv,
    Parquet,
    JsonLines,
}

impl OutputFormat {
    /// The conventional file extension.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
            OutputFormat::JsonLines => "jsonl",
        }
    }
}

impl std::str::FromStr for OutputFormat {
    type Err = OutputError;
    fn from_str(s: &str) -> Result<Self, OutputError> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(OutputFormat::Csv),
            "parquet" | "pq" => Ok(OutputFormat::Parquet),
            "jsonl" | "json" | "ndjson" => Ok(OutputFormat::JsonLines),
            _ => Err(OutputError::UnknownFormat(s.to_string())),
        }
    }
}

/// The type of one output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Utf8,
    Int64,
    UInt64,
    UInt16,
    UInt8,
    Float64,
    Float32,
}

impl ColumnType {
    fn arrow(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::UInt64 => DataType::UInt64,
            ColumnType::UInt16 => DataType::UInt16,
            ColumnType::UInt8 => DataType::UInt8,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Float32 => DataType::Float32,
        }
    }
}

/// One named, typed column and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnType,
    pub role: ColumnRole,
}

/// The ordered columns of one feature table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSchema {
    columns: Vec<Column>,
}

impl TableSchema {
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a column (builder style).
    pub fn with(mut self, name: impl Into<String>, kind: ColumnType, role: ColumnRole) -> Self {
        self.push(name, kind, role);
        self
    }
    pub fn push(&mut self, name: impl Into<String>, kind: ColumnType, role: ColumnRole) {
        self.columns.push(Column {
            name: name.into(),
            kind,
            role,
        });
    }
    /// The roles of the columns, as readers of the table need them declared.
    pub fn declared_roles(&self) -> DeclaredRoles {
        DeclaredRoles::new(self.columns.iter().map(|c| (c.name.clone(), c.role)))
    }
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
    pub fn len(&self) -> usize {
        self.columns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// One cell, borrowed for the duration of the `put` call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    U16(u16),
    U8(u8),
    F64(f64),
    F32(f32),
}

impl Value<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::I64(_) => "int64",
            Value::U64(_) => "uint64",
            Value::U16(_) => "uint16",
            Value::U8(_) => "uint8",
            Value::F64(_) => "float64",
            Value::F32(_) => "float32",
        }
    }
}

/// What went wrong while writing features.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("unknown output format {0:?} (expected csv, parquet or jsonl)")]
    UnknownFormat(String),
    #[error("writing row {row}: {source}")]
    Io {
        row: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("writing Parquet at row {row}: {source}")]
    Parquet {
        row: u64,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("building Arrow batch at row {row}: {source}")]
    Arrow {
        row: u64,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("row {row} has {got} values, the schema has {expected} columns")]
    RowWidth {
        row: u64,
        got: usize,
        expected: usize,
    },
    #[error("row {row}, column {column:?}: a {got} value in a {expected:?} column")]
    TypeMismatch {
        row: u64,
        column: String,
        got: &'static str,
        expected: ColumnType,
    },
    #[error("the writer was already finished")]
    Finished,
}

/// A streaming table writer: `put` each value of a row in column order, then `end_row`.
pub trait RowSink: Send {
    /// Adds the next value of the current row. Errors are kept and reported by
    /// [`RowSink::end_row`] so callers can push a row without checking each cell.
    fn put(&mut self, value: Value<'_>);
    /// Closes the current row; checks its width and writes it (or buffers it).
    fn end_row(&mut self) -> Result<(), OutputError>;
    /// Flushes everything and writes any footer. Further rows are refused.
    fn finish(&mut self) -> Result<(), OutputError>;
    /// Rows completed so far.
    fn rows(&self) -> u64;
    fn schema(&self) -> &TableSchema;
}

/// Whether `path` must be written where it is: it exists and is not a regular file (a device
/// such as `/dev/null`, a FIFO to a log shipper). Writers that otherwise write a temporary file
/// and rename it into place, or rotate by renaming, would replace it with a file.
pub fn writes_in_place(path: &std::path::Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// A writer of `format` over `out`, with the header (CSV) written at once.
pub fn open_sink(
    format: OutputFormat,
    schema: TableSchema,
    out: Box<dyn Write + Send>,
) -> Result<Box<dyn RowSink>, OutputError> {
    Ok(match format {
        OutputFormat::Csv => Box::new(CsvSink::new(schema, out)?),
        OutputFormat::JsonLines => Box::new(JsonLinesSink::new(schema, out)),
        OutputFormat::Parquet => Box::new(ParquetSink::new(schema, out)?),
    })
}

/// Formats a float the way the public CIC CSVs spell non-finite values.
fn write_float(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        write_plain_double(buf, v);
    }
}

fn write_value_text(buf: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Str(s) => buf.extend_from_slice(s.as_bytes()),
        Value::I64(v) => write_int(buf, v),
        Value::U64(v) => write_uint(buf, v),
        Value::U16(v) => write_uint(buf, v.into()),
        Value::U8(v) => write_uint(buf, v.into()),
        Value::F64(v) => write_float(buf, v),
        // f32 printed as f32 (shortest form of the f32, not of its f64 widening).
        Value::F32(v) if v.is_finite() => write_plain_single(buf, v),
        Value::F32(v) => write_float(buf, f64::from(v)),
    }
}

/// CSV with a header row. Fields are quoted by [`write_csv_field`] (RFC 4180) rather
/// than the `csv` crate's writer: rows are assembled cell by cell, and a rejected
/// row must leave no partial record behind, so a line is written out only when it
/// is complete.
pub struct CsvSink {
    lines: LineOut,
    schema: TableSchema,
}

impl CsvSink {
    pub fn new(schema: TableSchema, out: Box<dyn Write + Send>) -> Result<Self, OutputError> {
        let mut lines = LineOut::new(out);
        for (i, column) in schema.columns().iter().enumerate() {
            if i > 0 {
                lines.line.push(b',');
            }
            write_csv_field(&mut lines.line, &column.name);
        }
        lines.line.push(b'\n');
        lines.write_line()?;
        Ok(CsvSink { lines, schema })
    }
}

impl RowSink for CsvSink {
    fn put(&mut self, value: Value<'_>) {
        let line = &mut self.lines.line;
        if self.lines.in_row > 0 {
            line.push(b',');
        }
        self.lines.in_row += 1;
        match value {
            Value::Str(s) => write_csv_field(line, s),
            other => write_value_text(line, other), // numbers never need quoting
        }
    }

    fn end_row(&mut self) -> Result<(), OutputError> {
        self.lines
            .end_row(self.schema.len(), |line, _| line.push(b'\n'))
    }

    fn finish(&mut self) -> Result<(), OutputError> {
        self.lines.finish()
    }

    fn rows(&self) -> u64 {
        self.lines.rows
    }
    fn schema(&self) -> &TableSchema {
        &self.schema
    }
}

/// What the line-per-row sinks (CSV, JSON lines) share: the row being assembled, the rows
/// written, the buffered output, and the errors (a row of the wrong width is dropped whole;
/// an I/O error, a closed pipe included, is [`OutputError::Io`] with the row number; rows
/// after `finish` are refused).
struct LineOut {
    out: std::io::BufWriter<Box<dyn Write + Send>>,
    /// The current row, written out only when complete.
    line: Vec<u8>,
    /// Values put in the current row.
    in_row: usize,
    rows: u64,
    finished: bool,
}

impl LineOut {
    fn new(out: Box<dyn Write + Send>) -> Self {
        LineOut {
            out: std::io::BufWriter::with_capacity(1 << 16, out),
            line: Vec::with_capacity(1024),
            in_row: 0,
            rows: 0,
            finished: false,
        }
    }

    /// Writes out and clears the assembled line (the header, or a row after `rows` is counted).
    fn write_line(&mut self) -> Result<(), OutputError> {
        let result = self.out.write_all(&self.line);
        self.line.clear();
        result.map_err(|source| OutputError::Io {
            row: self.rows,
            source,
        })
    }

    /// Closes the current row: `close` ends the line (given the row's width) once the width
    /// is checked against `columns`, then the line is written.
    fn end_row(
        &mut self,
        columns: usize,
        close: impl FnOnce(&mut Vec<u8>, usize),
    ) -> Result<(), OutputError> {
        if self.finished {
            return Err(OutputError::Finished);
        }
        let width = std::mem::take(&mut self.in_row);
        if width != columns {
            self.line.clear();
            return Err(OutputError::RowWidth {
                row: self.rows + 1,
                got: width,
                expected: columns,
            });
        }
        close(&mut self.line, width);
        self.rows += 1;
        self.write_line()
    }

    fn finish(&mut self) -> Result<(), OutputError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.out.flush().map_err(|source| OutputError::Io {
            row: self.rows,
            source,
        })
    }
}

/// One JSON object per line, keys in schema order.
pub struct JsonLinesSink {
    lines: LineOut,
    schema: TableSchema,
    /// `"name":` for each column, escaped once.
    keys: Vec<Vec<u8>>,
}

impl JsonLinesSink {
    pub fn new(schema: TableSchema, out: Box<dyn Write + Send>) -> Self {
        let keys = schema
            .columns()
            .iter()
            .map(|c| {
                let mut key = serde_json::to_vec(&c.name).unwrap_or_default();
                key.push(b':');
                key
            })
            .collect();
        JsonLinesSink {
            lines: LineOut::new(out),
            schema,
            keys,
        }
    }
}

impl RowSink for JsonLinesSink {
    fn put(&mut self, value: Value<'_>) {
        let line = &mut self.lines.line;
        let index = self.lines.in_row;
        self.lines.in_row += 1;
        line.push(if index == 0 { b'{' } else { b',' });
        match self.keys.get(index) {
            Some(key) => line.extend_from_slice(key),
            // Too many values: end_row reports the width; keep the line well-formed meanwhile.
            None => line.extend_from_slice(b"\"_extra\":"),
        }
        // serde_json spells every value (non-finite floats as null); writing into a Vec
        // cannot fail. As fast as the CSV writer's digits: 122 vs 130 ms for 20k cic-shaped
        // rows (`jsonl_number_speed` below, release).
        let _ = match value {
            Value::Str(s) => serde_json::to_writer(line, s),
            Value::I64(v) => serde_json::to_writer(line, &v),
            Value::U64(v) => serde_json::to_writer(line, &v),
            Value::U16(v) => serde_json::to_writer(line, &v),
            Value::U8(v) => serde_json::to_writer(line, &v),
            Value::F64(v) => serde_json::to_writer(line, &v),
            Value::F32(v) => serde_json::to_writer(line, &v),
        };
    }

    fn end_row(&mut self) -> Result<(), OutputError> {
        self.lines.end_row(self.schema.len(), |line, width| {
            if width == 0 {
                line.push(b'{');
            }
            line.extend_from_slice(b"}\n");
        })
    }

    fn finish(&mut self) -> Result<(), OutputError> {
        self.lines.finish()
    }

    fn rows(&self) -> u64 {
        self.lines.rows
    }
    fn schema(&self) -> &TableSchema {
        &self.schema
    }
}

/// Typed column buffer of the Parquet writer.
enum ColumnBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    UInt64(UInt64Builder),
    UInt16(UInt16Builder),
    UInt8(UInt8Builder),
    Float64(Float64Builder),
    Float32(Float32Builder),
}

impl ColumnBuilder {
    fn new(kind: ColumnType, capacity: usize) -> Self {
        match kind {
            ColumnType::Utf8 => {
                ColumnBuilder::Utf8(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::with_capacity(capacity)),
            ColumnType::UInt64 => ColumnBuilder::UInt64(UInt64Builder::with_capacity(capacity)),
            ColumnType::UInt16 => ColumnBuilder::UInt16(UInt16Builder::with_capacity(capacity)),
            ColumnType::UInt8 => ColumnBuilder::UInt8(UInt8Builder::with_capacity(capacity)),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::with_capacity(capacity)),
            ColumnType::Float32 => ColumnBuilder::Float32(Float32Builder::with_capacity(capacity)),
        }
    }

    /// Appends `value`, widening losslessly where the column allows it; `false` when
    /// the value does not fit the column's type.
    fn append(&mut self, value: Value<'_>) -> bool {
        match (self, value) {
            (ColumnBuilder::Utf8(b), Value::Str(s)) => b.append_value(s),
            (ColumnBuilder::Int64(b), Value::I64(v)) => b.append_value(v),
            (ColumnBuilder::Int64(b), Value::U16(v)) => b.append_value(i64::from(v)),
            (ColumnBuilder::Int64(b), Value::U8(v)) => b.append_value(i64::from(v)),
            (ColumnBuilder::UInt64(b), Value::U64(v)) => b.append_value(v),
            (ColumnBuilder::UInt64(b), Value::U16(v)) => b.append_value(u64::from(v)),
            (ColumnBuilder::UInt64(b), Value::U8(v)) => b.append_value(u64::from(v)),
            (ColumnBuilder::UInt16(b), Value::U16(v)) => b.append_value(v),
            (ColumnBuilder::UInt16(b), Value::U8(v)) => b.append_value(u16::from(v)),
            (ColumnBuilder::UInt8(b), Value::U8(v)) => b.append_value(v),
            (ColumnBuilder::Float64(b), Value::F64(v)) => b.append_value(v),
            (ColumnBuilder::Float64(b), Value::F32(v)) => b.append_value(f64::from(v)),
            (ColumnBuilder::Float32(b), Value::F32(v)) => b.append_value(v),
            _ => return false,
        }
        true
    }

    /// Pads a short row so every column keeps the same length before the error is reported.
    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Utf8(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::UInt64(b) => b.append_null(),
            ColumnBuilder::UInt16(b) => b.append_null(),
            ColumnBuilder::UInt8(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
        }
    }

    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            ColumnBuilder::Utf8(b) => b.len(),
            ColumnBuilder::Int64(b) => b.len(),
            ColumnBuilder::UInt64(b) => b.len(),
            ColumnBuilder::UInt16(b) => b.len(),
            ColumnBuilder::UInt8(b) => b.len(),
            ColumnBuilder::Float64(b) => b.len(),
            ColumnBuilder::Float32(b) => b.len(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Utf8(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt64(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt16(b) => Arc::new(b.finish()),
            ColumnBuilder::UInt8(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
        }
    }
}

/// About this many cells are buffered before a record batch is written, so wide
/// window tables and narrow flow tables both hold a bounded amount in memory.
const PARQUET_CELLS_PER_BATCH: usize = 1 << 22;

/// Parquet through `arrow`'s `ArrowWriter`, one record batch per bounded chunk of rows.
pub struct ParquetSink {
    writer: Option<ArrowWriter<Box<dyn Write + Send>>>,
    arrow_schema: Arc<Schema>,
    schema: TableSchema,
    builders: Vec<ColumnBuilder>,
    batch_rows: usize,
    in_row: usize,
    rows: u64,
    error: Option<OutputError>,
}

impl ParquetSink {
    pub fn new(schema: TableSchema, out: Box<dyn Write + Send>) -> Result<Self, OutputError> {
        // Columns are non-nullable: a rejected row is padded, then cut off before
        // its batch is written (`discard_partial_row`).
        let fields: Vec<Field> = schema
            .columns()
            .iter()
            .map(|c| Field::new(&c.name, c.kind.arrow(), false))
            .collect();
        let arrow_schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                PARQUET_KEY.to_string(),
                schema.declared_roles().to_json(),
            )]))
            .build();
        let writer = ArrowWriter::try_new(out, arrow_schema.clone(), Some(props))
            .map_err(|source| OutputError::Parquet { row: 0, source })?;
        let batch_rows = (PARQUET_CELLS_PER_BATCH / schema.len().max(1)).clamp(1, 65_536);
        let builders = schema
            .columns()
            .iter()
            .map(|c| ColumnBuilder::new(c.kind, batch_rows))
            .collect();
        Ok(ParquetSink {
            writer: Some(writer),
            arrow_schema,
            schema,
            builders,
            batch_rows,
            in_row: 0,
            rows: 0,
            error: None,
        })
    }

    fn flush_batch(&mut self) -> Result<(), OutputError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(OutputError::Finished);
        };
        if self.builders.first().is_none_or(|b| b.len() == 0) {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let batch = RecordBatch::try_new(self.arrow_schema.clone(), arrays).map_err(|source| {
            OutputError::Arrow {
                row: self.rows,
                source,
            }
        })?;
        writer.write(&batch).map_err(|source| OutputError::Parquet {
            row: self.rows,
            source,
        })
    }
}

impl RowSink for ParquetSink {
    fn put(&mut self, value: Value<'_>) {
        let index = self.in_row;
        self.in_row += 1;
        if self.error.is_some() {
            return;
        }
        let Some(builder) = self.builders.get_mut(index) else {
            return;
        };
        if !builder.append(value) {
            let column = &self.schema.columns()[index];
            self.error = Some(OutputError::TypeMismatch {
                row: self.rows + 1,
                column: column.name.clone(),
                got: value.type_name(),
                expected: column.kind,
            });
            builder.append_null();
        }
    }

    fn end_row(&mut self) -> Result<(), OutputError> {
        if self.writer.is_none() {
            return Err(OutputError::Finished);
        }
        let width = std::mem::take(&mut self.in_row);
        let problem = self.error.take().or_else(|| {
            (width != self.schema.len()).then(|| OutputError::RowWidth {
                row: self.rows + 1,
                got: width,
                expected: self.schema.len(),
            })
        });
        if let Some(err) = problem {
            // Drop the partial row: rebuild the pending batch without it.
            let target = self.rows as usize % self.batch_rows;
            if self.builders.iter().any(|b| b.len() != target) {
                self.discard_partial_row(target);
            }
            return Err(err);
        }
        self.rows += 1;
        if self
            .builders
            .first()
            .is_some_and(|b| b.len() >= self.batch_rows)
        {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), OutputError> {
        if self.writer.is_none() {
            return Ok(());
        }
        self.flush_batch()?;
        if let Some(writer) = self.writer.take() {
            writer.close().map_err(|source| OutputError::Parquet {
                row: self.rows,
                source,
            })?;
        }
        Ok(())
    }

    fn rows(&self) -> u64 {
        self.rows
    }
    fn schema(&self) -> &TableSchema {
        &self.schema
    }
}

impl ParquetSink {
    /// Rare error path: rebuilds the pending columns truncated to `keep` rows.
    fn discard_partial_row(&mut self, keep: usize) {
        for builder in &mut self.builders {
            let array = builder.finish();
            let kept = array.slice(0, keep.min(array.len()));
            let mut fresh = ColumnBuilder::new(column_type_of(array.data_type()), self.batch_rows);
            append_array(&mut fresh, kept.as_ref());
            *builder = fresh;
        }
    }
}

fn column_type_of(data_type: &DataType) -> ColumnType {
    match data_type {
        DataType::Utf8 => ColumnType::Utf8,
        DataType::Int64 => ColumnType::Int64,
        DataType::UInt64 => ColumnType::UInt64,
        DataType::UInt16 => ColumnType::UInt16,
        DataType::UInt8 => ColumnType::UInt8,
        DataType::Float32 => ColumnType::Float32,
        _ => ColumnType::Float64,
    }
}

fn append_array(builder: &mut ColumnBuilder, array: &dyn arrow::array::Array) {
    use arrow::array::AsArray;
    use arrow::datatypes::{
        Float32Type, Float64Type, Int64Type, UInt16Type, UInt64Type, UInt8Type,
    };
    match builder {
        ColumnBuilder::Utf8(b) => array
            .as_string::<i32>()
            .iter()
            .for_each(|v| b.append_option(v)),
        ColumnBuilder::Int64(b) => array
            .as_primitive::<Int64Type>()
            .iter()
            .for_each(|v| b.append_option(v)),
        ColumnBuilder::UInt64(b) => array
            .as_primitive::<UInt64Type>()
            .iter()
            .for_each(|v| b.append_option(v)),
        ColumnBuilder::UInt16(b) => array
            .as_primitive::<UInt16Type>()
            .iter()
            .for_each(|v| b.append_option(v)),
        ColumnBuilder::UInt8(b) => array
            .as_primitive::<UInt8Type>()
            .iter()
            .for_each(|v| b.append_option(v)),
        ColumnBuilder::Float64(b) => array
            .as_primitive::<Float64Type>()
            .iter()
            .for_each(|v| b.append_option(v)),
        ColumnBuilder::Float32(b) => array
            .as_primitive::<Float32Type>()
            .iter()
            .for_each(|v| b.append_option(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A `Write` whose bytes the test can read after the sink is done.
    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);
    impl Write for SharedBuf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl SharedBuf {
        fn bytes(&self) -> Vec<u8> {
            self.0.lock().map(|b| b.clone()).unwrap_or_default()
        }
    }

    fn schema() -> TableSchema {
        TableSchema::new()
            .with("name", ColumnType::Utf8, ColumnRole::Feature)
            .with("count", ColumnType::UInt64, ColumnRole::Feature)
            .with("rate", ColumnType::Float64, ColumnRole::Feature)
            .with("b0", ColumnType::UInt8, ColumnRole::Feature)
    }

    fn write_rows(format: OutputFormat) -> Vec<u8> {
        let buf = SharedBuf::default();
        let mut sink = open_sink(format, schema(), Box::new(buf.clone())).expect("open");
        for (name, count, rate, byte) in [
            ("a,\"b\"", 1u64, 0.5, 7u8),
            ("c", 2, f64::INFINITY, 255),
            ("d", 3, f64::NAN, 0),
        ] {
            sink.put(Value::Str(name));
            sink.put(Value::U64(count));
            sink.put(Value::F64(rate));
            sink.put(Value::U8(byte));
            sink.end_row().expect("row");
        }
        assert_eq!(sink.rows(), 3);
        sink.finish().expect("finish");
        buf.bytes()
    }

    #[test]
    fn csv_quotes_strings_and_spells_non_finite_like_cic() {
        let text = String::from_utf8(write_rows(OutputFormat::Csv)).expect("utf8");
        assert_eq!(
            text,
            "name,count,rate,b0\n\"a,\"\"b\"\"\",1,0.5,7\nc,2,Infinity,255\nd,3,NaN,0\n"
        );
    }

    #[test]
    fn jsonl_escapes_and_writes_null_for_non_finite() {
        let text = String::from_utf8(write_rows(OutputFormat::JsonLines)).expect("utf8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("valid json line"))
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["name"], "a,\"b\"");
        assert_eq!(lines[0]["rate"], 0.5);
        assert!(lines[1]["rate"].is_null());
        assert_eq!(lines[1]["b0"], 255);
        assert_eq!(
            text.lines().next().map(|l| l.starts_with("{\"name\":")),
            Some(true)
        );
    }

    #[test]
    fn parquet_round_trips_types_and_values() {
        use arrow::array::AsArray;
        use arrow::datatypes::{Float64Type, UInt64Type, UInt8Type};
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(&write_rows(OutputFormat::Parquet))
            .expect("write");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, 3);
        let batch = &batches[0];
        assert_eq!(batch.schema().field(3).data_type(), &DataType::UInt8);
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "a,\"b\"");
        assert_eq!(batch.column(1).as_primitive::<UInt64Type>().value(2), 3);
        assert!(batch
            .column(2)
            .as_primitive::<Float64Type>()
            .value(1)
            .is_infinite());
        assert_eq!(batch.column(3).as_primitive::<UInt8Type>().value(1), 255);
    }

    #[test]
    fn wrong_width_and_type_are_errors_and_later_rows_still_write() {
        for format in [
            OutputFormat::Csv,
            OutputFormat::JsonLines,
            OutputFormat::Parquet,
        ] {
            let buf = SharedBuf::default();
            let mut sink = open_sink(format, schema(), Box::new(buf.clone())).expect("open");
            sink.put(Value::Str("short"));
            assert!(
                matches!(
                    sink.end_row(),
                    Err(OutputError::RowWidth {
                        got: 1,
                        expected: 4,
                        ..
                    })
                ),
                "{format:?}"
            );
            if format == OutputFormat::Parquet {
                sink.put(Value::F64(1.0)); // not a string
                sink.put(Value::U64(1));
                sink.put(Value::F64(1.0));
                sink.put(Value::U8(1));
                assert!(matches!(
                    sink.end_row(),
                    Err(OutputError::TypeMismatch { .. })
                ));
            }
            sink.put(Value::Str("ok"));
            sink.put(Value::U64(1));
            sink.put(Value::F64(2.0));
            sink.put(Value::U8(3));
            sink.end_row().expect("good row after bad ones");
            sink.finish().expect("finish");
            assert_eq!(sink.rows(), 1);
        }
    }

    /// JSON lines numbers: the CSV writer's digits (what the sink does) against
    /// `serde_json::to_writer` per value, over cic-shaped rows (7 strings, 80 numbers).
    /// `cargo test --release -p nadir-features --lib jsonl_number_speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement; run in release"]
    fn jsonl_number_speed() {
        use std::time::Instant;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let rows: Vec<Vec<f64>> = (0..20_000)
            .map(|_| {
                (0..80)
                    .map(|i| match next() % 4 {
                        0 => 0.0,
                        1 => (next() % 100_000) as f64,
                        2 => (next() % 1_000_000_000) as f64 / 7.0,
                        _ if i % 2 == 0 => f64::NAN,
                        _ => (next() % 1000) as f64 * 1e-6,
                    })
                    .collect()
            })
            .collect();
        let strings = ["10.0.0.1-10.0.0.2-1234-80-6", "10.0.0.1", "10.0.0.2"];
        let time = |put: &dyn Fn(&mut Vec<u8>, f64)| {
            let mut best = f64::MAX;
            let mut out = Vec::with_capacity(64 << 20);
            for _ in 0..5 {
                out.clear();
                let start = Instant::now();
                for row in &rows {
                    out.push(b'{');
                    for s in strings.iter().chain(&strings).chain(&strings[..1]) {
                        out.extend_from_slice(b"\"Src IP\":");
                        let _ = serde_json::to_writer(&mut out, s);
                        out.push(b',');
                    }
                    for &x in row {
                        out.extend_from_slice(b"\"Flow IAT Mean\":");
                        put(&mut out, std::hint::black_box(x));
                        out.push(b',');
                    }
                    out.extend_from_slice(b"}\n");
                }
                best = best.min(start.elapsed().as_secs_f64());
            }
            (best * 1e3, out)
        };
        let (hand_ms, hand) = time(&|out, x| {
            if x.is_finite() {
                write_value_text(out, Value::F64(x))
            } else {
                out.extend_from_slice(b"null")
            }
        });
        let (serde_ms, serde) = time(&|out, x| {
            let _ = serde_json::to_writer(out, &x);
        });
        let mb = hand.len() as f64 / 1e6;
        println!(
            "20k cic-shaped rows ({mb:.1} MB): CSV writer digits {hand_ms:.1} ms, \
             serde_json::to_writer {serde_ms:.1} ms ({:.1} MB)",
            serde.len() as f64 / 1e6
        );
    }

    #[test]
    fn format_names_parse() {
        assert_eq!("CSV".parse::<OutputFormat>().ok(), Some(OutputFormat::Csv));
        assert_eq!(
            "parquet".parse::<OutputFormat>().ok(),
            Some(OutputFormat::Parquet)
        );
        assert_eq!(
            "jsonl".parse::<OutputFormat>().ok(),
            Some(OutputFormat::JsonLines)
        );
        assert!("xls".parse::<OutputFormat>().is_err());
    }
}
