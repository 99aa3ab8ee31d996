//! The inference recurrence of one block of consecutive samples (one block per rayon thread).
//!
//! Blocks of more than [`SMALL_BLOCK`] samples multiply `h @ W_hh` with gemm each step, then run
//! the fused cell. Smaller blocks (one-sample calls) run tile by tile of hidden units: one
//! sample's `h @ W_hh` is a vector-matrix product, too small for gemm (its set-up per call
//! was a fifth of a one-sample LLAFormerNet call). A tile's pre-activations, four gates x
//! [`TILE`] units, stay in registers while `W_hh`'s rows stream past, and its cell runs at once;
//! the product written as one output row updated in memory per `h` value was bound by its
//! stores. With a wide hidden state the tiles of each step are split across the rayon threads:
//! the steps are serial, and CNN-LSTM's 31 products of 128 x 512 were over a third of a
//! one-sample call on one thread while the other waited. Measured with `bench_models` (one-sample
//! CNN-LSTM calls/s, 2 threads, same machine state): 2.67 k -> 2.83 k with the tiles, 3.16 k with
//! the split too.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::flex::{gemm, Matrix, Threads};
use super::lstm::{sigmoid, tanh};
use super::vectorized_fn;

/// Blocks up to this many samples run here; larger ones multiply `h @ W_hh` with gemm.
const SMALL_BLOCK: usize = 4;

/// Hidden units per tile: 4 gates x 32 units are 8 AVX-512 registers of sums, enough
/// independent chains to hide the adds' latency.
const TILE: usize = 32;

/// Narrower hidden states run on one thread: a step's share of the product costs about what
/// handing the step's `h` between the threads does (LLN, 64 per direction: 7.5 k one-sample
/// calls/s on one thread per direction, 6.6 k split).
const SPLIT_MIN_HIDDEN: usize = 128;

/// Spins before a thread waiting for the other's half of a step yields its core.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// One block of consecutive samples of the inference recurrence.
pub(super) struct RecurrenceBlock<'a> {
    /// `[rows, T, 4H]`, without the bias.
    pub projected: &'a [f32],
    /// `[H, 4H]`.
    pub recurrent: &'a [f32],
    pub bias: &'a [f32],
    pub steps: usize,
    pub reverse: bool,
}

impl RecurrenceBlock<'_> {
    pub fn hidden(&self) -> usize {
        self.bias.len() / 4
    }

    /// The time index of the `i`-th processed step.
    pub fn time(&self, i: usize) -> usize {
        if self.reverse {
            self.steps - 1 - i
        } else {
            i
        }
    }

    /// Sample `b`'s projected input at time `t`, `[4H]`.
    pub fn input(&self, b: usize, t: usize) -> &[f32] {
        let width = self.bias.len();
        &self.projected[(b * self.steps + t) * width..][..width]
    }

    /// Runs every step; `h` (`[rows, H]`, zero on entry) ends as the final hidden state, and
    /// `outputs` (`[rows, T, H]`) receives every step's. `may_split`: the block is the whole
    /// call's, so the other threads are free to share its steps.
    pub fn run(&self, h: &mut [f32], outputs: Option<&mut [f32]>, may_split: bool) {
        let hidden = self.hidden();
        if self.steps == 0 {
            return;
        }
        if h.len() / hidden > SMALL_BLOCK {
            return self.run_gemm(h, outputs);
        }
        let parts = rayon::current_num_threads().min(hidden.div_ceil(TILE));
        if may_split && hidden >= SPLIT_MIN_HIDDEN && parts > 1 {
            SplitSteps::new(self, h.len() / hidden, parts).run(h, outputs);
        } else {
            self.run_on_this_thread(h, outputs);
        }
    }

    fn run_gemm(&self, h: &mut [f32], mut outputs: Option<&mut [f32]>) {
        let width = self.bias.len();
        let hidden = width / 4;
        let (rows, steps) = (h.len() / hidden, self.steps);
        let mut c = vec![0.0f32; rows * hidden];
        let mut rec = vec![0.0f32; rows * width];
        let mut h_prev = vec![0.0f32; rows * hidden];
        for i in 0..steps {
            let t = self.time(i);
            // h_0 = 0: the first step has no recurrent term (`rec` starts at zero).
            if i > 0 {
                h_prev.copy_from_slice(h);
                gemm(
                    &mut rec,
                    width,
                    Matrix::rows(&h_prev, hidden),
                    Matrix::rows(self.recurrent, width),
                    [rows, hidden, width],
                    false,
                    Threads::One,
                );
            }
            for b in 0..rows {
                let h_row = &mut h[b * hidden..][..hidden];
                lstm_cell(
                    self.input(b, t),
                    &rec[b * width..][..width],
                    self.bias,
                    &mut c[b * hidden..][..hidden],
                    h_row,
                );
                if let Some(out) = outputs.as_deref_mut() {
                    out[(b * steps + t) * hidden..][..hidden].copy_from_slice(h_row);
                }
            }
        }
    }

    fn run_on_this_thread(&self, h: &mut [f32], mut outputs: Option<&mut [f32]>) {
        let hidden = self.hidden();
        let rows = h.len() / hidden;
        let mut c = vec![0.0f32; rows * hidden];
        let mut h_prev = vec![0.0f32; rows * hidden];
        for i in 0..self.steps {
            let t = self.time(i);
            h_prev.copy_from_slice(h);
            for b in 0..rows {
                // h_0 = 0: the first step has no recurrent term.
                let prev = if i == 0 {
                    &[][..]
                } else {
                    &h_prev[b * hidden..][..hidden]
                };
                for unit in (0..hidden).step_by(TILE) {
                    let n = TILE.min(hidden - unit);
                    let at = b * hidden + unit;
                    tile_step(
                        prev,
                        self.recurrent,
                        self.input(b, t),
                        self.bias,
                        unit,
                        &mut c[at..][..n],
                        &mut h[at..][..n],
                    );
                }
                if let Some(out) = outputs.as_deref_mut() {
                    out[(b * self.steps + t) * hidden..][..hidden]
                        .copy_from_slice(&h[b * hidden..][..hidden]);
                }
            }
        }
    }
}

