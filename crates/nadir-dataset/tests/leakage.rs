//! Fitting reads only training rows; SMOTE never sees or builds from a test row.
#![allow(clippy::needless_range_loop)] // index loops mirror the interpolation formula

use nadir_dataset::pipeline::{Balance, PcaSpec, Reduction};
use nadir_dataset::smote::smote_with_parents;
use nadir_dataset::{FeatureSchema, Matrix, Pipeline, PipelineSpec, ScalerKind, SplitSpec};
use rand::{Rng, SeedableRng};

fn table(rows: usize, seed: u64) -> (Matrix, Vec<u32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(rows * 6);
    let mut y = Vec::with_capacity(rows);
    for i in 0..rows {
        let base: f32 = rng.random_range(-1.0..1.0);
        let attack = i % 5 == 0;
        data.extend_from_slice(&[
            base,
            2.0 * base + rng.random_range(-0.01..0.01), // correlated with column 0
            if i % 17 == 0 {
                f32::NAN
            } else {
                rng.random_range(0.0..10.0)
            },
            if i % 23 == 0 {
                f32::INFINITY
            } else {
                rng.random_range(-3.0..3.0) + if attack { 4.0 } else { 0.0 }
            },
            7.0, // constant
            rng.random_range(0.0..1.0),
        ]);
        y.push(u32::from(attack));
    }
    (Matrix::new(rows, 6, data).unwrap(), y)
}

fn spec() -> PipelineSpec {
    PipelineSpec {
        corr_threshold: Some(0.95),
        scaler: ScalerKind::Standard,
        reduction: Reduction::Pca(PcaSpec {
            variance: Some(0.9),
            components: None,
        }),
        balance: Balance::Smote { k: 3, seed: 1 },
        ..PipelineSpec::default()
    }
}

#[test]
fn changing_test_rows_changes_nothing_fitted() {
    let (x, y) = table(600, 5);
    let schema = FeatureSchema::new(["a", "b", "c", "d", "k", "e"]);
    let splits = SplitSpec::default().apply(&y, &vec![0; 600], None).unwrap();
    let fitted = Pipeline::fit(&spec(), &x.select_rows(&splits.train), &schema).unwrap();

    // Wreck every validation and test row, refit on the same training indices.
    let mut wrecked = x.clone();
    for &i in splits.val.iter().chain(&splits.test) {
        wrecked
            .row_mut(i)
            .iter_mut()
            .enumerate()
            .for_each(|(c, v)| *v = 1e6 * (c as f32 + 1.0) * if i % 2 == 0 { -1.0 } else { 1.0 });
    }
    let refitted = Pipeline::fit(&spec(), &wrecked.select_rows(&splits.train), &schema).unwrap();
    assert_eq!(
        serde_json::to_string(&fitted).unwrap(),
        serde_json::to_string(&refitted).unwrap()
    );

    // The check can fail: changing ONE training row changes the fit.
    let mut nudged = x.clone();
    nudged.row_mut(splits.train[0])[5] += 100.0;
    let changed = Pipeline::fit(&spec(), &nudged.select_rows(&splits.train), &schema).unwrap();
    assert_ne!(
        serde_json::to_string(&fitted).unwrap(),
        serde_json::to_string(&changed).unwrap()
    );

    // Fitted steps: constant column and one of the correlated pair dropped (not both).
    let out = fitted.transform(&x.select_rows(&splits.test)).unwrap();
    assert_eq!(out.cols, fitted.output_dim());
    assert!(out.data.iter().all(|v| v.is_finite()));
    let json = serde_json::to_string(&fitted).unwrap();
    assert!(
        json.contains("\"dropped\":[\"k\"]") && json.contains("\"dropped\":[\"b\"]"),
        "{json}"
    );
}

