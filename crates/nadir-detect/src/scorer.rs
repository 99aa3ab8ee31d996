//! Scoring with a bundle: its fitted preprocessing (never refitted), the model in batches,
//! and the threshold that turns a score into a verdict.

use nadir_dataset::{FeatureSchema, Matrix, Pipeline};
use nadir_model::{ComputeDevice, Scores, Trained};

use crate::bundle::Bundle;
use crate::threshold::{AppliedThreshold, ThresholdChoice};
use crate::DetectError;

/// Anomaly scores (higher = more anomalous; log-odds of attack for classifier heads) and class
/// probabilities of a model's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// One score per row.
    pub scores: Vec<f32>,
    /// `rows x n_classes` probabilities for a softmax head.
    pub probabilities: Option<(usize, Vec<f32>)>,
}

impl Scored {
    /// The most likely class of `row` for a softmax head.
    pub fn class_of(&self, row: usize) -> Option<usize> {
        let (n, probabilities) = self.probabilities.as_ref()?;
        let p = probabilities.get(row * n..(row + 1) * n)?;
        (0..*n).max_by(|&a, &b| p[a].total_cmp(&p[b]))
    }
}

/// Scores `x` (preprocessed rows) with `model`; `benign_class` picks the class that is "not
/// anomalous" for a softmax head.
pub fn score(model: &Trained, x: &Matrix, benign_class: u32) -> Result<Scored, DetectError> {
    let shape = model.config().input;
    if shape.sample_len() != x.cols {
        return Err(DetectError::Input(format!(
            "the preprocessed data have {} columns but the model's input {shape} takes {}",
            x.cols,
            shape.sample_len()
        )));
    }
    let scores = model.predict(&x.data, shape)?;
    let n_classes = match &scores {
        Scores::Multiclass { n_classes, .. } if benign_class as usize >= *n_classes => {
            return Err(DetectError::Input(format!(
                "benign class {benign_class} is outside the model's {n_classes} classes"
            )));
        }
        Scores::Multiclass { n_classes, .. } => Some(*n_classes),
        _ => None,
    };
    Ok(Scored {
        scores: scores.anomaly_scores_against(benign_class as usize),
        probabilities: n_classes.zip(scores.class_probabilities()),
    })
}

/// Rows after a bundle's preprocessing, with what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessed {
    pub x: Matrix,
    /// NaN/inf cells replaced by the training median (as training did).
    pub imputed_cells: u64,
    /// Rows that are still not finite after preprocessing (the pipeline was fitted without
    /// imputation): they cannot be scored.
    pub unscorable: Vec<usize>,
}

/// Applies a fitted pipeline to rows of its input schema.
pub fn preprocess(pipeline: &Pipeline, raw: &Matrix) -> Result<Preprocessed, DetectError> {
    let (x, report) = pipeline.transform_with_report(raw)?;
    let cols = x.cols.max(1);
    let mut unscorable: Vec<usize> = x
        .data
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .map(|(i, _)| i / cols)
        .collect();
    unscorable.dedup();
    Ok(Preprocessed {
        x,
        imputed_cells: report.imputed_cells,
        unscorable,
    })
}

/// A bundle ready to score: the rebuilt model, the threshold in force and the benign class.
pub struct Detector {
    bundle: Bundle,
    model: Trained,
    threshold: AppliedThreshold,
}

impl Detector {
    /// Rebuilds the model and resolves the threshold (a number or a name the bundle stores).
    pub fn new(bundle: Bundle, choice: &ThresholdChoice) -> Result<Detector, DetectError> {
        let threshold = bundle.manifest.thresholds.resolve(choice)?;
        let model = bundle.model()?;
        Ok(Detector {
            bundle,
            model,
            threshold,
        })
    }

    /// The detector with its model moved to `device` (`--device`); the bundle stays as read.
    pub fn on_device(self, device: ComputeDevice) -> Result<Detector, DetectError> {
        Ok(Detector {
            model: self.model.on_device(device)?,
            ..self
        })
    }

    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    pub fn model(&self) -> &Trained {
        &self.model
    }

    pub fn threshold(&self) -> &AppliedThreshold {
        &self.threshold
    }

    /// The raw columns the bundle reads, in order.
    pub fn schema(&self) -> &FeatureSchema {
        &self.bundle.manifest.schema
    }

    pub fn benign_class(&self) -> u32 {
        self.bundle.manifest.labels.benign_class
    }

    /// Class names of a softmax head, by class index.
    pub fn class_name(&self, class: usize) -> Option<&str> {
        self.bundle.manifest.labels.class_name(class as u32)
    }

    /// The bundle's preprocessing applied to `raw` (rows of [`Detector::schema`]).
    pub fn preprocess(&self, raw: &Matrix) -> Result<Preprocessed, DetectError> {
        preprocess(&self.bundle.manifest.pipeline, raw)
    }

    /// Scores preprocessed rows.
    pub fn score(&self, x: &Matrix) -> Result<Scored, DetectError> {
        score(&self.model, x, self.benign_class())
    }

    /// Whether `score` is an anomaly under the threshold in force.
    pub fn is_anomaly(&self, score: f32) -> bool {
        f64::from(score) >= self.threshold.value
    }
}
