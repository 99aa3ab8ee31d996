//! Quantile scaling: each column through its training distribution function, so a byte
//! count that spans nine orders of magnitude and a flag that is 0 or 1 reach a network on the
//! same footing (Gorishniy et al. 2022 found such encodings to matter most for deep models on
//! tabular data; scikit-learn's `QuantileTransformer` does the same with a uniform output).
//! Output: the empirical CDF, interpolated linearly between stored quantiles, mapped from
//! [0, 1] to [-sqrt 3, sqrt 3] (mean 0, variance 1 for a continuous column).

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;

/// Quantiles stored per column: enough to resolve 0.4 % steps of the CDF.
const QUANTILES: usize = 256;
/// Rows sampled (evenly spaced) to estimate them; scikit-learn samples 10,000.
const MAX_SAMPLE_ROWS: usize = 100_000;

/// The fitted quantiles of every column (ascending, `QUANTILES` or fewer per column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileFit {
    pub quantiles: Vec<Vec<f32>>,
}

impl QuantileFit {
    /// Quantiles of each column of `x` over at most [`MAX_SAMPLE_ROWS`] evenly spaced rows
    /// (non-finite values are left out; imputation runs before scaling).
    pub fn fit(x: &Matrix) -> QuantileFit {
        let step = x.rows.div_ceil(MAX_SAMPLE_ROWS).max(1);
        let rows: Vec<usize> = (0..x.rows).step_by(step).collect();
        let mut column = Vec::with_capacity(rows.len());
        let quantiles = (0..x.cols)
            .map(|c| {
                column.clear();
                column.extend(
                    rows.iter()
                        .map(|&r| x.data[r * x.cols + c])
                        .filter(|v| v.is_finite()),
                );
                column.sort_unstable_by(f32::total_cmp);
                if column.is_empty() {
                    return vec![0.0];
                }
                let n = QUANTILES.min(column.len());
                (0..n)
                    .map(|i| {
                        let rank = i * (column.len() - 1) / (n - 1).max(1);
                        column[rank]
                    })
                    .collect()
            })
            .collect();
        QuantileFit { quantiles }
    }

    pub fn cols(&self) -> usize {
        self.quantiles.len()
    }

    /// Every value of `row` through its column's CDF.
    pub fn apply_row(&self, row: &mut [f32]) {
        for (v, q) in row.iter_mut().zip(&self.quantiles) {
            *v = (cdf(q, *v) * 2.0 - 1.0) * 3f32.sqrt();
        }
    }
}

/// The empirical CDF of `q` at `v`, in [0, 1]: ties (a value stored several times, like the
/// zeros of a count) take the middle of their ranks, values between two quantiles are
/// interpolated, values outside the training range clamp (NaN reads as the median).
fn cdf(q: &[f32], v: f32) -> f32 {
    let last = q.len().saturating_sub(1);
    if last == 0 || v.is_nan() {
        return 0.5;
    }
    let below = q.partition_point(|&x| x < v);
    let through = q.partition_point(|&x| x <= v);
    let rank = if through > below {
        (below + through - 1) as f32 / 2.0
    } else if below == 0 {
        0.0
    } else if below > last {
        last as f32
    } else {
        let (lo, hi) = (q[below - 1], q[below]);
        (below - 1) as f32 + (v - lo) / (hi - lo)
    };
    rank / last as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_tails_and_ties_spread_over_the_unit_range() {
        // A byte count: mostly small, a few huge; half the rows are exactly zero.
        let values: Vec<f32> = (0..1000)
            .map(|i| if i % 2 == 0 { 0.0 } else { (i as f32).powi(3) })
            .collect();
        let x = Matrix::new(1000, 1, values).unwrap();
        let fit = QuantileFit::fit(&x);
        let f = |v: f32| {
            let mut row = [v];
            fit.apply_row(&mut row);
            row[0]
        };
        let s3 = 3f32.sqrt();
        // The zeros sit at the middle of the lower half, not at the bottom.
        assert!((f(0.0) - (-0.5 * s3)).abs() < 0.02, "{}", f(0.0));
        // The median of the non-zero half maps near the middle of the upper half.
        assert!(
            (f(499f32.powi(3)) - 0.5 * s3).abs() < 0.05,
            "{}",
            f(499f32.powi(3))
        );
        // Outside the training range: clamped; order kept everywhere.
        assert_eq!(f(1e30), s3);
        assert_eq!(f(-5.0), -s3);
        let mut previous = f32::MIN;
        for v in [0.0, 1.0, 8.0, 1e3, 1e6, 1e8, 1e9] {
            assert!(f(v) >= previous, "not monotone at {v}");
            previous = f(v);
        }
    }
}

