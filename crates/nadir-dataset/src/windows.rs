//! Rows in time order -> (N, C, L) sequences for the sequence models.

use serde::{Deserialize, Serialize};

use crate::matrix::Matrix;

/// A dense `(n, channels, length)` tensor: `data[(i * channels + c) * length + t]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Tensor3 {
    pub n: usize,
    pub channels: usize,
    pub length: usize,
    pub data: Vec<f32>,
}

impl Tensor3 {
    pub fn shape(&self) -> [usize; 3] {
        [self.n, self.channels, self.length]
    }

    /// Value of sample `i`, channel `c`, step `t`.
    pub fn get(&self, i: usize, c: usize, t: usize) -> f32 {
        self.data[(i * self.channels + c) * self.length + t]
    }

    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// Sliding windows over rows already in time order: window `i` covers rows
/// `i * stride .. i * stride + len`, channels = the matrix columns, and takes the label of its
/// LAST row (the verdict at the moment the window closes). Call it per split (on that split's
/// rows) so no window straddles a split boundary. Returns no windows when `len` or `stride` is 0
/// or there are fewer than `len` rows.
pub fn windows(x: &Matrix, y: &[u32], len: usize, stride: usize) -> (Tensor3, Vec<u32>) {
    let rows = x.rows.min(y.len());
    let n = if len == 0 || stride == 0 || rows < len {
        0
    } else {
        (rows - len) / stride + 1
    };
    let c = x.cols;
    let mut data = vec![0f32; n * c * len];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let start = i * stride;
        let block = &mut data[i * c * len..(i + 1) * c * len];
        for t in 0..len {
            for (ch, &v) in x.row(start + t).iter().enumerate() {
                block[ch * len + t] = v;
            }
        }
        labels.push(y[start + len - 1]);
    }
    (
        Tensor3 {
            n,
            channels: c,
            length: len,
            data,
        },
        labels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_channel_major_with_last_row_label() {
        // 5 rows x 2 columns: row r = [r, 10r].
        let x = Matrix::from_rows(
            &(0..5)
                .map(|r| vec![r as f32, 10.0 * r as f32])
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let y = [0, 0, 1, 0, 1];
        let (t, labels) = windows(&x, &y, 3, 2);
        assert_eq!(t.shape(), [2, 2, 3]);
        assert_eq!(labels, [1, 1]);
        assert_eq!(t.get(1, 0, 0), 2.0);
        assert_eq!(t.get(1, 1, 2), 40.0);
        assert_eq!(windows(&x, &y, 6, 1).0.n, 0);
    }
}