/// The steps of one block with each step's tiles split into `parts` tasks, taken in order by
/// whichever threads are running. A thread waits only for the previous step's tasks, each
/// already taken by a running thread, so the work finishes however many threads join in (the
/// calling thread alone does it all when the others are busy).
struct SplitSteps<'b, 'a> {
    block: &'b RecurrenceBlock<'a>,
    rows: usize,
    parts: usize,
    /// Tasks handed out: task `i * parts + p` is part `p` of processed step `i`.
    next: AtomicUsize,
    /// Tasks finished; step `i` is complete once this reaches `(i + 1) * parts`.
    done: AtomicUsize,
    /// Every processed step's `h`, `[step, row, H]` as f32 bits.
    history: Vec<AtomicU32>,
    /// The cell state, `[row, H]` as f32 bits.
    cells: Vec<AtomicU32>,
}

impl<'b, 'a> SplitSteps<'b, 'a> {
    fn new(block: &'b RecurrenceBlock<'a>, rows: usize, parts: usize) -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU32::new(0)).collect();
        let per_step = rows * block.hidden();
        Self {
            block,
            rows,
            parts,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            history: zeros(block.steps * per_step),
            cells: zeros(per_step),
        }
    }

    fn run(&self, h: &mut [f32], outputs: Option<&mut [f32]>) {
        rayon::scope(|scope| {
            for _ in 1..self.parts {
                scope.spawn(|_| self.work());
            }
            self.work();
        });
        // The scope has joined every thread that took a task.
        let (hidden, steps) = (self.block.hidden(), self.block.steps);
        let per_step = self.rows * hidden;
        load(&self.history[(steps - 1) * per_step..][..per_step], h);
        if let Some(out) = outputs {
            for i in 0..steps {
                let t = self.block.time(i);
                for b in 0..self.rows {
                    load(
                        &self.history[i * per_step + b * hidden..][..hidden],
                        &mut out[(b * steps + t) * hidden..][..hidden],
                    );
                }
            }
        }
    }

    fn work(&self) {
        let block = self.block;
        let hidden = block.hidden();
        let per_step = self.rows * hidden;
        let mut h_prev = vec![0.0f32; per_step];
        let (mut c, mut h) = ([0.0f32; TILE], [0.0f32; TILE]);
        loop {
            let task = self.next.fetch_add(1, Ordering::Relaxed);
            if task >= block.steps * self.parts {
                return;
            }
            let (i, part) = (task / self.parts, task % self.parts);
            self.wait_for_tasks(i * self.parts);
            if i > 0 {
                load(&self.history[(i - 1) * per_step..][..per_step], &mut h_prev);
            }
            let t = block.time(i);
            let tiles = hidden.div_ceil(TILE);
            let start = part * tiles / self.parts * TILE;
            let end = ((part + 1) * tiles / self.parts * TILE).min(hidden);
            for b in 0..self.rows {
                let prev = if i == 0 {
                    &[][..]
                } else {
                    &h_prev[b * hidden..][..hidden]
                };
                for unit in (start..end).step_by(TILE) {
                    let n = TILE.min(end - unit);
                    let at = b * hidden + unit;
                    let cells = &self.cells[at..][..n];
                    load(cells, &mut c[..n]);
                    let (x, bias) = (block.input(b, t), block.bias);
                    tile_step(
                        prev,
                        block.recurrent,
                        x,
                        bias,
                        unit,
                        &mut c[..n],
                        &mut h[..n],
                    );
                    store(&c[..n], cells);
                    store(&h[..n], &self.history[i * per_step + at..][..n]);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// Waits until `tasks` tasks are finished, and sees what they wrote.
    fn wait_for_tasks(&self, tasks: usize) {
        let mut spins = 0;
        while self.done.load(Ordering::Acquire) < tasks {
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

fn load(from: &[AtomicU32], to: &mut [f32]) {
    for (to, from) in to.iter_mut().zip(from) {
        *to = f32::from_bits(from.load(Ordering::Relaxed));
    }
}

fn store(from: &[f32], to: &[AtomicU32]) {
    for (from, to) in from.iter().zip(to) {
        to.store(from.to_bits(), Ordering::Relaxed);
    }
}

vectorized_fn! {
    /// One sample's step for the hidden units `unit..unit + c.len()` (at most [`TILE`]): the
    /// pre-activations `x + bias + h_prev @ W_hh` (`h_prev` empty on the first step), then the
    /// cell, advancing `c` and writing `h`.
    fn tile_step(
        h_prev: &[f32],
        recurrent: &[f32],
        x: &[f32],
        bias: &[f32],
        unit: usize,
        c: &mut [f32],
        h: &mut [f32],
    ) {
        // A full tile's width is a constant once inlined, so its sums stay in registers.
        if c.len() == TILE {
            tile_body(h_prev, recurrent, x, bias, unit, TILE, c, h);
        } else {
            tile_body(h_prev, recurrent, x, bias, unit, c.len(), c, h);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tile_body(
    h_prev: &[f32],
    recurrent: &[f32],
    x: &[f32],
    bias: &[f32],
    unit: usize,
    n: usize,
    c: &mut [f32],
    h: &mut [f32],
) {
    let hidden = bias.len() / 4;
    let width = 4 * hidden;
    let mut pre = [[0.0f32; TILE]; 4];
    for (g, pre) in pre.iter_mut().enumerate() {
        let at = g * hidden + unit;
        let (pre, x, bias) = (&mut pre[..n], &x[at..][..n], &bias[at..][..n]);
        for j in 0..n {
            pre[j] = x[j] + bias[j];
        }
    }
    for (&value, row) in h_prev.iter().zip(recurrent.chunks_exact(width)) {
        for (g, pre) in pre.iter_mut().enumerate() {
            let (pre, w) = (&mut pre[..n], &row[g * hidden + unit..][..n]);
            for j in 0..n {
                pre[j] += value * w[j];
            }
        }
    }
    let [gi, gf, gg, go] = &pre;
    let (c, h) = (&mut c[..n], &mut h[..n]);
    for j in 0..n {
        (c[j], h[j]) = cell([gi[j], gf[j], gg[j], go[j]], c[j]);
    }
}

/// One unit's cell from its pre-activations (i, f, g, o) and previous cell state:
/// `c = f * c + i * g`, `h = o * tanh(c)`; returns `(c, h)`.
#[inline(always)]
fn cell([input, forget, candidate, output]: [f32; 4], c: f32) -> (f32, f32) {
    let c = sigmoid(forget) * c + sigmoid(input) * tanh(candidate);
    (c, sigmoid(output) * tanh(c))
}

vectorized_fn! {
    /// One LSTM cell update for one sample: pre-activations `x + r + bias` (gate blocks i, f,
    /// g, o of `hidden` each), then [`cell`].
    fn lstm_cell(x: &[f32], r: &[f32], bias: &[f32], c: &mut [f32], h: &mut [f32]) {
        let n = h.len();
        let (x, r, bias, c) = (
            gate_blocks(x, n),
            gate_blocks(r, n),
            gate_blocks(bias, n),
            &mut c[..n],
        );
        // Equal-length slices: the loop runs without bounds checks and vectorises.
        for j in 0..n {
            let pre = |k: usize| x[k][j] + r[k][j] + bias[k][j];
            (c[j], h[j]) = cell([pre(0), pre(1), pre(2), pre(3)], c[j]);
        }
    }
}

/// The four `n`-wide gate blocks of a `4n` row.
fn gate_blocks(row: &[f32], n: usize) -> [&[f32]; 4] {
    let row = &row[..4 * n];
    [&row[..n], &row[n..2 * n], &row[2 * n..3 * n], &row[3 * n..]]
}
