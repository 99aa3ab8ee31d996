//! `nadir train`: dataset -> trained model bundle (.nadir), with an evaluation
//! report and plots beside it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use nadir_dataset::pipeline::Balance;
use nadir_dataset::{
    class_weights, smote, Dataset, FeaturePolicy, GroupBy, LoadOptions, Pipeline, PipelineSpec,
    SampleLayout, ScalerKind, SplitSpec,
};
use nadir_detect::bundle::{fingerprint_training_data, Bundle, BundleParts, DataFingerprint};
use nadir_detect::scorer::score;
use nadir_detect::{BenignThresholds, ThresholdRule, Thresholds};
use nadir_eval::EvaluationSummary;
use nadir_features::bytes::FirstBytesConfig;
use nadir_features::labels::LabelRules;
use nadir_features::output::OutputFormat;
use nadir_features::packets::{WindowConfig, WindowScope};
use nadir_model::{
    ArchConfig, ComputeDevice, Head, InputShape, ModelConfig, ModelKind, TabmEmbedding, TrainData,
    TrainOptions,
};
use nadir_pipeline::extract::{extract, ExtractSpec, Family};
use nadir_pipeline::{Progress, RunSummary};
use serde::Deserialize;

use super::evaluate::{evaluate_scored, write_history_plots, write_report, ReportArgs};
use super::{check_inputs_exist, is_capture, FlowArgs, LabelModeArg};

