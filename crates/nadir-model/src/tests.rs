//! Crate tests that build and train real (tiny) networks. Sizes are small so the whole module
//! runs in seconds on 2 cores.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::arch::Network;
use crate::*;

/// Two Gaussian blobs: class 1 has mean +`gap` on every value, class 0 mean 0.
fn blobs(n: usize, shape: InputShape, gap: f32, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let len = shape.sample_len();
    let mut x = Vec::with_capacity(n * len);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let label = (i % 2) as u32;
        y.push(label);
        for _ in 0..len {
            let noise: f32 = rng.random_range(-1.0..1.0);
            x.push(noise + gap * label as f32);
        }
    }
    (x, y)
}

fn quick_options(epochs: usize) -> TrainOptions {
    TrainOptions {
        epochs,
        batch_size: 16,
        lr: 5e-3,
        seed: 7,
        patience: None,
        progress: false,
        ..TrainOptions::default()
    }
}

#[test]
fn published_parameter_counts() {
    let llaformer = Trained::untrained(
        &ModelConfig::default_for(
            ModelKind::Llaformer,
            InputShape::Tabular { features: 89 },
            2,
        ),
        0,
    )
    .unwrap();
    assert_eq!(llaformer.num_params(), 13_825);

    let hybrid = Trained::untrained(
        &ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: 10 }, 2),
        0,
    )
    .unwrap();
    assert_eq!(hybrid.num_params(), 102_530);

    let cnn_lstm = Trained::untrained(
        &ModelConfig::default_for(
            ModelKind::CnnLstm,
            InputShape::Windows {
                channels: 6,
                length: 128,
            },
            2,
        ),
        0,
    )
    .unwrap();
    // Conv 2,432 + BN 256 + conv 98,560 + BN 512 + LSTM (PyTorch, two biases) 197,632 + Linear 258.
    assert_eq!(cnn_lstm.num_params(), 299_650);

    let ldpi = Trained::untrained(
        &ModelConfig::default_for(ModelKind::Ldpi, InputShape::Bytes { length: 240 }, 2),
        0,
    )
    .unwrap();
    let Ok(Network::Ldpi(network)) = ldpi.network() else {
        panic!("not ldpi")
    };
    // Encoder 85,448 + projection head 83,072 (seeds-spec §4.3), plus the 129-parameter classifier.
    assert_eq!(network.num_encoder_params(), 168_520);
    assert_eq!(ldpi.num_params(), 168_520 + 129);
}

#[test]
fn every_family_scores_every_sample() {
    let cases = [
        (
            ModelKind::Llaformer,
            InputShape::Tabular { features: 12 },
            2,
        ),
        (
            ModelKind::Lln,
            InputShape::Windows {
                channels: 8,
                length: 16,
            },
            2,
        ),
        (ModelKind::Hybrid, InputShape::Tabular { features: 10 }, 3),
        (
            ModelKind::Hybrid,
            InputShape::Windows {
                channels: 10,
                length: 4,
            },
            2,
        ),
        (
            ModelKind::CnnLstm,
            InputShape::Windows {
                channels: 6,
                length: 16,
            },
            2,
        ),
        (ModelKind::Ldpi, InputShape::Bytes { length: 32 }, 2),
        (
            ModelKind::Autoencoder,
            InputShape::Tabular { features: 16 },
            2,
        ),
        (ModelKind::Tabm, InputShape::Tabular { features: 9 }, 2),
        (ModelKind::Tabm, InputShape::Tabular { features: 9 }, 4),
    ];
    for (kind, shape, classes) in cases {
        let model = Trained::untrained(&ModelConfig::default_for(kind, shape, classes), 1).unwrap();
        let (x, _) = blobs(5, shape, 1.0, 3);
        let scores = model.predict(&x, shape).unwrap();
        assert_eq!(scores.len(), 5, "{kind} {shape}");
        let anomaly = scores.anomaly_scores();
        assert!(anomaly.iter().all(|s| s.is_finite()), "{kind}: {anomaly:?}");
        if let Scores::Multiclass { n_classes, .. } = &scores {
            assert_eq!(*n_classes, classes);
            let probabilities = scores.class_probabilities().unwrap();
            for row in probabilities.chunks_exact(*n_classes) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn hybrid_learns_a_separable_problem_and_loss_falls() {
    let shape = InputShape::Tabular { features: 10 };
    let (x, y) = blobs(256, shape, 1.5, 1);
    let (vx, vy) = blobs(64, shape, 1.5, 2);
    let cfg = ModelConfig::default_for(ModelKind::Hybrid, shape, 2);
    let model = train(
        &cfg,
        TrainData::new(&x, shape, &y),
        TrainData::new(&vx, shape, &vy),
        &quick_options(4),
    )
    .unwrap();
    let history = model.history();
    assert_eq!(history.epochs.len(), 4);
    let first = history.epochs[0].train_loss;
    let last = history.epochs[3].train_loss;
    assert!(last < first * 0.7, "train loss {first} -> {last}");
    let predicted = model
        .predict(&vx, shape)
        .unwrap()
        .predicted_classes()
        .unwrap();
    let correct = predicted.iter().zip(&vy).filter(|(p, y)| p == y).count();
    assert!(
        correct as f64 / vy.len() as f64 > 0.9,
        "{correct}/{}",
        vy.len()
    );
}

fn tiny_cnn_lstm(shape: InputShape) -> ModelConfig {
    let mut cfg = ModelConfig::default_for(ModelKind::CnnLstm, shape, 2);
    cfg.arch = ArchConfig::CnnLstm(CnnLstmConfig {
        conv1_channels: 8,
        conv2_channels: 16,
        lstm_hidden: 8,
        ..CnnLstmConfig::default()
    });
    cfg
}

#[test]
fn cnn_lstm_trains_with_clipping_plateau_and_class_weights() {
    let shape = InputShape::Windows {
        channels: 3,
        length: 16,
    };
    let (x, y) = blobs(128, shape, 1.0, 4);
    let (vx, vy) = blobs(32, shape, 1.0, 5);
    let opts = TrainOptions {
        clip_grad_norm: Some(1.0),
        lr_plateau: Some(PlateauOptions {
            patience: 0,
            factor: 0.5,
            ..PlateauOptions::default()
        }),
        class_weights: Some(vec![1.0, 2.0]),
        ..quick_options(4)
    };
    let model = train(
        &tiny_cnn_lstm(shape),
        TrainData::new(&x, shape, &y),
        TrainData::new(&vx, shape, &vy),
        &opts,
    )
    .unwrap();
    let history = model.history();
    assert!(
        history.epochs.last().unwrap().val_accuracy.unwrap() > 0.8,
        "{history:?}"
    );
    assert!(history.epochs[3].train_loss < history.epochs[0].train_loss);
    let best = history.best_epoch.unwrap();
    let best_loss = history.epochs[best - 1].val_loss;
    assert!(history.epochs.iter().all(|e| e.val_loss >= best_loss));
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let shape = InputShape::Windows {
        channels: 3,
        length: 16,
    };
    let (x, y) = blobs(64, shape, 1.0, 6);
    let (vx, vy) = blobs(16, shape, 1.0, 7);
    let run = |seed| {
        let opts = TrainOptions {
            seed,
            ..quick_options(2)
        };
        train(
            &tiny_cnn_lstm(shape),
            TrainData::new(&x, shape, &y),
            TrainData::new(&vx, shape, &vy),
            &opts,
        )
        .unwrap()
        .predict(&vx, shape)
        .unwrap()
        .anomaly_scores()
    };
    // Compared through the scores: the serialised record also holds burn's random
    // parameter ids, which say nothing about the weights.
    let bits = |s: Vec<f32>| s.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    let a = bits(run(11));
    let b = bits(run(11));
    let c = bits(run(12));
    assert!(a == b, "same seed gave different weights");
    assert!(a != c, "different seeds gave the same weights");
}

#[test]
fn weights_round_trip_with_identical_predictions() {
    let shape = InputShape::Windows {
        channels: 3,
        length: 16,
    };
    let (x, y) = blobs(64, shape, 1.0, 8);
    let (vx, vy) = blobs(16, shape, 1.0, 9);
    let cfg = tiny_cnn_lstm(shape);
    let model = train(
        &cfg,
        TrainData::new(&x, shape, &y),
        TrainData::new(&vx, shape, &vy),
        &quick_options(2),
    )
    .unwrap();
    let bytes = model.to_bytes().unwrap();
    let loaded = Trained::from_bytes(&cfg, &bytes).unwrap();
    // Batch-norm running statistics travel too: predictions are bit-identical.
    assert_eq!(
        model.predict(&vx, shape).unwrap(),
        loaded.predict(&vx, shape).unwrap()
    );

    let other =
        ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: 10 }, 2);
    assert!(matches!(
        Trained::from_bytes(&other, &bytes),
        Err(ModelError::Weights { .. })
    ));
    assert!(matches!(
        Trained::from_bytes(&cfg, &bytes[..bytes.len() / 2]),
        Err(ModelError::Weights { .. })
    ));
}

#[test]
fn autoencoder_reconstructs_benign_better_than_anomalies_and_encodes() {
    let shape = InputShape::Tabular { features: 12 };
    // Benign rows live on a 2-d subspace; anomalies are full-rank noise.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut sample = |benign: bool| -> Vec<f32> {
        let a: f32 = rng.random_range(-1.0..1.0);
        let b: f32 = rng.random_range(-1.0..1.0);
        (0..12)
            .map(|j| {
                if benign {
                    if j % 2 == 0 {
                        a
                    } else {
                        b
                    }
                } else {
                    rng.random_range(-1.5..1.5)
                }
            })
            .collect()
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..256 {
        let benign = i % 4 != 0;
        x.extend(sample(benign));
        y.push(u32::from(!benign));
    }
    let mut cfg = ModelConfig::default_for(ModelKind::Autoencoder, shape, 2);
    cfg.arch = ArchConfig::Autoencoder(AutoencoderConfig {
        code_dim: 4,
        ..AutoencoderConfig::default()
    });
    let opts = TrainOptions {
        lr: 1e-2,
        ..quick_options(30)
    };
    let model = train(
        &cfg,
        TrainData::new(&x, shape, &y),
        TrainData::new(&x, shape, &y),
        &opts,
    )
    .unwrap();
    let scores = model.predict(&x, shape).unwrap().anomaly_scores();
    let mean = |label: u32| {
        let picked: Vec<f32> = scores
            .iter()
            .zip(&y)
            .filter(|(_, l)| **l == label)
            .map(|(s, _)| *s)
            .collect();
        picked.iter().sum::<f32>() / picked.len() as f32
    };
    assert!(
        mean(1) > 3.0 * mean(0),
        "anomalies {} vs benign {}",
        mean(1),
        mean(0)
    );
    let code = model.encode(&x[..24], shape).unwrap();
    assert_eq!((code.rows, code.dims, code.data.len()), (2, 4, 8));

    let classifier = Trained::untrained(
        &ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: 12 }, 2),
        0,
    )
    .unwrap();
    assert!(matches!(
        classifier.encode(&x[..12], shape),
        Err(ModelError::Unsupported { .. })
    ));
}

