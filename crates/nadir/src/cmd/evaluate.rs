//! `nadir evaluate`: a bundle + labelled data -> classification report, ROC/PR,
//! confidence intervals, JSON and plots. Also the scoring and reporting helpers
//! `nadir train` shares.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use nadir_dataset::{Dataset, LabelMap, LabelMode, Matrix};
use nadir_detect::scorer::{score, Scored};
use nadir_detect::Bundle;
use nadir_eval::plot::{plot_evaluation, plot_history, Series};
use nadir_eval::{evaluate_binary, evaluate_multiclass, BootstrapConfig, EvalOptions, Evaluation};
use nadir_model::{ComputeDevice, History};

/// Score labelled data with a trained bundle and report how well it does.
///
/// The data are read the way the training data were (same label mapping, same
/// feature policy); columns are matched to the bundle's schema by name, so a file
/// with the columns in another order works, while a missing column is refused
/// with the list of differences. The bundle's fitted preprocessing is applied
/// (never refitted) and rows are flagged when their anomaly score reaches the
/// bundle's calibrated threshold.
///
/// Examples:
///
///   nadir evaluate --model nsl.nadir --data ../shared/data/nsl-kdd/KDDTest+.txt.gz
///
///   nadir evaluate --model k8s.nadir --data flows.csv --out eval/ --resamples 2000
///
///   # a lower threshold than calibrated: classifiers score the log-odds of attack,
///   # so -1 flags rows down to P(attack) = 0.27
///   nadir evaluate --model nsl.nadir --data KDDTest-21.txt.gz --threshold -1
///
///   # no labels (e.g. a day of normal traffic): how many rows would be flagged?
///   nadir evaluate --model ae.nadir --data monday.parquet --unlabelled --out scores/
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The bundle written by `nadir train`.
    #[arg(long, short = 'm', value_name = "BUNDLE")]
    model: PathBuf,
    /// Labelled data: CSV (optionally gzip) or Parquet with the bundle's feature columns.
    #[arg(long, short = 'd', value_name = "FILE")]
    data: PathBuf,
    /// Write evaluation.json, evaluation.txt and plots (PNG + SVG) into this folder.
    #[arg(long, short = 'o', value_name = "DIR")]
    out: Option<PathBuf>,
    /// Use this decision threshold instead of the bundle's calibrated one, in the score's
    /// units (`nadir inspect` names them: the log-odds of attack for classifiers).
    #[arg(long, value_name = "SCORE", allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// The data have no label column: report how many rows are flagged and how the
    /// scores spread (no accuracy can be measured), and write scores.csv with --out.
    #[arg(long)]
    unlabelled: bool,
    /// Where the model runs: cpu, or cuda / wgpu in a nadir built with `--features cuda` /
    /// `--features wgpu`.
    #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu, value_name = "DEVICE")]
    pub device: ComputeDevice,
    #[command(flatten)]
    report: ReportArgs,
}

/// Report options shared by `train` and `evaluate`.
#[derive(clap::Args, Clone, Debug)]
pub struct ReportArgs {
    /// Bootstrap resamples for the 95% confidence intervals (0 = no intervals).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub resamples: usize,
    /// Seed of the bootstrap (same seed, same intervals).
    #[arg(long, default_value_t = 7, value_name = "SEED")]
    pub bootstrap_seed: u64,
    /// Skip the PNG/SVG plots (the JSON and text report are still written).
    #[arg(long)]
    pub no_plots: bool,
}

impl ReportArgs {
    pub fn eval_options(&self) -> EvalOptions {
        EvalOptions {
            bootstrap: (self.resamples > 0).then_some(BootstrapConfig {
                resamples: self.resamples,
                confidence: 0.95,
                seed: self.bootstrap_seed,
            }),
            ..EvalOptions::default()
        }
    }
}

