//! Per-sample input shapes: how a flat `f32` buffer is cut into samples.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The shape of one sample; a data buffer holds `N x sample_len()` values, sample after sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "layout", rename_all = "kebab-case")]
pub enum InputShape {
    /// One feature vector per row: (N, F).
    Tabular { features: usize },
    /// Windows of `length` steps with `channels` values per step, stored channel-major: (N, C, L).
    Windows { channels: usize, length: usize },
    /// The first bytes of a flow scaled to [0, 1]: (N, 1, L).
    Bytes { length: usize },
}

impl InputShape {
    /// Number of `f32` values in one sample.
    pub fn sample_len(&self) -> usize {
        let (channels, length) = self.channels_length();
        channels * length
    }

    /// The sample as (channels, length), the layout the networks read: tabular rows are
    /// one channel along the feature axis, bytes one channel along the byte axis.
    pub fn channels_length(&self) -> (usize, usize) {
        match *self {
            InputShape::Tabular { features } => (1, features),
            InputShape::Windows { channels, length } => (channels, length),
            InputShape::Bytes { length } => (1, length),
        }
    }
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InputShape::Tabular { features } => write!(f, "tabular (N, {features})"),
            InputShape::Windows { channels, length } => {
                write!(f, "windows (N, {channels}, {length})")
            }
            InputShape::Bytes { length } => write!(f, "bytes (N, 1, {length})"),
        }
    }
}