#[test]
fn bad_data_is_refused_before_training() {
    let shape = InputShape::Tabular { features: 10 };
    let cfg = ModelConfig::default_for(ModelKind::Hybrid, shape, 2);
    let (x, y) = blobs(8, shape, 1.0, 1);
    let opts = quick_options(1);
    let run = |tx: &[f32], ty: &[u32]| {
        train(
            &cfg,
            TrainData::new(tx, shape, ty),
            TrainData::new(&x, shape, &y),
            &opts,
        )
    };

    assert!(matches!(run(&[], &[]), Err(ModelError::Empty { .. })));
    assert!(matches!(
        run(&x, &[1; 8]),
        Err(ModelError::SingleClass { class: 1, .. })
    ));
    let mut with_nan = x.clone();
    with_nan[23] = f32::NAN;
    match run(&with_nan, &y) {
        Err(ModelError::NonFinite {
            row: 2, index: 3, ..
        }) => {}
        other => panic!("expected NonFinite at row 2 index 3, got {other:?}"),
    }
    assert!(matches!(
        run(&x[..15], &y),
        Err(ModelError::RaggedData { .. })
    ));
    assert!(matches!(
        run(&x, &y[..7]),
        Err(ModelError::LabelCount { .. })
    ));
    let mut bad_label = y.clone();
    bad_label[4] = 5;
    assert!(matches!(
        run(&x, &bad_label),
        Err(ModelError::LabelOutOfRange {
            row: 4,
            label: 5,
            ..
        })
    ));
    let other_shape = InputShape::Tabular { features: 5 };
    assert!(matches!(
        train(
            &cfg,
            TrainData::new(&x, other_shape, &y),
            TrainData::new(&x, shape, &y),
            &opts
        ),
        Err(ModelError::ShapeMismatch { .. })
    ));
    let model = Trained::untrained(&cfg, 0).unwrap();
    assert!(matches!(
        model.predict(&with_nan, shape),
        Err(ModelError::NonFinite { .. })
    ));
}

#[test]
fn sequence_variants_of_the_hybrid_train() {
    // k = 4 flows per sample, attention over time, Transformer over the sequence.
    let shape = InputShape::Windows {
        channels: 6,
        length: 4,
    };
    let (x, y) = blobs(96, shape, 1.0, 10);
    let mut cfg = ModelConfig::default_for(ModelKind::Hybrid, shape, 2);
    if let ArchConfig::Hybrid(c) = &mut cfg.arch {
        c.sequence_transformer = true;
        c.lstm_units = 16;
        c.key_dim = 8;
        c.ffn_units = 16;
    }
    let model = train(
        &cfg,
        TrainData::new(&x, shape, &y),
        TrainData::new(&x, shape, &y),
        &quick_options(3),
    )
    .unwrap();
    let h = model.history();
    assert!(h.epochs[2].train_loss < h.epochs[0].train_loss, "{h:?}");
}

