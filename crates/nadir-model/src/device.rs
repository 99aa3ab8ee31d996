//! Where models train and score: the one run-time device choice (`--device cpu|cuda|wgpu`).
//!
//! burn 0.22 has a single tensor type on its `Dispatch` backend: the [`Device`] a tensor or
//! module lives on picks the backend at run time (`Device::flex()`, `Device::cuda(..)`,
//! `Device::wgpu(..)`), each constructor present only when its burn feature is compiled in.
//! So the choice is one [`ComputeDevice`] resolved to a [`Device`] once ([`ComputeDevice::device`]);
//! training ([`TrainOptions::device`](crate::TrainOptions::device)) and scoring
//! ([`Trained::on_device`](crate::Trained::on_device)) take it from there, and the hand-written
//! Flex kernels fall back to burn's ops on any other device (`layers::flex::is_flex`).
//! `Device::default()` is not used: with the `cuda` feature compiled in it would be CUDA.

use std::fmt;

use burn::tensor::Device;

use crate::ModelError;

/// The compute device of training and scoring. `Cpu` (burn's Flex backend) is always built;
/// `Cuda` and `Wgpu` need the crate's `cuda` / `wgpu` features (the `nadir` binary forwards
/// them under the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ComputeDevice {
    /// burn's pure-Rust Flex CPU backend (with the hand-written kernels).
    #[default]
    Cpu,
    /// The first CUDA GPU (burn's CubeCL CUDA runtime; feature `cuda`).
    Cuda,
    /// The default wgpu adapter: Vulkan, Metal or DX12, whatever the machine offers (feature `wgpu`).
    Wgpu,
}

impl ComputeDevice {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Wgpu => "wgpu",
        }
    }

    /// The cargo feature that builds this device in (`None` for the CPU: always there).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Cpu => None,
            Self::Cuda => Some("cuda"),
            Self::Wgpu => Some("wgpu"),
        }
    }

    /// Whether this build has the device's backend.
    pub fn is_built(self) -> bool {
        match self {
            Self::Cpu => true,
            Self::Cuda => cfg!(feature = "cuda"),
            Self::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The burn device (without autodiff), or [`ModelError::DeviceNotBuilt`] when this build
    /// lacks the backend. Cheap: GPU runtimes start lazily, on the first tensor.
    pub fn device(self) -> Result<Device, ModelError> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            Self::Cuda => Ok(Device::cuda(burn::tensor::DeviceIndex::Default)),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[allow(unreachable_patterns)] // every device built in
            _ => Err(ModelError::DeviceNotBuilt { device: self }),
        }
    }

    /// Like [`device`](Self::device), and for a GPU also starts its runtime with one small
    /// tensor, so that a machine without the GPU (or its driver) is an error here rather
    /// than a panic in the middle of training or scoring.
    pub fn open(self) -> Result<Device, ModelError> {
        let device = self.device()?;
        if self == Self::Cpu {
            return Ok(device);
        }
        let probe = device.clone();
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            // Reading the tensor back makes the runtime compile and run a kernel.
            burn::tensor::Tensor::<1>::zeros([1], &probe)
                .into_data()
                .num_elements()
        }));
        match started {
            Ok(1) => Ok(device),
            Ok(n) => Err(ModelError::DeviceUnavailable {
                device: self,
                reason: format!("a 1-element test tensor read back with {n} elements"),
            }),
            Err(panic) => Err(ModelError::DeviceUnavailable {
                device: self,
                reason: panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("the runtime panicked")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            }),
        }
    }

    /// Human name of the backend, for messages ("CUDA", "wgpu").
    fn label(self) -> &'static str {
        match self {
            Self::Cpu => "the CPU backend",
            Self::Cuda => "CUDA",
            Self::Wgpu => "wgpu",
        }
    }

    /// The one-line "rebuild with" message of [`ModelError::DeviceNotBuilt`].
    pub(crate) fn not_built_message(self) -> String {
        let feature = self.feature().unwrap_or("default");
        format!(
            "--device {}: this nadir was built without {}; rebuild with `cargo build --release --features {feature}`",
            self.name(),
            self.label()
        )
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_built_and_is_flex() {
        assert!(ComputeDevice::Cpu.is_built());
        assert_eq!(ComputeDevice::default(), ComputeDevice::Cpu);
        assert_eq!(ComputeDevice::Cpu.open().unwrap(), Device::flex());
    }

    #[test]
    fn an_unbuilt_device_is_an_error_naming_the_feature() {
        for device in [ComputeDevice::Cuda, ComputeDevice::Wgpu] {
            if device.is_built() {
                continue;
            }
            let message = device.device().unwrap_err().to_string();
            let feature = device.feature().unwrap();
            assert!(
                message.contains(&format!("--features {feature}`")),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn training_on_an_unbuilt_device_fails_before_training() {
        use crate::{train, InputShape, ModelConfig, ModelKind, TrainData, TrainOptions};
        let Some(device) = [ComputeDevice::Cuda, ComputeDevice::Wgpu]
            .into_iter()
            .find(|d| !d.is_built())
        else {
            return;
        };
        let shape = InputShape::Tabular { features: 16 };
        let cfg = ModelConfig::default_for(ModelKind::Autoencoder, shape, 2);
        let x = vec![0.5f32; 16 * 8];
        let y = vec![0u32; 8];
        let opts = TrainOptions {
            epochs: 1,
            progress: false,
            device,
            ..TrainOptions::default()
        };
        let err = train(
            &cfg,
            TrainData::new(&x, shape, &y),
            TrainData::new(&x, shape, &y),
            &opts,
        )
        .unwrap_err();
        assert!(matches!(err, ModelError::DeviceNotBuilt { .. }), "{err}");
    }

    #[test]
    fn moving_a_model_to_the_cpu_keeps_its_scores() {
        use crate::{InputShape, ModelConfig, ModelKind, Trained};
        let shape = InputShape::Tabular { features: 6 };
        let cfg = ModelConfig::default_for(ModelKind::Hybrid, shape, 2);
        let model = Trained::untrained(&cfg, 3).unwrap();
        let x: Vec<f32> = (0..6 * 5).map(|i| (i as f32 * 0.37).sin()).collect();
        let before = model.predict(&x, shape).unwrap();
        let moved = model.on_device(ComputeDevice::Cpu).unwrap();
        assert_eq!(moved.device(), &Device::flex());
        assert_eq!(moved.predict(&x, shape).unwrap(), before);
    }
}
