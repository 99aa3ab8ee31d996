//! Helpers for the hand-written Flex ops (`conv_rows`, `lstm_recurrence`, `norm_pool`).

use burn::backend::flex::FlexTensor;
use burn::tensor::{Device, TensorData};

use super::vectorized_fn;

/// Whether `device` is the Flex backend with autodiff: where the hand-written training ops
/// are implemented (other backends, e.g. CUDA, keep burn's ops).
pub(crate) fn is_flex_autodiff(device: &Device) -> bool {
    device.is_autodiff() && is_flex(device)
}

/// `tensor` with a plain row-major layout (a copy only when it has another one).
pub(crate) fn contiguous(tensor: &FlexTensor) -> FlexTensor {
    if tensor.as_slice::<f32>().is_some() {
        tensor.clone()
    } else {
        tensor.to_contiguous()
    }
}

/// The values of a [`contiguous`] f32 tensor.
pub(crate) fn f32s(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("a contiguous f32 tensor")
}

pub(crate) fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Whether `device` is the Flex backend, with or without autodiff.
pub(crate) fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// A matrix operand of [`gemm`]: element `(i, j)` is `values[i * row_stride + j * col_stride]`,
/// so a transpose is the same values with the strides swapped.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<'a> {
    pub values: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// A row-major matrix whose rows are `row_stride` apart.
    pub fn rows(values: &'a [f32], row_stride: usize) -> Self {
        Self {
            values,
            row_stride,
            col_stride: 1,
        }
    }

    pub fn transposed(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether an `m x n` matrix with these strides lies inside `len` values.
    fn fits(row_stride: usize, col_stride: usize, [m, n]: [usize; 2], len: usize) -> bool {
        m == 0 || n == 0 || (m - 1) * row_stride + (n - 1) * col_stride < len
    }
}

/// Whether a GEMM runs on the rayon threads or on the calling one.
#[derive(Clone, Copy)]
pub(crate) enum Threads {
    /// Already inside a parallel section (one chunk of samples per thread).
    One,
    All,
}

/// `dst = lhs · rhs` (`[m, k] · [k, n]`), or `dst += lhs · rhs` with `accumulate`, where `dst`
/// is row-major with rows `dst_row_stride` apart. gemm's raw entry point takes 19 positional
/// pointer and stride arguments; this checks every operand's extent against its slice, which
/// makes the call safe.
pub(crate) fn gemm(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: Matrix<'_>,
    rhs: Matrix<'_>,
    [m, k, n]: [usize; 3],
    accumulate: bool,
    threads: Threads,
) {
    assert!(
        Matrix::fits(dst_row_stride, 1, [m, n], dst.len()),
        "gemm: dst too short"
    );
    assert!(
        Matrix::fits(lhs.row_stride, lhs.col_stride, [m, k], lhs.values.len()),
        "gemm: lhs too short"
    );
    assert!(
        Matrix::fits(rhs.row_stride, rhs.col_stride, [k, n], rhs.values.len()),
        "gemm: rhs too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    let parallelism = match threads {
        Threads::All if rayon::current_num_threads() > 1 => gemm::Parallelism::Rayon(0),
        _ => gemm::Parallelism::None,
    };
    let stride = |s: usize| s as isize;
    // SAFETY: the asserts above keep every element gemm reads or writes inside its slice; dst
    // is borrowed mutably, so it cannot overlap the operands.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            stride(dst_row_stride),
            accumulate,
            lhs.values.as_ptr(),
            stride(lhs.col_stride),
            stride(lhs.row_stride),
            rhs.values.as_ptr(),
            stride(rhs.col_stride),
            stride(rhs.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

vectorized_fn! {
    /// Adds rows of `sums.len()` values to `sums` (per-channel sums over channels-last rows).
    pub(crate) fn add_rows(rows: &[f32], sums: &mut [f32]) {
        let features = sums.len();
        for row in rows.chunks_exact(features) {
            let row = &row[..features];
            for f in 0..features {
                sums[f] += row[f];
            }
        }
    }
}
