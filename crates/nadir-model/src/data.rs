//! Borrowed training data (flat `f32` samples + labels) and its checks.

use burn::tensor::{Device, Tensor, TensorData};

use crate::{InputShape, ModelError};

/// Samples (`x`, sample after sample, each `shape.sample_len()` values) with one label each.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    pub x: &'a [f32],
    pub shape: InputShape,
    /// Class per sample (`0` = benign by convention).
    pub y: &'a [u32],
}

impl<'a> TrainData<'a> {
    pub fn new(x: &'a [f32], shape: InputShape, y: &'a [u32]) -> Self {
        Self { x, shape, y }
    }

    /// Number of samples (after [`checked_samples`] passed).
    pub fn len(&self) -> usize {
        self.x.len() / self.shape.sample_len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks that `x` is a whole number of `shape` samples, all finite; returns the sample count.
/// Where the first NaN or infinity is. Blocks are tested without an early exit, so the test
/// vectorises (a scalar `position` was a fifth of scoring a batch of autoencoder rows).
fn first_non_finite(x: &[f32]) -> Option<usize> {
    const BLOCK: usize = 256;
    x.chunks(BLOCK).enumerate().find_map(|(block, values)| {
        let any = values.iter().fold(false, |any, v| any | !v.is_finite());
        any.then(|| block * BLOCK + values.iter().position(|v| !v.is_finite()).unwrap_or(0))
    })
}

pub(crate) fn checked_samples(
    what: &'static str,
    x: &[f32],
    shape: InputShape,
    expected: InputShape,
) -> Result<usize, ModelError> {
    if shape != expected {
        return Err(ModelError::ShapeMismatch {
            what,
            expected,
            got: shape,
        });
    }
    let sample_len = shape.sample_len();
    if sample_len == 0 || !x.len().is_multiple_of(sample_len) {
        return Err(ModelError::RaggedData {
            what,
            len: x.len(),
            sample_len,
            shape,
        });
    }
    if let Some(position) = first_non_finite(x) {
        return Err(ModelError::NonFinite {
            what,
            row: position / sample_len,
            index: position % sample_len,
            value: x[position],
        });
    }
    Ok(x.len() / sample_len)
}

/// Checks labels against the sample count and the class count.
pub(crate) fn checked_labels(
    what: &'static str,
    y: &[u32],
    samples: usize,
    n_classes: usize,
) -> Result<(), ModelError> {
    if y.len() != samples {
        return Err(ModelError::LabelCount {
            what,
            samples,
            labels: y.len(),
        });
    }
    if let Some(row) = y.iter().position(|&label| label as usize >= n_classes) {
        return Err(ModelError::LabelOutOfRange {
            what,
            row,
            label: y[row],
            n_classes,
        });
    }
    Ok(())
}

/// Copies the samples at `rows` into one `[B, channels, length]` tensor.
pub(crate) fn gather_batch(
    x: &[f32],
    shape: InputShape,
    rows: &[usize],
    device: &Device,
) -> Tensor<3> {
    let (channels, length) = shape.channels_length();
    let sample_len = channels * length;
    let mut values = Vec::with_capacity(rows.len() * sample_len);
    for &row in rows {
        values.extend_from_slice(&x[row * sample_len..(row + 1) * sample_len]);
    }
    Tensor::from_data(
        TensorData::new(values, [rows.len(), channels, length]),
        device,
    )
}

/// The contiguous samples `start..end` as one `[B, channels, length]` tensor.
pub(crate) fn slice_batch(
    x: &[f32],
    shape: InputShape,
    start: usize,
    end: usize,
    device: &Device,
) -> Tensor<3> {
    let (channels, length) = shape.channels_length();
    let sample_len = channels * length;
    Tensor::from_data(
        TensorData::new(
            x[start * sample_len..end * sample_len].to_vec(),
            [end - start, channels, length],
        ),
        device,
    )
}

#[cfg(test)]
mod tests {
    use super::first_non_finite;

    #[test]
    fn the_first_non_finite_value_is_found_in_any_block() {
        let mut x = vec![0.5f32; 1000];
        assert_eq!(first_non_finite(&x), None);
        x[700] = f32::INFINITY;
        x[300] = f32::NAN;
        assert_eq!(first_non_finite(&x), Some(300));
        x[255] = f32::NEG_INFINITY;
        assert_eq!(first_non_finite(&x), Some(255));
    }
}
