//! The CSV reader: blocks of whole records read from (optionally gzip-compressed) input,
//! parsed on worker threads, assembled in file order.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use nadir_features::roles::DeclaredRoles;

use super::assemble::{Assembler, ChunkOut};
use super::cell::{parse_number, parse_timestamp};
use super::nsl_kdd;
use super::plan::{Action, Plan};
use super::{Dataset, LoadOptions};
use crate::error::DatasetError;

/// Bytes per block handed to a worker.
const BLOCK_BYTES: usize = 4 << 20;

struct Block {
    seq: u64,
    first_line: u64,
    bytes: Vec<u8>,
}

/// Reads blocks that end at a record boundary (a newline outside quotes).
struct BlockReader {
    inner: Box<dyn Read + Send>,
    carry: Vec<u8>,
    eof: bool,
    next_line: u64,
    next_seq: u64,
}

impl BlockReader {
    fn next_block(&mut self) -> std::io::Result<Option<Block>> {
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            if self.eof {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.emit(buf)));
            }
            let start = buf.len();
            buf.resize(start + BLOCK_BYTES, 0);
            let mut filled = start;
            while filled < buf.len() {
                match self.inner.read(&mut buf[filled..]) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(filled);
            if self.eof {
                continue;
            }
            if let Some(cut) = record_boundary(&buf) {
                self.carry = buf[cut..].to_vec();
                buf.truncate(cut);
                return Ok(Some(self.emit(buf)));
            }
            // No complete record yet (a very long one): read more.
        }
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Block {
        let block = Block {
            seq: self.next_seq,
            first_line: self.next_line,
            bytes,
        };
        self.next_seq += 1;
        self.next_line += memchr::memchr_iter(b'\n', &block.bytes).count() as u64;
        block
    }
}

/// Position just after the last newline that is outside double quotes (CSV escapes a quote as
/// `""`, so quote parity tells whether a position is inside a quoted field).
fn record_boundary(buf: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    let mut inside = false;
    let mut last = None;
    for i in memchr::memchr2_iter(b'"', b'\n', buf) {
        if buf[i] == b'"' {
            inside = !inside;
        } else if !inside {
            last = Some(i + 1);
        }
    }
    last
}

fn open(path: &Path) -> Result<(Box<dyn Read + Send>, u64, bool), DatasetError> {
    let file = std::fs::File::open(path).map_err(|e| DatasetError::io(path, e))?;
    let len = file
        .metadata()
        .map_err(|e| DatasetError::io(path, e))?
        .len();
    let mut file = std::io::BufReader::with_capacity(1 << 20, file);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(|e| DatasetError::io(path, e))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok((reader, len, gzip))
}

/// The first record as text and bytes, and where it ends.
type FirstRecord = (Vec<String>, Vec<Vec<u8>>, usize);

