//! Gradient-boosted trees (`--model gbdt`), on forust-ml.
//!
//! Why forust-ml: measured on `k8s-misuse-dev/dev.csv` (benign split by time, each attack
//! scenario held out in turn, 2 threads, 2026-12-06), forust-ml 0.8 with its defaults fitted
//! in 0.07-0.11 s per split with ROC-AUC 0.968 / 0.750 / 0.672 / 0.888 / 0.555 on the held-out
//! scenarios; perpetual 3.0.0-rc.2 (budget 0.5 and 1.0) took 2.9-10.8 s for 0.952-0.968 /
//! 0.735-0.765 / 0.672 / 0.791-0.809 / 0.540-0.544, and its stable releases (1.9, 2.3) need a
//! nightly compiler. forust-ml computes exact TreeSHAP (`ContributionsMethod::Shapley`) and
//! exposes its trees, which the explanation test checks against brute-force Shapley values.

use std::fmt;
use std::time::Instant;

use forust_ml::gradientbooster::ContributionsMethod;
use forust_ml::{GradientBooster, Matrix};

use crate::config::{CheckedConfig, GbdtConfig};
use crate::train::{EpochRecord, History};
use crate::{ModelError, ModelKind, TrainData, TrainOptions, Trained};

/// A trained tree ensemble for binary classification: its raw output is the log-odds of
/// class 1 (attack).
pub(crate) struct Trees {
    booster: GradientBooster,
}

impl fmt::Debug for Trees {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trees")
            .field("trees", &self.booster.trees.len())
            .field("nodes", &self.nodes())
            .finish()
    }
}

/// Exact TreeSHAP values of samples, in log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeShap {
    /// One value per input per sample (sample after sample); a sample's values add up to its
    /// log-odds minus `expected`.
    pub contributions: Vec<f32>,
    /// The model's expected log-odds (over the training rows, as the trees' covers weigh them).
    pub expected: Vec<f32>,
}

impl Trees {
    /// A booster with no trees (it predicts its base score): for `Trained::untrained`.
    pub(crate) fn untrained(cfg: &GbdtConfig, seed: u64) -> Self {
        Self {
            booster: booster(cfg, seed),
        }
    }

    /// Fits on row-major `x` (`rows` x `features`, finite) with 0/1 labels and per-row weights.
    pub(crate) fn fit(
        cfg: &GbdtConfig,
        seed: u64,
        x: &[f32],
        features: usize,
        y: &[u32],
        weights: &[f64],
    ) -> Result<Self, ModelError> {
        let mut booster = booster(cfg, seed);
        let columns = column_major(x, features);
        let matrix = Matrix::new(&columns, y.len(), features);
        let targets: Vec<f64> = y.iter().map(|&label| f64::from(label)).collect();
        booster
            .fit(&matrix, &targets, weights, None)
            .map_err(|e| ModelError::Weights {
                kind: ModelKind::Gbdt,
                reason: e.to_string(),
            })?;
        Ok(Self { booster })
    }

    /// Log-odds of class 1 for every row of row-major `x`.
    pub(crate) fn margins(&self, x: &[f32], features: usize) -> Vec<f32> {
        let columns = column_major(x, features);
        let matrix = Matrix::new(&columns, x.len() / features.max(1), features);
        self.booster
            .predict(&matrix, true)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    /// Exact TreeSHAP values (Lundberg et al., 2020, path-dependent) for every row of `x`.
    pub(crate) fn shap(&self, x: &[f32], features: usize) -> TreeShap {
        let rows = x.len() / features.max(1);
        let columns = column_major(x, features);
        let matrix = Matrix::new(&columns, rows, features);
        // One row per sample: the features' values, then the bias (expected value).
        let raw = self
            .booster
            .predict_contributions(&matrix, ContributionsMethod::Shapley, true);
        let mut contributions = Vec::with_capacity(rows * features);
        let mut expected = Vec::with_capacity(rows);
        for row in raw.chunks_exact(features + 1) {
            contributions.extend(row[..features].iter().map(|&v| v as f32));
            expected.push(row[features] as f32);
        }
        TreeShap {
            contributions,
            expected,
        }
    }

    /// Split and leaf nodes over all trees (what a tree model has instead of parameters).
    pub(crate) fn nodes(&self) -> usize {
        self.booster.trees.iter().map(|t| t.nodes.len()).sum()
    }

    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        self.booster
            .json_dump()
            .map(String::into_bytes)
            .map_err(|e| ModelError::Weights {
                kind: ModelKind::Gbdt,
                reason: e.to_string(),
            })
    }

