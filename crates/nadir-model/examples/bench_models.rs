//! Throughput benchmark for `bench/models/run.sh`: one model, one phase per process (so the
//! peak RSS it prints belongs to that phase), one JSON line on stdout.
//!
//! ```text
//! cargo run --release -p nadir-model --example bench_models -- --model cnn-lstm --phase train
//! ```
//! Models are the families at their published input shapes (`shape_of`), plus `hybrid-8`: the
//! hybrid over windows of 8 consecutive flows.
//! Phases: `train` (samples/s through `train()`, Adam, published batch size), `infer-1024`
//! (samples/s scoring batches of 1024), `infer-1` (samples/s scoring one sample per call),
//! and for `ldpi` (Deep SAD head: the score is the squared distance to the centre) `pretrain`
//! (samples/s through SimCLR pretraining, `pretrain_encoder`: batch 64, temperature 0.2,
//! augmentations on the CPU, NT-Xent over both views, Adam 1e-3).

use std::time::Instant;

use nadir_model::{
    pretrain_encoder, train, ContrastiveOptions, Head, InputShape, ModelConfig, ModelKind,
    TrainData, TrainOptions, Trained,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Args {
    /// Bench name: a family, or `hybrid-K` (the hybrid over K steps).
    model: String,
    phase: String,
    samples: usize,
    epochs: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: "cnn-lstm".into(),
        phase: "train".into(),
        samples: 0,
        epochs: 2,
        seconds: 5.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => args.model = value,
            "--phase" => args.phase = value,
            "--samples" => args.samples = value.parse().map_err(|e| format!("--samples: {e}"))?,
            "--epochs" => args.epochs = value.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--seconds" => args.seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The family and input shape of a bench name: seeds-spec §1.2 (LLAFormerNet: 89 features read
/// as a sequence), §2.3 (LLN: 100 packets x 8 features), §3.2 (hybrid: one step of 10 AE codes;
/// `hybrid-K`: K steps), §3.1 (autoencoder; F = 64 stands for the CIC columns left after the
/// design's correlation drop), §4.3 (LDPI: 4 packets x 60 bytes), §5.1 (CNN-LSTM: 6 x 128), and
/// the gradient-boosted trees on the same 64 columns as the autoencoder.
fn shape_of(model: &str) -> Result<(ModelKind, InputShape), String> {
    if let Some(steps) = model.strip_prefix("hybrid-") {
        let length = steps.parse().map_err(|e| format!("{model}: {e}"))?;
        return Ok((
            ModelKind::Hybrid,
            InputShape::Windows {
                channels: 10,
                length,
            },
        ));
    }
    let kind: ModelKind = model.parse().map_err(|e| format!("{e}"))?;
    let shape = match kind {
        ModelKind::Llaformer => InputShape::Tabular { features: 89 },
        ModelKind::Lln => InputShape::Windows {
            channels: 8,
            length: 100,
        },
        ModelKind::CnnLstm => InputShape::Windows {
            channels: 6,
            length: 128,
        },
        ModelKind::Ldpi => InputShape::Bytes { length: 240 },
        ModelKind::Autoencoder | ModelKind::Gbdt | ModelKind::Tabm => {
            InputShape::Tabular { features: 64 }
        }
        ModelKind::Hybrid => InputShape::Tabular { features: 10 },
        ModelKind::Ensemble => return Err("the ensemble is benchmarked as its members".into()),
    };
    Ok((kind, shape))
}

/// Random samples: bytes in [0, 1], anything else in [-1, 1]; labels alternate, except for the
/// autoencoder, which learns from benign (class 0) rows only.
fn random_data(n: usize, kind: ModelKind, shape: InputShape, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lo = if matches!(shape, InputShape::Bytes { .. }) {
        0.0
    } else {
        -1.0
    };
    let x = (0..n * shape.sample_len())
        .map(|_| rng.random_range(lo..1.0f32))
        .collect();
    let classes = if kind == ModelKind::Autoencoder { 1 } else { 2 };
    let y = (0..n).map(|i| (i % classes) as u32).collect();
    (x, y)
}

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Trains `cfg` on `samples` random rows (and 256 validation rows) with the family's published
/// recipe, no early stopping; returns the model and the seconds `train` took (the random rows
/// are made before the clock starts, as the PyTorch peer's are).
fn train_on_random(
    cfg: &ModelConfig,
    kind: ModelKind,
    shape: InputShape,
    samples: usize,
    epochs: usize,
) -> (Trained, f64) {
    let (x, y) = random_data(samples, kind, shape, 1);
    let (vx, vy) = random_data(256, kind, shape, 2);
    let opts = TrainOptions {
        // Boosting has no epochs.
        epochs: if kind == ModelKind::Gbdt { 1 } else { epochs },
        patience: None,
        progress: false,
        ..TrainOptions::default_for(kind)
    };
    let started = Instant::now();
    match train(
        cfg,
        TrainData::new(&x, shape, &y),
        TrainData::new(&vx, shape, &vy),
        &opts,
    ) {
        Ok(trained) => (trained, started.elapsed().as_secs_f64()),
        Err(e) => {
            eprintln!("bench_models: training failed: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    // As `nadir train` and `nadir evaluate` do.
    nadir_model::keep_freed_tensor_memory();
    nadir_model::compute_on_this_thread();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench_models: {e}");
            std::process::exit(2);
        }
    };
    let (kind, shape) = match shape_of(&args.model) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("bench_models: {e}");
            std::process::exit(2);
        }
    };
    let mut cfg = ModelConfig::default_for(kind, shape, 2);
    if kind == ModelKind::Ldpi {
        // Deep SAD: the output is the squared distance of the 128-d embedding to the centre.
        cfg.head = Head::Hypersphere;
    }
    let result = match args.phase.as_str() {
        "train" => {
            let samples = if args.samples > 0 { args.samples } else { 4096 };
            let (_, seconds) = train_on_random(&cfg, kind, shape, samples, args.epochs);
            // Trees: one pass over the rows per boosting run, whatever --epochs says.
            let passes = if kind == ModelKind::Gbdt {
                1
            } else {
                args.epochs
            };
            (samples * passes) as f64 / seconds
        }
        "pretrain" => {
            let samples = if args.samples > 0 { args.samples } else { 4096 };
            let (x, _) = random_data(samples, kind, shape, 1);
            let opts = ContrastiveOptions {
                epochs: args.epochs,
                batch_size: 64,
                lr: 1e-3,
                temperature: 0.2,
                ..ContrastiveOptions::default()
            };
            let started = Instant::now();
            if let Err(e) = pretrain_encoder(&cfg, &x, &opts, 1) {
                eprintln!("bench_models: pretraining failed: {e}");
                std::process::exit(1);
            }
            (samples * args.epochs) as f64 / started.elapsed().as_secs_f64()
        }
        "infer-1024" | "infer-1" => {
            // Trees are grown on the random rows first (an untrained ensemble has no trees).
            let model = if kind == ModelKind::Gbdt {
                let samples = if args.samples > 0 { args.samples } else { 4096 };
                train_on_random(&cfg, kind, shape, samples, 1).0
            } else {
                match Trained::untrained(&cfg, 1) {
                    Ok(model) => model,
                    Err(e) => {
                        eprintln!("bench_models: {e}");
                        std::process::exit(1);
                    }
                }
            };
            let batch = if args.phase == "infer-1" { 1 } else { 1024 };
            let (x, _) = random_data(batch, kind, shape, 3);
            // Warm-up, then as many calls as fit in the time budget.
            let _ = model.predict(&x, shape);
            let started = Instant::now();
            let mut calls = 0usize;
            while started.elapsed().as_secs_f64() < args.seconds {
                if let Err(e) = model.predict(&x, shape) {
                    eprintln!("bench_models: {e}");
                    std::process::exit(1);
                }
                calls += 1;
            }
            (calls * batch) as f64 / started.elapsed().as_secs_f64()
        }
        other => {
            eprintln!("bench_models: unknown phase {other}");
            std::process::exit(2);
        }
    };
    println!(
        "{{\"impl\":\"nadir\",\"model\":\"{}\",\"phase\":\"{}\",\"samples_per_s\":{:.1},\"peak_rss_mib\":{:.1}}}",
        args.model,
        args.phase,
        result,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}
