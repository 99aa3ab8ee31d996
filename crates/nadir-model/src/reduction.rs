//! The autoencoder reduction of seeds-spec §3.1 as a preprocessing step: a dense autoencoder
//! fitted on the training rows (reconstruction, no labels) whose encoder then turns every row
//! into its `code_dim` codes before the classifier sees it. The encoder leaves as plain dense
//! layers ([`DenseLayer`]) for the pipeline, so the bundle and detection apply it with the rest
//! of the preprocessing.

use nadir_dataset::DenseLayer;

use crate::arch::Network;
use crate::config::{ArchConfig, AutoencoderConfig};
use crate::train::{train, History, TrainOptions};
use crate::{InputShape, ModelConfig, ModelError, ModelKind, TrainData, Trained};

/// Fits the reduction on `train_x` (rows of `features` values; `val_x` for early stopping) and
/// returns its encoder: `features -> code_dim`, ReLU, as published (Dense(10, ReLU)).
pub fn fit_reduction(
    train_x: &[f32],
    val_x: &[f32],
    features: usize,
    code_dim: usize,
    opts: &TrainOptions,
) -> Result<(Vec<DenseLayer>, History), ModelError> {
    let shape = InputShape::Tabular { features };
    let mut cfg = ModelConfig::default_for(ModelKind::Autoencoder, shape, 2);
    cfg.arch = ArchConfig::Autoencoder(AutoencoderConfig {
        code_dim,
        // Published: fitted on every row; the labels play no part.
        benign_only: false,
        ..AutoencoderConfig::default()
    });
    let rows = |x: &[f32]| vec![0u32; x.len() / features.max(1)];
    let (train_y, val_y) = (rows(train_x), rows(val_x));
    let model = train(
        &cfg,
        TrainData::new(train_x, shape, &train_y),
        TrainData::new(val_x, shape, &val_y),
        opts,
    )?;
    Ok((encoder_layers(&model)?, model.history().clone()))
}

/// The encoder of a trained autoencoder as plain dense layers.
fn encoder_layers(model: &Trained) -> Result<Vec<DenseLayer>, ModelError> {
    let Network::Autoencoder(autoencoder) = model.network()? else {
        return Err(ModelError::Unsupported {
            kind: model.kind(),
            operation: "export as a reduction encoder (only the autoencoder)",
        });
    };
    let layers = autoencoder
        .encoder
        .iter()
        .map(|linear| {
            let weight = values(linear.weight.val());
            let [inputs, outputs] = linear.weight.val().dims();
            let bias = match &linear.bias {
                Some(bias) => values(bias.val()),
                None => vec![0.0; outputs],
            };
            DenseLayer {
                inputs,
                outputs,
                weight,
                bias,
            }
        })
        .collect();
    Ok(layers)
}

fn values<const D: usize>(tensor: burn::tensor::Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exported layers compute what the network's own encoder computes, and the codes carry
    /// the rows' structure (rows of two clusters stay apart).
    #[test]
    fn exported_encoder_matches_the_network_and_separates_clusters() {
        let features = 6;
        let mut x = Vec::new();
        for i in 0..240 {
            let centre = if i % 2 == 0 { 2.0 } else { -2.0 };
            for j in 0..features {
                x.push(centre * (1.0 + j as f32 * 0.1) + ((i * 7 + j * 3) % 5) as f32 * 0.05);
            }
        }
        let (train_x, val_x) = x.split_at(200 * features);
        let opts = TrainOptions {
            epochs: 30,
            progress: false,
            ..TrainOptions::default_for(ModelKind::Autoencoder)
        };
        let (layers, history) = fit_reduction(train_x, val_x, features, 3, &opts).unwrap();
        assert!(!history.epochs.is_empty());
        // The same fit, kept as a network: its own encoder gives the codes the layers give.
        let shape = InputShape::Tabular { features };
        let mut cfg = ModelConfig::default_for(ModelKind::Autoencoder, shape, 2);
        cfg.arch = ArchConfig::Autoencoder(AutoencoderConfig {
            code_dim: 3,
            benign_only: false,
            ..AutoencoderConfig::default()
        });
        let zeros = vec![0u32; 240];
        let model = train(
            &cfg,
            TrainData::new(train_x, shape, &zeros[..200]),
            TrainData::new(val_x, shape, &zeros[200..]),
            &opts,
        )
        .unwrap();
        let exported = encoder_layers(&model).unwrap();
        let network_codes = model.encode(&x, shape).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!((layers[0].inputs, layers[0].outputs), (features, 3));
        let code = |row: &[f32]| -> Vec<f32> {
            (0..3)
                .map(|o| {
                    let z: f32 = layers[0].bias[o]
                        + row
                            .iter()
                            .enumerate()
                            .map(|(i, v)| v * layers[0].weight[i * 3 + o])
                            .sum::<f32>();
                    z.max(0.0)
                })
                .collect()
        };
        let mut largest_gap = 0.0f32;
        for (row, expected) in x.chunks(features).zip(network_codes.data.chunks(3)) {
            let got: Vec<f32> = {
                let l = &exported[0];
                (0..3)
                    .map(|o| {
                        (l.bias[o]
                            + row
                                .iter()
                                .enumerate()
                                .map(|(i, v)| v * l.weight[i * 3 + o])
                                .sum::<f32>())
                        .max(0.0)
                    })
                    .collect()
            };
            for (g, e) in got.iter().zip(expected) {
                largest_gap = largest_gap.max((g - e).abs());
            }
        }
        assert!(
            largest_gap < 1e-4,
            "exported layers differ from the network by {largest_gap}"
        );
        let a = code(&x[..features]);
        let b = code(&x[features..2 * features]);
        let distance: f32 = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum();
        assert!(distance > 0.1, "codes of the two clusters: {a:?} {b:?}");
    }
}
