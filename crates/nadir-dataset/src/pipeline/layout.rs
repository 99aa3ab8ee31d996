//! What one sample of a feature table is: a row of independent features, a window of
//! packets, or the first bytes of a flow. `extract` names the columns of the last two by a
//! fixed rule (`f{packet}_{feature}`, `b{packet}_{byte}`, owned by `nadir-features`), so the
//! layout is read from the column names and the pipeline puts the values in the order the
//! networks read: channel-major windows (one channel per packet feature, one step per packet)
//! and the bytes alone, with no flow metadata mixed in.

use std::collections::HashMap;

use nadir_features::bytes::FirstBytesConfig;
use nadir_features::packets::{window_column_name, PACKET_FEATURES};
use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::schema::byte_grid;

/// The layout of one sample; `Rows` unless the table holds packet windows or first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SampleLayout {
    /// Each feature column is one model input (CICFlowMeter rows, NSL-KDD).
    #[default]
    Rows,
    /// `packets` consecutive packets of `features` values each (the `packets` family; LLN and
    /// CNN-LSTM read them as (features x packets)).
    PacketWindows { packets: usize, features: usize },
    /// The first `packets` packets x `bytes` bytes of a flow (the `bytes` family; LDPI).
    FirstBytes { packets: usize, bytes: usize },
}

impl SampleLayout {
    /// The layout of a table whose feature columns are `columns`: packet windows when every
    /// `f{p}_{feature}` of packets 0..W is there, first bytes when there are `b{p}_{byte}`
    /// columns (N x M from the largest; [`SampleLayout::column_order`] names a missing one),
    /// rows otherwise.
    pub fn detect(columns: &[String]) -> SampleLayout {
        let present: HashMap<&str, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let packets = (0..)
            .take_while(|&p| {
                PACKET_FEATURES
                    .iter()
                    .all(|f| present.contains_key(window_column_name(p, f).as_str()))
            })
            .count();
        if packets > 0 {
            return SampleLayout::PacketWindows {
                packets,
                features: PACKET_FEATURES.len(),
            };
        }
        if let Some((packets, bytes)) = byte_grid(columns) {
            return SampleLayout::FirstBytes { packets, bytes };
        }
        SampleLayout::Rows
    }

    /// The columns of one sample in the order the model reads them, as indices into
    /// `columns`: channel-major for windows (all packets' first feature, then the second...),
    /// packet after packet for first bytes; every column for rows.
    pub fn column_order(&self, columns: &[String]) -> Result<Vec<usize>, DatasetError> {
        let index: HashMap<&str, usize> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let names: Vec<String> = match *self {
            SampleLayout::Rows => return Ok((0..columns.len()).collect()),
            SampleLayout::PacketWindows { packets, features } => {
                if features != PACKET_FEATURES.len() {
                    return Err(DatasetError::InvalidSpec(format!(
                        "packet windows of {features} features per packet; this nadir writes {}",
                        PACKET_FEATURES.len()
                    )));
                }
                PACKET_FEATURES
                    .iter()
                    .flat_map(|f| (0..packets).map(move |p| window_column_name(p, f)))
                    .collect()
            }
            SampleLayout::FirstBytes { packets, bytes } => (0..packets)
                .flat_map(|p| (0..bytes).map(move |b| FirstBytesConfig::column_name(p, b)))
                .collect(),
        };
        names
            .iter()
            .map(|name| {
                index.get(name.as_str()).copied().ok_or_else(|| {
                    DatasetError::InvalidSpec(format!(
                        "the sample layout {self} needs column `{name}`, which the table lacks"
                    ))
                })
            })
            .collect()
    }
}

impl std::fmt::Display for SampleLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SampleLayout::Rows => f.write_str("rows"),
            SampleLayout::PacketWindows { packets, features } => {
                write!(
                    f,
                    "packet windows ({features} features x {packets} packets)"
                )
            }
            SampleLayout::FirstBytes { packets, bytes } => {
                write!(f, "first bytes ({packets} packets x {bytes} bytes)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn packet_windows_are_read_from_the_names_and_put_channel_major() {
        let mut columns = names(&["protocol"]);
        for p in 0..3 {
            for f in PACKET_FEATURES {
                columns.push(window_column_name(p, f));
            }
        }
        let layout = SampleLayout::detect(&columns);
        assert_eq!(
            layout,
            SampleLayout::PacketWindows {
                packets: 3,
                features: PACKET_FEATURES.len()
            }
        );
        let order = layout.column_order(&columns).unwrap();
        assert_eq!(
            order.len(),
            3 * PACKET_FEATURES.len(),
            "protocol is left out"
        );
        // Channel 0 over the three packets, then channel 1.
        let f = PACKET_FEATURES.len();
        assert_eq!(&order[..4], &[1, 1 + f, 1 + 2 * f, 2]);
    }

    #[test]
    fn first_bytes_leave_the_metadata_out_and_a_missing_column_is_named() {
        let mut columns = names(&["protocol", "packets"]);
        for p in 0..2 {
            for b in 0..3 {
                columns.push(FirstBytesConfig::column_name(p, b));
            }
        }
        let layout = SampleLayout::detect(&columns);
        assert_eq!(
            layout,
            SampleLayout::FirstBytes {
                packets: 2,
                bytes: 3
            }
        );
        assert_eq!(
            layout.column_order(&columns).unwrap(),
            vec![2, 3, 4, 5, 6, 7]
        );
        assert_eq!(
            SampleLayout::detect(&names(&["a", "b"])),
            SampleLayout::Rows
        );
        columns.remove(4);
        let err = SampleLayout::FirstBytes {
            packets: 2,
            bytes: 3,
        }
        .column_order(&columns)
        .unwrap_err();
        assert!(err.to_string().contains("b0_2"), "{err}");
    }
}
