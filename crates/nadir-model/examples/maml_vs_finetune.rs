//! Does first-order MAML beat plain fine-tuning for few-shot adaptation to an unseen attack
//! scenario? Leave-one-scenario-out on the Kubernetes development flows (issue 18).
//!
//! ```text
//! cargo run --release -p nadir-model --example maml_vs_finetune -- \
//!     [--data ../shared/data/k8s-misuse-dev/dev.csv] [--draws 10] [--steps 20] [--lr 0.05] \
//!     [--meta-iterations 300] [--seed 42]
//! ```
//!
//! For each of the 5 attack scenarios in turn (the held-out one):
//! - training rows: the 4 other scenarios and the earliest 60 % of the benign flows (by time);
//!   validation: 15 % of each training scenario and the benign flows at 60-70 %; the fitted
//!   preprocessing sees the training rows only;
//! - from the same initial weights (same seed), the hybrid model is
//!   (a) meta-trained with first-order MAML (tasks = training scenarios, each with the shared
//!   benign rows; `MetaOptions::default()`), and (b) trained supervised (`TrainOptions::
//!   default_for(Hybrid)`, early stopping on validation); (c) is the fresh initialisation;
//! - for k in 5, 10, 50 and each of `--draws` draws: a support set of k flows of the held-out
//!   scenario and k benign flows from the latest 30 % (by time); every model is adapted with
//!   the same `adapt` (`--steps` plain SGD steps at `--lr`, whole support set per step); the
//!   query is every other held-out-scenario flow and every other late benign flow.
//!
//! Reported: ROC-AUC on the query (threshold-free), mean and 95 % CI over the 5 x draws
//! (scenario, draw) pairs, and the paired difference MAML - fine-tuning with its 95 % CI over
//! the 5 scenario means (t with 4 degrees of freedom: the draws of one scenario share its
//! meta-trained model, so the scenario is the unit).

use std::path::PathBuf;
use std::time::Instant;

