//! Throughput benchmark for `bench/models/run.sh`: one model, one phase per process (so the
//! peak RSS it prints belongs to that phase), one JSON line on stdout.
//!
//! ```text
//! cargo run --release -p nadir-model --example bench_models -- --model cnn-lstm --phase train
//! ```
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
    model: ModelKind,
    phase: String,
    samples: usize,
    epochs: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: ModelKind::CnnLstm,
        phase: "train".into(),
        samples: 0,
        epochs: 2,
        seconds: 5.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => args.model = value.parse().map_err(|e| format!("{e}"))?,
            "--phase" => args.phase = value,
            "--samples" => args.samples = value.parse().map_err(|e| format!("--samples: {e}"))?,
            "--epochs" => args.epochs = value.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--seconds" => args.seconds = value.parse().map_err(|e| format!("--seconds: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The benchmark shapes of seeds-spec §3, §4 and §5.
fn shape_of(kind: ModelKind) -> InputShape {
    match kind {
        ModelKind::CnnLstm => InputShape::Windows {
            channels: 6,
            length: 128,
        },
        // 4 packets x 60 bytes, each in [0, 1].
        ModelKind::Ldpi => InputShape::Bytes { length: 240 },
        _ => InputShape::Tabular { features: 10 },
    }
}

/// Random samples: bytes in [0, 1], anything else in [-1, 1].
fn random_data(n: usize, shape: InputShape, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let lo = if matches!(shape, InputShape::Bytes { .. }) {
        0.0
    } else {
        -1.0
    };
    let x = (0..n * shape.sample_len())
        .map(|_| rng.random_range(lo..1.0f32))
        .collect();
    let y = (0..n).map(|i| (i % 2) as u32).collect();
    (x, y)
}

/// Peak resident set size of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    // As `nadir train` and `nadir evaluate` do.
    nadir_model::keep_freed_tensor_memory();
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench_models: {e}");
            std::process::exit(2);
        }
    };
    let shape = shape_of(args.model);
    let mut cfg = ModelConfig::default_for(args.model, shape, 2);
    if args.model == ModelKind::Ldpi {
        // Deep SAD: the output is the squared distance of the 128-d embedding to the centre.
        cfg.head = Head::Hypersphere;
    }
    let result = match args.phase.as_str() {
        "train" => {
            let samples = if args.samples > 0 { args.samples } else { 4096 };
            let (x, y) = random_data(samples, shape, 1);
            let (vx, vy) = random_data(256, shape, 2);
            let opts = TrainOptions {
                epochs: args.epochs,
                patience: None,
                progress: false,
                ..TrainOptions::default_for(args.model)
            };
            let started = Instant::now();
            let trained = train(
                &cfg,
                TrainData::new(&x, shape, &y),
                TrainData::new(&vx, shape, &vy),
                &opts,
            );
            let seconds = started.elapsed().as_secs_f64();
            if let Err(e) = trained {
                eprintln!("bench_models: training failed: {e}");
                std::process::exit(1);
            }
            (samples * args.epochs) as f64 / seconds
        }
        "pretrain" => {
            let samples = if args.samples > 0 { args.samples } else { 4096 };
            let (x, _) = random_data(samples, shape, 1);
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
            let model = match Trained::untrained(&cfg, 1) {
                Ok(model) => model,
                Err(e) => {
                    eprintln!("bench_models: {e}");
                    std::process::exit(1);
                }
            };
            let batch = if args.phase == "infer-1" { 1 } else { 1024 };
            let (x, _) = random_data(batch, shape, 3);
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