/// Evaluates scored rows against their classes: the full multiclass report when
/// the labels have more than two classes and the model gives probabilities,
/// otherwise the benign-vs-anomaly report.
/// `y_raw` (the raw label of each row: attack name or scenario) adds the per-attack-type view.
pub fn evaluate_scored(
    scored: &Scored,
    y: &[u32],
    y_raw: Option<&[u32]>,
    labels: &LabelMap,
    threshold: f64,
    options: &EvalOptions,
) -> Result<(Evaluation, Vec<bool>)> {
    let flags: Vec<bool> = y.iter().map(|&c| c != labels.benign_class).collect();
    let multiclass = labels.mode != LabelMode::Binary && labels.n_classes() > 2;
    let evaluation = match &scored.probabilities {
        Some((n, probs)) if multiclass && *n == labels.n_classes() => evaluate_multiclass(
            y,
            probs,
            &labels.classes,
            Some((labels.benign_class as usize, &scored.scores)),
            threshold,
            options,
        )?,
        _ => {
            let benign = labels
                .class_name(labels.benign_class)
                .unwrap_or("benign")
                .to_string();
            let attack = if labels.mode == LabelMode::Binary {
                labels
                    .class_name(1 - labels.benign_class.min(1))
                    .unwrap_or("attack")
            } else {
                "attack"
            };
            evaluate_binary(
                &scored.scores,
                &flags,
                threshold,
                [&benign, attack],
                options,
            )?
        }
    };
    let evaluation = match y_raw {
        Some(raw) if flags.iter().any(|&f| f) => {
            let attack_type: Vec<Option<u32>> = raw
                .iter()
                .zip(&flags)
                .map(|(&r, &attack)| attack.then_some(r))
                .collect();
            evaluation.with_attack_types(
                &scored.scores,
                &attack_type,
                &labels.raw_names,
                threshold,
                options,
            )?
        }
        _ => evaluation,
    };
    Ok((evaluation, flags))
}

/// Writes `evaluation.json`-style JSON, the text report and (unless disabled)
/// the plots into `dir`; returns the files written.
pub fn write_report(
    dir: &Path,
    name: &str,
    evaluation: &Evaluation,
    scored: &Scored,
    flags: &[bool],
    plots: bool,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join(format!("{name}.json"));
    evaluation.write_json(&json)?;
    let text = dir.join(format!("{name}.txt"));
    std::fs::write(&text, evaluation.to_string())
        .with_context(|| format!("writing {}", text.display()))?;
    let mut files = vec![json, text];
    if plots {
        let plot_dir = if name == "evaluation" {
            dir.to_path_buf()
        } else {
            dir.join(name)
        };
        files.extend(plot_evaluation(
            evaluation,
            Some((&scored.scores, flags)),
            &plot_dir,
        )?);
    }
    Ok(files)
}

/// Loss and accuracy curves of a training history (PNG + SVG).
pub fn write_history_plots(dir: &Path, history: &History) -> Result<Vec<PathBuf>> {
    if history.epochs.is_empty() {
        return Ok(Vec::new());
    }
    let series = |name: &str, f: &dyn Fn(&nadir_model::EpochRecord) -> f64| Series {
        name: name.to_string(),
        values: history.epochs.iter().map(f).collect(),
    };
    let mut files = plot_history(
        "Training history: loss",
        &[
            series("train loss", &|e| e.train_loss),
            series("validation loss", &|e| e.val_loss),
        ],
        &dir.join("history_loss"),
    )?;
    if history.epochs.iter().any(|e| e.val_accuracy.is_some()) {
        files.extend(plot_history(
            "Training history: validation accuracy",
            &[series("validation accuracy", &|e| {
                e.val_accuracy.unwrap_or(f64::NAN)
            })],
            &dir.join("history_accuracy"),
        )?);
    }
    Ok(files)
}

