//! `nadir dataset ...`: look at datasets before training on them.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use nadir_dataset::{load, ColumnRole, FeaturePolicy, LoadOptions, RowErrorPolicy};

use super::LabelModeArg;

#[derive(clap::Subcommand)]
pub enum Command {
    Summarize(SummarizeArgs),
}

/// Rows, columns, label counts, missing/inf counts per column, schema recognised.
///
/// Reads the table as `train` would (same column roles, label mapping and checks) and
/// says what training would see: which columns are features, which are identity or time
/// (never fed to a model), how labels map to classes, and every non-finite cell.
///
/// Examples:
///   nadir dataset summarize ../shared/data/k8s-misuse-dev/dev.csv
///   nadir dataset summarize KDDTrain+.txt.gz --label-mode binary
///   nadir dataset summarize flows.parquet --unlabelled --all-columns
///   nadir dataset summarize flows.csv --json | jq .classes
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct SummarizeArgs {
    /// CSV (plain or .gz) or Parquet file.
    pub file: PathBuf,
    /// Label column (default: `Label`; NSL-KDD: field 42).
    #[arg(long)]
    pub label_column: Option<String>,
    /// The file has no label column.
    #[arg(long, conflicts_with = "label_column")]
    pub unlabelled: bool,
    /// How labels become classes.
    #[arg(long, value_enum, default_value_t = LabelModeArg::Multiclass)]
    pub label_mode: LabelModeArg,
    /// Count identity columns (Flow ID, addresses, ports) as features (they leak).
    #[arg(long)]
    pub include_identity: bool,
    /// Count the Timestamp as a feature (it leaks).
    #[arg(long)]
    pub include_time: bool,
    /// Skip rows with the wrong number of fields (counted) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// List every column, not only those with missing or non-finite cells.
    #[arg(long)]
    pub all_columns: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Summarize(args) => summarize(args),
    }
}

fn summarize(args: SummarizeArgs) -> anyhow::Result<ExitCode> {
    let opts = LoadOptions {
        label_mode: args.label_mode.into(),
        label_column: args.label_column.clone(),
        unlabelled: args.unlabelled,
        features: FeaturePolicy {
            include_identity: args.include_identity,
            include_time: args.include_time,
            ..FeaturePolicy::default()
        },
        on_bad_row: if args.skip_bad_rows {
            RowErrorPolicy::Skip
        } else {
            RowErrorPolicy::Fail
        },
        ..LoadOptions::default()
    };
    let started = std::time::Instant::now();
    let ds = load(&args.file, &opts)
        .with_context(|| format!("cannot summarize {}", args.file.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let report = &ds.report;
    if args.json {
        let value = serde_json::json!({
            "report": report,
            "features": ds.schema.columns,
            "classes": ds.class_counts(),
            "label_mode": ds.labels.mode,
            "time_span": time_span(ds.time.as_deref()),
        });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let schema = report
        .known_schema
        .map_or("unknown".to_string(), |k| k.to_string());
    outln!("file        {}", args.file.display());
    outln!("schema      {schema}");
    outln!("rows        {}  (loaded in {seconds:.2} s)", report.rows);
    outln!(
        "columns     {} in the file, {} used as features before encoding, {} after",
        report.source_columns,
        report.raw_feature_columns,
        ds.x.cols
    );
    if !report.dropped.is_empty() {
        outln!("dropped     {}", report.dropped.join(", "));
    }
    let excluded = |roles: &[ColumnRole]| -> Vec<String> {
        report
            .columns
            .iter()
            .filter(|c| {
                c.role.is_some_and(|r| roles.contains(&r)) && ds.schema.index_of(&c.name).is_none()
            })
            .map(|c| c.name.clone())
            .collect()
    };
    let leaking = excluded(&[ColumnRole::Identity, ColumnRole::Time]);
    if !leaking.is_empty() {
        outln!("not features (identity/time, leak) {}", leaking.join(", "));
    }
    let bookkeeping = excluded(&[ColumnRole::Ignored]);
    if !bookkeeping.is_empty() {
        outln!("not features (bookkeeping) {}", bookkeeping.join(", "));
    }
    if let Some((first, last)) = time_span(ds.time.as_deref()) {
        outln!(
            "time span   {first:.3} .. {last:.3} s since 1970 ({})",
            span_text(last - first)
        );
    }
    if report.blank_lines > 0 || report.skipped_rows > 0 {
        outln!(
            "skipped     {} blank line(s), {} bad row(s){}",
            report.blank_lines,
            report.skipped_rows,
            if report.skipped_lines.is_empty() {
                String::new()
            } else {
                let lines: Vec<String> =
                    report.skipped_lines.iter().map(|l| l.to_string()).collect();
                format!(" at lines {}", lines.join(", "))
            }
        );
    }
    outln!(
        "\nlabels ({} raw, mode {} -> {} classes)",
        ds.labels.raw_classes.len(),
        ds.labels.mode,
        ds.labels.n_classes()
    );
    for (id, (label, name, count)) in report.label_counts.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        let class = ds
            .labels
            .class_name(ds.labels.raw_to_class[id])
            .unwrap_or("?");
        let share = 100.0 * *count as f64 / report.rows as f64;
        let name = if name == label {
            String::new()
        } else {
            format!("  {name}")
        };
        outln!("  {label:>16}{name:<28} {count:>10} {share:6.2}%  -> {class}");
    }
    outln!("\nper column: NaN, +inf, -inf, empty, junk (non-numeric), beyond f32");
    let mut shown = 0;
    for c in &report.columns {
        let k = &c.counts;
        if !args.all_columns && k.non_finite() == 0 {
            continue;
        }
        shown += 1;
        let junk = k.first_junk.as_ref().map_or(String::new(), |(line, text)| {
            format!("  first junk line {line}: {text:?}")
        });
        outln!(
            "  {:<32} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}{junk}",
            c.name,
            k.nan,
            k.pos_inf,
            k.neg_inf,
            k.empty,
            k.junk,
            k.overflow
        );
    }
    if shown == 0 {
        outln!("  (every feature cell is a finite number)");
    }
    for (column, value, count) in &report.unknown_categories {
        outln!("unknown category {column}={value}: {count} row(s)");
    }
    for w in &report.warnings {
        outln!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn time_span(time: Option<&[f64]>) -> Option<(f64, f64)> {
    let t = time?;
    let finite = t.iter().copied().filter(|v| v.is_finite());
    let first = finite.clone().fold(f64::INFINITY, f64::min);
    let last = finite.fold(f64::NEG_INFINITY, f64::max);
    (first <= last).then_some((first, last))
}

/// A duration in the unit a person would use.
fn span_text(seconds: f64) -> String {
    match seconds {
        s if s < 120.0 => format!("{s:.1} s"),
        s if s < 7200.0 => format!("{:.1} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} days", s / 86_400.0),
    }
}
