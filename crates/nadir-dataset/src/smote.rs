//! Class imbalance: SMOTE oversampling (training split only) and class weights.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::matrix::Matrix;

/// SMOTE output with the provenance of each synthetic row.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoteOutput {
    /// The input rows, then the synthetic rows.
    pub x: Matrix,
    pub y: Vec<u32>,
    /// For synthetic row `input_rows + i`: (base row, neighbour row, gap), both indices into the
    /// input; the row is `base + gap * (neighbour - base)`.
    pub parents: Vec<(usize, usize, f32)>,
}

/// SMOTE (Chawla et al. 2002): every class is oversampled to the size of the largest by
/// interpolating between a row and one of its `k` nearest same-class neighbours (Euclidean).
/// Give it the TRAINING rows only: it sees nothing else, so no synthetic row can come from a
/// validation or test row. Classes with fewer than 2 rows are left as they are.
pub fn smote(x: &Matrix, y: &[u32], k: usize, seed: u64) -> (Matrix, Vec<u32>) {
    let out = smote_with_parents(x, y, k, seed);
    (out.x, out.y)
}

/// [`smote`], also returning which input rows each synthetic row was built from.
pub fn smote_with_parents(x: &Matrix, y: &[u32], k: usize, seed: u64) -> SmoteOutput {
    let n_classes = y.iter().max().map_or(0, |m| *m as usize + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in y.iter().enumerate().take(x.rows) {
        members[c as usize].push(i);
    }
    let target = members.iter().map(Vec::len).max().unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out_x = x.clone();
    let mut out_y: Vec<u32> = y[..x.rows.min(y.len())].to_vec();
    let mut parents = Vec::new();
    let mut synthetic = vec![0f32; x.cols];
    for (class, rows) in members.iter().enumerate() {
        let need = target - rows.len();
        if need == 0 || rows.len() < 2 {
            if need > 0 {
                tracing::warn!(
                    class,
                    rows = rows.len(),
                    "SMOTE: class too small to interpolate"
                );
            }
            continue;
        }
        let k = k.clamp(1, rows.len() - 1);
        // Neighbours are found once per base row, when first drawn (brute force: O(n_c * d) each).
        let mut neighbours: Vec<Option<Vec<usize>>> = vec![None; rows.len()];
        out_x.data.reserve(need * x.cols);
        for _ in 0..need {
            let b = rng.random_range(0..rows.len());
            let near = neighbours[b].get_or_insert_with(|| nearest(x, rows, b, k));
            let nb = near[rng.random_range(0..near.len())];
            let gap: f32 = rng.random();
            let (base, other) = (x.row(rows[b]), x.row(rows[nb]));
            for ((s, &a), &o) in synthetic.iter_mut().zip(base).zip(other) {
                *s = a + gap * (o - a);
            }
            out_x.data.extend_from_slice(&synthetic);
            out_x.rows += 1;
            out_y.push(class as u32);
            parents.push((rows[b], rows[nb], gap));
        }
    }
    SmoteOutput {
        x: out_x,
        y: out_y,
        parents,
    }
}

/// Positions (in `rows`) of the `k` nearest rows to `rows[b]`, itself excluded.
fn nearest(x: &Matrix, rows: &[usize], b: usize, k: usize) -> Vec<usize> {
    let base = x.row(rows[b]);
    let mut dist: Vec<(f32, usize)> = rows
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != b)
        .map(|(j, &r)| {
            let d: f32 = x
                .row(r)
                .iter()
                .zip(base)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            (if d.is_nan() { f32::INFINITY } else { d }, j)
        })
        .collect();
    let k = k.min(dist.len());
    dist.select_nth_unstable_by(k.saturating_sub(1), |a, b| a.0.total_cmp(&b.0));
    dist[..k].iter().map(|&(_, j)| j).collect()
}

/// "Balanced" class weights, `n / (n_classes * count_c)` (as scikit-learn computes them); a
/// class absent from `y` gets 0.
pub fn class_weights(y: &[u32], n_classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; n_classes];
    for &c in y {
        if let Some(slot) = counts.get_mut(c as usize) {
            *slot += 1;
        }
    }
    let n = y.len() as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (n / (n_classes as f64 * c as f64)) as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smote_balances_classes_and_interpolates_between_same_class_rows() {
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..20 {
            rows.push(vec![i as f32, 0.0]);
            y.push(0);
        }
        for i in 0..4 {
            rows.push(vec![100.0 + i as f32, 50.0]);
            y.push(1);
        }
        let x = Matrix::from_rows(&rows).unwrap();
        let out = smote_with_parents(&x, &y, 3, 9);
        assert_eq!(out.y.iter().filter(|&&c| c == 1).count(), 20);
        assert_eq!(out.x.rows, 40);
        for (i, &(b, n, gap)) in out.parents.iter().enumerate() {
            assert_eq!((y[b], y[n]), (1, 1));
            let row = out.x.row(24 + i);
            assert!((row[1] - 50.0).abs() < 1e-6);
            assert!((100.0..=103.0).contains(&row[0]));
            assert!((0.0..1.0).contains(&gap));
        }
    }

    #[test]
    fn class_weights_are_balanced() {
        let w = class_weights(&[0, 0, 0, 1], 3);
        assert!((w[0] - 4.0 / 9.0).abs() < 1e-6);
        assert!((w[1] - 4.0 / 3.0).abs() < 1e-6);
        assert_eq!(w[2], 0.0);
    }
}
