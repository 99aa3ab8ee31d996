//! Dense row-major `f32` matrices: the feature table every later stage reads.

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;

/// A dense row-major matrix of `f32`: `data[r * cols + c]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data` as a `rows x cols` matrix; fails when the length does not match.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Matrix, DatasetError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(DatasetError::Shape(format!(
                "matrix of {rows} x {cols} needs {} values, got {}",
                rows.saturating_mul(cols),
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    /// Builds a matrix from equal-length rows (tests and small inputs).
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Matrix, DatasetError> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for (i, row) in rows.iter().enumerate() {
            if row.len() != cols {
                return Err(DatasetError::Shape(format!(
                    "row {i} has {} values, row 0 has {cols}",
                    row.len()
                )));
            }
            data.extend_from_slice(row);
        }
        Ok(Matrix {
            rows: rows.len(),
            cols,
            data,
        })
    }

    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn get(&self, row: usize, col: usize) -> f32 {
        self.data[row * self.cols + col]
    }

    /// Iterates over the rows as slices.
    pub fn iter_rows(&self) -> impl ExactSizeIterator<Item = &[f32]> + '_ {
        // chunks_exact(0) panics; an empty-column matrix yields `rows` empty slices.
        let cols = self.cols.max(1);
        let n = if self.cols == 0 { 0 } else { self.rows };
        self.data.chunks_exact(cols).take(n)
    }

    /// The rows `idx` (in that order) as a new matrix.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }

    /// The columns `idx` (in that order) as a new matrix.
    pub fn select_cols(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(self.rows * idx.len());
        for row in self.iter_rows() {
            data.extend(idx.iter().map(|&c| row[c]));
        }
        Matrix {
            rows: self.rows,
            cols: idx.len(),
            data,
        }
    }

    /// One column copied out (column-wise statistics).
    pub fn column(&self, col: usize) -> Vec<f32> {
        self.iter_rows().map(|r| r[col]).collect()
    }

    /// Appends the rows of `other` (same column count).
    pub fn append_rows(&mut self, other: &Matrix) -> Result<(), DatasetError> {
        if self.rows == 0 && self.data.is_empty() {
            self.cols = other.cols;
        }
        if other.cols != self.cols {
            return Err(DatasetError::Shape(format!(
                "cannot append rows of {} columns to a matrix of {} columns",
                other.cols, self.cols
            )));
        }
        self.data.extend_from_slice(&other.data);
        self.rows += other.rows;
        Ok(())
    }
}