use nadir_dataset::{load, GroupBy, LoadOptions, Pipeline, PipelineSpec, UNGROUPED};
use nadir_model::{
    adapt, meta_train, train, AdaptOptions, InputShape, MetaOptions, ModelConfig, ModelKind,
    TrainData, TrainOptions, Trained,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SHOTS: [usize; 3] = [5, 10, 50];
const METHODS: [&str; 5] = [
    "MAML + adapt",
    "supervised + fine-tune",
    "fresh + fine-tune",
    "MAML, unadapted",
    "supervised, unadapted",
];

fn main() {
    if let Err(e) = run() {
        eprintln!("maml_vs_finetune: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut data_path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/k8s-misuse-dev/dev.csv");
    let mut draws = 10usize;
    let mut adapt_opts = AdaptOptions {
        steps: 20,
        lr: 0.05,
        ..AdaptOptions::default()
    };
    let mut meta_opts = MetaOptions {
        progress: false,
        ..MetaOptions::default()
    };
    let mut seed = 42u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data" => data_path = PathBuf::from(value),
            "--draws" => draws = value.parse()?,
            "--steps" => adapt_opts.steps = value.parse()?,
            "--lr" => adapt_opts.lr = value.parse()?,
            "--meta-iterations" => meta_opts.meta_iterations = value.parse()?,
            "--seed" => seed = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    meta_opts.seed = seed;

    let started = Instant::now();
    let data = load(
        &data_path,
        &LoadOptions {
            group_by: GroupBy::Label,
            ..LoadOptions::default()
        },
    )?;
    // Benign rows by time (the file has them in time order; use the time column if parsed).
    let mut benign: Vec<usize> = (0..data.rows()).filter(|&r| data.y[r] == 0).collect();
    if let Some(time) = &data.time {
        benign.sort_by(|&a, &b| time[a].total_cmp(&time[b]).then(a.cmp(&b)));
    }
    let cut = |share: f64| (benign.len() as f64 * share) as usize;
    let benign_train = &benign[..cut(0.6)];
    let benign_val = &benign[cut(0.6)..cut(0.7)];
    let benign_test = &benign[cut(0.7)..];
    let mut scenarios: Vec<u32> = data
        .groups
        .iter()
        .copied()
        .filter(|&g| g != UNGROUPED)
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    eprintln!(
        "{}: {} rows, {} scenarios, benign {} train / {} val / {} test (by time)",
        data_path.display(),
        data.rows(),
        scenarios.len(),
        benign_train.len(),
        benign_val.len(),
        benign_test.len()
    );

    // results[k][method] = AUC per (scenario, draw); scenario index alongside.
    let mut results = vec![vec![Vec::<(usize, f64)>::new(); METHODS.len()]; SHOTS.len()];
    for (fold, &held_out) in scenarios.iter().enumerate() {
        let name = &data.group_names[held_out as usize];
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (0x9e37 * (fold as u64 + 1)));
        let mut train_rows: Vec<usize> = benign_train.to_vec();
        let mut val_rows: Vec<usize> = benign_val.to_vec();
        for &g in scenarios.iter().filter(|&&g| g != held_out) {
            let mut rows: Vec<usize> = (0..data.rows()).filter(|&r| data.groups[r] == g).collect();
            rows.shuffle(&mut rng);
            let n_val = (rows.len() as f64 * 0.15).ceil() as usize;
            val_rows.extend_from_slice(&rows[..n_val]);
            train_rows.extend_from_slice(&rows[n_val..]);
        }
        let held: Vec<usize> = (0..data.rows())
            .filter(|&r| data.groups[r] == held_out)
            .collect();

        let fit = data.subset(&train_rows);
        let (pipeline, train_x) =
            Pipeline::fit_transform(&PipelineSpec::default(), fit.x.clone(), &data.schema)?;
        let all_x = pipeline.transform(&data.x)?;
        let features = all_x.cols;
        let shape = InputShape::Tabular { features };
        let row = |r: usize| &all_x.data[r * features..(r + 1) * features];
        let gather = |rows: &[usize]| -> (Vec<f32>, Vec<u32>) {
            let mut x = Vec::with_capacity(rows.len() * features);
            for &r in rows {
                x.extend_from_slice(row(r));
            }
            (x, rows.iter().map(|&r| u32::from(data.y[r] != 0)).collect())
        };
        let train_y: Vec<u32> = fit.y.iter().map(|&c| u32::from(c != 0)).collect();
        let (val_x, val_y) = gather(&val_rows);
        let cfg = ModelConfig::default_for(ModelKind::Hybrid, shape, 2);
        let train_data = TrainData::new(&train_x.data, shape, &train_y);
        let val_data = TrainData::new(&val_x, shape, &val_y);

        let t = Instant::now();
        let maml = meta_train(&cfg, train_data, &fit.groups, val_data, &meta_opts)?;
        let maml_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let supervised = train(
            &cfg,
            train_data,
            val_data,
            &TrainOptions {
                seed,
                progress: false,
                ..TrainOptions::default_for(ModelKind::Hybrid)
            },
        )?;
        let sup_s = t.elapsed().as_secs_f64();
        let fresh = Trained::untrained(&cfg, seed)?;
        eprintln!(
            "held out {name} ({} flows): meta-trained in {maml_s:.0} s, supervised in {sup_s:.0} s ({} epochs)",
            held.len(),
            supervised.history().epochs.len()
        );

        for (ki, &k) in SHOTS.iter().enumerate() {
            let mut fold_sum = [0.0f64; METHODS.len()];
            for draw in 0..draws {
                let mut attack_pool = held.clone();
                let mut benign_pool = benign_test.to_vec();
                attack_pool.shuffle(&mut rng);
                benign_pool.shuffle(&mut rng);
                let support: Vec<usize> = attack_pool[..k]
                    .iter()
                    .chain(&benign_pool[..k])
                    .copied()
                    .collect();
                let query: Vec<usize> = attack_pool[k..]
                    .iter()
                    .chain(&benign_pool[k..])
                    .copied()
                    .collect();
                let (sx, sy) = gather(&support);
                let (qx, qy) = gather(&query);
                let support = TrainData::new(&sx, shape, &sy);
                let opts = AdaptOptions {
                    seed: seed + draw as u64,
                    ..adapt_opts.clone()
                };
                let auc_of = |model: &Trained| -> Result<f64, nadir_model::ModelError> {
                    Ok(roc_auc(&model.predict(&qx, shape)?.anomaly_scores(), &qy))
                };
                let aucs = [
                    auc_of(&adapt(&maml, support, &opts)?)?,
                    auc_of(&adapt(&supervised, support, &opts)?)?,
                    auc_of(&adapt(&fresh, support, &opts)?)?,
                    auc_of(&maml)?,
                    auc_of(&supervised)?,
                ];
                for (m, auc) in aucs.into_iter().enumerate() {
                    results[ki][m].push((fold, auc));
                    fold_sum[m] += auc / draws as f64;
                }
            }
            eprintln!(
                "  k={k:>2}: {}",
                METHODS
                    .iter()
                    .zip(fold_sum)
                    .map(|(m, a)| format!("{m} {a:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    println!(
        "\nROC-AUC on the held-out scenario's query flows vs late benign flows; mean [95% CI] over {} (scenario, draw) pairs; \
         adaptation: {} SGD steps, lr {}; MAML: first-order, {} meta-iterations; {:.0} s in all\n",
        scenarios.len() * draws,
        adapt_opts.steps,
        adapt_opts.lr,
        meta_opts.meta_iterations,
        started.elapsed().as_secs_f64()
    );
    print!("| shots per class |");
    for m in METHODS {
        print!(" {m} |");
    }
    println!(" MAML - fine-tune, per scenario [95% CI] | scenarios MAML ahead |");
    print!("|---|");
    for _ in 0..METHODS.len() + 2 {
        print!("---|");
    }
    println!();
    for (ki, &k) in SHOTS.iter().enumerate() {
        print!("| {k} |");
        for method in &results[ki] {
            let values: Vec<f64> = method.iter().map(|&(_, a)| a).collect();
            let (mean, half) = mean_ci(&values, 1.96);
            print!(" {mean:.3} [{:.3}, {:.3}] |", mean - half, mean + half);
        }
        // Paired by scenario: mean over draws of MAML - fine-tune, then a t interval over
        // scenarios.
        let per_fold: Vec<f64> = (0..scenarios.len())
            .map(|fold| {
                let diffs: Vec<f64> = results[ki][0]
                    .iter()
                    .zip(&results[ki][1])
                    .filter(|((f, _), _)| *f == fold)
                    .map(|((_, a), (_, b))| a - b)
                    .collect();
                diffs.iter().sum::<f64>() / diffs.len().max(1) as f64
            })
            .collect();
        let t = student_t_975(per_fold.len().saturating_sub(1));
        let (mean, half) = mean_ci(&per_fold, t);
        let ahead = per_fold.iter().filter(|&&d| d > 0.0).count();
        println!(
            " {mean:+.3} [{:+.3}, {:+.3}] | {ahead} of {} |",
            mean - half,
            mean + half,
            per_fold.len()
        );
    }
    Ok(())
}

/// ROC-AUC with ties counted half (Mann-Whitney U); `y` 1 = attack.
fn roc_auc(scores: &[f32], y: &[u32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &r in &order[i..=j] {
            if y[r] == 1 {
                rank_sum += rank;
            }
        }
        i = j + 1;
    }
    let positives = y.iter().filter(|&&v| v == 1).count() as f64;
    let negatives = y.len() as f64 - positives;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Mean and half-width `t * sd / sqrt(n)`.
fn mean_ci(values: &[f64], t: f64) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, t * (var / n).sqrt())
}

/// The 97.5 % quantile of Student's t for `df` degrees of freedom (small df tabulated).
fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 10] = [
        f64::NAN,
        12.706,
        4.303,
        3.182,
        2.776,
        2.571,
        2.447,
        2.365,
        2.306,
        2.262,
    ];
    TABLE.get(df).copied().unwrap_or(1.96)
}