    /// Reads [`Trees::to_bytes`] back. Every split is checked against `features` (the config's
    /// input width) and every child must come after its parent, no deeper than
    /// [`MAX_TREE_DEPTH`]: forust-ml indexes rows and recurses through trees unchecked, so a
    /// doctored file could otherwise panic or loop.
    pub(crate) fn from_bytes(bytes: &[u8], features: usize) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::Weights {
            kind: ModelKind::Gbdt,
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
        let booster = GradientBooster::from_json(text).map_err(|e| bad(e.to_string()))?;
        for (t, tree) in booster.trees.iter().enumerate() {
            let mut depth = vec![0usize; tree.nodes.len()];
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.is_leaf {
                    continue;
                }
                if node.split_feature >= features {
                    return Err(bad(format!(
                        "tree {t} splits on input {} but the model has {features} inputs",
                        node.split_feature
                    )));
                }
                for child in [node.left_child, node.right_child, node.missing_node] {
                    if child <= i || child >= tree.nodes.len() {
                        return Err(bad(format!(
                            "tree {t}: node {i} has child {child} (of {} nodes)",
                            tree.nodes.len()
                        )));
                    }
                    depth[child] = depth[i] + 1;
                    if depth[child] > MAX_TREE_DEPTH {
                        return Err(bad(format!("tree {t} is deeper than {MAX_TREE_DEPTH}")));
                    }
                }
            }
        }
        Ok(Self { booster })
    }

    /// The trees, for tests that recompute predictions from them.
    #[cfg(test)]
    pub(crate) fn booster(&self) -> &GradientBooster {
        &self.booster
    }
}

/// Deepest tree a bundle may hold (the config allows at most this `max_depth`).
pub(crate) const MAX_TREE_DEPTH: usize = 64;

/// `cfg` is checked ([`crate::ModelConfig::check`]).
fn booster(cfg: &GbdtConfig, seed: u64) -> GradientBooster {
    GradientBooster::default()
        .set_iterations(cfg.iterations)
        .set_learning_rate(cfg.learning_rate)
        .set_max_depth(cfg.max_depth)
        .set_max_leaves(cfg.max_leaves)
        .set_l2(cfg.l2)
        .set_min_leaf_weight(cfg.min_leaf_weight)
        .set_nbins(cfg.bins)
        .set_seed(seed)
        .set_parallel(true)
}

fn column_major(x: &[f32], features: usize) -> Vec<f64> {
    let rows = x.len() / features.max(1);
    let mut columns = vec![0.0; x.len()];
    for (r, row) in x.chunks_exact(features.max(1)).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            columns[c * rows + r] = f64::from(v);
        }
    }
    columns
}

/// Mean log loss and accuracy of log-odds `margins` against 0/1 labels.
fn log_loss_and_accuracy(margins: &[f32], y: &[u32]) -> (f64, f64) {
    let n = margins.len().max(1) as f64;
    let (mut loss, mut correct) = (0.0, 0usize);
    for (&z, &label) in margins.iter().zip(y) {
        let z = f64::from(z);
        loss += z.max(0.0) - z * f64::from(label) + (-z.abs()).exp().ln_1p();
        correct += usize::from((z > 0.0) == (label == 1));
    }
    (loss / n, correct as f64 / n)
}

