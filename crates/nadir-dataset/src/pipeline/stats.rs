//! Column statistics over row-major matrices in one or two sequential passes (no column copies),
//! split over the available cores by row ranges.

use nalgebra::{DMatrix, DMatrixView};

use crate::matrix::Matrix;

/// Number of worker threads for row-parallel passes.
pub(crate) fn threads_for(rows: usize) -> usize {
    if rows < 50_000 {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// Runs `f` on contiguous row ranges of `x` in parallel and returns the partial results in
/// range order.
pub(crate) fn par_rows<T: Send>(x: &Matrix, f: impl Fn(&[f32], usize) -> T + Sync) -> Vec<T> {
    let threads = threads_for(x.rows);
    if threads <= 1 || x.cols == 0 {
        return vec![f(&x.data, x.rows)];
    }
    let per = x.rows.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = x
            .data
            .chunks(per * x.cols)
            .map(|chunk| {
                let f = &f;
                s.spawn(move || f(chunk, chunk.len() / x.cols))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("statistics worker panicked"))
            .collect()
    })
}

/// Applies `f(row)` to every row in place, in parallel.
pub(crate) fn par_rows_mut(x: &mut Matrix, f: impl Fn(&mut [f32]) + Sync) {
    let cols = x.cols;
    if cols == 0 {
        return;
    }
    let threads = threads_for(x.rows);
    let per = x.rows.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for chunk in x.data.chunks_mut(per * cols) {
            let f = &f;
            s.spawn(move || chunk.chunks_exact_mut(cols).for_each(f));
        }
    });
}

/// Maps an `f32` to a `u32` whose unsigned order is the float order (for finite values).
fn ordered_key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

fn key_to_f32(key: u32) -> f32 {
    let bits = if key & 0x8000_0000 != 0 {
        key & 0x7fff_ffff
    } else {
        !key
    };
    f32::from_bits(bits)
}

/// Exact median of the finite values of every column (mean of the two middle values for an
/// even count; 0 for a column with no finite value).
///
/// Written by hand as a two-pass radix select on the float bit patterns: a row-major pass with
/// per-column histograms of the top then the bottom 16 bits finds exact order statistics
/// without copying each column out (which would double the memory of a large table).
pub(crate) fn column_medians(x: &Matrix) -> Vec<f32> {
    let d = x.cols;
    const BUCKETS: usize = 1 << 16;
    // Pass 1: top-16-bit histograms and finite counts.
    let partial = par_rows(x, |data, _| {
        let mut hist = vec![0u32; d * BUCKETS];
        for row in data.chunks_exact(d) {
            for (c, &v) in row.iter().enumerate() {
                if v.is_finite() {
                    hist[c * BUCKETS + (ordered_key(v) >> 16) as usize] += 1;
                }
            }
        }
        hist
    });
    let mut hist = vec![0u64; d * BUCKETS];
    for p in &partial {
        for (h, &v) in hist.iter_mut().zip(p) {
            *h += u64::from(v);
        }
    }
    drop(partial);
    // For each column, the ranks wanted (two for even counts) and the top bucket of each.
    let mut wanted: Vec<Option<[(u64, u32, u64); 2]>> = Vec::with_capacity(d);
    for c in 0..d {
        let h = &hist[c * BUCKETS..(c + 1) * BUCKETS];
        let n: u64 = h.iter().sum();
        if n == 0 {
            wanted.push(None);
            continue;
        }
        let ranks = [(n - 1) / 2, n / 2];
        let mut found = [(0u64, 0u32, 0u64); 2];
        for (slot, &rank) in ranks.iter().enumerate() {
            let mut seen = 0u64;
            for (bucket, &count) in h.iter().enumerate() {
                if seen + count > rank {
                    // (rank, bucket, rank within bucket)
                    found[slot] = (rank, bucket as u32, rank - seen);
                    break;
                }
                seen += count;
            }
        }
        wanted.push(Some(found));
    }
    drop(hist);
    // Pass 2: bottom-16-bit histograms restricted to the wanted buckets.
    let partial = par_rows(x, |data, _| {
        let mut low = vec![0u32; d * 2 * BUCKETS];
        for row in data.chunks_exact(d) {
            for (c, &v) in row.iter().enumerate() {
                let Some(w) = &wanted[c] else { continue };
                if !v.is_finite() {
                    continue;
                }
                let key = ordered_key(v);
                let top = key >> 16;
                for (slot, &(_, bucket, _)) in w.iter().enumerate() {
                    if top == bucket {
                        low[(c * 2 + slot) * BUCKETS + (key & 0xffff) as usize] += 1;
                    }
                }
            }
        }
        low
    });
    (0..d)
        .map(|c| {
            let Some(w) = &wanted[c] else { return 0.0 };
            let mut values = [0f64; 2];
            for (slot, &(_, bucket, within)) in w.iter().enumerate() {
                let mut seen = 0u64;
                for lowbits in 0..BUCKETS {
                    let count: u64 = partial
                        .iter()
                        .map(|p| u64::from(p[(c * 2 + slot) * BUCKETS + lowbits]))
                        .sum();
                    if seen + count > within {
                        values[slot] = f64::from(key_to_f32((bucket << 16) | lowbits as u32));
                        break;
                    }
                    seen += count;
                }
            }
            ((values[0] + values[1]) / 2.0) as f32
        })
        .collect()
}

