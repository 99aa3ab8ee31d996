//! Integrated gradients on every differentiable model kind: the contributions add up to
//! `score(x) - score(baseline)` within 1 % (completeness), and the scores they start from are
//! the scores `predict` gives.

use nadir_detect::explain::{
    attributions, integrated_gradients, ExplainMethod, COMPLETENESS_TOLERANCE,
};
use nadir_model::{train, InputShape, ModelConfig, ModelKind, TrainData, TrainOptions, Trained};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A sample layout each family reads, small enough to be quick.
fn shape_for(kind: ModelKind) -> InputShape {
    match kind {
        ModelKind::Llaformer
        | ModelKind::Hybrid
        | ModelKind::Autoencoder
        | ModelKind::Tabm
        | ModelKind::Gbdt
        | ModelKind::Ensemble => InputShape::Tabular { features: 12 },
        ModelKind::Lln | ModelKind::CnnLstm => InputShape::Windows {
            channels: 3,
            length: 32,
        },
        ModelKind::Ldpi => InputShape::Bytes { length: 64 },
    }
}

/// `n` samples per class: class c is noise around `c - 1` (so the classes separate).
fn blobs(width: usize, classes: usize, n: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<u32>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n * classes {
        let class = (i % classes) as u32;
        let centre = class as f32 - 1.0;
        x.extend((0..width).map(|_| centre + rng.random_range(-0.8..0.8)));
        y.push(class);
    }
    (x, y)
}

/// A model of `kind` trained for a few epochs on separable blobs, so its scores vary.
fn trained(kind: ModelKind, shape: InputShape, classes: usize) -> Trained {
    let config = ModelConfig::default_for(kind, shape, classes);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let width = shape.sample_len();
    let (x, y) = blobs(width, classes, 48, &mut rng);
    let (vx, vy) = blobs(width, classes, 8, &mut rng);
    let mut options = TrainOptions::default_for(kind);
    options.epochs = 4;
    options.batch_size = 16;
    options.patience = None;
    options.progress = false;
    train(
        &config,
        TrainData::new(&x, shape, &y),
        TrainData::new(&vx, shape, &vy),
        &options,
    )
    .unwrap_or_else(|e| panic!("{kind}: {e}"))
}

fn check_completeness(kind: ModelKind, classes: usize) {
    let shape = shape_for(kind);
    let model = trained(kind, shape, classes);
    let width = shape.sample_len();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // The baseline is a typical benign row; the samples come from every class.
    let baseline: Vec<f32> = (0..width)
        .map(|_| -1.0 + rng.random_range(-0.1..0.1))
        .collect();
    let (x, _) = blobs(width, classes, 6 / classes + 1, &mut rng);
    let x = &x[..6 * width];
    let found = integrated_gradients(&model, shape, 0, x, &baseline).unwrap();
    assert_eq!(found.len(), 6);
    let predicted = model.predict(x, shape).unwrap().anomaly_scores();
    let mut checked = 0;
    for (a, &p) in found.iter().zip(&predicted) {
        assert!(
            (a.score - p).abs() < 1e-4,
            "{kind}: score {} vs predict {p}",
            a.score
        );
        assert_eq!(a.contributions.len(), width);
        let delta = a.score - a.baseline_score;
        if delta.abs() < 1e-2 {
            continue;
        }
        checked += 1;
        assert!(
            a.completeness_error() <= COMPLETENESS_TOLERANCE,
            "{kind} ({classes} classes): contributions sum {} vs score - baseline {delta} (gap {:.3}%, {} steps)",
            a.total(),
            a.completeness_error() * 100.0,
            a.steps
        );
    }
    assert!(
        checked > 0,
        "{kind}: every score equals the baseline's; nothing was checked"
    );
}

#[test]
fn completeness_llaformer() {
    check_completeness(ModelKind::Llaformer, 2);
}

#[test]
fn completeness_lln() {
    check_completeness(ModelKind::Lln, 2);
}

#[test]
fn completeness_hybrid_binary_and_multiclass() {
    check_completeness(ModelKind::Hybrid, 2);
    check_completeness(ModelKind::Hybrid, 4);
}