/// Train a model on a labelled dataset and save it as one bundle file.
///
/// What happens, in order:
///   1. load FILE (CSV, gzip CSV or Parquet; NSL-KDD, CICFlowMeter/Kubernetes and
///      generic labelled tables are recognised by their header);
///   2. split the rows into train / validation / test (or train / validation when
///      --test gives a separate test file);
///   3. fit the preprocessing (imputation, constant-column drop, scaling, ...) on the
///      TRAINING rows only and apply it to every split;
///   4. train, early-stopping on the validation loss (best epoch restored);
///   5. choose the decision threshold on the validation split (--threshold);
///   6. evaluate on the test rows: report printed, and JSON + plots written to
///      <OUT>.report/;
///   7. save the bundle: model, weights, schema, fitted preprocessing, labels,
///      threshold, metrics, data fingerprint.
///
/// Modes (--mode): supervised learns benign vs attack from labels; deepsad (LDPI) and
/// autoencoder learn normal traffic only: the benign rows are split (by --split), every
/// attack row goes to the test split, and the threshold comes from held-out benign scores,
/// so no attack label is needed at any point (--unlabelled works too).
///
/// Models: llaformer, hybrid, autoencoder, tabm (TabM-mini: 32 MLPs sharing their hidden
/// weights, trained together, averaged, reading each feature through its own learnt periodic
/// embedding; nadir's own tabular family) and gbdt (gradient-boosted
/// trees, binary, explained with exact TreeSHAP; epochs and batches do not apply) read feature
/// vectors;
/// cnn-lstm and lln read (N, C, L) sequences and ldpi reads bytes, each as published when
/// the table has them (--layout auto): lln and cnn-lstm the packet windows of `extract
/// --features packets` as (10 packet features x W packets), ldpi the first bytes of
/// `extract --features bytes` alone, scaled by /255. On a table of flow features they see
/// each preprocessed row as a 1-channel sequence, i.e. convolutions run along the column
/// order, which is arbitrary (seeds-spec §7.5).
///
/// Examples:
///
///   # NSL-KDD, binary, threshold at 1% false positives on validation, scored on KDDTest+
///   nadir train --data ../shared/data/nsl-kdd/KDDTrain+.txt.gz \
///       --test ../shared/data/nsl-kdd/KDDTest+.txt.gz --model hybrid --threshold fpr:0.01 -o nsl.nadir
///
///   # straight from captures: LLN on flow windows of 20 packets, labelled by rules
///   nadir train -d scan.pcap -d normal.pcap --labels rules.toml --model lln -o lln.nadir
///
///   # the hybrid on the 10 codes of its published autoencoder reduction, with in a file:
///   #   [pipeline]
///   #   reduction = { kind = "autoencoder", dim = 10 }
///   nadir train --data k8s.csv --model hybrid --config ae.toml -o k8s-ae.nadir
///
///   # Kubernetes flows, whole scenarios kept on one side of the split
///   nadir train --data k8s.csv --model llaformer --split group -o k8s.nadir
///
///   # gradient-boosted trees on the same flows (100 rounds; [arch] kind = "gbdt" tunes them)
///   nadir train --data k8s.csv --model gbdt --split group -o k8s-trees.nadir
///
///   # an autoencoder trained on benign rows, flagged above the 99th benign percentile
///   nadir train --data flows.csv --model autoencoder --threshold benign-pct:99 -o ae.nadir
///
///   # Deep SAD on normal Kubernetes flows: SimCLR pretraining, hypersphere, p99 threshold
///   #   of the latest benign flows; the five attack scenarios are the test anomalies
///   nadir train --data ../shared/data/k8s-misuse-dev/dev.csv --mode deepsad --split time \
///       --layout tabular -o k8s-deepsad.nadir
///
///   # the same from a capture's flows with no labels at all (all taken as normal traffic)
///   nadir train --data monday.parquet --unlabelled --model autoencoder --split time -o ae.nadir
///
///   # meta-train the hybrid over the attack scenarios (first-order MAML), then adapt it
///   # to a few labelled flows of another cluster with `nadir adapt`
///   nadir train --data ../shared/data/k8s-misuse-dev/dev.csv --mode maml --split group -o meta.nadir
///
///   # hyperparameters from a file (any of the tables may be left out):
///   #   [arch]               # the model family's fields; kind must match --model
///   #   kind = "hybrid"
///   #   lstm_units = 32
///   #   [train]              # epochs, batch_size, lr, patience, optimizer, ...
///   #   epochs = 10
///   #   [pipeline]           # impute, log, drop_constant, corr_threshold, balance,
///   #                        # scaler (standard, minmax, quantile, piecewise-linear, none),
///   #                        # reduction (pca or autoencoder)
///   #   [meta]               # --mode maml: meta_iterations, tasks_per_batch, shots, inner_steps, ...
///   #   scaler = "minmax"
///   nadir train --data flows.csv --model hybrid --config hybrid.toml -o m.nadir
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Labelled training data: one table (CSV, .csv.gz or Parquet), or captures (pcap,
    /// pcapng, .gz/.zst; repeat -d), told apart by their first bytes. Captures' features are
    /// extracted on the fly, the ones the model reads (lln, cnn-lstm: packet windows per
    /// flow; ldpi: first bytes; others: cic), labelled by --labels.
    #[arg(long, short = 'd', value_name = "FILE", required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Captures only: label rules (TOML, as `nadir extract --labels`) naming each flow's label.
    #[arg(long, value_name = "RULES")]
    labels: Option<PathBuf>,
    /// Captures only, lln and cnn-lstm: packets per window (each flow's packets in windows of
    /// W, one after another).
    #[arg(long, default_value_t = 20, value_name = "W")]
    window: usize,
    /// Model family: llaformer, lln, hybrid, cnn-lstm, ldpi, autoencoder, tabm, gbdt. Default: the
    /// mode's (ldpi for deepsad, autoencoder for autoencoder, hybrid for maml).
    #[arg(long, short = 'm', value_name = "NAME")]
    model: Option<String>,
    /// What the model learns from: supervised (labelled attacks), deepsad (normal rows:
    /// contrastive pretraining + Deep SAD hypersphere, ldpi), autoencoder (normal rows,
    /// reconstruction error), maml (meta-learning over scenarios, for `nadir adapt`).
    /// Default: autoencoder for --model autoencoder, else supervised.
    #[arg(long, value_enum, value_name = "MODE")]
    mode: Option<TrainMode>,
    /// deepsad only: also push the training split's labelled attacks away from the centre
    /// (semi-supervised Deep SAD). Without it, attacks never reach training.
    #[arg(long)]
    labelled_anomalies: bool,
    /// TOML file with [arch], [train] and [pipeline] tables (see the examples above).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to write the bundle; the report goes to <OUT>.report/.
    #[arg(long, short = 'o', value_name = "BUNDLE")]
    out: PathBuf,
    /// How to split: stratified (random, class proportions kept), time (earliest rows
    /// train), group (whole groups, e.g. scenarios or capture files, on one side).
    #[arg(long, value_enum, default_value_t = SplitArg::Stratified)]
    split: SplitArg,
    /// Groups for --split group: label (the raw label, e.g. the Kubernetes scenario),
    /// file, or column:NAME. Default: label.
    #[arg(long, value_name = "BY")]
    group_by: Option<String>,
    /// Count this identity or time column as a feature all the same (repeat for more), e.g.
    /// `--feature-column "Dst Port"`: the port names the attacked service, which a model may
    /// fairly use on one network and which leaks the scenario on a public dataset. Warns;
    /// `evaluate`, `detect` and `watch` read it from the bundle.
    #[arg(long, value_name = "NAME")]
    feature_column: Vec<String>,
    /// The table has no label column: every row is taken as normal traffic. Only the
    /// normal-only modes (deepsad, autoencoder) learn from such rows (the threshold comes
    /// from the validation rows' scores); split by time or at random.
    #[arg(long)]
    unlabelled: bool,
    /// binary (benign vs attack), multiclass (one class per label) or family (NSL-KDD
    /// attack families).
    #[arg(long, value_enum, default_value_t = LabelModeArg::Binary)]
    label_mode: LabelModeArg,
    /// Decision threshold on the anomaly score (the log-odds of attack for classifiers,
    /// 0 = even odds), chosen on the validation split: fixed:0, fpr:0.01 (at most 1% of
    /// benign validation rows flagged), benign-pct:99 (99th percentile of benign validation
    /// scores), benign-max, benign-max:1.01, best-accuracy (highest accuracy on validation).
    /// Default: fixed:0, or benign-pct:99 for the normal-only modes.
    #[arg(long, value_name = "RULE")]
    threshold: Option<String>,
    /// A separate labelled test file (e.g. KDDTest+); then FILE is split into train
    /// and validation only.
    #[arg(long, value_name = "FILE")]
    test: Option<PathBuf>,
    /// Share of rows for validation.
    #[arg(long, default_value_t = 0.15, value_name = "FRACTION")]
    val_fraction: f64,
    /// Share of rows for the test split (ignored with --test).
    #[arg(long, default_value_t = 0.15, value_name = "FRACTION")]
    test_fraction: f64,
    /// Train on at most this many rows of the training split (stratified sample);
    /// for quick runs on a laptop.
    #[arg(long, value_name = "N")]
    max_train_rows: Option<usize>,
    /// How each preprocessed row is fed to the model: auto, tabular, sequence
    /// (1 channel x features) or bytes (1 x features). auto gives each design its published
    /// input: lln and cnn-lstm read the windows of `extract --features packets` as (packet
    /// features x packets), ldpi the first bytes of `extract --features bytes` scaled by /255
    /// with no other column; other tables go in as one row (sequence for lln and cnn-lstm).
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    layout: Layout,
    /// Preprocessing of flow-feature rows for the networks: published (each design's own:
    /// z-scores) or nadir (every column through its training CDF, quantile scaling: byte
    /// counts and durations with heavy tails and ties reach the network spread out; it
    /// replaces the scaler of a [pipeline] table). tabm, without a [pipeline] table, reads
    /// quantile-scaled columns (its paper's piecewise-linear encoding with `embedding = "none"`
    /// in [arch]). Trees, packet windows and first bytes are not affected.
    #[arg(long, value_enum, default_value_t = Recipe::Published)]
    recipe: Recipe,
    /// Class imbalance: none, smote (training split only) or class-weights (in the loss).
    #[arg(long, value_enum)]
    balance: Option<BalanceArg>,
    /// sign(x)·ln(1+|x|) on every feature before scaling: helps with byte counts and
    /// durations that span orders of magnitude (the published recipes scale only).
    #[arg(long)]
    log: bool,
    /// Maximum epochs (overrides the published recipe).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Mini-batch size.
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long, value_name = "LR")]
    lr: Option<f64>,
    /// Early-stopping patience in epochs (0 = no early stopping).
    #[arg(long, value_name = "N")]
    patience: Option<usize>,
    /// Seed of the split, the sampling and the weights initialisation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Where to train: cpu, or cuda / wgpu in a nadir built with `--features cuda` /
    /// `--features wgpu`.
    #[arg(long, value_enum, default_value_t = ComputeDevice::Cpu, value_name = "DEVICE")]
    device: ComputeDevice,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    report: ReportArgs,
    /// Captures only: how flows are built (as in `nadir detect`, which must build them the same
    /// way to score them).
    #[command(flatten)]
    flow: FlowArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TrainMode {
    Supervised,
    Deepsad,
    Autoencoder,
    Maml,
}

