//! Real-size run: train one model family on NSL-KDD KDDTrain+ (binary), choose the threshold on a
//! validation split of KDDTrain+ only, and score KDDTest+.
//!
//! ```text
//! cargo run --release -p nadir-model --example train_nslkdd -- --model hybrid [--epochs 10] [--data DIR]
//! ```
//! The classifier threshold is even odds (log-odds 0, P(attack) = 0.5); the autoencoder's is the 99th percentile of the
//! reconstruction error of benign validation rows. Feature rows are read as tabular input, as a
//! one-channel sequence (`lln`, `cnn-lstm`) or as a one-channel "byte" sequence (`ldpi`).

use std::path::PathBuf;
use std::time::Instant;

use nadir_dataset::{load, split, LoadOptions, Matrix, Pipeline, PipelineSpec, SplitSpec};
use nadir_model::{train, InputShape, ModelConfig, ModelKind, TrainData, TrainOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("train_nslkdd: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut kind = ModelKind::Hybrid;
    let mut epochs: Option<usize> = None;
    let mut data_dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nsl-kdd");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => kind = value.parse()?,
            "--epochs" => epochs = Some(value.parse()?),
            "--data" => data_dir = PathBuf::from(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }

    let started = Instant::now();
    let train_set = load(&data_dir.join("KDDTrain+.txt.gz"), &LoadOptions::default())?;
    let parts = split(
        &train_set,
        &SplitSpec::Stratified {
            train: 0.8,
            val: 0.2,
            test: 0.0,
            seed: 42,
        },
    )?;
    let fit_rows = train_set.subset(&parts.train);
    let val_rows = train_set.subset(&parts.val);
    let (pipeline, train_x) = Pipeline::fit_transform(
        &PipelineSpec::default(),
        fit_rows.x.clone(),
        &train_set.schema,
    )?;
    let val_x = pipeline.transform(&val_rows.x)?;
    let test_set = load(
        &data_dir.join("KDDTest+.txt.gz"),
        &LoadOptions {
            schema_hint: Some(train_set.schema.clone()),
            label_map: Some(train_set.labels.clone()),
            ..LoadOptions::default()
        },
    )?;
    let test_x = pipeline.transform(&test_set.x)?;
    eprintln!(
        "loaded {} train / {} val / {} test rows, {} features, in {:.1}s",
        train_x.rows,
        val_x.rows,
        test_x.rows,
        train_x.cols,
        started.elapsed().as_secs_f64()
    );

    let features = train_x.cols;
    let shape = match kind {
        ModelKind::Lln | ModelKind::CnnLstm => InputShape::Windows {
            channels: 1,
            length: features,
        },
        ModelKind::Ldpi => InputShape::Bytes { length: features },
        _ => InputShape::Tabular { features },
    };
    let cfg = ModelConfig::default_for(kind, shape, 2);
    let mut opts = TrainOptions::default_for(kind);
    if let Some(epochs) = epochs {
        opts.epochs = epochs;
    }
    let started = Instant::now();
    let model = train(
        &cfg,
        TrainData::new(&train_x.data, shape, &fit_rows.y),
        TrainData::new(&val_x.data, shape, &val_rows.y),
        &opts,
    )?;
    let train_seconds = started.elapsed().as_secs_f64();

    let threshold = if kind == ModelKind::Autoencoder {
        let errors = model.predict(&val_x.data, shape)?.anomaly_scores();
        let mut benign: Vec<f32> = errors
            .iter()
            .zip(&val_rows.y)
            .filter(|(_, y)| **y == 0)
            .map(|(e, _)| *e)
            .collect();
        benign.sort_by(f32::total_cmp);
        benign[((benign.len() as f64 * 0.99) as usize).min(benign.len() - 1)]
    } else {
        0.0 // log-odds: even odds
    };
    let accuracy = |x: &Matrix, y: &[u32]| -> Result<f64, nadir_model::ModelError> {
        let scores = model.predict(&x.data, shape)?.anomaly_scores();
        let correct = scores
            .iter()
            .zip(y)
            .filter(|(s, y)| u32::from(**s > threshold) == **y)
            .count();
        Ok(correct as f64 / y.len().max(1) as f64)
    };
    println!(
        "{kind}: params {}, epochs run {}, best epoch {:?}, train {:.0}s, threshold {threshold:.4}, val acc {:.4}, KDDTest+ acc {:.4}",
        model.num_params(),
        model.history().epochs.len(),
        model.history().best_epoch,
        train_seconds,
        accuracy(&val_x, &val_rows.y)?,
        accuracy(&test_x, &test_set.y)?,
    );
    Ok(())
}