#[test]
fn completeness_tabm_binary_and_multiclass() {
    check_completeness(ModelKind::Tabm, 2);
    check_completeness(ModelKind::Tabm, 3);
}

#[test]
fn completeness_cnn_lstm() {
    check_completeness(ModelKind::CnnLstm, 2);
}

#[test]
fn completeness_ldpi() {
    check_completeness(ModelKind::Ldpi, 2);
}

/// Trees: exact TreeSHAP (checked against brute-force Shapley values in nadir-model), in
/// log-odds; the record's score is the log-odds `predict` gives.
#[test]
fn tree_contributions_add_up_to_the_log_odds_predict_gives() {
    let shape = shape_for(ModelKind::Gbdt);
    let model = trained(ModelKind::Gbdt, shape, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (x, _) = blobs(12, 2, 3, &mut rng);
    let (method, found) = attributions(&model, 0, &x, &[0.0; 12]).unwrap();
    assert_eq!(method, ExplainMethod::TreeShap);
    let predicted = model.predict(&x, shape).unwrap().anomaly_scores();
    assert_eq!(found.len(), predicted.len());
    for (a, p) in found.iter().zip(predicted) {
        assert!((a.score - p).abs() < 1e-5, "{} vs {p}", a.score);
        assert!(a.completeness_error() < 1e-4);
    }
    // Attackers and benign rows sit on opposite sides of the expected log-odds.
    assert!(found.iter().any(|a| a.total() > 0.5) && found.iter().any(|a| a.total() < -0.5));
}

/// The ensemble: each member's attributions scaled by its share of the ensemble's change;
/// they add up to its score minus its baseline score, and its score is the log-odds of the
/// mean of the members' P(attack).
#[test]
fn ensemble_contributions_add_up_to_its_score() {
    let shape = shape_for(ModelKind::Ensemble);
    let model = trained(ModelKind::Ensemble, shape, 2);
    let [trees, network] = model.members().expect("an ensemble has members");
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (x, _) = blobs(12, 2, 3, &mut rng);
    let baseline = vec![-1.0; 12];
    let (method, found) = attributions(&model, 0, &x, &baseline).unwrap();
    assert_eq!(method, ExplainMethod::Ensemble);
    let predicted = model.predict(&x, shape).unwrap().anomaly_scores();
    let trees_odds = trees.predict(&x, shape).unwrap().anomaly_scores();
    let network_odds = network.predict(&x, shape).unwrap().anomaly_scores();
    let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
    for (i, a) in found.iter().enumerate() {
        let mean = 0.5 * (sigmoid(trees_odds[i]) + sigmoid(network_odds[i]));
        assert!((sigmoid(predicted[i]) - mean).abs() < 1e-5);
        assert!(
            (a.score - predicted[i]).abs() < 1e-4,
            "{} vs {}",
            a.score,
            predicted[i]
        );
        assert!(
            a.completeness_error() <= COMPLETENESS_TOLERANCE,
            "sum {} vs {}",
            a.total(),
            a.score - a.baseline_score
        );
    }
}

#[test]
fn autoencoder_contributions_are_its_reconstruction_error() {
    let shape = shape_for(ModelKind::Autoencoder);
    let config = ModelConfig::default_for(ModelKind::Autoencoder, shape, 2);
    let model = Trained::untrained(&config, 3).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x: Vec<f32> = (0..4 * 12).map(|_| rng.random_range(-2.0..2.0)).collect();
    let (method, found) = attributions(&model, 0, &x, &[0.0; 12]).unwrap();
    assert_eq!(method, ExplainMethod::ReconstructionError);
    let predicted = model.predict(&x, shape).unwrap().anomaly_scores();
    for (a, p) in found.iter().zip(predicted) {
        assert!(
            (a.total() - p).abs() <= 1e-5 * p.max(1.0),
            "{} vs {p}",
            a.total()
        );
        assert!(a.contributions.iter().all(|&c| c >= 0.0));
    }
}