#[test]
fn smote_output_holds_no_test_row_and_nothing_built_from_one() {
    let (x, y) = table(500, 8);
    let splits = SplitSpec::default().apply(&y, &vec![0; 500], None).unwrap();
    let schema = FeatureSchema::new(["a", "b", "c", "d", "k", "e"]);
    let plain = PipelineSpec {
        reduction: Reduction::None,
        ..spec()
    };
    let pipeline = Pipeline::fit(&plain, &x.select_rows(&splits.train), &schema).unwrap();
    let train_x = pipeline.transform(&x.select_rows(&splits.train)).unwrap();
    let test_x = pipeline.transform(&x.select_rows(&splits.test)).unwrap();
    let train_y: Vec<u32> = splits.train.iter().map(|&i| y[i]).collect();

    let out = smote_with_parents(&train_x, &train_y, 5, 3);
    let n_train = train_x.rows;
    assert!(out.x.rows > n_train);
    assert_eq!(
        out.y.iter().filter(|&&c| c == 1).count(),
        out.y.iter().filter(|&&c| c == 0).count()
    );
    // Parents are training rows (indices into the training matrix) of the same class.
    for (s, &(base, neighbour, gap)) in out.parents.iter().enumerate() {
        assert!(base < n_train && neighbour < n_train && base != neighbour);
        assert_eq!(train_y[base], out.y[n_train + s]);
        assert_eq!(train_y[neighbour], out.y[n_train + s]);
        let row = out.x.row(n_train + s);
        for c in 0..row.len() {
            let expect =
                train_x.get(base, c) + gap * (train_x.get(neighbour, c) - train_x.get(base, c));
            assert!((row[c] - expect).abs() < 1e-5);
        }
    }
    // No output row equals a test row.
    for r in 0..out.x.rows {
        for t in 0..test_x.rows {
            assert_ne!(out.x.row(r), test_x.row(t));
        }
    }
}

#[test]
fn pipeline_round_trips_through_json_and_toml_spec() {
    let spec_text = r#"
        impute = "median"
        drop_constant = true
        corr_threshold = 0.9
        scaler = "minmax"
        reduction = { kind = "pca", components = 2 }
        balance = { kind = "class_weights" }
    "#;
    let spec: PipelineSpec = toml::from_str(spec_text).unwrap();
    assert_eq!(spec.scaler, ScalerKind::MinMax);
    let bad: Result<PipelineSpec, _> =
        toml::from_str("scaler = \"standard\"\nreduction = { kind = \"pca\" }");
    assert!(bad.unwrap().validate().is_err());
    assert!(toml::from_str::<PipelineSpec>("scalr = \"standard\"").is_err());

    let (x, _) = table(200, 2);
    let schema = FeatureSchema::new(["a", "b", "c", "d", "k", "e"]);
    let pipeline = Pipeline::fit(&spec, &x, &schema).unwrap();
    let json = serde_json::to_string(&pipeline).unwrap();
    let back: Pipeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back.transform(&x).unwrap(), pipeline.transform(&x).unwrap());
    assert_eq!(back.output_dim(), 2);
    assert_eq!(back.input_schema(), &schema);
}

#[test]
fn signed_log_runs_before_scaling_and_keeps_signs() {
    let x = Matrix::new(
        4,
        1,
        vec![
            0.0,
            std::f32::consts::E - 1.0,
            1.0 - std::f32::consts::E,
            1e9,
        ],
    )
    .unwrap();
    let schema = FeatureSchema::new(["bytes"]);
    let spec = PipelineSpec {
        log: true,
        scaler: ScalerKind::None,
        ..PipelineSpec::default()
    };
    let out = Pipeline::fit(&spec, &x, &schema)
        .unwrap()
        .transform(&x)
        .unwrap();
    let expected = [0.0, 1.0, -1.0, (1e9f32).ln_1p()];
    for (got, want) in out.data.iter().zip(expected) {
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
    // With min-max scaling after it, 1e9 no longer squeezes the small values to 0.
    let spec = PipelineSpec {
        scaler: ScalerKind::MinMax,
        ..spec
    };
    let out = Pipeline::fit(&spec, &x, &schema)
        .unwrap()
        .transform(&x)
        .unwrap();
    assert!(out.data[1] - out.data[0] > 0.03, "{:?}", out.data);
}