/// Fits the trees of `cfg` on `train_rows` (checked by [`crate::train`]); the class weights
/// of `opts` weigh the rows, the seed fixes any sampling. Epoch, batch and optimiser options
/// do not apply to boosting. The validation rows are scored for the history only: the number
/// of trees is fixed (no early stopping on a validation set that may be another scenario).
pub(crate) fn train_trees(
    cfg: CheckedConfig,
    trees_cfg: &GbdtConfig,
    train: &TrainData,
    train_rows: &[usize],
    val: &TrainData,
    val_rows: &[usize],
    opts: &TrainOptions,
) -> Result<Trained, ModelError> {
    let started = Instant::now();
    let features = cfg.input.sample_len();
    let gather = |data: &TrainData, rows: &[usize]| -> (Vec<f32>, Vec<u32>) {
        let mut x = Vec::with_capacity(rows.len() * features);
        for &row in rows {
            x.extend_from_slice(&data.x[row * features..(row + 1) * features]);
        }
        (x, rows.iter().map(|&row| data.y[row]).collect())
    };
    let (x, y) = gather(train, train_rows);
    let weights: Vec<f64> = match &opts.class_weights {
        Some(w) => y
            .iter()
            .map(|&label| f64::from(w[label as usize]))
            .collect(),
        None => vec![1.0; y.len()],
    };
    let trees = Trees::fit(trees_cfg, opts.seed, &x, features, &y, &weights)?;
    let (train_loss, _) = log_loss_and_accuracy(&trees.margins(&x, features), &y);
    let validation = (!val_rows.is_empty()).then(|| {
        let (vx, vy) = gather(val, val_rows);
        log_loss_and_accuracy(&trees.margins(&vx, features), &vy)
    });
    let history = history(train_loss, validation, trees_cfg.learning_rate, started);
    Ok(Trained::from_trees(cfg.into_inner(), trees, history))
}

/// The record of one boosting run, shown as one "epoch" in reports and plots.
fn history(
    train_loss: f64,
    val: Option<(f64, f64)>,
    learning_rate: f32,
    started: Instant,
) -> History {
    let (val_loss, val_accuracy) = match val {
        Some((loss, accuracy)) => (loss, Some(accuracy)),
        None => (f64::NAN, None),
    };
    History {
        epochs: vec![EpochRecord {
            epoch: 1,
            train_loss,
            val_loss,
            val_accuracy,
            lr: f64::from(learning_rate),
            seconds: started.elapsed().as_secs_f64(),
        }],
        best_epoch: Some(1),
        stopped_early: false,
    }
}

#[cfg(test)]
mod tests {
    use forust_ml::tree::Tree;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::{train, InputShape, ModelConfig};