/// Per-column min, max, mean and population variance (f64), over all values (call after
/// imputation: non-finite values propagate).
pub(crate) struct Moments {
    pub min: Vec<f64>,
    pub max: Vec<f64>,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

pub(crate) fn column_moments(x: &Matrix) -> Moments {
    let d = x.cols;
    // Shifted sums (shift = first row) keep the one-pass variance accurate in f64.
    let shift: Vec<f64> = if x.rows > 0 {
        x.row(0).iter().map(|&v| f64::from(v)).collect()
    } else {
        vec![0.0; d]
    };
    let partial = par_rows(x, |data, _| {
        let mut min = vec![f64::INFINITY; d];
        let mut max = vec![f64::NEG_INFINITY; d];
        let mut s1 = vec![0f64; d];
        let mut s2 = vec![0f64; d];
        for row in data.chunks_exact(d) {
            for c in 0..d {
                let v = f64::from(row[c]);
                min[c] = min[c].min(v);
                max[c] = max[c].max(v);
                let t = v - shift[c];
                s1[c] += t;
                s2[c] += t * t;
            }
        }
        (min, max, s1, s2)
    });
    let n = x.rows as f64;
    let mut m = Moments {
        min: vec![f64::INFINITY; d],
        max: vec![f64::NEG_INFINITY; d],
        mean: vec![0.0; d],
        var: vec![0.0; d],
    };
    let mut s1 = vec![0f64; d];
    let mut s2 = vec![0f64; d];
    for (pmin, pmax, p1, p2) in partial {
        for c in 0..d {
            m.min[c] = m.min[c].min(pmin[c]);
            m.max[c] = m.max[c].max(pmax[c]);
            s1[c] += p1[c];
            s2[c] += p2[c];
        }
    }
    if x.rows > 0 {
        for c in 0..d {
            let mean_shifted = s1[c] / n;
            m.mean[c] = shift[c] + mean_shifted;
            m.var[c] = (s2[c] / n - mean_shifted * mean_shifted).max(0.0);
        }
    }
    m
}

/// Sample covariance matrix (n - 1 denominator) of the columns, `d x d`, centred on `mean`.
/// Rows are processed in blocks converted to f64 and multiplied with nalgebra's GEMM; all
/// accumulation is in f64.
pub(crate) fn covariance(x: &Matrix, mean: &[f64]) -> DMatrix<f64> {
    let d = x.cols;
    const BLOCK: usize = 2048;
    let partial = par_rows(x, |data, rows| {
        let mut gram = DMatrix::<f64>::zeros(d, d);
        let mut block = vec![0f64; BLOCK * d];
        let mut block_t = vec![0f64; BLOCK * d];
        let mut start = 0;
        while start < rows {
            let b = BLOCK.min(rows - start);
            // The centred block twice: row-major (= column-major d x b, A) and column-major
            // b x d (A^T), so both GEMM operands are contiguous.
            for (i, row) in data[start * d..(start + b) * d].chunks_exact(d).enumerate() {
                for c in 0..d {
                    let v = f64::from(row[c]) - mean[c];
                    block[i * d + c] = v;
                    block_t[c * b + i] = v;
                }
            }
            let a = DMatrixView::from_slice(&block[..b * d], d, b);
            let at = DMatrixView::from_slice(&block_t[..b * d], b, d);
            gram.gemm(1.0, &a, &at, 1.0);
            start += b;
        }
        gram
    });
    let mut cov = DMatrix::<f64>::zeros(d, d);
    for g in partial {
        cov += g;
    }
    let denom = (x.rows as f64 - 1.0).max(1.0);
    cov / denom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radix_median_matches_sorting_including_negatives_and_non_finite() {
        let values = [
            3.5f32,
            -2.0,
            f32::NAN,
            7.25,
            -0.0,
            1e30,
            -1e-20,
            f32::INFINITY,
            4.0,
        ];
        let x = Matrix::new(values.len(), 1, values.to_vec()).unwrap();
        let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_by(f32::total_cmp);
        let n = finite.len();
        let expect = (finite[(n - 1) / 2] + finite[n / 2]) / 2.0;
        assert_eq!(column_medians(&x), vec![expect]);
        let odd = Matrix::new(3, 1, vec![5.0, 1.0, 3.0]).unwrap();
        assert_eq!(column_medians(&odd), vec![3.0]);
        let none = Matrix::new(2, 1, vec![f32::NAN, f32::NEG_INFINITY]).unwrap();
        assert_eq!(column_medians(&none), vec![0.0]);
    }

    #[test]
    fn covariance_matches_direct_formula() {
        let x = Matrix::from_rows(&[vec![1.0, 2.0], vec![2.0, 1.0], vec![4.0, 9.0]]).unwrap();
        let m = column_moments(&x);
        let cov = covariance(&x, &m.mean);
        let mean0 = 7.0 / 3.0;
        let var0 = ((1.0f64 - mean0).powi(2) + (2.0 - mean0).powi(2) + (4.0 - mean0).powi(2)) / 2.0;
        assert!((cov[(0, 0)] - var0).abs() < 1e-12);
        assert!((cov[(0, 1)] - cov[(1, 0)]).abs() < 1e-12);
        assert!((m.var[0] * 3.0 / 2.0 - var0).abs() < 1e-12);
    }

    #[test]
    fn blocked_gemm_covariance_matches_naive_loops_on_a_wide_matrix() {
        // 9 columns and > 5 rows take nalgebra's matrixmultiply path; 5000 rows span 3 blocks.
        let (rows, d) = (5000, 9);
        let data: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 7919 % 1013) as f32 / 97.0).sin() * (1 + i % d) as f32)
            .collect();
        let x = Matrix::new(rows, d, data).unwrap();
        let m = column_moments(&x);
        let cov = covariance(&x, &m.mean);
        for i in 0..d {
            for j in 0..d {
                let naive: f64 = (0..rows)
                    .map(|r| {
                        (f64::from(x.get(r, i)) - m.mean[i]) * (f64::from(x.get(r, j)) - m.mean[j])
                    })
                    .sum::<f64>()
                    / (rows as f64 - 1.0);
                assert!(
                    (cov[(i, j)] - naive).abs() < 1e-9 * naive.abs().max(1.0),
                    "{i},{j}"
                );
            }
        }
    }
}