impl TrainMode {
    /// The family a mode trains when --model is left out.
    fn default_kind(self) -> Option<ModelKind> {
        match self {
            TrainMode::Supervised => None,
            TrainMode::Deepsad => Some(ModelKind::Ldpi),
            TrainMode::Autoencoder => Some(ModelKind::Autoencoder),
            TrainMode::Maml => Some(ModelKind::Hybrid),
        }
    }

    fn name(self) -> &'static str {
        match self {
            TrainMode::Supervised => "supervised",
            TrainMode::Deepsad => "deepsad",
            TrainMode::Autoencoder => "autoencoder",
            TrainMode::Maml => "maml",
        }
    }

    /// Learns from normal rows only: attacks go to the test split.
    fn normal_only(self, labelled_anomalies: bool) -> bool {
        match self {
            TrainMode::Deepsad => !labelled_anomalies,
            TrainMode::Autoencoder => true,
            TrainMode::Supervised | TrainMode::Maml => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    Stratified,
    Time,
    Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Layout {
    Auto,
    Tabular,
    Sequence,
    Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Recipe {
    Published,
    Nadir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BalanceArg {
    None,
    Smote,
    ClassWeights,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    arch: Option<ArchConfig>,
    head: Option<Head>,
    /// Kept as a table so that fields left out take the family's published recipe
    /// (`TrainOptions::default_for`), not the generic defaults.
    train: Option<toml::Table>,
    pipeline: Option<PipelineSpec>,
    /// First-order MAML's options (`--mode maml`); fields left out take their defaults.
    meta: Option<nadir_model::MetaOptions>,
}

/// The family's published training options with the config's `[train]` fields on top.
fn train_options(kind: ModelKind, overrides: Option<&toml::Table>) -> Result<TrainOptions> {
    let defaults = TrainOptions::default_for(kind);
    let Some(overrides) = overrides else {
        return Ok(defaults);
    };
    // Merged as JSON, which (unlike TOML) can hold the defaults' `None`s as null.
    let mut merged = serde_json::to_value(&defaults)?;
    let object = merged
        .as_object_mut()
        .context("training options are not a table")?;
    for (key, value) in overrides {
        object.insert(key.clone(), serde_json::to_value(value)?);
    }
    serde_json::from_value(merged).context("config [train] table")
}

/// The tables to train on: `--data` itself when it is one table; for captures, their features
/// (the family `kind` reads) extracted into one Parquet table per capture (so that
/// `--group-by file` keeps each capture on one side of a split), each with the capture it came
/// from, in a folder removed when the returned value goes.
fn training_tables(args: &Args, kind: ModelKind) -> Result<TrainingTables> {
    let (captures, tables): (Vec<&PathBuf>, Vec<&PathBuf>) =
        args.data.iter().partition(|p| is_capture(p));
    match (tables.as_slice(), captures.is_empty()) {
        ([table], true) => {
            if args.labels.is_some() {
                bail!("--labels labels the flows of captures; {} is a table, whose labels are its own column", table.display());
            }
            let name = table.display().to_string();
            return Ok(TrainingTables {
                tables: vec![(table.to_path_buf(), name)],
                folder: None,
            });
        }
        ([], false) => {}
        _ => bail!(
            "--data takes one table, or captures: not {} table(s) and {} capture(s)",
            tables.len(),
            captures.len()
        ),
    }
    let captures: Vec<PathBuf> = captures.into_iter().cloned().collect();
    check_inputs_exist(&captures)?;
    let rules = match (&args.labels, args.unlabelled) {
        (Some(path), _) => LabelRules::load(path)?,
        (None, true) => LabelRules::none(),
        (None, false) => bail!(
            "training on captures needs --labels RULES to name the attack flows (see `nadir extract --help`), or --unlabelled for the normal-only modes"
        ),
    };
    let family = match kind {
        ModelKind::Lln | ModelKind::CnnLstm => Family::Packets,
        ModelKind::Ldpi => Family::Bytes,
        _ => Family::Cic,
    };
    let spec = ExtractSpec {
        features: family,
        cic_mode: args.flow.cic_mode(),
        flow: args.flow.flow_config()?,
        early_after: None,
        window: WindowConfig::new(
            args.window,
            args.window,
            WindowScope::Flow,
            nadir_features::packets::DEFAULT_MAX_WINDOWS_PER_FLOW,
        )?,
        first_bytes: FirstBytesConfig::default(),
        pods: None,
    };
    spec.validate()?;
    let dir = tempfile::tempdir().context("a folder for the features of the captures")?;
    let mut tables = Vec::new();
    let (mut rows, mut packets, mut skipped) = (0u64, 0u64, 0u64);
    for (index, capture) in captures.iter().enumerate() {
        let name = capture.file_name().unwrap_or_default().to_string_lossy();
        let path = dir.path().join(format!("{index:03}-{name}.parquet"));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut progress = Progress::new(std::slice::from_ref(capture), args.quiet);
        let mut summary = RunSummary::default();
        let result = extract(
            &spec,
            std::slice::from_ref(capture),
            OutputFormat::Parquet,
            Box::new(std::io::BufWriter::new(file)),
            &rules,
            &mut progress,
            &mut summary,
        );
        progress.finish();
        result.with_context(|| format!("extracting features from {}", capture.display()))?;
        // A capture that breaks off keeps the flows read before the fault (as in `extract`).
        for error in &summary.errors {
            eprintln!("warning: {error}");
        }
        rows += summary.rows;
        packets += summary.packets_read;
        skipped += summary.skipped.total();
        if summary.rows == 0 {
            eprintln!(
                "warning: {} gives no {} rows; left out",
                capture.display(),
                family.name()
            );
        } else {
            tables.push((path, capture.display().to_string()));
        }
    }
    if tables.is_empty() {
        bail!("the captures give no {} rows to train on", family.name());
    }
    noteln!(
        "extracted {rows} rows of {} features from {} capture(s) ({packets} packets, {skipped} skipped)",
        family.name(),
        captures.len(),
    );
    Ok(TrainingTables {
        tables,
        folder: Some(dir),
    })
}

/// The tables `train` reads, each with the file it came from (itself, or its capture).
struct TrainingTables {
    tables: Vec<(PathBuf, String)>,
    /// Holds the tables extracted from captures; removed when dropped.
    folder: Option<tempfile::TempDir>,
}

fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config {}", path.display()))
}

fn load_options(args: &Args, mode: TrainMode) -> Result<LoadOptions> {
    let label_mode = args.label_mode.into();
    let group_by = match (args.group_by.as_deref(), args.split) {
        // MAML's tasks are the scenarios.
        (None, _) if mode == TrainMode::Maml => GroupBy::Label,
        (None | Some("label"), SplitArg::Group) if args.unlabelled => {
            bail!("--split group with --unlabelled: there are no labels to group by; use --group-by file or column:NAME, or --split time")
        }
        (None, SplitArg::Group) | (Some("label"), _) => GroupBy::Label,
        (None, _) | (Some("file"), _) => GroupBy::File,
        (Some(other), _) => match other.strip_prefix("column:") {
            Some(name) if !name.is_empty() => GroupBy::Column(name.to_string()),
            _ => bail!("--group-by {other:?}: expected label, file or column:NAME"),
        },
    };
    Ok(LoadOptions {
        label_mode,
        group_by,
        unlabelled: args.unlabelled,
        features: FeaturePolicy {
            keep: args.feature_column.clone(),
            ..FeaturePolicy::default()
        },
        ..LoadOptions::default()
    })
}

fn split_spec(args: &Args) -> Result<SplitSpec> {
    let val = args.val_fraction;
    let test = if args.test.is_some() {
        0.0
    } else {
        args.test_fraction
    };
    if val == 0.0 || !(0.0..1.0).contains(&val) || !(0.0..1.0).contains(&test) || val + test >= 1.0
    {
        bail!("--val-fraction {val} and --test-fraction {test} must be in (0, 1) and leave rows to train on");
    }
    let train = 1.0 - val - test;
    Ok(match args.split {
        SplitArg::Time => SplitSpec::TimeOrdered {
            train,
            val,
            test,
            gap: 0,
        },
        SplitArg::Group => SplitSpec::Group {
            train,
            val,
            test,
            seed: args.seed,
        },
        SplitArg::Stratified => SplitSpec::Stratified {
            train,
            val,
            test,
            seed: args.seed,
        },
    })
}

/// A stratified sample of at most `max` rows of `part` (row indices into `data`).
fn sample_rows(all_y: &[u32], part: &[usize], max: usize, seed: u64) -> Result<Vec<usize>> {
    if part.len() <= max {
        return Ok(part.to_vec());
    }
    let keep = max as f64 / part.len() as f64;
    let y: Vec<u32> = part.iter().map(|&i| all_y[i]).collect();
    let spec = SplitSpec::Stratified {
        train: keep,
        val: 1.0 - keep,
        test: 0.0,
        seed,
    };
    let chosen = spec.apply(&y, &vec![0; y.len()], None)?;
    Ok(chosen.train.iter().map(|&j| part[j]).collect())
}

fn class_counts(y: &[u32], names: &[String]) -> String {
    let mut counts = vec![0usize; names.len()];
    for &c in y {
        if let Some(n) = counts.get_mut(c as usize) {
            *n += 1;
        }
    }
    names
        .iter()
        .zip(&counts)
        .filter(|(_, &n)| n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(args: Args) -> Result<ExitCode> {
    // An unbuilt device is a usage error: say so before loading any data.
    args.device.device()?;
    let config_file = match &args.config {
        Some(path) => read_config(path)?,
        None => ConfigFile::default(),
    };
    let kind: ModelKind = match (&args.model, &config_file.arch) {
        (Some(name), arch) => {
            let kind: ModelKind = name.parse()?;
            if let Some(arch) = arch {
                if arch.kind() != kind {
                    bail!(
                        "--model {kind} but the config's [arch] is for {}",
                        arch.kind()
                    );
                }
            }
            kind
        }
        (None, Some(arch)) => arch.kind(),
        (None, None) => match args.mode.and_then(TrainMode::default_kind) {
            Some(kind) => kind,
            None => bail!(
                "name the model family with --model ({})",
                ModelKind::names()
            ),
        },
    };
    let mode = args.mode.unwrap_or(if kind == ModelKind::Autoencoder {
        TrainMode::Autoencoder
    } else {
        TrainMode::Supervised
    });
    match (mode, kind) {
        (TrainMode::Autoencoder, ModelKind::Autoencoder)
        | (TrainMode::Deepsad, ModelKind::Ldpi) => {}
        (TrainMode::Autoencoder, _) | (_, ModelKind::Autoencoder) => {
            bail!("--mode {} with --model {kind}: the autoencoder trains in --mode autoencoder and only there", mode.name())
        }
        (TrainMode::Deepsad, _) => {
            bail!("--mode deepsad needs an embedding to put a hypersphere around: --model ldpi (on bytes, or --layout tabular for flow features)")
        }
        (TrainMode::Supervised | TrainMode::Maml, _) => {}
    }
    if args.labelled_anomalies && mode != TrainMode::Deepsad {
        bail!("--labelled-anomalies is for --mode deepsad");
    }
    let normal_only = mode.normal_only(args.labelled_anomalies);
    if args.unlabelled && !normal_only {
        bail!("--unlabelled: --mode {} learns from labelled attacks; with no labels train --mode deepsad or --mode autoencoder", mode.name());
    }
    let rule: ThresholdRule = match &args.threshold {
        Some(text) => text.parse()?,
        None if normal_only => ThresholdRule::BenignPercentile(99.0),
        None => ThresholdRule::default(),
    };
    let out = &args.out;
    if out.is_dir() {
        bail!(
            "-o {} is a folder; give the bundle's file name, e.g. model.nadir",
            out.display()
        );
    }
    let report_dir = PathBuf::from(format!("{}.report", out.display()));

    // 1. Load (captures: extract first, into a table that lives as long as this run).
    let TrainingTables { tables, folder } = training_tables(&args, kind)?;
    let source = match folder {
        Some(_) => "the captures' features".to_string(),
        None => tables[0].1.clone(),
    };
    let load_opts = load_options(&args, mode)?;
    let paths: Vec<PathBuf> = tables.iter().map(|(path, _)| path.clone()).collect();
    let mut data = nadir_dataset::load_many(&paths, &load_opts)
        .with_context(|| format!("loading {source}"))?;
    // Groups by file are named after the captures, not the extracted tables.
    for name in &mut data.group_names {
        if let Some((_, capture)) = tables
            .iter()
            .find(|(path, _)| path.display().to_string() == *name)
        {
            name.clone_from(capture);
        }
    }
    noteln!(
        "loaded {source}: {} rows x {} features; classes: {}",
        data.rows(),
        data.schema.len(),
        class_counts(&data.y, &data.labels.classes)
    );
    // The loader's warnings (columns taken as identity, a feature by choice) are logged where
    // they arise, once.

    // 2. Split.
    let mut spec = split_spec(&args)?;
    if let (
        true,
        SplitSpec::Group {
            train,
            val,
            test,
            seed,
        },
    ) = (normal_only, &spec)
    {
        if load_opts.group_by == GroupBy::Label {
            // Benign rows belong to no scenario and every scenario is a test anomaly anyway:
            // "whole scenarios on one side" holds; the benign rows are split at random.
            noteln!(
                "--mode {} with --split group by label: the benign rows (no scenario) are split at random; every attack scenario is in the test split",
                mode.name()
            );
            spec = SplitSpec::Stratified {
                train: *train,
                val: *val,
                test: *test,
                seed: *seed,
            };
        }
    }
    let splits = if normal_only {
        nadir_dataset::split_normal_only(&data, &spec, data.labels.benign_class)
    } else {
        nadir_dataset::split(&data, &spec)
    }
    .context("splitting the data")?;
    let mut train_rows = splits.train.clone();
    if let Some(max) = args.max_train_rows {
        if max == 0 {
            bail!("--max-train-rows must be at least 1");
        }
        train_rows = sample_rows(&data.y, &train_rows, max, args.seed)?;
    }
    let test_data: Option<Dataset> = match &args.test {
        Some(path) => {
            let opts = LoadOptions {
                schema_hint: Some(data.schema.clone()),
                label_map: Some(data.labels.clone()),
                ..load_opts.clone()
            };
            Some(
                nadir_dataset::load(path, &opts)
                    .with_context(|| format!("loading test file {}", path.display()))?,
            )
        }
        None if splits.test.is_empty() => None,
        None => Some(data.subset(&splits.test)),
    };
    let train = data.subset(&train_rows);
    let val = data.subset(&splits.val);
    noteln!(
        "split ({}): train {} rows ({}), validation {} rows ({}), test {}",
        spec,
        train.rows(),
        class_counts(&train.y, &data.labels.classes),
        val.rows(),
        class_counts(&val.y, &data.labels.classes),
        match (&test_data, &args.test) {
            (Some(t), Some(p)) => format!("{} rows from {}", t.rows(), p.display()),
            (Some(t), None) => format!(
                "{} rows ({})",
                t.rows(),
                class_counts(&t.y, &data.labels.classes)
            ),
            _ => "none".to_string(),
        }
    );
    if normal_only {
        let attacks = data
            .y
            .iter()
            .filter(|&&c| c != data.labels.benign_class)
            .count();
        if attacks > 0 {
            noteln!(
                "--mode {}: {attacks} attack rows ({:.1} % of the data) kept out of training and validation{}",
                mode.name(),
                100.0 * attacks as f64 / data.rows() as f64,
                if args.test.is_some() { "; the test file scores the model" } else { "; they are test anomalies" }
            );
        }
    }
    if let Some(attack) = &train.labelled_attack {
        // Keep going: a normal-only model tolerates some contamination, and the user asked
        // for no labels; but say how much the "normal" set holds.
        let contaminated = attack.iter().filter(|&&a| a).count();
        if contaminated > 0 {
            eprintln!(
                "warning: --unlabelled: the table's label column calls {contaminated} of the {} training rows ({:.1} %) attacks; they are learnt as normal. Leave out --unlabelled to train on its benign rows only",
                train.rows(),
                100.0 * contaminated as f64 / train.rows() as f64
            );
        }
    }
    if val.rows() == 0 {
        bail!("the validation split is empty: raise --val-fraction or give more rows");
    }

    // 3. Preprocessing, fitted on the training rows only.
    let mut pipeline_spec = config_file.pipeline.clone().unwrap_or_default();
    pipeline_spec.log |= args.log;
    if let Some(balance) = args.balance {
        pipeline_spec.balance = match balance {
            BalanceArg::Smote => Balance::Smote {
                k: 5,
                seed: args.seed,
            },
            BalanceArg::ClassWeights => Balance::ClassWeights,
            BalanceArg::None => Balance::None,
        };
    }
    // The sample each design reads, when the table has it (read from the column names).
    let sample_layout = match (
        args.layout,
        kind,
        SampleLayout::detect(&train.schema.columns),
    ) {
        (
            Layout::Auto,
            ModelKind::Lln | ModelKind::CnnLstm,
            windows @ SampleLayout::PacketWindows { .. },
        ) => windows,
        (Layout::Auto, ModelKind::Ldpi, bytes @ SampleLayout::FirstBytes { .. }) => bytes,
        _ => SampleLayout::Rows,
    };
    let mut pipeline_spec = pipeline_spec
        .with_layout(sample_layout)
        .context("preprocessing for the table's sample layout")?;
    if sample_layout == SampleLayout::Rows && kind.is_network() {
        let scaler = match args.recipe {
            Recipe::Nadir => Some(ScalerKind::Quantile),
            // tabm's periodic embeddings read each column through its training CDF; without
            // them, the TabM paper's strongest variant encodes each feature piecewise-linearly
            // (README, "Trees, the ensemble, and how they compare").
            Recipe::Published if kind == ModelKind::Tabm && config_file.pipeline.is_none() => {
                Some(match &config_file.arch {
                    Some(ArchConfig::Tabm(c)) if c.embedding == TabmEmbedding::None => {
                        ScalerKind::PiecewiseLinear
                    }
                    _ => ScalerKind::Quantile,
                })
            }
            Recipe::Published => None,
        };
        if let Some(scaler) = scaler {
            pipeline_spec.scaler = scaler;
            pipeline_spec.log = false;
        }
    }
    let (mut pipeline, mut train_x) =
        Pipeline::fit_transform(&pipeline_spec, train.x.clone(), &train.schema)
            .context("fitting the preprocessing on the training split")?;
    let mut val_x = pipeline
        .transform(&val.x)
        .context("preprocessing the validation split")?;
    if let Some(dim) = pipeline.pending_reduction() {
        // seeds-spec §3.1: Dense(dim, ReLU) encoder of an autoencoder, here fitted on the
        // training split only (published: on every row), with the published AE recipe.
        let opts = TrainOptions {
            seed: args.seed,
            progress: !args.quiet,
            device: args.device,
            ..TrainOptions::default_for(ModelKind::Autoencoder)
        };
        noteln!(
            "fitting the autoencoder reduction: {} -> {dim} codes on {} training rows",
            train_x.cols,
            train_x.rows
        );
        let (layers, history) =
            nadir_model::fit_reduction(&train_x.data, &val_x.data, train_x.cols, dim, &opts)
                .context("fitting the autoencoder reduction")?;
        noteln!(
            "  reduction fitted in {} epochs (best validation reconstruction loss {:.4})",
            history.epochs.len(),
            history
                .best_epoch
                .and_then(|e| history.epochs.get(e.saturating_sub(1)))
                .map_or(f64::NAN, |e| e.val_loss)
        );
        pipeline.push_encoder(layers)?;
        train_x = pipeline.transform(&train.x)?;
        val_x = pipeline.transform(&val.x)?;
    }
    let test_x = match &test_data {
        Some(t) => Some(
            pipeline
                .transform_checked(&t.x, &t.schema)
                .context("preprocessing the test data")?,
        ),
        None => None,
    };
    let mut train_y = train.y.clone();
    let mut train_opts = train_options(kind, config_file.train.as_ref())?;
    match pipeline_spec.balance {
        Balance::Smote { k, seed } => {
            let before = train_y.len();
            (train_x, train_y) = smote(&train_x, &train_y, k, seed);
            noteln!("smote: {before} -> {} training rows", train_y.len());
        }
        Balance::ClassWeights => {
            train_opts.class_weights = Some(class_weights(&train_y, data.labels.n_classes()));
        }
        Balance::None => {}
    }
    let features = pipeline.output_dim();
    noteln!(
        "preprocessing: {} columns -> {features} model inputs, as {sample_layout} (fitted on {} training rows)",
        train.schema.len(),
        pipeline.train_rows()
    );

    // 4. Model and training.
    // auto: the layout each design reads.
    let layout = match (args.layout, kind) {
        (Layout::Auto, ModelKind::Lln | ModelKind::CnnLstm) => Layout::Sequence,
        (Layout::Auto, ModelKind::Ldpi) => Layout::Bytes,
        (chosen, _) => chosen,
    };
    let shape = match (sample_layout, layout) {
        (SampleLayout::PacketWindows { packets, features }, _) => InputShape::Windows {
            channels: features,
            length: packets,
        },
        (SampleLayout::FirstBytes { .. }, _) => InputShape::Bytes { length: features },
        (SampleLayout::Rows, Layout::Tabular | Layout::Auto) => InputShape::Tabular { features },
        (SampleLayout::Rows, Layout::Sequence) => InputShape::Windows {
            channels: 1,
            length: features,
        },
        (SampleLayout::Rows, Layout::Bytes) => InputShape::Bytes { length: features },
    };
    let n_classes = data.labels.n_classes();
    let mut model_config = ModelConfig::default_for(kind, shape, n_classes);
    if let Some(arch) = config_file.arch.clone() {
        model_config.arch = arch;
    }
    if mode == TrainMode::Deepsad {
        model_config.head = Head::Hypersphere;
    }
    if let Some(head) = config_file.head {
        model_config.head = head;
    }
    model_config.check().context("checking the model config")?;
    if kind == ModelKind::Gbdt
        && (args.epochs.is_some() || args.batch_size.is_some() || args.lr.is_some())
    {
        eprintln!("warning: gbdt has no epochs, batches or optimiser: --epochs, --batch-size and --lr are ignored; [arch] kind = \"gbdt\" sets iterations and learning_rate");
    }
    if let Some(e) = args.epochs {
        train_opts.epochs = e;
    }
    if let Some(b) = args.batch_size {
        train_opts.batch_size = b;
    }
    if let Some(lr) = args.lr {
        train_opts.lr = lr;
    }
    if let Some(p) = args.patience {
        train_opts.patience = (p > 0).then_some(p);
    }
    train_opts.seed = args.seed;
    train_opts.progress = !args.quiet;
    train_opts.device = args.device;
    if mode != TrainMode::Maml {
        noteln!(
            "training {kind} ({}) on {shape}: up to {} epochs, batch {}, lr {}",
            mode.name(),
            train_opts.epochs,
            train_opts.batch_size,
            train_opts.lr
        );
    }
    let started = std::time::Instant::now();
    let model = if mode == TrainMode::Maml {
        // First-order MAML (nadir_model::meta_train): one task per group of training rows
        // (scenarios with --group-by label); benign rows, of no group, join every task.
        if train_y.len() != train.groups.len() {
            bail!("--mode maml: SMOTE's synthetic rows belong to no scenario; balance with class weights or not at all");
        }
        let meta_opts = nadir_model::MetaOptions {
            seed: args.seed,
            progress: !args.quiet,
            device: args.device,
            ..config_file.meta.clone().unwrap_or_default()
        };
        noteln!(
            "meta-training {kind} (maml: first-order MAML) on {shape}: {} iterations of {} tasks, {} shots + {} query rows per class, {} inner SGD steps at lr {}",
            meta_opts.meta_iterations,
            meta_opts.tasks_per_batch,
            meta_opts.shots,
            meta_opts.query_per_class,
            meta_opts.inner_steps,
            meta_opts.inner_lr
        );
        nadir_model::meta_train(
            &model_config,
            TrainData::new(&train_x.data, shape, &train_y),
            &train.groups,
            TrainData::new(&val_x.data, shape, &val.y),
            &meta_opts,
        )
    } else {
        nadir_model::train(
            &model_config,
            TrainData::new(&train_x.data, shape, &train_y),
            TrainData::new(&val_x.data, shape, &val.y),
            &train_opts,
        )
    }
    .context("training")?;
    let history = model.history().clone();
    if kind.is_network() {
        noteln!(
            "trained {} parameters in {:.1} s: {} epochs{}, best epoch {}",
            model.num_params(),
            started.elapsed().as_secs_f64(),
            history.epochs.len(),
            if history.stopped_early {
                " (stopped early)"
            } else {
                ""
            },
            history
                .best_epoch
                .map_or("-".to_string(), |e| e.to_string())
        );
    } else {
        noteln!(
            "trained {} in {:.1} s",
            match kind {
                ModelKind::Ensemble => format!(
                    "trees and a network: {} tree nodes and network parameters",
                    model.num_params()
                ),
                _ => format!("trees with {} nodes", model.num_params()),
            },
            started.elapsed().as_secs_f64()
        );
    }

    // 5. Threshold on the validation split.
    let labels = &data.labels;
    let val_scored = score(&model, &val_x, labels.benign_class)?;
    let val_flags: Vec<bool> = val.y.iter().map(|&c| c != labels.benign_class).collect();
    let decision = rule
        .calibrate(&val_scored.scores, &val_flags)
        .context("choosing the threshold on the validation split")?;
    let benign_val: Vec<f32> = val_scored
        .scores
        .iter()
        .zip(&val_flags)
        .filter(|(_, &a)| !a)
        .map(|(&s, _)| s)
        .collect();
    // Every family stores the benign-score thresholds, so detection can pick any by name.
    let benign_thresholds = if benign_val.is_empty() {
        None
    } else {
        Some(BenignThresholds::from_benign(&benign_val)?)
    };
    noteln!(
        "threshold {:.6} ({rule}): on validation FPR {:.4}, recall {:.4}",
        decision.value,
        decision.calibration_fpr,
        decision.calibration_recall
    );
    let eval_opts = args.report.eval_options();
    let summary_opts = nadir_eval::EvalOptions {
        bootstrap: None,
        ..eval_opts.clone()
    };
    let (val_eval, _) = evaluate_scored(
        &val_scored,
        &val.y,
        None,
        labels,
        decision.value,
        &summary_opts,
    )?;

    // 6. Test evaluation and report.
    let mut files = Vec::new();
    let mut test_summary: Option<EvaluationSummary> = None;
    if let (Some(t), Some(tx)) = (&test_data, &test_x) {
        let scored = score(&model, tx, labels.benign_class)?;
        let (evaluation, flags) = evaluate_scored(
            &scored,
            &t.y,
            Some(&t.y_raw),
            labels,
            decision.value,
            &eval_opts,
        )?;
        noteln!("\ntest evaluation:");
        crate::cmd::note(format_args!("{evaluation}"));
        files.extend(write_report(
            &report_dir,
            "evaluation",
            &evaluation,
            &scored,
            &flags,
            !args.report.no_plots,
        )?);
        test_summary = Some(evaluation.summary());
    } else {
        noteln!("\nno test rows (--test-fraction 0 and no --test): validation metrics only");
        crate::cmd::note(format_args!("{val_eval}"));
    }
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("creating {}", report_dir.display()))?;
    let history_json = report_dir.join("history.json");
    std::fs::write(&history_json, serde_json::to_vec_pretty(&history)?)
        .with_context(|| format!("writing {}", history_json.display()))?;
    files.push(history_json);
    if !args.report.no_plots {
        files.extend(write_history_plots(&report_dir, &history)?);
    }

    // 7. Bundle.
    let bundle = Bundle::new(BundleParts {
        model: model_config,
        num_params: model.num_params(),
        train_options: train_opts,
        load_options: load_opts,
        pipeline,
        labels: data.labels.clone(),
        split: Some(spec),
        thresholds: Thresholds {
            decision,
            benign: benign_thresholds,
        },
        explain_baseline: column_medians(&train_x.data, features),
        validation: Some(val_eval.summary()),
        evaluation: test_summary,
        training_data: DataFingerprint {
            sha256: fingerprint_training_data(&train.x.data, train.x.rows, train.x.cols, &train.y),
            rows: train.x.rows,
            cols: train.x.cols,
            sources: args.data.iter().map(|p| p.display().to_string()).collect(),
        },
        history,
        weights: model.to_bytes()?,
    })?;
    bundle.save(out)?;
    let saved = format!(
        "saved {} ({} bytes of weights); report: {} files in {}",
        out.display(),
        bundle.weights.len(),
        files.len(),
        report_dir.display()
    );
    noteln!("\n{saved}");
    if super::stdout_closed() {
        // The report's reader left early (`| head`); where the work went still matters.
        eprintln!("train: {saved}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Per column, the median of `rows x cols` values (the explanation baseline: a typical
/// training row in model-input space).
fn column_medians(data: &[f32], cols: usize) -> Vec<f32> {
    let rows = data.len() / cols.max(1);
    let mut column = Vec::with_capacity(rows);
    (0..cols)
        .map(|c| {
            column.clear();
            column.extend((0..rows).map(|r| data[r * cols + c]));
            column.sort_by(f32::total_cmp);
            match rows {
                0 => 0.0,
                n if n % 2 == 1 => column[n / 2],
                n => (column[n / 2 - 1] + column[n / 2]) / 2.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rows_keeps_class_balance_and_subset() {
        let y: Vec<u32> = (0..1000).map(|i| u32::from(i % 4 == 0)).collect();
        let part: Vec<usize> = (0..1000).step_by(2).collect(); // 500 rows, 250 of class 1
        let chosen = sample_rows(&y, &part, 100, 1).unwrap();
        assert_eq!(
            sample_rows(&y, &part, 600, 1).unwrap(),
            part,
            "small parts are kept whole"
        );
        assert!((95..=105).contains(&chosen.len()), "{}", chosen.len());
        assert!(chosen.iter().all(|i| i % 2 == 0));
        let ones = chosen.iter().filter(|&&i| y[i] == 1).count();
        assert!((45..=55).contains(&ones), "{ones}");
    }

    #[test]
    fn column_medians_per_column() {
        let data = [1.0, 10.0, 3.0, 30.0, 2.0, 20.0, 4.0, 40.0];
        assert_eq!(column_medians(&data, 2), vec![2.5, 25.0]);
        assert_eq!(column_medians(&data[..6], 2), vec![2.0, 20.0]);
    }

    /// The shipped LDPI recipe file reads as the paper's optimiser and schedules (§4.4-4.5).
    #[test]
    fn ldpi_published_recipe_file_reads_as_the_paper() {
        let text = include_str!("../../../../examples/configs/ldpi-published.toml");
        let cfg: ConfigFile = toml::from_str(text).unwrap();
        let opts = train_options(ModelKind::Ldpi, cfg.train.as_ref()).unwrap();
        let sgd = nadir_model::OptimizerKind::Sgd { weight_decay: 3e-4 };
        assert_eq!((opts.epochs, opts.lr, opts.optimizer), (400, 0.01, sgd));
        assert_eq!(opts.lr_schedule.unwrap().warmup_epochs, 40);
        let pretrain = opts.deep_sad.pretrain.unwrap();
        assert_eq!(
            (pretrain.epochs, pretrain.lr, pretrain.optimizer),
            (2000, 0.1, sgd)
        );
        assert_eq!(pretrain.lr_schedule.unwrap().warmup_epochs, 100);
        assert_eq!(
            opts.deep_sad.center_eps, 0.1,
            "unset fields keep their defaults"
        );
    }

    #[test]
    fn config_file_parses_partial_tables() {
        let cfg: ConfigFile = toml::from_str(
            "[arch]\nkind = \"hybrid\"\nlstm_units = 8\n[train]\nepochs = 3\n[pipeline]\nscaler = \"minmax\"\n",
        )
        .unwrap();
        assert_eq!(cfg.arch.unwrap().kind(), ModelKind::Hybrid);
        let opts = train_options(ModelKind::Llaformer, cfg.train.as_ref()).unwrap();
        assert_eq!(opts.epochs, 3);
        assert_eq!(
            opts.batch_size, 128,
            "unset fields keep llaformer's published recipe"
        );
        let cnn = train_options(ModelKind::CnnLstm, cfg.train.as_ref()).unwrap();
        assert_eq!(cnn.patience, None, "a default None survives the merge");
        assert!(cnn.lr_plateau.is_some());
        let bad: ConfigFile = toml::from_str("[train]\nepochz = 3\n").unwrap();
        assert!(train_options(ModelKind::Hybrid, bad.train.as_ref()).is_err());
        assert!(toml::from_str::<ConfigFile>("[model]\nx = 1\n").is_err());
    }
}