/// A `[dims]` tensor of uniform(-1, 1) values from `seed`.
fn random_tensor<const D: usize>(
    dims: [usize; D],
    seed: u64,
    device: &burn::tensor::Device,
) -> burn::tensor::Tensor<D> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    burn::tensor::Tensor::from_data(burn::tensor::TensorData::new(values, dims), device)
}

fn max_abs_diff<const D: usize>(a: burn::tensor::Tensor<D>, b: burn::tensor::Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    let b = b
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn fused_lstm_matches_the_tensor_op_lstm() {
    use crate::layers::{Lstm, LstmBias};
    let device = burn::tensor::Device::flex();
    for (bias, reverse, batch, steps) in [
        (LstmBias::Torch, false, 5, 7),
        (LstmBias::Keras, true, 3, 4),
        (LstmBias::Keras, false, 2, 1),
        // More samples than threads: uneven blocks of the parallel recurrence.
        (LstmBias::Torch, true, 11, 6),
    ] {
        let lstm = Lstm::new(6, 8, bias, reverse, &device);
        // Scaled inputs drive the gates into saturation as well as the linear range.
        let x = random_tensor([batch, steps, 6], 11, &device).mul_scalar(3.0);
        let sequence = max_abs_diff(
            lstm.forward_sequence(x.clone()),
            lstm.forward_sequence_ops(x.clone()),
        );
        let last = max_abs_diff(lstm.forward_last(x.clone()), lstm.forward_last_ops(x));
        assert!(sequence < 1e-5 && last < 1e-5, "{sequence} {last}");
    }
}

#[test]
fn few_sample_lstm_steps_match_the_tensor_op_lstm_on_one_thread_or_split() {
    use crate::layers::{Lstm, LstmBias};
    let device = burn::tensor::Device::flex();
    // Hidden 128 at batch 1: each step's tiles split across the two threads; 40: a partial
    // tile. Batch 3 runs as two blocks of a few samples, one per thread.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (hidden, batch, reverse) in [
        (128, 1, false),
        (128, 3, true),
        (40, 1, true),
        (40, 3, false),
    ] {
        let lstm = Lstm::new(12, hidden, LstmBias::Torch, reverse, &device);
        let x = random_tensor([batch, 9, 12], 13, &device).mul_scalar(3.0);
        let (sequence, last) = pool.install(|| {
            (
                lstm.forward_sequence(x.clone()),
                lstm.forward_last(x.clone()),
            )
        });
        let sequence = max_abs_diff(sequence, lstm.forward_sequence_ops(x.clone()));
        let last = max_abs_diff(last, lstm.forward_last_ops(x.clone()));
        assert!(
            sequence < 1e-5 && last < 1e-5,
            "{hidden} {batch}: {sequence} {last}"
        );
        // The other thread busy until the call returns: the calling thread takes every part of
        // every step (a split that waited for a second thread would never finish).
        let done = std::sync::atomic::AtomicBool::new(false);
        let (alone, _) = pool.install(|| {
            rayon::join(
                || {
                    let out = lstm.forward_last(x.clone());
                    done.store(true, std::sync::atomic::Ordering::Release);
                    out
                },
                || {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                },
            )
        });
        let alone = max_abs_diff(alone, lstm.forward_last_ops(x));
        assert!(alone < 1e-5, "{hidden} {batch} alone: {alone}");
    }
}

#[test]
fn bidirectional_lstm_runs_both_directions_at_once_as_in_order() {
    use crate::layers::{BiLstm, LstmBias};
    use burn::tensor::Tensor;
    // Inference joins the two directions on two threads; training builds them one after the
    // other. Both give [forward, backward] per step, each direction as the tensor ops compute it.
    for device in [
        burn::tensor::Device::flex(),
        burn::tensor::Device::flex().autodiff(),
    ] {
        let lstm = BiLstm::new(6, 8, LstmBias::Keras, &device);
        let x = random_tensor([3, 5, 6], 12, &device).mul_scalar(3.0);
        let out = lstm.forward_sequence(x.clone());
        let reference = Tensor::cat(
            vec![
                lstm.forward.forward_sequence_ops(x.clone()),
                lstm.backward.forward_sequence_ops(x),
            ],
            2,
        );
        assert_eq!(out.dims(), [3, 5, 16]);
        let diff = max_abs_diff(out, reference);
        assert!(diff < 1e-5, "{diff}");
    }
}

#[test]
fn fused_gate_matches_burn_ops() {
    use burn::tensor::activation::{sigmoid, tanh};
    let device = burn::tensor::Device::flex();
    // More rows than threads, gates driven into saturation as well as the linear range.
    let x = random_tensor([5, 7, 2 * 9], 3, &device).mul_scalar(4.0);
    let fused = crate::layers::tanh_sigmoid_gate(x.clone(), 9);
    let reference = tanh(x.clone().narrow(2, 0, 9)) * sigmoid(x.narrow(2, 9, 9));
    assert_eq!(fused.dims(), [5, 7, 9]);
    let diff = max_abs_diff(fused, reference);
    assert!(diff < 1e-6, "{diff}");
}

/// Forward values and every gradient of one LSTM path, flattened for comparison.
fn lstm_forward_and_grads(
    lstm: &crate::layers::Lstm,
    x: &burn::tensor::Tensor<3>,
    run: impl Fn(&crate::layers::Lstm, burn::tensor::Tensor<3>) -> Vec<burn::tensor::Tensor<3>>,
) -> Vec<Vec<f32>> {
    use burn::optim::GradientsParams;
    let x = x.clone().require_grad();
    let outputs = run(lstm, x.clone());
    // Random weights on the outputs so that every element's gradient differs.
    let loss = outputs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            let weights = random_tensor(out.dims(), 100 + i as u64, &out.device());
            (out.clone() * weights).sum()
        })
        .reduce(|a, b| a + b)
        .unwrap();
    let grads = loss.backward();
    let x_grad = x.grad(&grads).unwrap();
    let params = GradientsParams::from_grads(grads, lstm);
    let values =
        |t: burn::tensor::Tensor<1>| t.into_data().convert::<f32>().try_into_vec().unwrap();
    let mut result: Vec<Vec<f32>> = outputs
        .into_iter()
        .map(|o| values(o.flatten(0, 2)))
        .collect();
    result.push(values(x_grad.flatten(0, 2)));
    result.push(values(
        params.get::<2>(lstm.input_weight.id).unwrap().flatten(0, 1),
    ));
    // With one step h_0 = 0 never meets W_hh: the tensor-op path has no gradient for it.
    let recurrent = lstm.recurrent_weight.val();
    let recurrent_grad = params
        .get::<2>(lstm.recurrent_weight.id)
        .unwrap_or_else(|| recurrent.zeros_like());
    result.push(values(recurrent_grad.flatten(0, 1)));
    result.push(values(params.get::<1>(lstm.bias.id).unwrap()));
    if let Some(second) = &lstm.recurrent_bias {
        result.push(values(params.get::<1>(second.id).unwrap()));
    }
    result
}

/// A fresh trainable parameter holding `value`.
fn trainable<const D: usize>(
    value: burn::tensor::Tensor<D>,
) -> burn::module::Param<burn::tensor::Tensor<D>> {
    burn::module::Param::from_tensor(value.detach())
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (a, b)) in a.iter().zip(b).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: part {i}");
        let scale = a.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(
            diff <= 1e-5 * scale,
            "{what}: part {i} differs by {diff} (scale {scale})"
        );
    }
}