/// Bins per column of the piecewise-linear encoding (Gorishniy et al. 2022 use 8-128; few
/// bins keep the hybrid's input small: 73 flow features -> at most 584 inputs).
const PLE_BINS: usize = 8;

/// Piecewise-linear encoding (Gorishniy et al. 2022, "On embeddings for numerical features in
/// tabular deep learning"): each column becomes one value per quantile bin of its training
/// distribution, 1 for the bins below the value, its position within its own bin, 0 above. A
/// network then reads "how far along the distribution" piece by piece, with no unit or tail
/// to squeeze. Columns with fewer distinct values get fewer bins (a 0/1 flag: one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiecewiseLinearFit {
    /// Ascending, distinct bin edges per column (bins = edges - 1, at least one).
    pub edges: Vec<Vec<f32>>,
}

impl PiecewiseLinearFit {
    pub fn fit(x: &Matrix) -> PiecewiseLinearFit {
        let quantiles = QuantileFit::fit(x).quantiles;
        let edges = quantiles
            .iter()
            .map(|q| {
                let last = q.len().saturating_sub(1);
                let mut e: Vec<f32> = (0..=PLE_BINS).map(|i| q[i * last / PLE_BINS]).collect();
                e.dedup();
                if e.len() < 2 {
                    // A constant column: one bin that reads 0 at the value.
                    e.push(e[0] + 1.0);
                }
                e
            })
            .collect();
        PiecewiseLinearFit { edges }
    }

    pub fn cols(&self) -> usize {
        self.edges.len()
    }

    /// Output width: the bins of every column.
    pub fn width(&self) -> usize {
        self.edges.iter().map(|e| e.len().saturating_sub(1)).sum()
    }

    /// Output column names: `NAME#1..NAME#k` per input column.
    pub fn names(&self, columns: &[String]) -> Vec<String> {
        columns
            .iter()
            .zip(&self.edges)
            .flat_map(|(name, e)| (1..e.len()).map(move |b| format!("{name}#{b}")))
            .collect()
    }

    /// Encodes `row` into `out` ([`PiecewiseLinearFit::width`] values).
    pub fn encode_row(&self, row: &[f32], out: &mut [f32]) {
        let mut at = 0;
        for (&v, e) in row.iter().zip(&self.edges) {
            for pair in e.windows(2) {
                let t = (v - pair[0]) / (pair[1] - pair[0]);
                out[at] = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
                at += 1;
            }
        }
    }
}

#[cfg(test)]
mod ple_tests {
    use super::*;

    #[test]
    fn piecewise_linear_fills_the_bins_below_and_part_of_its_own() {
        // A uniform column 0..=800 and a 0/1 flag.
        let values: Vec<f32> = (0..=800).flat_map(|i| [i as f32, (i % 2) as f32]).collect();
        let x = Matrix::new(801, 2, values).unwrap();
        let fit = PiecewiseLinearFit::fit(&x);
        assert_eq!(fit.edges[0].len(), PLE_BINS + 1);
        assert_eq!(fit.edges[1], vec![0.0, 1.0], "a flag gets one bin");
        assert_eq!(fit.width(), PLE_BINS + 1);
        let names = fit.names(&["bytes".into(), "syn".into()]);
        assert_eq!((names[0].as_str(), names[8].as_str()), ("bytes#1", "syn#1"));
        let mut out = vec![0.0; fit.width()];
        // 350 sits in the fourth bin of eight (300..400), halfway.
        fit.encode_row(&[350.0, 1.0], &mut out);
        let first = &out[..PLE_BINS];
        assert!(first[..3].iter().all(|&v| v == 1.0), "{first:?}");
        assert!((first[3] - 0.5).abs() < 0.02, "{first:?}");
        assert!(first[4..].iter().all(|&v| v == 0.0), "{first:?}");
        assert_eq!(out[PLE_BINS], 1.0);
        // Beyond the training range: all ones, or all zeros.
        fit.encode_row(&[1e9, 0.0], &mut out);
        assert!(out[..PLE_BINS].iter().all(|&v| v == 1.0));
        assert_eq!(out[PLE_BINS], 0.0);
    }
}