/// Splits the first record out of `block` (header or first data row).
fn first_record(path: &Path, block: &[u8]) -> Result<FirstRecord, DatasetError> {
    let probe = &block[..block.len().min(64 << 10)];
    if probe.contains(&0) {
        return Err(DatasetError::NotCsv {
            path: path.to_path_buf(),
            reason: "binary data (NUL bytes) in the first bytes".into(),
        });
    }
    let end = record_boundary(block).map_or(block.len(), |_| {
        // The first boundary, not the last.
        let mut inside = false;
        memchr::memchr2_iter(b'"', b'\n', block)
            .find(|&i| {
                if block[i] == b'"' {
                    inside = !inside;
                    false
                } else {
                    !inside
                }
            })
            .map_or(block.len(), |i| i + 1)
    });
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(&block[..end]);
    let mut record = csv::ByteRecord::new();
    let got = reader
        .read_byte_record(&mut record)
        .map_err(|e| DatasetError::NotCsv {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !got {
        return Err(DatasetError::NoRows {
            path: path.to_path_buf(),
        });
    }
    let raw: Vec<Vec<u8>> = record.iter().map(<[u8]>::to_vec).collect();
    let text = raw
        .iter()
        .map(|f| String::from_utf8(f.clone()))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|_| DatasetError::NotCsv {
            path: path.to_path_buf(),
            reason: "the first line is not UTF-8 text".into(),
        })?;
    Ok((text, raw, end))
}

pub(crate) fn load_csv(path: &Path, opts: &LoadOptions) -> Result<Dataset, DatasetError> {
    let (inner, file_len, gzip) = open(path)?;
    let mut reader = BlockReader {
        inner,
        carry: Vec::new(),
        eof: false,
        next_line: 1,
        next_seq: 0,
    };
    let first = reader.next_block().map_err(|e| DatasetError::io(path, e))?;
    let Some(mut first) = first else {
        return Err(DatasetError::NoRows {
            path: path.to_path_buf(),
        });
    };
    let (header, raw_first, header_end) = first_record(path, &first.bytes)?;
    let raw_refs: Vec<&[u8]> = raw_first.iter().map(Vec::as_slice).collect();
    let headerless = nsl_kdd::looks_like(&raw_refs);
    let plan = if headerless {
        let mut names = nsl_kdd::header();
        names.truncate(raw_first.len());
        Plan::build(path, &names, false, None, opts)?
    } else {
        if header.len() < 2 {
            return Err(DatasetError::NotCsv {
                path: path.to_path_buf(),
                reason: format!(
                    "the header has {} field(s); a dataset needs at least a feature and a label",
                    header.len()
                ),
            });
        }
        let declared =
            DeclaredRoles::read_sidecar(path).map_err(|message| DatasetError::DeclaredRoles {
                path: path.to_path_buf(),
                message,
            })?;
        Plan::build(path, &header, true, declared.as_ref(), opts)?
    };
    if !headerless {
        // Drop the header from the first block.
        first.bytes.drain(..header_end);
        first.first_line += 1;
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    };
    let expected_fields = plan.names.len();
    let mut assembler = Assembler::new(path, &plan, opts);
    let mut reserved = false;

    let outcome: Result<(), DatasetError> = std::thread::scope(|s| {
        let (work_tx, work_rx) = mpsc::sync_channel::<Block>(threads);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) =
            mpsc::sync_channel::<(u64, Result<ChunkOut, DatasetError>)>(threads * 2);
        let plan = &plan;
        for _ in 0..threads {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            s.spawn(move || loop {
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(block) = next else { return };
                let parsed = parse_block(path, plan, opts, &block, expected_fields);
                if done_tx.send((block.seq, parsed)).is_err() {
                    return;
                }
            });
        }
        drop(work_rx);
        let reader_done = done_tx.clone();
        s.spawn(move || {
            if work_tx.send(first).is_err() {
                return;
            }
            loop {
                match reader.next_block() {
                    Ok(Some(block)) => {
                        if work_tx.send(block).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = reader_done.send((reader.next_seq, Err(DatasetError::io(path, e))));
                        return;
                    }
                }
            }
        });
        drop(done_tx);
        let mut pending = BTreeMap::new();
        let mut expected = 0u64;
        for (seq, parsed) in done_rx.iter() {
            pending.insert(seq, parsed);
            while let Some(parsed) = pending.remove(&expected) {
                let chunk = parsed?;
                if !reserved && !gzip && chunk.rows > 0 {
                    // Size the matrix once from the first block's bytes per row (no doubling).
                    let est_rows = (file_len as f64 / chunk.input_bytes as f64
                        * chunk.rows as f64
                        * 1.02) as usize;
                    assembler
                        .x
                        .reserve_exact(est_rows.saturating_mul(plan.n_numeric()));
                    reserved = true;
                }
                assembler.push(chunk);
                expected += 1;
            }
        }
        Ok(())
    });
    outcome?;
    assembler.finish()
}

/// Field ranges of one record, reused across records.
struct Fields {
    ranges: Vec<(usize, usize)>,
}

