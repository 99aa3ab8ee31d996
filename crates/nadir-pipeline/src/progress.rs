//! A progress bar over the bytes of all captures of a run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nadir_decode::SkipCounts;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over the bytes of all captures, hidden when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    total_files: usize,
    /// Bytes of files already finished.
    done_bytes: u64,
    /// Where the current input's decoder skips are published as the run goes (metrics).
    skips: Option<Arc<Mutex<SkipCounts>>>,
    /// Where the flow table's live flows are published as the run goes (metrics).
    live_flows: Option<Arc<AtomicU64>>,
    /// Packets between updates.
    every: u64,
}

impl Progress {
    /// A bar sized to the captures' lengths on disk (stdin counts as 0 bytes);
    /// never drawn when `disabled` or when stderr is not a terminal.
    pub fn new(captures: &[PathBuf], disabled: bool) -> Self {
        let total: u64 = captures
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        let bar = if disabled || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        };
        Progress {
            bar,
            total_files: captures.len(),
            done_bytes: 0,
            skips: None,
            live_flows: None,
            every: crate::PROGRESS_EVERY,
        }
    }

    /// A bar that is never drawn (tests, library callers without a terminal).
    pub fn hidden() -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            total_files: 0,
            done_bytes: 0,
            skips: None,
            live_flows: None,
            every: crate::PROGRESS_EVERY,
        }
    }

    /// Also publish the decoder's skip counts of the current input into `skips`, every
    /// 256 packets: metrics of a slow live source stay current (one uncontended lock per
    /// 256 packets costs nothing measurable).
    pub fn publishing_skips(mut self, skips: Arc<Mutex<SkipCounts>>) -> Self {
        self.skips = Some(skips);
        self.every = 256;
        self
    }

    /// Also publish the flow table's live flows into `live`, at the same pace as the skips.
    pub fn publishing_live_flows(mut self, live: Arc<AtomicU64>) -> Self {
        self.live_flows = Some(live);
        self
    }

    /// The shared live-flows count, if published (the driver updates it from the packet loop,
    /// which holds the progress bar borrowed).
    pub fn live_flows_sink(&self) -> Option<Arc<AtomicU64>> {
        self.live_flows.clone()
    }

    pub fn live_flows(&self, live: u64) {
        if let Some(shared) = &self.live_flows {
            shared.store(live, Ordering::Relaxed);
        }
    }

    /// Packets between updates.
    pub fn every(&self) -> u64 {
        self.every
    }

    pub fn skipped(&self, counts: &SkipCounts) {
        if let Some(skips) = &self.skips {
            if let Ok(mut shared) = skips.lock() {
                *shared = *counts;
            }
        }
    }

    pub fn start_file(&self, index: usize, path: &Path) {
        self.bar.set_message(format!(
            "file {}/{} {}",
            index + 1,
            self.total_files,
            path.display()
        ));
    }

    /// `file_bytes`: bytes read so far from the current file.
    pub fn update(&self, file_bytes: u64) {
        self.bar.set_position(self.done_bytes + file_bytes);
    }

    pub fn end_file(&mut self, file_bytes: u64) {
        self.done_bytes += file_bytes;
        self.bar.set_position(self.done_bytes);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
