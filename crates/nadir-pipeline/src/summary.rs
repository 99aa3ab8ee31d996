//! Counters of one run, for the summary a verb prints at the end.

use nadir_decode::SkipCounts;
use nadir_flow::FlowStats;

/// Counters of the whole run (all capture files together).
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Capture files started (also those that failed to open).
    pub files: usize,
    pub packets_read: u64,
    /// Bytes read from the captures (compressed size for compressed files).
    pub bytes_read: u64,
    /// Packets read but not decoded, per reason.
    pub skipped: SkipCounts,
    pub flows: FlowStats,
    /// Rows written to the output.
    pub rows: u64,
    /// Flow-scope windows: packets past the per-flow bound.
    pub packets_past_window_bound: u64,
    /// Records whose sub-second timestamp field held a whole second or more (kept, the
    /// excess carried into the seconds).
    pub subsecond_out_of_range: u64,
    /// Per-file errors (a capture that would not open or broke off mid-file); the
    /// run goes on with the next file and the caller reports them at the end.
    pub errors: Vec<String>,
}