#[test]
fn lstm_recurrence_op_matches_the_tensor_op_lstm_with_gradients() {
    use crate::layers::{Lstm, LstmBias};
    let device = burn::tensor::Device::flex().autodiff();
    for (bias, reverse, batch, steps) in [
        (LstmBias::Torch, false, 5, 7),
        (LstmBias::Torch, true, 4, 6),
        (LstmBias::Keras, true, 3, 4),
        (LstmBias::Keras, false, 2, 1),
        (LstmBias::Torch, true, 3, 1),
        (LstmBias::Keras, false, 9, 3),
    ] {
        let lstm = Lstm::new(6, 8, bias, reverse, &device);
        // Non-trivial biases (the published init is zeros and a unit forget bias).
        let lstm = Lstm {
            bias: trainable(lstm.bias.val() + random_tensor([32], 3, &device)),
            recurrent_bias: lstm
                .recurrent_bias
                .map(|p| trainable(p.val() + random_tensor([32], 4, &device))),
            ..lstm
        };
        // Scaled inputs drive the gates into saturation as well as the linear range.
        let x = random_tensor([batch, steps, 6], 11, &device).mul_scalar(3.0);
        let what = format!("{bias:?} reverse={reverse} B={batch} T={steps}");
        assert!(Lstm::recurrence_op_applies(&x));
        let sequence_and_last = |op: bool| {
            move |l: &Lstm, x: burn::tensor::Tensor<3>| {
                let [b, _, _] = x.dims();
                let (sequence, last) = if op {
                    (l.forward_sequence_op(x.clone()), l.forward_last_op(x))
                } else {
                    (l.forward_sequence_ops(x.clone()), l.forward_last_ops(x))
                };
                vec![sequence, last.reshape([b, 1, 8])]
            }
        };
        let reference = lstm_forward_and_grads(&lstm, &x, sequence_and_last(false));
        assert_close(
            &lstm_forward_and_grads(&lstm, &x, sequence_and_last(true)),
            &reference,
            &what,
        );
        // The public entry points (which pick the op on this device), each alone.
        let public = lstm_forward_and_grads(&lstm, &x, |l, x| vec![l.forward_sequence(x)]);
        let ops = lstm_forward_and_grads(&lstm, &x, |l, x| vec![l.forward_sequence_ops(x)]);
        assert_close(&public, &ops, &what);
        let last = |l: &Lstm, x: burn::tensor::Tensor<3>| {
            let [b, _, _] = x.dims();
            vec![l.forward_last(x).reshape([b, 1, 8])]
        };
        let last_ops = |l: &Lstm, x: burn::tensor::Tensor<3>| {
            let [b, _, _] = x.dims();
            vec![l.forward_last_ops(x).reshape([b, 1, 8])]
        };
        assert_close(
            &lstm_forward_and_grads(&lstm, &x, last),
            &lstm_forward_and_grads(&lstm, &x, last_ops),
            &what,
        );
    }
    assert!(!Lstm::recurrence_op_applies(&random_tensor(
        [1, 1, 1],
        0,
        &burn::tensor::Device::flex()
    )));
}

#[test]
fn lstm_recurrence_op_gradient_of_the_projected_inputs() {
    use crate::layers::{Lstm, LstmBias};
    use burn::tensor::{Tensor, TensorData};
    // With W_ih = I and zero biases the projected inputs are the inputs themselves, so the
    // tensor-op LSTM's input gradient is the op's gradient w.r.t. x_proj.
    let device = burn::tensor::Device::flex().autodiff();
    let hidden = 5;
    let width = 4 * hidden;
    for (reverse, batch, steps) in [(false, 3, 6), (true, 4, 5), (false, 2, 1)] {
        let lstm = Lstm::new(width, hidden, LstmBias::Keras, reverse, &device);
        let mut identity = vec![0.0f32; width * width];
        for i in 0..width {
            identity[i * width + i] = 1.0;
        }
        let lstm = Lstm {
            input_weight: trainable(Tensor::from_data(
                TensorData::new(identity, [width, width]),
                &device,
            )),
            bias: trainable(lstm.bias.val().zeros_like()),
            ..lstm
        };
        let x = random_tensor([batch, steps, width], 21, &device).mul_scalar(2.0);
        let reference = lstm_forward_and_grads(&lstm, &x, |l, x| vec![l.forward_sequence_ops(x)]);
        let x_proj = x.clone().require_grad();
        let recurrent = lstm.recurrent_weight.val().detach().require_grad();
        let out = crate::layers::lstm_recurrence(x_proj.clone(), recurrent.clone(), reverse);
        let weights = random_tensor(out.dims(), 100, &device);
        let grads = (out.clone() * weights).sum().backward();
        let values = |t: Tensor<1>| t.into_data().convert::<f32>().try_into_vec().unwrap();
        let op = vec![
            values(out.flatten(0, 2)),
            values(x_proj.grad(&grads).unwrap().flatten(0, 2)),
            values(recurrent.grad(&grads).unwrap().flatten(0, 1)),
        ];
        // reference: [sequence, x grad, W_ih grad, W_hh grad, bias grad]
        let reference = vec![
            reference[0].clone(),
            reference[1].clone(),
            reference[3].clone(),
        ];
        assert_close(&op, &reference, &format!("reverse={reverse} T={steps}"));
    }
}

#[test]
fn conv_rows_op_matches_burn_conv1d_with_gradients() {
    use burn::tensor::module::conv1d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::Tensor;
    let values =
        |t: Tensor<1>| -> Vec<f32> { t.into_data().convert::<f32>().try_into_vec().unwrap() };
    let device = burn::tensor::Device::flex().autodiff();
    // Symmetric, one-sided and no padding; a kernel of 1 has no neighbouring taps; dilated
    // causal (LLAFormerNet's TCN). 120 samples make over 1,024 output rows: the forward pass's
    // one-GEMM form (fewer rows: one GEMM per tap). Each also runs without autodiff (inference).
    for (batch, kernel, (left, right), dilation) in [
        (1, 3, (1, 1), 1),
        (3, 3, (1, 1), 1),
        (3, 3, (2, 0), 1),
        (3, 2, (0, 0), 1),
        (3, 1, (0, 0), 1),
        (3, 3, (4, 0), 2),
        (120, 3, (1, 1), 1),
        (120, 3, (6, 0), 3),
    ] {
        let x = random_tensor([batch, 9, 4], 21, &device).require_grad();
        let weight = random_tensor([5, 4, kernel], 22, &device).require_grad();
        let bias = random_tensor([5], 23, &device).require_grad();
        let run = |op: bool| {
            let out = if op {
                crate::layers::conv1d_rows(
                    x.clone(),
                    weight.clone(),
                    bias.clone(),
                    crate::layers::RowsGeometry {
                        left,
                        right,
                        dilation,
                    },
                )
            } else {
                // burn pads both sides equally: pad the input by hand, then convolve unpadded.
                let padded = Tensor::cat(
                    vec![
                        Tensor::zeros([batch, left, 4], &device),
                        x.clone(),
                        Tensor::zeros([batch, right, 4], &device),
                    ],
                    1,
                );
                let options = ConvOptions::new([1], [0], [dilation], 1);
                conv1d(
                    padded.swap_dims(1, 2),
                    weight.clone(),
                    Some(bias.clone()),
                    options,
                )
                .swap_dims(1, 2)
            };
            let scale = random_tensor(out.dims(), 24, &device);
            let grads = (out.clone() * scale).sum().backward();
            vec![
                values(out.flatten(0, 2)),
                values(x.grad(&grads).unwrap().flatten(0, 2)),
                values(weight.grad(&grads).unwrap().flatten(0, 2)),
                values(bias.grad(&grads).unwrap()),
            ]
        };
        let what =
            format!("batch={batch} k={kernel} padding=({left}, {right}) dilation={dilation}");
        let reference = run(false);
        assert_close(&run(true), &reference, &what);
        let flex = burn::tensor::Device::flex();
        let inference = crate::layers::conv1d_rows(
            Tensor::from_data(x.to_data(), &flex),
            Tensor::from_data(weight.to_data(), &flex),
            Tensor::from_data(bias.to_data(), &flex),
            crate::layers::RowsGeometry {
                left,
                right,
                dilation,
            },
        );
        assert_close(
            &[values(inference.flatten(0, 2))],
            &reference[..1],
            &format!("{what}, inference"),
        );
    }
}

