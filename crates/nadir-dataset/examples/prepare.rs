//! Load + median imputation + standard scaling + PCA (95 % variance) of a CSV, timed per stage:
//! nadir's side of `bench/dataset/run.sh`.
//!
//! `cargo run --release -p nadir-dataset --example prepare -- TABLE.csv [LABEL_COLUMN]`

use std::time::Instant;

use nadir_dataset::pipeline::{PcaSpec, Reduction};
use nadir_dataset::{load, LoadOptions, Pipeline, PipelineSpec, ScalerKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: prepare TABLE.csv [LABEL_COLUMN]");
        std::process::exit(2);
    };
    let label = args.get(2).cloned().unwrap_or_else(|| "label".to_string());
    let total = Instant::now();
    let opts = LoadOptions {
        label_column: Some(label),
        ..LoadOptions::default()
    };
    let ds = load(std::path::Path::new(path), &opts)?;
    let load_s = total.elapsed().as_secs_f64();
    let spec = PipelineSpec {
        drop_constant: false,
        scaler: ScalerKind::Standard,
        reduction: Reduction::Pca(PcaSpec {
            variance: Some(0.95),
            components: None,
        }),
        ..PipelineSpec::default()
    };
    let started = Instant::now();
    let nonfinite: u64 = ds
        .report
        .columns
        .iter()
        .map(|c| c.counts.non_finite())
        .sum();
    let (pipeline, out) = Pipeline::fit_transform(&spec, ds.x, &ds.schema)?;
    let prep_s = started.elapsed().as_secs_f64();
    let kept: f64 = pipeline
        .pca()
        .map_or(0.0, |p| p.explained_variance_ratio.iter().sum());
    println!(
        "nadir rows={} cols={} nonfinite={} components={} variance_kept={:.4} load_s={:.2} preprocess_s={:.2} total_s={:.2} checksum={:.4}",
        out.rows,
        ds.schema.len(),
        nonfinite,
        out.cols,
        kept,
        load_s,
        prep_s,
        total.elapsed().as_secs_f64(),
        out.data.iter().take(1000).map(|v| f64::from(v.abs())).sum::<f64>()
    );
    Ok(())
}
