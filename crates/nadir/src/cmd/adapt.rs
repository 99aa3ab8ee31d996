//! `nadir adapt`: a bundle + a few labelled rows of a new environment -> a fine-tuned
//! bundle (few-shot adaptation, the deployment half of MAML).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use nadir_detect::bundle::{fingerprint_training_data, Bundle, BundleParts};
use nadir_model::{adapt, loss_and_accuracy, AdaptOptions, ComputeDevice, Head, TrainData};

use super::evaluate::preprocess;

/// Adapt a trained bundle to a new environment with a few labelled rows.
///
/// The support file is read the way the bundle's training data were: its columns are
/// matched to the bundle's schema by name (a missing column is refused with every
/// difference listed) and its labels are mapped with the bundle's classes (a label
/// the bundle does not know is an error for a multiclass bundle; a binary bundle
/// takes it as an attack, with a warning). The bundle's fitted preprocessing is
/// applied, never refitted, and the model takes --steps plain SGD steps on the
/// support rows (first-order MAML's inner loop; for any bundle, plain fine-tuning).
/// Classifiers need rows of at least two classes; an autoencoder learns from the
/// benign rows.
///
/// The decision threshold and the benign-score thresholds are the bundle's own,
/// calibrated on its validation split: a few support rows that the model has just
/// been trained on cannot recalibrate them soundly. Check the adapted bundle with
/// `nadir evaluate` on labelled rows of the new environment that were not in the
/// support set. The validation and test metrics of the original bundle do not
/// describe the adapted weights and are left out of the new bundle.
///
/// Examples:
///
///   # meta-trained on some scenarios, adapted to 10 labelled flows per class of a new one
///   nadir train --data k8s.csv --model hybrid --mode maml --split group -o meta.nadir
///   nadir adapt --model meta.nadir --support few.csv -o adapted.nadir
///
///   # more and smaller steps, mini-batches of 16 rows
///   nadir adapt --model m.nadir --support few.csv --steps 50 --lr 0.01 --batch-size 16 -o m2.nadir
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The bundle to adapt (written by `nadir train` or `nadir adapt`).
    #[arg(long, short = 'm', value_name = "BUNDLE")]
    model: PathBuf,
    /// A few labelled rows of the new environment: CSV (optionally gzip) or Parquet
    /// with the bundle's feature columns and a label column.
    #[arg(long, short = 's', value_name = "FILE")]
    support: PathBuf,
    /// Where to write the adapted bundle.
    #[arg(long, short = 'o', value_name = "BUNDLE")]
    out: PathBuf,
    /// Plain SGD steps on the support rows.
    #[arg(long, default_value_t = 20, value_name = "N")]
    steps: usize,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.05, value_name = "LR")]
    lr: f64,
    /// Rows per step (default: every support row in every step).
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Seed of the dropout masks and the mini-batch order.
    #[arg(long, default_value_t = 42, value_name = "SEED")]
    seed: u64,
    /// Where the model trains: cpu, or cuda / wgpu in a nadir built with
    /// `--features cuda` / `--features wgpu`.
    #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu, value_name = "DEVICE")]
    pub device: ComputeDevice,
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.device.device()?;
    super::check_inputs_exist(&[args.model.clone(), args.support.clone()])?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle
        .model()
        .context("rebuilding the model from the bundle")?;
    let data = nadir_dataset::load(&args.support, &bundle.load_options())
        .with_context(|| format!("loading {}", args.support.display()))?;
    if data.rows() == 0 {
        bail!("{} holds no rows", args.support.display());
    }
    let known = bundle.manifest.labels.raw_classes.len();
    let new_labels = &data.labels.raw_classes[known.min(data.labels.raw_classes.len())..];
    if !new_labels.is_empty() {
        tracing::warn!(
            "{}: labels the bundle never saw, taken as attacks (binary bundle): {}",
            args.support.display(),
            new_labels.join(", ")
        );
    }
    let x = preprocess(&bundle, &data).with_context(|| {
        format!(
            "preparing {} for {}",
            args.support.display(),
            args.model.display()
        )
    })?;
    let shape = model.config().input;
    if x.cols != shape.sample_len() {
        bail!(
            "{} gives {} model inputs per row after preprocessing, but the model takes {shape}",
            args.support.display(),
            x.cols
        );
    }

    let labels = &bundle.manifest.labels;
    let class_counts = data.class_counts();
    let head = model.config().head;
    let classifies = matches!(head, Head::Sigmoid | Head::Softmax);
    if classifies {
        let present: Vec<&str> = class_counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, _)| name.as_str())
            .collect();
        if present.len() < 2 {
            bail!(
                "{}: every row is of class `{}`; adapting a classifier needs labelled rows of at \
                 least two classes (the bundle's classes: {})",
                args.support.display(),
                present.first().copied().unwrap_or("?"),
                labels.classes.join(", ")
            );
        }
        let missing: Vec<&str> = class_counts
            .iter()
            .filter(|(_, n)| *n == 0)
            .map(|(name, _)| name.as_str())
            .collect();
        if !missing.is_empty() {
            tracing::warn!(
                "{}: no rows of class {}; the adapted model is only pushed towards the others",
                args.support.display(),
                missing.join(", ")
            );
        }
    }

    let opts = AdaptOptions {
        steps: args.steps,
        lr: args.lr,
        batch_size: args.batch_size,
        seed: args.seed,
        device: args.device,
    };
    let support = TrainData::new(&x.data, shape, &data.y);
    let model = model.on_device(args.device)?;
    let adapted = adapt(&model, support, &opts).with_context(|| {
        format!(
            "adapting {} to {}",
            args.model.display(),
            args.support.display()
        )
    })?;
    let (loss_before, acc_before) = loss_and_accuracy(&model, support)?;
    let (loss_after, acc_after) = loss_and_accuracy(&adapted, support)?;

    let counts: Vec<String> = class_counts
        .iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    noteln!(
        "adapted {} ({}) on {} ({} rows: {}): {} SGD steps, lr {}{}",
        args.model.display(),
        bundle.manifest.model_kind,
        args.support.display(),
        data.rows(),
        counts.join(", "),
        opts.steps,
        opts.lr,
        opts.batch_size
            .map(|b| format!(", batch {b}"))
            .unwrap_or_default()
    );
    let accuracy = |a: Option<f64>| a.map(|a| format!(", accuracy {a:.4}")).unwrap_or_default();
    noteln!(
        "support loss {loss_before:.4}{} before, {loss_after:.4}{} after (the rows it was \
         adapted on: not a measure of quality; evaluate on other rows)",
        accuracy(acc_before),
        accuracy(acc_after)
    );
    noteln!(
        "threshold kept: {} = {:.6} (calibrated on the original validation split)",
        bundle.manifest.thresholds.decision.rule,
        bundle.threshold()
    );

    let m = &bundle.manifest;
    let mut training_data = m.training_data.clone();
    training_data.sources.push(format!(
        "adapted on {} ({} rows, sha256 {}; {} SGD steps, lr {})",
        args.support.display(),
        x.rows,
        fingerprint_training_data(&x.data, x.rows, x.cols, &data.y),
        opts.steps,
        opts.lr
    ));
    let out_bundle = Bundle::new(BundleParts {
        model: m.model.clone(),
        num_params: adapted.num_params(),
        train_options: m.train_options.clone(),
        load_options: m.load_options.clone(),
        pipeline: m.pipeline.clone(),
        labels: m.labels.clone(),
        split: m.split.clone(),
        thresholds: m.thresholds.clone(),
        explain_baseline: m.explain_baseline.clone(),
        validation: None,
        evaluation: None,
        training_data,
        history: adapted.history().clone(),
        weights: adapted.to_bytes()?,
    })?;
    out_bundle.save(&args.out)?;
    noteln!("saved {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
