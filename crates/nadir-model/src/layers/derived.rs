//! Inference weights derived from a layer's parameters (batch norm folded into a convolution
//! and its weight put in the order of one GEMM), made once per set of parameter values instead
//! of on every call. Side by side (`bench_models --phase infer-1`, 3 alternating rounds):
//! one-sample CNN-LSTM calls 4.16 k -> 5.04 k/s, LLN 6.7 k -> 7.1 k/s, batch 1024 unchanged;
//! the weight kept as `[k * C, F]` (see `conv1d_rows_by`) added 25 % and 7 %.
//!
//! An entry keeps the parameter tensors it was made from (shared storage, no copy) and is used
//! while the layer's parameters are those very tensors. Flex storage is copy-on-write, so while
//! the entry holds a source nothing changes its values in place, and its address cannot be
//! another tensor's. A training step gives the parameters new tensors, so the next inference
//! pass makes the entry again: it is never stale.

use std::sync::{Arc, Mutex};

use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

use super::F32Values;

/// Whether two storages are the same tensor's: the same values at the same address, in the
/// same shape (see the module comment for why the address is enough while one is held).
fn same_storage(a: &FlexTensor, b: &FlexTensor) -> bool {
    let values = |t: &FlexTensor| t.as_slice::<f32>().map(|v| (v.as_ptr(), v.len()));
    values(a) == values(b) && a.layout().shape() == b.layout().shape()
}

struct Entry<T> {
    /// The parameters' storage the value was made from, held so that it outlives the entry.
    sources: Vec<FlexTensor>,
    value: Arc<T>,
}

/// A value derived from some parameters, made again whenever one of them is another tensor.
pub(crate) struct Derived<T> {
    slot: Mutex<Option<Entry<T>>>,
}

/// The parameters a [`Derived`] value is made from: their Flex storage, or `None` when one is
/// not plain Flex storage (other backends: the value is made on every call, as without a cache).
pub(crate) struct Sources(Option<Vec<FlexTensor>>);

impl Sources {
    pub fn new() -> Self {
        Self(Some(Vec::new()))
    }

    pub fn with<const D: usize>(self, tensor: Tensor<D>) -> Self {
        Self(self.0.and_then(|mut storages| {
            storages.push(F32Values::flex_storage(&tensor)?);
            Some(storages)
        }))
    }
}

impl<T> Derived<T> {
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }

    /// `make()`, reused while the sources are the tensors it was made from.
    pub fn get(&self, sources: Sources, make: impl FnOnce() -> T) -> Arc<T> {
        let Some(storages) = sources.0 else {
            return Arc::new(make());
        };
        // A poisoned lock only means a panic while making a value: the slot then holds the
        // previous whole entry or none, both fine to use.
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let made_from_these = |entry: &&Entry<T>| {
            entry.sources.len() == storages.len()
                && entry
                    .sources
                    .iter()
                    .zip(&storages)
                    .all(|(a, b)| same_storage(a, b))
        };
        if let Some(entry) = slot.as_ref().filter(made_from_these) {
            return entry.value.clone();
        }
        let value = Arc::new(make());
        *slot = Some(Entry {
            sources: storages,
            value: value.clone(),
        });
        value
    }
}

/// A copy starts empty: a cloned module's parameters may be replaced independently.
impl<T> Clone for Derived<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn tensor(values: Vec<f32>) -> Tensor<1> {
        let len = values.len();
        Tensor::from_data(TensorData::new(values, [len]), &Device::flex())
    }

    #[test]
    fn a_value_is_made_once_per_set_of_source_tensors() {
        let derived = Derived::new();
        let made = std::cell::Cell::new(0);
        let sum = |t: &Tensor<1>| {
            made.set(made.get() + 1);
            t.clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .iter()
                .sum::<f32>()
        };
        let weight = tensor(vec![1.0, 2.0]);
        let first = derived.get(Sources::new().with(weight.clone()), || sum(&weight));
        let again = derived.get(Sources::new().with(weight.clone()), || sum(&weight));
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!((*first, made.get()), (3.0, 1));
        // A new tensor (a training step's), even with the old values' shape: made again.
        let stepped = weight.clone().add_scalar(1.0);
        let next = derived.get(Sources::new().with(stepped.clone()), || sum(&stepped));
        assert_eq!((*next, made.get()), (5.0, 2));
        // The old tensor's storage is still held by nobody but `weight`: still a distinct key.
        let back = derived.get(Sources::new().with(weight.clone()), || sum(&weight));
        assert_eq!((*back, made.get()), (3.0, 3));
        // A clone of the cache starts empty.
        let copy = derived.clone();
        copy.get(Sources::new().with(weight.clone()), || sum(&weight));
        assert_eq!(made.get(), 4);
    }

    #[test]
    fn values_from_other_backends_or_views_are_made_on_every_call() {
        let derived = Derived::new();
        let made = std::cell::Cell::new(0);
        // A transposed view is not plain row-major storage.
        let view: Tensor<2> = Tensor::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
            &Device::flex(),
        )
        .transpose();
        for _ in 0..2 {
            derived.get(Sources::new().with(view.clone()), || {
                made.set(made.get() + 1)
            });
        }
        assert_eq!(made.get(), 2);
    }
}
