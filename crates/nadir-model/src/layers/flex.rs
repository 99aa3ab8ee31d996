//! Helpers for the hand-written Flex ops (`lstm_recurrence`, `norm_pool`).

use burn::backend::flex::FlexTensor;
use burn::tensor::{Device, TensorData};

/// Whether `device` is the Flex backend with autodiff: where the hand-written training ops
/// are implemented (other backends, e.g. CUDA, keep burn's ops).
pub(crate) fn is_flex_autodiff(device: &Device) -> bool {
    device.is_autodiff() && device.clone().inner() == Device::flex()
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