/// The rows of a dataset after the bundle's preprocessing; a row still not finite is refused.
pub fn preprocess(bundle: &Bundle, data: &Dataset) -> Result<Matrix> {
    bundle.check_schema(&data.schema)?;
    let prepared = nadir_detect::scorer::preprocess(&bundle.manifest.pipeline, &data.x)
        .context("applying the bundle's preprocessing")?;
    if let Some(&row) = prepared.unscorable.first() {
        bail!(
            "row {row} is not finite after preprocessing ({} such rows; the bundle's pipeline was fitted without imputation)",
            prepared.unscorable.len()
        );
    }
    Ok(prepared.x)
}

pub fn run(args: Args) -> Result<ExitCode> {
    args.device.device()?;
    let bundle = Bundle::load(&args.model)?;
    let model = bundle
        .model()
        .context("rebuilding the model from the bundle")?
        .on_device(args.device)?;
    let load_options = nadir_dataset::LoadOptions {
        unlabelled: args.unlabelled,
        ..bundle.load_options()
    };
    let data = nadir_dataset::load(&args.data, &load_options)
        .with_context(|| format!("loading {}", args.data.display()))?;
    if data.rows() == 0 {
        bail!("{} holds no rows", args.data.display());
    }
    let x = preprocess(&bundle, &data).with_context(|| {
        format!(
            "preparing {} for {}",
            args.data.display(),
            args.model.display()
        )
    })?;
    let labels = &bundle.manifest.labels;
    let threshold = match args.threshold {
        Some(t) if !t.is_finite() => bail!("--threshold {t} is not a finite number"),
        Some(t) => t,
        None => bundle.threshold(),
    };
    let scored = score(&model, &x, labels.benign_class)?;
    let threshold_source = match args.threshold {
        Some(_) => "threshold from --threshold".to_string(),
        None => format!(
            "the bundle's threshold ({})",
            bundle.manifest.thresholds.decision.rule
        ),
    };
    if args.unlabelled {
        noteln!(
            "{} ({}, {threshold_source}) on {} (unlabelled)",
            args.model.display(),
            bundle.manifest.model_kind,
            args.data.display()
        );
        return report_unlabelled(&scored.scores, threshold, args.out.as_deref());
    }
    let (evaluation, flags) = evaluate_scored(
        &scored,
        &data.y,
        Some(&data.y_raw),
        labels,
        threshold,
        &args.report.eval_options(),
    )?;
    noteln!(
        "{} ({}, {threshold_source}) on {}",
        args.model.display(),
        bundle.manifest.model_kind,
        args.data.display()
    );
    crate::cmd::note(format_args!("{evaluation}"));
    if let Some(out) = &args.out {
        let files = write_report(
            out,
            "evaluation",
            &evaluation,
            &scored,
            &flags,
            !args.report.no_plots,
        )?;
        noteln!("\nwrote {} files to {}", files.len(), out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Unlabelled rows: the flagged share and the spread of scores, and `scores.csv` in `out`.
fn report_unlabelled(scores: &[f32], threshold: f64, out: Option<&Path>) -> Result<ExitCode> {
    let flagged = scores
        .iter()
        .filter(|&&s| f64::from(s) >= threshold)
        .count();
    let mut sorted = scores.to_vec();
    sorted.sort_by(f32::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    noteln!(
        "{} rows scored; {flagged} flagged ({:.2} %) at threshold {threshold:.6}",
        scores.len(),
        100.0 * flagged as f64 / scores.len() as f64
    );
    noteln!(
        "scores: min {:.6}, median {:.6}, p90 {:.6}, p99 {:.6}, max {:.6}",
        at(0.0),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("scores.csv");
        let mut writer =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        writer.write_record(["row", "score", "flagged"])?;
        for (row, &score) in scores.iter().enumerate() {
            let flagged = f64::from(score) >= threshold;
            writer.serialize((row, score, flagged))?;
        }
        writer
            .flush()
            .with_context(|| format!("writing {}", path.display()))?;
        noteln!("\nwrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