    /// Rows of 4 features in [0, 1); the label needs an interaction (x0 and x1) and a third
    /// feature (x2), x3 is noise; 10 % of labels are flipped.
    fn interacting(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::with_capacity(n * 4);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: [f32; 4] = std::array::from_fn(|_| rng.random_range(0.0..1.0));
            let attack = (row[0] > 0.5 && row[1] > 0.3) || row[2] > 0.8;
            let flipped = rng.random_range(0.0..1.0) < 0.1;
            x.extend_from_slice(&row);
            y.push(u32::from(attack != flipped));
        }
        (x, y)
    }

    fn tiny_config(iterations: usize) -> ModelConfig {
        let mut cfg =
            ModelConfig::default_for(ModelKind::Gbdt, InputShape::Tabular { features: 4 }, 2);
        cfg.arch = crate::ArchConfig::Gbdt(GbdtConfig {
            iterations,
            max_depth: 3,
            max_leaves: 8,
            ..GbdtConfig::default()
        });
        cfg
    }

    fn fit(iterations: usize) -> Trained {
        let (x, y) = interacting(600, 1);
        let (vx, vy) = interacting(200, 2);
        let shape = InputShape::Tabular { features: 4 };
        let opts = TrainOptions {
            progress: false,
            ..TrainOptions::default_for(ModelKind::Gbdt)
        };
        train(
            &tiny_config(iterations),
            TrainData::new(&x, shape, &y),
            TrainData::new(&vx, shape, &vy),
            &opts,
        )
        .unwrap()
    }

    /// E[tree(x) | the features in `known` are x's], the others drawn as the training rows
    /// were (each split weighs its children by their hessian sums, as TreeSHAP does).
    fn conditional_expectation(tree: &Tree, node: usize, x: &[f64], known: u32) -> f64 {
        let n = &tree.nodes[node];
        if n.is_leaf {
            return f64::from(n.weight_value);
        }
        if known & (1 << n.split_feature) != 0 {
            let child = if x[n.split_feature] < n.split_value {
                n.left_child
            } else {
                n.right_child
            };
            return conditional_expectation(tree, child, x, known);
        }
        let (l, r) = (&tree.nodes[n.left_child], &tree.nodes[n.right_child]);
        (f64::from(l.hessian_sum) * conditional_expectation(tree, n.left_child, x, known)
            + f64::from(r.hessian_sum) * conditional_expectation(tree, n.right_child, x, known))
            / f64::from(n.hessian_sum)
    }

    /// Shapley values by the definition: every coalition of the other features, weighted
    /// |S|! (M - |S| - 1)! / M!.
    fn brute_force_shapley(trees: &Trees, x: &[f64]) -> Vec<f64> {
        let m = x.len();
        let value = |known: u32| -> f64 {
            trees
                .booster()
                .trees
                .iter()
                .map(|t| conditional_expectation(t, 0, x, known))
                .sum()
        };
        let factorial = |k: usize| (1..=k).product::<usize>() as f64;
        (0..m)
            .map(|i| {
                (0u32..1 << m)
                    .filter(|s| s & (1 << i) == 0)
                    .map(|s| {
                        let size = s.count_ones() as usize;
                        let weight = factorial(size) * factorial(m - size - 1) / factorial(m);
                        weight * (value(s | 1 << i) - value(s))
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn tree_shap_equals_brute_force_shapley_values_and_adds_up_to_the_log_odds() {
        let model = fit(6);
        let trees = model.trees().expect("gbdt trains trees");
        assert_eq!(trees.booster().trees.len(), 6);
        let (x, _) = interacting(20, 3);
        let shape = InputShape::Tabular { features: 4 };
        let shap = model.tree_shap(&x, shape).unwrap();
        let margins = model.raw_outputs(&x, shape).unwrap();
        let mut largest = 0.0f64;
        for (i, row) in x.chunks_exact(4).enumerate() {
            let row64: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let exact = brute_force_shapley(trees, &row64);
            for (j, want) in exact.iter().enumerate() {
                let got = f64::from(shap.contributions[i * 4 + j]);
                assert!(
                    (got - want).abs() < 1e-4,
                    "row {i} input {j}: {got} vs {want}"
                );
                largest = largest.max(want.abs());
            }
            let total: f32 = shap.contributions[i * 4..(i + 1) * 4].iter().sum();
            assert!((total + shap.expected[i] - margins[i]).abs() < 1e-4);
        }
        // The rows are explained by something: not all values are zero.
        assert!(largest > 0.05, "largest Shapley value {largest}");
    }

    #[test]
    fn trees_learn_the_interaction_and_round_trip_through_bytes() {
        let model = fit(100);
        let (x, y) = interacting(400, 4);
        let shape = InputShape::Tabular { features: 4 };
        let p = model.predict(&x, shape).unwrap().anomaly_scores();
        let correct = p
            .iter()
            .zip(&y)
            .filter(|(&log_odds, &y)| (log_odds > 0.0) == (y == 1))
            .count();
        // 10 % of labels are flipped: about 0.9 is the best a model can do.
        assert!(
            correct as f64 / 400.0 > 0.8,
            "accuracy {}",
            correct as f64 / 400.0
        );
        assert_eq!(model.history().epochs.len(), 1);
        let bytes = model.to_bytes().unwrap();
        let loaded = Trained::from_bytes(model.config(), &bytes).unwrap();
        assert_eq!(loaded.predict(&x, shape).unwrap().anomaly_scores(), p);
        assert_eq!(loaded.num_params(), model.num_params());
        assert!(model.score_gradients(&x, shape, 0).is_err());
    }

    #[test]
    fn doctored_trees_are_refused_before_scoring() {
        let model = fit(3);
        let json: serde_json::Value = serde_json::from_slice(&model.to_bytes().unwrap()).unwrap();
        let first_split = |json: &serde_json::Value| {
            json["trees"][0]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .position(|n| !n["is_leaf"].as_bool().unwrap())
                .unwrap()
        };
        let i = first_split(&json);
        for (field, value, expect) in [
            ("split_feature", 9, "splits on input 9"),
            ("left_child", 0, "has child 0"),
            ("right_child", 100_000, "has child 100000"),
        ] {
            let mut doctored = json.clone();
            doctored["trees"][0]["nodes"][i][field] = value.into();
            let bytes = serde_json::to_vec(&doctored).unwrap();
            let err = Trained::from_bytes(model.config(), &bytes)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{field}: {err}");
        }
        let err = Trained::from_bytes(model.config(), b"{not json").unwrap_err();
        assert!(matches!(err, ModelError::Weights { .. }), "{err}");
    }

    #[test]
    fn gbdt_takes_tabular_binary_input_only() {
        let windows = ModelConfig::default_for(
            ModelKind::Gbdt,
            InputShape::Windows {
                channels: 2,
                length: 3,
            },
            2,
        );
        assert!(windows.check().unwrap_err().to_string().contains("tabular"));
        let three =
            ModelConfig::default_for(ModelKind::Gbdt, InputShape::Tabular { features: 4 }, 3);
        assert!(three.check().unwrap_err().to_string().contains("binary"));
    }
}

#[cfg(test)]
mod ensemble_tests {
    use crate::{
        train, InputShape, ModelConfig, ModelError, ModelKind, TrainData, TrainOptions, Trained,
    };

    #[test]
    fn ensemble_scores_are_the_members_mean_and_round_trip_through_bytes() {
        let shape = InputShape::Tabular { features: 3 };
        let x: Vec<f32> = (0..120)
            .map(|i| ((i * 37) % 11) as f32 / 11.0 + (i % 2) as f32)
            .collect();
        let y: Vec<u32> = (0..40).map(|i| ((i * 3) % 2) as u32).collect();
        let cfg = ModelConfig::default_for(ModelKind::Ensemble, shape, 2);
        let opts = TrainOptions {
            epochs: 2,
            progress: false,
            ..TrainOptions::default_for(ModelKind::Ensemble)
        };
        let data = TrainData::new(&x, shape, &y);
        let model = train(&cfg, data, data, &opts).unwrap();
        let [trees, network] = model.members().unwrap();
        assert_eq!(trees.kind(), ModelKind::Gbdt);
        assert_eq!(network.kind(), ModelKind::Hybrid);
        let p = model.predict(&x, shape).unwrap().anomaly_scores();
        let (a, b) = (
            trees.predict(&x, shape).unwrap().anomaly_scores(),
            network.predict(&x, shape).unwrap().anomaly_scores(),
        );
        // The score is the log-odds of the members' mean probability.
        let sigmoid = |z: f32| 1.0 / (1.0 + (-f64::from(z)).exp());
        for i in 0..p.len() {
            let mean = 0.5 * (sigmoid(a[i]) + sigmoid(b[i]));
            assert!((sigmoid(p[i]) - mean).abs() < 1e-6, "{} vs {mean}", p[i]);
        }
        // Sure members keep their order and stay finite where P itself would round to 1 or 0.
        let odds = |a: f64, b: f64| crate::mean_probability_log_odds(a, b);
        // 1 - mean p = (e^-40 + e^-50) / 2.
        let expected = 40.0 + std::f64::consts::LN_2 - (-10f64).exp().ln_1p();
        assert!((odds(40.0, 50.0) - expected).abs() < 1e-9);
        assert!(odds(40.0, 60.0) > odds(40.0, 50.0));
        assert!((odds(-800.0, -800.0) + 800.0).abs() < 1e-9);
        assert!(odds(1000.0, -1000.0).abs() < 1e-9);
        assert_eq!(
            model.num_params(),
            trees.num_params() + network.num_params()
        );
        let bytes = model.to_bytes().unwrap();
        let loaded = Trained::from_bytes(&cfg, &bytes).unwrap();
        assert_eq!(loaded.predict(&x, shape).unwrap().anomaly_scores(), p);
        // A cut or a lying length prefix is an error, not a panic.
        for bad in [&bytes[..5], &bytes[..bytes.len() / 2]] {
            let err = Trained::from_bytes(&cfg, bad).unwrap_err();
            assert!(matches!(err, ModelError::Weights { .. }), "{err}");
        }
    }
}
