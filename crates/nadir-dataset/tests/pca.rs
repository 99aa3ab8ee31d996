//! PCA against references computed independently here.
#![allow(clippy::needless_range_loop)] // index loops mirror the matrix formulas

use nadir_dataset::pipeline::{PcaFit, PcaSpec};
use nadir_dataset::Matrix;

/// Rows of an 8x8 Sylvester-Hadamard matrix: columns 1.. have zero mean and are orthogonal.
fn hadamard8() -> Vec<[f64; 8]> {
    (0..8u32)
        .map(|r| {
            std::array::from_fn(|c| {
                if (r & c as u32).count_ones().is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                }
            })
        })
        .collect()
}

#[test]
fn explained_variance_of_a_rotated_orthogonal_design_is_exact() {
    // Z: three zero-mean orthogonal columns with scales 5, 2, 0.5; sample variance of each is
    // s^2 * n / (n - 1). X = Z R^T + offset for a rotation R: the covariance eigenvalues are
    // exactly those variances.
    let h = hadamard8();
    // Scales and a rotation (3-4-5 triangle) chosen so every value is exact in f32.
    let scales = [10.0, 5.0, 0.5];
    let r = [[0.6, -0.8, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 1.0]];
    let mut data = Vec::new();
    for row in &h {
        let z = [scales[0] * row[1], scales[1] * row[2], scales[2] * row[4]];
        for i in 0..3 {
            let v: f64 = (0..3).map(|k| r[i][k] * z[k]).sum();
            data.push((v + 10.0 * (i as f64 + 1.0)) as f32);
        }
    }
    let x = Matrix::new(8, 3, data).unwrap();
    let fit = PcaFit::fit(
        &x,
        &PcaSpec {
            components: Some(3),
            variance: None,
        },
    )
    .unwrap();
    let expected: Vec<f64> = scales.iter().map(|s| s * s * 8.0 / 7.0).collect();
    let total: f64 = expected.iter().sum();
    for k in 0..3 {
        assert!(
            (fit.explained_variance[k] - expected[k]).abs() < 1e-6 * expected[k],
            "{k}: {} vs {}",
            fit.explained_variance[k],
            expected[k]
        );
        assert!((fit.explained_variance_ratio[k] - expected[k] / total).abs() < 1e-6);
    }
    // The first axis is R's first column (up to sign).
    let dot: f64 = (0..3).map(|i| f64::from(fit.components[i]) * r[i][0]).sum();
    assert!((dot.abs() - 1.0).abs() < 1e-5);
    // 95% variance keeps two components (first alone 100/125.25 = 79.8%, two 99.8%).
    let two = PcaFit::fit(
        &x,
        &PcaSpec {
            variance: Some(0.95),
            components: None,
        },
    )
    .unwrap();
    assert_eq!(two.n_components(), 2);
    // Projections have the explained variances as their sample variances.
    let y = fit.transform(&x).unwrap();
    for k in 0..3 {
        let col: Vec<f64> = y.column(k).iter().map(|&v| f64::from(v)).collect();
        let mean = col.iter().sum::<f64>() / 8.0;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 7.0;
        assert!((var - expected[k]).abs() < 1e-3 * expected[k].max(1.0));
    }
}

#[test]
fn two_column_explained_variance_matches_the_closed_form() {
    let rows: [[f64; 2]; 10] = [
        [2.5, 2.4],
        [0.5, 0.7],
        [2.2, 2.9],
        [1.9, 2.2],
        [3.1, 3.0],
        [2.3, 2.7],
        [2.0, 1.6],
        [1.0, 1.1],
        [1.5, 1.6],
        [1.1, 0.9],
    ];
    // The reference works on the f32 values the matrix will hold.
    let rows = rows.map(|r| r.map(|v| f64::from(v as f32)));
    let n = rows.len() as f64;
    let mean = [
        rows.iter().map(|r| r[0]).sum::<f64>() / n,
        rows.iter().map(|r| r[1]).sum::<f64>() / n,
    ];
    let cov = |i: usize, j: usize| {
        rows.iter()
            .map(|r| (r[i] - mean[i]) * (r[j] - mean[j]))
            .sum::<f64>()
            / (n - 1.0)
    };
    let (a, b, c) = (cov(0, 0), cov(0, 1), cov(1, 1));
    let half = ((a - c) / 2.0).hypot(b);
    let l1 = (a + c) / 2.0 + half;
    let l2 = (a + c) / 2.0 - half;
    let x = Matrix::new(
        10,
        2,
        rows.iter().flat_map(|r| r.map(|v| v as f32)).collect(),
    )
    .unwrap();
    let fit = PcaFit::fit(
        &x,
        &PcaSpec {
            components: Some(2),
            variance: None,
        },
    )
    .unwrap();
    let tol = 1e-6;
    assert!(
        (fit.explained_variance[0] - l1).abs() < tol,
        "{} vs {l1}",
        fit.explained_variance[0]
    );
    assert!((fit.explained_variance[1] - l2).abs() < tol);
    assert!((fit.explained_variance_ratio[0] - l1 / (l1 + l2)).abs() < tol);
}