#[test]
fn rectifier_op_matches_burn_activations_with_gradients() {
    use crate::layers::{elu_rectifier, leaky_rectifier, prelu_rectifier};
    use burn::tensor::activation::{elu, leaky_relu, prelu};
    use burn::tensor::Tensor;
    let values =
        |t: Tensor<1>| -> Vec<f32> { t.into_data().convert::<f32>().try_into_vec().unwrap() };
    let device = burn::tensor::Device::flex().autodiff();
    // Over one parallel chunk (64 Ki values), so the chunks' d alpha shares are summed.
    for dims in [[2, 3, 7], [3, 256, 100]] {
        let x = random_tensor(dims, 31, &device).require_grad();
        let alpha = Tensor::<1>::from_floats([0.3], &device).require_grad();
        let scale = random_tensor(dims, 32, &device);
        for (name, op) in ["leaky_relu", "prelu", "elu"].into_iter().enumerate() {
            let run = |ours: bool| {
                let out = match (name, ours) {
                    (0, true) => leaky_rectifier(x.clone(), 0.3),
                    (0, false) => leaky_relu(x.clone(), 0.3),
                    (1, true) => prelu_rectifier(x.clone(), alpha.clone()),
                    (1, false) => prelu(x.clone(), alpha.clone()),
                    (_, true) => elu_rectifier(x.clone(), 0.3),
                    (_, false) => elu(x.clone(), 0.3),
                };
                let grads = (out.clone() * scale.clone()).sum().backward();
                let mut parts = vec![
                    values(out.flatten(0, 2)),
                    values(x.grad(&grads).unwrap().flatten(0, 2)),
                ];
                if name == 1 {
                    parts.push(values(alpha.grad(&grads).unwrap()));
                }
                parts
            };
            let ours = run(true);
            // Both sides of zero are exercised.
            assert!(ours[0].iter().any(|&v| v < 0.0) && ours[0].iter().any(|&v| v > 0.0));
            assert_close(&ours, &run(false), &format!("{op} {dims:?}"));
        }
    }
}

