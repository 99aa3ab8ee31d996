//! PCA from the eigendecomposition of the training covariance (nalgebra, f64).

use nalgebra::{DMatrixView, DMatrixViewMut, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::stats;
use super::PcaSpec;
use crate::error::DatasetError;
use crate::matrix::Matrix;

/// A fitted PCA: `y = (x - mean) * components^T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaFit {
    pub input_dim: usize,
    pub mean: Vec<f32>,
    /// `n_components x input_dim`, row-major; each row a unit principal axis, largest variance
    /// first, sign chosen so the largest-magnitude entry is positive.
    pub components: Vec<f32>,
    /// Variance along each kept axis (covariance eigenvalue, n - 1 denominator).
    pub explained_variance: Vec<f64>,
    /// `explained_variance / total variance`.
    pub explained_variance_ratio: Vec<f64>,
}

impl PcaFit {
    pub fn n_components(&self) -> usize {
        self.explained_variance.len()
    }

    pub fn fit(x: &Matrix, spec: &PcaSpec) -> Result<PcaFit, DatasetError> {
        let d = x.cols;
        if x.rows < 2 || d == 0 {
            return Err(DatasetError::Fit {
                step: "pca",
                message: format!("needs >= 2 rows and >= 1 column, got {} x {d}", x.rows),
            });
        }
        if x.data.iter().any(|v| !v.is_finite()) {
            return Err(DatasetError::Fit {
                step: "pca",
                message: "input holds NaN or infinity; enable median imputation".into(),
            });
        }
        let mean = stats::column_moments(x).mean;
        let cov = stats::covariance(x, &mean);
        let eig = SymmetricEigen::new(cov);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let values: Vec<f64> = order.iter().map(|&i| eig.eigenvalues[i].max(0.0)).collect();
        let total: f64 = values.iter().sum();
        let ratio: Vec<f64> = values
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        let k = match (spec.components, spec.variance) {
            (Some(k), _) => {
                if k > d {
                    return Err(DatasetError::Fit {
                        step: "pca",
                        message: format!("{k} components asked of {d} columns"),
                    });
                }
                k
            }
            (None, Some(target)) => {
                let mut sum = 0.0;
                // Tolerance so a target of exactly 1.0 is reached despite rounding.
                ratio
                    .iter()
                    .position(|r| {
                        sum += r;
                        sum >= target - 1e-12
                    })
                    .map_or(d, |i| i + 1)
            }
            (None, None) => d,
        };
        let mut components = Vec::with_capacity(k * d);
        for &i in &order[..k] {
            let axis = eig.eigenvectors.column(i);
            let largest = axis
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(1.0);
            let sign = if largest < 0.0 { -1.0 } else { 1.0 };
            components.extend(axis.iter().map(|&v| (v * sign) as f32));
        }
        Ok(PcaFit {
            input_dim: d,
            mean: mean.iter().map(|&m| m as f32).collect(),
            components,
            explained_variance: values[..k].to_vec(),
            explained_variance_ratio: ratio[..k].to_vec(),
        })
    }

    pub fn transform(&self, x: &Matrix) -> Result<Matrix, DatasetError> {
        let d = self.input_dim;
        let k = self.n_components();
        if x.cols != d {
            return Err(DatasetError::Shape(format!(
                "pca fitted on {d} columns, got {}",
                x.cols
            )));
        }
        let mut out = Matrix::zeros(x.rows, k);
        if x.rows == 0 || k == 0 {
            return Ok(out);
        }
        const BLOCK: usize = 4096;
        let threads = stats::threads_for(x.rows);
        let per = x.rows.div_ceil(threads).max(1);
        // W as an owned (column-major) k x d matrix, so every GEMM operand is contiguous.
        let w = nalgebra::DMatrix::from_row_slice(k, d, &self.components);
        std::thread::scope(|s| {
            for (src, dst) in x.data.chunks(per * d).zip(out.data.chunks_mut(per * k)) {
                let w = &w;
                s.spawn(move || {
                    let mut block = vec![0f32; BLOCK * d];
                    for (src, dst) in src.chunks(BLOCK * d).zip(dst.chunks_mut(BLOCK * k)) {
                        let b = src.len() / d;
                        for (centred, row) in block.chunks_exact_mut(d).zip(src.chunks_exact(d)) {
                            for ((c, &v), &m) in centred.iter_mut().zip(row).zip(&self.mean) {
                                *c = v - m;
                            }
                        }
                        // Row-major b x d block = column-major d x b; output b x k row-major =
                        // column-major k x b: out^T = W * block^T.
                        let xt = DMatrixView::from_slice(&block[..b * d], d, b);
                        let mut yt = DMatrixViewMut::from_slice(dst, k, b);
                        yt.gemm(1.0, w, &xt, 0.0);
                    }
                });
            }
        });
        Ok(out)
    }
}