fn parse_block(
    path: &Path,
    plan: &Plan,
    opts: &LoadOptions,
    block: &Block,
    expected: usize,
) -> Result<ChunkOut, DatasetError> {
    let mut out = ChunkOut::new(plan);
    out.input_bytes = block.bytes.len();
    let mut fields = Fields {
        ranges: Vec::with_capacity(expected + 1),
    };
    let bytes = &block.bytes;
    if memchr::memchr(b'"', bytes).is_none() {
        // Fast path, written by hand: without quotes a record is a line and fields split at
        // every comma, which memchr finds several times faster than a general CSV state machine.
        let mut line_no = block.first_line;
        let mut pos = 0;
        while pos < bytes.len() {
            let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
            let mut line = &bytes[pos..end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            pos = end + 1;
            if line.trim_ascii().is_empty() {
                out.blank_lines += 1;
            } else {
                fields.ranges.clear();
                let mut start = 0;
                for comma in memchr::memchr_iter(b',', line) {
                    fields.ranges.push((start, comma));
                    start = comma + 1;
                }
                fields.ranges.push((start, line.len()));
                record(
                    path,
                    plan,
                    opts,
                    &mut out,
                    line,
                    &fields.ranges,
                    line_no,
                    expected,
                )?;
            }
            line_no += 1;
        }
    } else {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[..]);
        let mut rec = csv::ByteRecord::new();
        loop {
            let line_no = block.first_line + reader.position().line().saturating_sub(1);
            match reader.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    return Err(DatasetError::Malformed {
                        path: path.to_path_buf(),
                        line: line_no,
                        message: e.to_string(),
                    })
                }
            }
            let line_no = rec
                .position()
                .map_or(line_no, |p| block.first_line + p.line().saturating_sub(1));
            if rec.len() == 1 && rec.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
                out.blank_lines += 1;
                continue;
            }
            fields.ranges.clear();
            fields
                .ranges
                .extend((0..rec.len()).filter_map(|i| rec.range(i).map(|r| (r.start, r.end))));
            record(
                path,
                plan,
                opts,
                &mut out,
                rec.as_slice(),
                &fields.ranges,
                line_no,
                expected,
            )?;
        }
    }
    Ok(out)
}

/// One record into the chunk. No allocation except for the first sighting of a label, group or
/// category value.
#[allow(clippy::too_many_arguments)]
#[inline]
fn record(
    path: &Path,
    plan: &Plan,
    opts: &LoadOptions,
    out: &mut ChunkOut,
    buf: &[u8],
    ranges: &[(usize, usize)],
    line: u64,
    expected: usize,
) -> Result<(), DatasetError> {
    if ranges.len() != expected {
        return out.bad_row(path, opts.on_bad_row, line, expected, ranges.len());
    }
    let n_num = plan.n_numeric();
    let base = out.x.len();
    out.x.resize(base + n_num, f32::NAN);
    let n_cat = plan.categorical.len();
    let cat_base = out.cats.len();
    out.cats.resize(cat_base + n_cat, 0);
    let mut has_label = false;
    for (col, (&action, &(start, end))) in plan.actions.iter().zip(ranges).enumerate() {
        let field = &buf[start..end];
        match action {
            Action::Skip => {}
            Action::Feature(i) => out.x[base + i] = parse_number(field, &mut out.counts[col], line),
            Action::Time(feature) => {
                let t = parse_timestamp(field);
                if t.is_none() {
                    out.time_bad += 1;
                }
                let t = t.unwrap_or(f64::NAN);
                out.time.push(t);
                if let Some(i) = feature {
                    out.x[base + i] = t as f32;
                }
            }
            Action::Category(slot) => {
                out.cats[cat_base + slot] = out.cat_vocab[slot].id(field.trim_ascii(), line);
            }
            Action::Label => {
                let value = field.trim_ascii();
                if value.is_empty() && !plan.labels_ignored {
                    return Err(DatasetError::UnknownLabel {
                        path: path.to_path_buf(),
                        line,
                        column: plan.label_name.clone().unwrap_or_default(),
                        value: String::new(),
                        known: "the label cell is empty".into(),
                    });
                }
                has_label = true;
                let id = out.label_vocab.id(value, line);
                out.labels.push(id);
            }
            Action::Group => {
                let id = out.group_vocab.id(field.trim_ascii(), line);
                out.groups.push(id);
            }
        }
    }
    debug_assert!(has_label || plan.label_name.is_none());
    out.rows += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_boundary_ignores_newlines_inside_quotes() {
        assert_eq!(record_boundary(b"a,b\nc,d\ne"), Some(8));
        assert_eq!(record_boundary(b"a,\"x\ny\"\nc,\"open\n"), Some(8));
        assert_eq!(record_boundary(b"no newline"), None);
    }
}