#[test]
fn pointwise_norm_folds_batch_norm_at_inference_exactly() {
    use crate::layers::pointwise_norm;
    use burn::module::RunningState;
    use burn::nn::{BatchNorm, BatchNormConfig};
    let device = burn::tensor::Device::flex();
    // Running statistics and affine parameters far from the init (0, 1, 1, 0).
    let norm = BatchNorm {
        gamma: trainable(random_tensor([6], 51, &device).mul_scalar(2.0)),
        beta: trainable(random_tensor([6], 52, &device)),
        running_mean: RunningState::new(random_tensor([6], 53, &device)),
        running_var: RunningState::new(random_tensor([6], 54, &device).abs().add_scalar(0.5)),
        ..BatchNormConfig::new(6).init(&device)
    };
    let weight = random_tensor([6, 4, 1], 55, &device);
    let x = random_tensor([3, 4, 9], 56, &device).mul_scalar(2.0);
    let folded = pointwise_norm(x.clone(), weight.clone(), &norm);
    let reference = norm.forward(crate::layers::pointwise(x, weight));
    let diff = max_abs_diff(folded, reference);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn llaformer_channels_last_convolutions_match_burn_conv1d() {
    use crate::arch::Llaformer;
    use crate::config::LlaformerConfig;
    use crate::layers::{tanh_sigmoid_gate, ForwardCtx};
    use burn::tensor::activation::relu;
    let device = burn::tensor::Device::flex();
    let model = Llaformer::new(&LlaformerConfig::default(), 2, &device);
    let x = random_tensor([3, 1, 20], 71, &device).mul_scalar(2.0);
    let ours = model.forward(x.clone(), &mut ForwardCtx::inference());
    // The forward pass in burn's channels-first Conv1d layers, with transposes.
    let features = model
        .conv_norm
        .forward(relu(model.conv.forward(x)).swap_dims(1, 2));
    let sequence = model.lstm.forward_sequence(features.clone());
    let gated = tanh_sigmoid_gate(model.gate.forward(sequence), model.units);
    let tcn = relu(model.tcn.forward(features.swap_dims(1, 2))).swap_dims(1, 2);
    let merged = gated + model.tcn_norm.forward(tcn);
    let pooled = merged.mean_dim(1).reshape([3, model.units]);
    let reference = model.classifier.forward(pooled);
    let diff = max_abs_diff(ours, reference);
    assert!(diff < 1e-4, "{diff}");
}

/// TabM: while training, every member's logits (so the loss is the mean of the members'); at
/// inference, the logits of the members' mean probability; and trained, it separates blobs.
#[test]
fn tabm_trains_its_members_and_predicts_their_mean() {
    use crate::config::TabmEmbedding;
    for embedding in [TabmEmbedding::None, TabmEmbedding::Periodic] {
        tabm_members_and_training(embedding);
    }
}

fn tabm_members_and_training(embedding: crate::config::TabmEmbedding) {
    use crate::arch::Tabm;
    use crate::config::{PeriodicConfig, TabmConfig};
    let periodic = PeriodicConfig {
        frequencies: 4,
        dim: 3,
        scale: 1.0,
    };
    use crate::layers::ForwardCtx;
    use burn::tensor::activation::{sigmoid, softmax};
    let device = burn::tensor::Device::flex();
    let config = TabmConfig {
        members: 4,
        blocks: 2,
        width: 16,
        dropout: 0.0,
        embedding,
        periodic: periodic.clone(),
    };
    for outputs in [1, 3] {
        let model = Tabm::new(&config, 7, outputs, &device);
        let x = random_tensor([5, 7], 17, &device);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let members = model.forward(x.clone(), &mut ForwardCtx::training(&mut rng));
        assert_eq!(members.dims(), [4 * 5, outputs]);
        let mean = model.forward(x, &mut ForwardCtx::inference());
        assert_eq!(mean.dims(), [5, outputs]);
        let members = members.reshape([4, 5, outputs]);
        // Members differ (their ±1 input scalings and heads), and the prediction is their mean.
        let spread = max_abs_diff(
            members.clone().narrow(0, 0, 1),
            members.clone().narrow(0, 1, 1),
        );
        assert!(spread > 1e-3, "members agree exactly: {spread}");
        let (expected, found) = if outputs == 1 {
            (sigmoid(members).mean_dim(0).reshape([5, 1]), sigmoid(mean))
        } else {
            (
                softmax(members, 2).mean_dim(0).reshape([5, outputs]),
                softmax(mean, 1),
            )
        };
        let diff = max_abs_diff(expected, found);
        assert!(diff < 1e-5, "{outputs} outputs: {diff}");
    }

    let shape = InputShape::Tabular { features: 8 };
    let (x, y) = blobs(256, shape, 1.0, 1);
    let (vx, vy) = blobs(64, shape, 1.0, 2);
    let mut cfg = ModelConfig::default_for(ModelKind::Tabm, shape, 2);
    cfg.arch = crate::config::ArchConfig::Tabm(TabmConfig {
        members: 8,
        width: 32,
        embedding,
        periodic,
        ..TabmConfig::default()
    });
    let model = train(
        &cfg,
        TrainData::new(&x, shape, &y),
        TrainData::new(&vx, shape, &vy),
        &quick_options(5),
    )
    .unwrap();
    let history = model.history();
    assert!(
        history.epochs[4].train_loss < history.epochs[0].train_loss,
        "{:?}",
        history.epochs
    );
    let predicted = model
        .predict(&vx, shape)
        .unwrap()
        .predicted_classes()
        .unwrap();
    let correct = predicted.iter().zip(&vy).filter(|(p, y)| p == y).count();
    assert!(correct * 10 >= vy.len() * 9, "{correct}/{}", vy.len());
    // The members' adapters and heads travel with the weights.
    let loaded = Trained::from_bytes(&cfg, &model.to_bytes().unwrap()).unwrap();
    assert_eq!(
        model.predict(&vx, shape).unwrap(),
        loaded.predict(&vx, shape).unwrap()
    );
}

/// TabM's periodic embeddings: feature f of a row becomes
/// `ReLU(W_f [cos(2π c_f x), sin(2π c_f x)] + b_f)`, features side by side.
#[test]
fn periodic_embeddings_are_each_features_own_waves_and_layer() {
    use crate::arch::Tabm;
    use crate::config::{PeriodicConfig, TabmConfig, TabmEmbedding};
    let device = burn::tensor::Device::flex();
    let (features, k, dim) = (3, 2, 4);
    let config = TabmConfig {
        members: 2,
        blocks: 1,
        width: 8,
        dropout: 0.0,
        embedding: TabmEmbedding::Periodic,
        periodic: PeriodicConfig {
            frequencies: k,
            dim,
            scale: 1.0,
        },
    };
    let model = Tabm::new(&config, features, 1, &device);
    let periodic = model.periodic.as_ref().unwrap();
    let values = |t: burn::tensor::Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
    let frequencies = values(periodic.frequencies.val());
    let weight = values(periodic.weight.val().reshape([features * 2 * k, dim]));
    let bias = values(periodic.bias.val().reshape([features, dim]));
    let x = random_tensor([2, features], 5, &device);
    let rows = values(x.clone());
    let found = values(periodic.embed(x));
    for (row, input) in rows.chunks(features).enumerate() {
        for (f, &value) in input.iter().enumerate() {
            let phase: Vec<f32> = (0..k)
                .map(|j| std::f32::consts::TAU * frequencies[f * k + j] * value)
                .collect();
            let waves: Vec<f32> = phase
                .iter()
                .map(|p| p.cos())
                .chain(phase.iter().map(|p| p.sin()))
                .collect();
            for d in 0..dim {
                let linear: f32 = bias[f * dim + d]
                    + waves
                        .iter()
                        .enumerate()
                        .map(|(i, w)| w * weight[(f * 2 * k + i) * dim + d])
                        .sum::<f32>();
                let got = found[row * features * dim + f * dim + d];
                assert!(
                    (got - linear.max(0.0)).abs() < 1e-5,
                    "row {row} feature {f} dim {d}: {got} vs {linear}"
                );
            }
        }
    }
}

#[test]
fn fused_autoencoder_matches_burn_layers() {
    use crate::arch::Autoencoder;
    use crate::config::{AutoencoderConfig, DecoderOutput};
    use burn::tensor::activation::{relu, sigmoid};
    let device = burn::tensor::Device::flex();
    // Narrow (transposed) and wide layers in both orders; one sample and more rows than the
    // parallel threshold.
    for (hidden, code_dim, output, rows) in [
        (vec![], 10, DecoderOutput::Linear, 300),
        (vec![24], 5, DecoderOutput::Sigmoid, 1),
        (vec![12, 20], 3, DecoderOutput::Linear, 7),
    ] {
        let config = AutoencoderConfig {
            hidden,
            code_dim,
            decoder_output: output,
            ..AutoencoderConfig::default()
        };
        let model = Autoencoder::new(&config, 18, &device);
        let x = random_tensor([rows, 18], 61, &device).mul_scalar(2.0);
        let fused = model.forward(x.clone());
        // The same layers in burn ops.
        let mut h = x;
        for layer in &model.encoder {
            h = relu(layer.forward(h));
        }
        let last = model.decoder.len() - 1;
        for (i, layer) in model.decoder.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        if model.sigmoid_output {
            h = sigmoid(h);
        }
        assert_eq!(fused.dims(), [rows, 18]);
        let diff = max_abs_diff(fused, h);
        assert!(diff < 1e-5, "{config:?} rows {rows}: {diff}");
    }
}

#[test]
fn channel_norm_op_matches_burn_batch_norm_with_gradients() {
    use crate::layers::batch_norm_channels_train;
    use burn::nn::{BatchNorm, BatchNormConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::Tensor;
    let values =
        |t: Tensor<1>| -> Vec<f32> { t.into_data().convert::<f32>().try_into_vec().unwrap() };
    let device = burn::tensor::Device::flex().autodiff();
    // Runs shorter and longer than the op's 16 summing lanes, with a tail.
    for (dims, seed) in [([3, 4, 5], 41), ([5, 6, 37], 42)] {
        // A fresh norm per run (clones share their running statistics), with non-trivial
        // affine parameters (the init is gamma = 1, beta = 0).
        let norm = || BatchNorm {
            gamma: trainable(random_tensor([dims[1]], seed, &device).mul_scalar(-1.5)),
            beta: trainable(random_tensor([dims[1]], seed + 1, &device)),
            ..BatchNormConfig::new(dims[1]).init(&device)
        };
        let x = random_tensor(dims, seed + 2, &device)
            .mul_scalar(3.0)
            .add_scalar(0.5);
        let weights = random_tensor(dims, seed + 3, &device);
        let run = |ours: bool| {
            let norm = norm();
            let x = x.clone().require_grad();
            let out = if ours {
                batch_norm_channels_train(x.clone(), &norm)
            } else {
                norm.forward(x.clone())
            };
            let grads = (out.clone() * weights.clone()).sum().backward();
            let x_grad = x.grad(&grads).unwrap();
            let params = GradientsParams::from_grads(grads, &norm);
            vec![
                values(out.flatten(0, 2)),
                values(x_grad.flatten(0, 2)),
                values(params.get::<1>(norm.gamma.id).unwrap()),
                values(params.get::<1>(norm.beta.id).unwrap()),
                values(norm.running_mean.value_sync()),
                values(norm.running_var.value_sync()),
            ]
        };
        let ours = run(true);
        // The running statistics moved from their start (0 and 1).
        assert!(ours[4].iter().all(|m| m.abs() > 1e-3));
        assert_close(&ours, &run(false), &format!("{dims:?}"));
    }
}

#[test]
fn front_end_training_op_matches_burn_layers_with_gradients() {
    use crate::layers::{ConvFrontEnd, ConvFrontEndConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::Tensor;
    let values =
        |t: Tensor<1>| -> Vec<f32> { t.into_data().convert::<f32>().try_into_vec().unwrap() };
    // Odd lengths leave a partial pooling window, whose rows still count for the statistics.
    for (length, padding, pool) in [(20, (1, 1), 2), (21, (2, 0), 2), (25, (1, 1), 3)] {
        let config = ConvFrontEndConfig {
            channels: 3,
            filters: [8, 16],
            kernel_size: 3,
            padding,
            pool,
            batch_norm_eps: 1e-5,
        };
        let device = burn::tensor::Device::flex().autodiff();
        let front = ConvFrontEnd::new(&config, &device);
        // Non-trivial affine parameters (the init is gamma = 1, beta = 0).
        let front = ConvFrontEnd {
            norm1: burn::nn::BatchNorm {
                gamma: trainable(random_tensor([8], 1, &device).add_scalar(1.0)),
                beta: trainable(random_tensor([8], 2, &device)),
                ..front.norm1
            },
            norm2: burn::nn::BatchNorm {
                gamma: trainable(random_tensor([16], 3, &device).mul_scalar(-1.5)),
                beta: trainable(random_tensor([16], 4, &device)),
                ..front.norm2
            },
            ..front
        };
        // 11 samples: more than one block of the op's parallel channel sums.
        let x = random_tensor([11, 3, length], 5, &device).mul_scalar(2.0);
        let run = |op: bool| {
            let x = x.clone().require_grad();
            let out = if op {
                front.forward_channels_last(x.clone())
            } else {
                front.forward(x.clone()).swap_dims(1, 2)
            };
            let weights = random_tensor(out.dims(), 9, &device);
            let grads = (out.clone() * weights).sum().backward();
            let x_grad = x.grad(&grads).unwrap();
            let params = GradientsParams::from_grads(grads, &front);
            let mut result = vec![values(out.flatten(0, 2)), values(x_grad.flatten(0, 2))];
            for conv in [&front.conv1, &front.conv2] {
                result.push(values(
                    params.get::<3>(conv.weight.id).unwrap().flatten(0, 2),
                ));
                let bias = conv.bias.as_ref().unwrap();
                // The batch norm cancels the conv bias: its gradient is ~0 on both paths.
                let bias_grad = params.get::<1>(bias.id).unwrap();
                assert!(values(bias_grad).iter().all(|g| g.abs() < 1e-4));
            }
            for norm in [&front.norm1, &front.norm2] {
                result.push(values(params.get::<1>(norm.gamma.id).unwrap()));
                result.push(values(params.get::<1>(norm.beta.id).unwrap()));
            }
            result
        };
        let reference = run(false);
        let stats = |norm: &burn::nn::BatchNorm| {
            (
                values(norm.running_mean.value_sync()),
                values(norm.running_var.value_sync()),
            )
        };
        let after_reference = [stats(&front.norm1), stats(&front.norm2)];
        assert_close(
            &run(true),
            &reference,
            &format!("length {length} pool {pool}"),
        );
        // Same batch statistics: from m1 = 0.1 s (v1 = 0.9 + 0.1 s) the second update gives
        // 0.9 m1 + 0.1 s = 1.9 m1 (1.9 v1 - 0.9).
        for ((mean1, var1), norm) in after_reference.iter().zip([&front.norm1, &front.norm2]) {
            let (mean2, var2) = stats(norm);
            let expect_mean: Vec<f32> = mean1.iter().map(|m| 1.9 * m).collect();
            let expect_var: Vec<f32> = var1.iter().map(|v| 1.9 * v - 0.9).collect();
            assert_close(
                &[mean2, var2],
                &[expect_mean, expect_var],
                "running statistics",
            );
        }
    }
}

#[test]
fn channels_last_front_end_matches_burn_layers() {
    use crate::layers::{ConvFrontEnd, ConvFrontEndConfig};
    use burn::module::Module;
    for (length, padding) in [(20, (1, 1)), (21, (2, 0))] {
        let config = ConvFrontEndConfig {
            channels: 3,
            filters: [8, 16],
            kernel_size: 3,
            padding,
            pool: 2,
            batch_norm_eps: 1e-5,
        };
        // Training mode (autodiff device): batch statistics, and the running ones move.
        let device = burn::tensor::Device::flex().autodiff();
        let front = ConvFrontEnd::new(&config, &device);
        let x = random_tensor([4, 3, length], 5, &device);
        let reference = front.forward(x.clone()).swap_dims(1, 2);
        let gemm = front.forward_channels_last(x.clone());
        let train = max_abs_diff(reference, gemm);
        // Inference (batch norm folded into the GEMM) with the running statistics now non-trivial.
        let front = front.valid();
        let x = x.inner();
        let reference = front.forward(x.clone()).swap_dims(1, 2);
        let infer = max_abs_diff(reference, front.forward_channels_last(x.clone()));
        // New weights in the same module (its folded-weight cache made for the old ones, as
        // after a training step): inference must follow them.
        let weight = front.conv2.weight.val().mul_scalar(-2.0);
        let front = ConvFrontEnd {
            conv2: burn::nn::conv::Conv1d {
                weight: burn::module::Param::from_tensor(weight),
                ..front.conv2
            },
            ..front
        };
        let reference = front.forward(x.clone()).swap_dims(1, 2);
        let changed = max_abs_diff(reference, front.forward_channels_last(x));
        assert!(
            train < 1e-5 && infer < 1e-5 && changed < 1e-5,
            "{train} {infer} {changed}"
        );
    }
}

/// ROC-AUC by pair counting: the chance an anomaly outscores a normal sample (ties count half).
fn pairwise_auc(normal: &[f32], anomalous: &[f32]) -> f64 {
    let mut wins = 0.0;
    for &a in anomalous {
        for &n in normal {
            wins += if a > n {
                1.0
            } else if a == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (normal.len() * anomalous.len()) as f64
}

/// Normal samples: a slow ramp-and-wave pattern with a random phase, in [0, 1]; shifted
/// samples: the same values in random order (what the distribution-shift augmentations mimic
/// is not used: a reversed or inverted copy would be circular).
fn normal_and_shifted(n: usize, len: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = Vec::with_capacity(n * len);
    let mut shifted = Vec::with_capacity(n * len);
    for _ in 0..n {
        let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let sample: Vec<f32> = (0..len)
            .map(|i| {
                let t = i as f32 / len as f32;
                (0.5 + 0.4 * (phase + 6.0 * t).sin() + rng.random_range(-0.03..0.03))
                    .clamp(0.0, 1.0)
            })
            .collect();
        normal.extend(&sample);
        let mut noise: Vec<f32> = (0..len).map(|_| rng.random_range(0.0..1.0)).collect();
        noise.iter_mut().for_each(|v| *v = 0.5 + 0.8 * (*v - 0.5));
        shifted.extend(noise);
    }
    (normal, shifted)
}

#[test]
fn deep_sad_trained_on_normal_only_ranks_a_shifted_distribution_above_it() {
    let len = 32;
    let shape = InputShape::Bytes { length: len };
    let (train_x, _) = normal_and_shifted(192, len, 11);
    let (normal, shifted) = normal_and_shifted(64, len, 12);
    let y = vec![0u32; 192];
    let mut cfg = ModelConfig::default_for(ModelKind::Ldpi, shape, 2);
    cfg.head = Head::Hypersphere;
    cfg.arch = ArchConfig::Ldpi(LdpiConfig {
        block_channels: [8, 16, 16, 16],
        head_layers: 1,
        embedding_dim: 16,
        ..LdpiConfig::default()
    });
    let opts = TrainOptions {
        deep_sad: DeepSadOptions {
            pretrain: Some(ContrastiveOptions {
                epochs: 4,
                batch_size: 32,
                ..ContrastiveOptions::default()
            }),
            ..DeepSadOptions::default()
        },
        lr: 1e-3,
        ..quick_options(8)
    };
    let model = train(
        &cfg,
        TrainData::new(&train_x, shape, &y),
        TrainData::new(&normal[..32 * len], shape, &y[..32]),
        &opts,
    )
    .unwrap();
    let Ok(Network::Ldpi(ldpi)) = model.network() else {
        panic!("not ldpi")
    };
    assert!(ldpi.classifier.is_none() && ldpi.center.is_some());
    let normal_scores = model.predict(&normal, shape).unwrap();
    assert!(matches!(normal_scores, Scores::Distance(_)));
    let shifted_scores = model.predict(&shifted, shape).unwrap().anomaly_scores();
    let auc = pairwise_auc(&normal_scores.anomaly_scores(), &shifted_scores);
    assert!(auc > 0.95, "ROC-AUC {auc}");

    // The centre travels with the weights: a reloaded model scores the same.
    let reloaded = Trained::from_bytes(model.config(), &model.to_bytes().unwrap()).unwrap();
    assert_eq!(
        reloaded.predict(&shifted, shape).unwrap().anomaly_scores(),
        shifted_scores
    );
}

#[test]
fn autoencoder_trained_on_normal_only_ranks_a_shifted_distribution_above_it() {
    let len = 32;
    let shape = InputShape::Tabular { features: len };
    // Centred and scaled, as the preprocessing's standardisation leaves a table.
    let standardise =
        |v: Vec<f32>| -> Vec<f32> { v.into_iter().map(|x| (x - 0.5) * 2.5).collect() };
    let (train_x, _) = normal_and_shifted(256, len, 21);
    let (normal, shifted) = normal_and_shifted(64, len, 22);
    let (train_x, normal, shifted) = (
        standardise(train_x),
        standardise(normal),
        standardise(shifted),
    );
    let y = vec![0u32; 256];
    let mut cfg = ModelConfig::default_for(ModelKind::Autoencoder, shape, 2);
    cfg.arch = ArchConfig::Autoencoder(AutoencoderConfig {
        hidden: vec![16],
        code_dim: 4,
        ..AutoencoderConfig::default()
    });
    let opts = TrainOptions {
        lr: 1e-2,
        ..quick_options(60)
    };
    let model = train(
        &cfg,
        TrainData::new(&train_x, shape, &y),
        TrainData::new(&normal[..32 * len], shape, &y[..32]),
        &opts,
    )
    .unwrap();
    let auc = pairwise_auc(
        &model.predict(&normal, shape).unwrap().anomaly_scores(),
        &model.predict(&shifted, shape).unwrap().anomaly_scores(),
    );
    assert!(auc > 0.95, "ROC-AUC {auc}");
}

#[test]
fn deep_sad_without_normal_rows_or_on_a_family_without_embedding_is_refused() {
    let shape = InputShape::Bytes { length: 16 };
    let mut cfg = ModelConfig::default_for(ModelKind::Ldpi, shape, 2);
    cfg.head = Head::Hypersphere;
    let (x, _) = normal_and_shifted(8, 16, 1);
    let anomalies = vec![1u32; 8];
    let err = train(
        &cfg,
        TrainData::new(&x, shape, &anomalies),
        TrainData::new(&x, shape, &anomalies),
        &quick_options(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("normal"), "{err}");

    let mut hybrid =
        ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: 4 }, 2);
    hybrid.head = Head::Hypersphere;
    assert!(hybrid.check().is_err());
}

/// Confident samples keep their order: the scores are log-odds, which P(attack) in f32 (1.0
/// above a logit of ~16.6) would have tied.
#[test]
fn softmax_anomaly_scores_are_log_odds_that_rank_confident_samples() {
    let scores = Scores::Multiclass {
        n_classes: 3,
        logits: vec![
            1.0, 0.0, 0.0, // unsure
            0.0, 30.0, -2.0, // sure it is class 1
            0.0, 40.0, 40.0, // sure it is not benign, twice
            45.0, 0.0, 0.0, // sure it is benign
        ],
    };
    let odds = scores.anomaly_scores();
    // Moderate logits: ln((1 - p0) / p0) from the probabilities themselves.
    let p = scores.class_probabilities().unwrap();
    assert!(
        (odds[0] - ((1.0 - p[0]) / p[0]).ln()).abs() < 1e-5,
        "{odds:?}"
    );
    assert!((odds[1] - (30.0 + (-32f32).exp().ln_1p())).abs() < 1e-4);
    assert!((odds[2] - (40.0 + std::f32::consts::LN_2)).abs() < 1e-4);
    assert!((odds[3] + (45.0 - std::f32::consts::LN_2)).abs() < 1e-4);
    assert!(odds[2] > odds[1] + 5.0, "{odds:?}");
    // Against another benign class: row 1 is then the benign one.
    assert!(scores.anomaly_scores_against(1)[1] < -29.0);
    assert_eq!(scores.predicted_classes().unwrap(), vec![0, 1, 1, 0]);
    let binary = Scores::Binary(vec![-3.0, 0.5, 20.0, 30.0]);
    assert_eq!(binary.predicted_classes().unwrap(), vec![0, 1, 1, 1]);
    assert_eq!(binary.anomaly_scores(), vec![-3.0, 0.5, 20.0, 30.0]);
}
