//! Preprocessing fitted on the training split only, applied anywhere, saved in the bundle.
//!
//! Order of the steps: the sample's columns in model order ([`SampleLayout`]) -> median
//! imputation of NaN/±inf -> constant-column removal -> correlation filter -> scaling (affine,
//! quantile, or the piecewise-linear encoding) -> PCA. Each fitted step is a plain serialisable
//! value ([`FittedStep`]); [`Pipeline::transform`] replays them on any rows of the same schema.
//!
//! Learned reducers from outside (the autoencoder of `nadir-model`) come after this pipeline:
//! with `reduction = { kind = "autoencoder", dim = 10 }` the pipeline fits everything up to the
//! reduction and reports the wanted dimension in [`Pipeline::pending_reduction`]; the model crate
//! trains its encoder on `pipeline.transform(train)`, and [`Pipeline::push_encoder`] appends it
//! as the last step.

mod layout;
mod pca;
mod quantile;
pub(crate) mod stats;

use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::matrix::Matrix;
use crate::schema::FeatureSchema;

pub use layout::SampleLayout;
pub use pca::PcaFit;
pub use quantile::{PiecewiseLinearFit, QuantileFit};

/// Missing / infinite value handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Imputation {
    /// Replace NaN, +inf and -inf by the training median of the column.
    #[default]
    Median,
    /// Leave them (only for models that handle non-finite inputs; most do not).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalerKind {
    /// (x - mean) / std (population std; a zero std scales by 1).
    #[default]
    Standard,
    /// (x - min) / (max - min) (a zero range scales by 1).
    MinMax,
    /// x / 255: the first bytes of a flow, as LDPI scales them (fixed, nothing fitted).
    Bytes,
    /// Each column through its training CDF, to [-sqrt 3, sqrt 3] ([`QuantileFit`]): heavy
    /// tails and ties reach the model spread out, whatever the units.
    Quantile,
    /// Piecewise-linear encoding over training quantile bins ([`PiecewiseLinearFit`]): each
    /// column becomes up to 8 columns `NAME#1..`.
    #[serde(rename = "piecewise-linear")]
    PiecewiseLinear,
    None,
}

/// How many principal components to keep: exactly one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PcaSpec {
    /// Smallest number of components whose explained variance ratio sums to at least this (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance: Option<f64>,
    /// Exactly this many components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<usize>,
}

/// Dimensionality reduction at the end of the pipeline.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Reduction {
    #[default]
    None,
    Pca(PcaSpec),
    /// Fitted outside this crate (the model framework); see the module docs.
    Autoencoder {
        dim: usize,
    },
}

/// Class imbalance handling, applied by the trainer to the training split only.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Balance {
    #[default]
    None,
    /// [`crate::smote`] on the training split after the pipeline.
    Smote { k: usize, seed: u64 },
    /// [`crate::class_weights`] in the loss instead of resampling.
    ClassWeights,
}

/// What to fit. TOML-friendly:
/// ```toml
/// impute = "median"
/// drop_constant = true
/// corr_threshold = 0.9
/// scaler = "standard"
/// reduction = { kind = "pca", variance = 0.95 }
/// balance = { kind = "smote", k = 5, seed = 42 }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSpec {
    /// What one sample is; the trainer sets it from the table's columns
    /// ([`PipelineSpec::with_layout`]).
    #[serde(skip_serializing_if = "is_rows")]
    pub layout: SampleLayout,
    pub impute: Imputation,
    /// sign(x) * ln(1 + |x|) on every column before scaling: byte and packet counts and
    /// durations span many orders of magnitude, and a scaler alone squeezes all but the
    /// largest values together. Stateless, so it cannot leak.
    pub log: bool,
    pub drop_constant: bool,
    /// Drop one column of each pair with |Pearson r| above this (the later one); `None` keeps all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corr_threshold: Option<f64>,
    pub scaler: ScalerKind,
    pub reduction: Reduction,
    pub balance: Balance,
}

impl Default for PipelineSpec {
    fn default() -> PipelineSpec {
        PipelineSpec {
            layout: SampleLayout::Rows,
            impute: Imputation::Median,
            log: false,
            drop_constant: true,
            corr_threshold: None,
            scaler: ScalerKind::Standard,
            reduction: Reduction::None,
            balance: Balance::None,
        }
    }
}

fn is_rows(layout: &SampleLayout) -> bool {
    *layout == SampleLayout::Rows
}

impl PipelineSpec {
    /// This spec for samples of `layout`: windows and first bytes keep every value in its
    /// place (no column is dropped, nothing is reduced, or the sample would lose its shape),
    /// and first bytes are scaled by /255 as LDPI does.
    pub fn with_layout(mut self, layout: SampleLayout) -> Result<PipelineSpec, DatasetError> {
        self.layout = layout;
        if layout == SampleLayout::Rows {
            return Ok(self);
        }
        if self.reduction != Reduction::None {
            return Err(DatasetError::InvalidSpec(format!(
                "a reduction would flatten {layout}: leave [pipeline] reduction out for this table"
            )));
        }
        self.drop_constant = false;
        self.corr_threshold = None;
        if matches!(layout, SampleLayout::FirstBytes { .. }) {
            self.scaler = ScalerKind::Bytes;
            self.log = false;
        }
        Ok(self)
    }

    /// Checks every hyperparameter before anything is fitted.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let bad = |m: String| Err(DatasetError::InvalidSpec(m));
        if self.layout != SampleLayout::Rows
            && (self.drop_constant
                || self.corr_threshold.is_some()
                || self.reduction != Reduction::None)
        {
            return bad(format!(
                "{} keep every column in place: no drop_constant, corr_threshold or reduction",
                self.layout
            ));
        }
        if let Some(t) = self.corr_threshold {
            if !(t.is_finite() && t > 0.0 && t <= 1.0) {
                return bad(format!("corr_threshold must be in (0, 1], got {t}"));
            }
        }
        match self.reduction {
            Reduction::Pca(PcaSpec {
                variance: Some(_),
                components: Some(_),
            })
            | Reduction::Pca(PcaSpec {
                variance: None,
                components: None,
            }) => {
                return bad("pca needs exactly one of `variance` or `components`".into());
            }
            Reduction::Pca(PcaSpec {
                variance: Some(v), ..
            }) if !(v.is_finite() && v > 0.0 && v <= 1.0) => {
                return bad(format!("pca variance must be in (0, 1], got {v}"));
            }
            Reduction::Pca(PcaSpec {
                components: Some(0),
                ..
            })
            | Reduction::Autoencoder { dim: 0 } => {
                return bad("reduction to 0 dimensions".into());
            }
            _ => {}
        }
        if let Balance::Smote { k: 0, .. } = self.balance {
            return bad("smote k must be >= 1".into());
        }
        Ok(())
    }
}

/// One fitted step, as stored in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum FittedStep {
    /// Non-finite values of column `c` become `medians[c]`.
    ImputeMedian {
        medians: Vec<f32>,
    },
    /// sign(x) * ln(1 + |x|), every column.
    SignedLog,
    /// Keep the columns `keep` (indices into this step's input); `dropped` names the others.
    SelectColumns {
        reason: SelectReason,
        keep: Vec<usize>,
        dropped: Vec<String>,
    },
    /// (x - offset) * factor, per column (standard and min-max scaling).
    Affine {
        kind: ScalerKind,
        offset: Vec<f32>,
        factor: Vec<f32>,
    },
    Pca(PcaFit),
    /// Quantile scaling ([`ScalerKind::Quantile`]).
    Quantile(QuantileFit),
    /// Piecewise-linear encoding ([`ScalerKind::PiecewiseLinear`]; widens the rows).
    PiecewiseLinear(PiecewiseLinearFit),
    /// A learned encoder (the autoencoder reduction of seeds-spec §3.1), fitted outside this
    /// crate and appended with [`Pipeline::push_encoder`].
    Encoder {
        layers: Vec<DenseLayer>,
    },
}

/// One dense layer of a learned encoder: `y = relu(x · weight + bias)`, `weight` row-major
/// `[inputs, outputs]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl DenseLayer {
    fn check(&self, inputs: usize) -> Result<(), DatasetError> {
        if self.inputs != inputs
            || self.outputs == 0
            || self.inputs.checked_mul(self.outputs) != Some(self.weight.len())
            || self.bias.len() != self.outputs
        {
            return Err(DatasetError::Shape(format!(
                "encoder layer {}x{} ({} weights, {} biases) cannot take {inputs} inputs",
                self.inputs,
                self.outputs,
                self.weight.len(),
                self.bias.len()
            )));
        }
        Ok(())
    }

    /// `relu(row · weight + bias)` into `out` (`outputs` values).
    fn forward(&self, row: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        for (x, weights) in row.iter().zip(self.weight.chunks_exact(self.outputs)) {
            for (o, w) in out.iter_mut().zip(weights) {
                *o += x * w;
            }
        }
        for o in out {
            *o = o.max(0.0);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectReason {
    Constant,
    Correlated,
    /// The sample's columns in the order the model reads them ([`SampleLayout`]).
    Layout,
}

/// Counts from a transform: cells that were NaN/±inf and replaced by the training median.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TransformReport {
    pub imputed_cells: u64,
}

/// The fitted preprocessing. Serialize it into the bundle; deserialize and call
/// [`Pipeline::transform`] at detection time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    spec: PipelineSpec,
    input_schema: FeatureSchema,
    steps: Vec<FittedStep>,
    output_columns: Vec<String>,
    train_rows: usize,
}

impl Pipeline {
    /// Fits every step on `train` (the TRAINING rows only).
    pub fn fit(
        spec: &PipelineSpec,
        train: &Matrix,
        schema: &FeatureSchema,
    ) -> Result<Pipeline, DatasetError> {
        Pipeline::fit_transform(spec, train.clone(), schema).map(|(p, _)| p)
    }

    /// Fits on `train` and returns it transformed, reusing its memory (the training path: no
    /// second copy of a large training matrix).
    pub fn fit_transform(
        spec: &PipelineSpec,
        mut x: Matrix,
        schema: &FeatureSchema,
    ) -> Result<(Pipeline, Matrix), DatasetError> {
        spec.validate()?;
        if x.cols != schema.len() {
            return Err(DatasetError::Shape(format!(
                "training matrix has {} columns, schema has {}",
                x.cols,
                schema.len()
            )));
        }
        if x.rows < 2 {
            return Err(DatasetError::Fit {
                step: "pipeline",
                message: format!("{} training rows; need at least 2", x.rows),
            });
        }
        let train_rows = x.rows;
        let mut columns = schema.columns.clone();
        let mut steps = Vec::new();

        if spec.layout != SampleLayout::Rows {
            let order = spec.layout.column_order(&columns)?;
            let step = select(SelectReason::Layout, order, &mut columns);
            x = apply(&step, &x)?;
            steps.push(step);
        }
        if spec.impute == Imputation::Median {
            let medians = stats::column_medians(&x);
            let step = FittedStep::ImputeMedian { medians };
            apply_in_place(&step, &mut x);
            steps.push(step);
        }
        if spec.log {
            apply_in_place(&FittedStep::SignedLog, &mut x);
            steps.push(FittedStep::SignedLog);
        }
        let needs_moments =
            spec.drop_constant || matches!(spec.scaler, ScalerKind::Standard | ScalerKind::MinMax);
        let mut moments = needs_moments.then(|| stats::column_moments(&x));
        if let (true, Some(m)) = (spec.drop_constant, moments.as_ref()) {
            let keep: Vec<usize> = (0..x.cols)
                .filter(|&c| m.max[c] > m.min[c] || !m.max[c].is_finite())
                .collect();
            if keep.len() < x.cols {
                let step = select(SelectReason::Constant, keep, &mut columns);
                x = apply(&step, &x)?;
                moments = moments.map(|m| subset_moments(m, &step));
                steps.push(step);
            }
        }
        if let Some(threshold) = spec.corr_threshold {
            let mean = moments
                .as_ref()
                .map_or_else(|| stats::column_moments(&x).mean, |m| m.mean.clone());
            let cov = stats::covariance(&x, &mean);
            let mut keep: Vec<usize> = Vec::new();
            for c in 0..x.cols {
                let correlated_with_kept = keep.iter().any(|&k| {
                    let denom = (cov[(c, c)] * cov[(k, k)]).sqrt();
                    denom > 0.0 && (cov[(c, k)] / denom).abs() > threshold
                });
                if !correlated_with_kept {
                    keep.push(c);
                }
            }
            if keep.len() < x.cols {
                let step = select(SelectReason::Correlated, keep, &mut columns);
                x = apply(&step, &x)?;
                moments = moments.map(|m| subset_moments(m, &step));
                steps.push(step);
            }
        }
        if spec.scaler == ScalerKind::Quantile {
            let step = FittedStep::Quantile(QuantileFit::fit(&x));
            apply_in_place(&step, &mut x);
            steps.push(step);
        } else if spec.scaler == ScalerKind::PiecewiseLinear {
            let fit = PiecewiseLinearFit::fit(&x);
            columns = fit.names(&columns);
            let step = FittedStep::PiecewiseLinear(fit);
            x = apply(&step, &x)?;
            steps.push(step);
        } else if spec.scaler != ScalerKind::None {
            let m = moments.take().unwrap_or_else(|| stats::column_moments(&x));
            let (offset, factor): (Vec<f32>, Vec<f32>) = match spec.scaler {
                ScalerKind::Standard => m
                    .mean
                    .iter()
                    .zip(&m.var)
                    .map(|(&mu, &v)| {
                        (
                            mu as f32,
                            if v > 0.0 && v.is_finite() {
                                (1.0 / v.sqrt()) as f32
                            } else {
                                1.0
                            },
                        )
                    })
                    .unzip(),
                ScalerKind::Bytes => (vec![0.0; x.cols], vec![1.0 / 255.0; x.cols]),
                ScalerKind::MinMax
                | ScalerKind::None
                | ScalerKind::Quantile
                | ScalerKind::PiecewiseLinear => m
                    .min
                    .iter()
                    .zip(&m.max)
                    .map(|(&lo, &hi)| {
                        let range = hi - lo;
                        (
                            if lo.is_finite() { lo as f32 } else { 0.0 },
                            if range > 0.0 && range.is_finite() {
                                (1.0 / range) as f32
                            } else {
                                1.0
                            },
                        )
                    })
                    .unzip(),
            };
            let step = FittedStep::Affine {
                kind: spec.scaler,
                offset,
                factor,
            };
            apply_in_place(&step, &mut x);
            steps.push(step);
        }
        if let Reduction::Pca(pca_spec) = spec.reduction {
            let fit = PcaFit::fit(&x, &pca_spec)?;
            columns = (1..=fit.n_components()).map(|i| format!("pc{i}")).collect();
            let step = FittedStep::Pca(fit);
            x = apply(&step, &x)?;
            steps.push(step);
        }
        let pipeline = Pipeline {
            spec: spec.clone(),
            input_schema: schema.clone(),
            steps,
            output_columns: columns,
            train_rows,
        };
        Ok((pipeline, x))
    }

    /// Applies the fitted steps to `x` (rows of the input schema).
    pub fn transform(&self, x: &Matrix) -> Result<Matrix, DatasetError> {
        self.transform_owned(x.clone())
    }

    /// [`Pipeline::transform`] reusing `x`'s memory where the width does not change.
    pub fn transform_owned(&self, mut x: Matrix) -> Result<Matrix, DatasetError> {
        if x.cols != self.input_schema.len() {
            return Err(DatasetError::Shape(format!(
                "pipeline expects {} input columns ({}), got {}",
                self.input_schema.len(),
                self.input_schema.fingerprint().get(..12).unwrap_or(""),
                x.cols
            )));
        }
        for step in &self.steps {
            match step {
                FittedStep::Quantile(fit) if fit.cols() != x.cols => {
                    return Err(DatasetError::Shape(format!(
                        "quantile scaling fitted on {} columns, got {}",
                        fit.cols(),
                        x.cols
                    )))
                }
                FittedStep::ImputeMedian { .. }
                | FittedStep::SignedLog
                | FittedStep::Affine { .. }
                | FittedStep::Quantile(_) => apply_in_place(step, &mut x),
                _ => x = apply(step, &x)?,
            }
        }
        Ok(x)
    }

    /// Checks `schema` against the fitted input schema, then transforms.
    pub fn transform_checked(
        &self,
        x: &Matrix,
        schema: &FeatureSchema,
    ) -> Result<Matrix, DatasetError> {
        self.input_schema.check_compatible(schema)?;
        self.transform(x)
    }

    /// Transforms and counts the cells imputed.
    pub fn transform_with_report(
        &self,
        x: &Matrix,
    ) -> Result<(Matrix, TransformReport), DatasetError> {
        let imputed_cells = if self
            .steps
            .iter()
            .any(|s| matches!(s, FittedStep::ImputeMedian { .. }))
        {
            x.data.iter().filter(|v| !v.is_finite()).count() as u64
        } else {
            0
        };
        Ok((self.transform(x)?, TransformReport { imputed_cells }))
    }

    pub fn input_schema(&self) -> &FeatureSchema {
        &self.input_schema
    }

    /// Names of the output columns (input names after selection, or `pc1..pcK`).
    pub fn output_schema(&self) -> FeatureSchema {
        FeatureSchema {
            columns: self.output_columns.clone(),
        }
    }

    pub fn output_dim(&self) -> usize {
        self.output_columns.len()
    }

    pub fn steps(&self) -> &[FittedStep] {
        &self.steps
    }

    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// Rows the pipeline was fitted on.
    pub fn train_rows(&self) -> usize {
        self.train_rows
    }

    /// The dimension an outside learned reducer (autoencoder) must reduce the output to, if the
    /// spec asked for one and it is not in yet.
    pub fn pending_reduction(&self) -> Option<usize> {
        match self.spec.reduction {
            Reduction::Autoencoder { dim }
                if !self
                    .steps
                    .iter()
                    .any(|s| matches!(s, FittedStep::Encoder { .. })) =>
            {
                Some(dim)
            }
            _ => None,
        }
    }

    /// Appends the learned encoder the spec's autoencoder reduction asked for: it takes this
    /// pipeline's output and gives `dim` columns, `ae1..aeK`.
    pub fn push_encoder(&mut self, layers: Vec<DenseLayer>) -> Result<(), DatasetError> {
        let Some(dim) = self.pending_reduction() else {
            return Err(DatasetError::InvalidSpec(
                "no autoencoder reduction is pending in this pipeline".into(),
            ));
        };
        let mut width = self.output_dim();
        for layer in &layers {
            layer.check(width)?;
            width = layer.outputs;
        }
        if layers.is_empty() || width != dim {
            return Err(DatasetError::InvalidSpec(format!(
                "the encoder gives {width} columns; the reduction asked for {dim}"
            )));
        }
        self.steps.push(FittedStep::Encoder { layers });
        self.output_columns = (1..=dim).map(|i| format!("ae{i}")).collect();
        Ok(())
    }

    /// The fitted PCA, if any (explained variance for reports).
    pub fn pca(&self) -> Option<&PcaFit> {
        self.steps.iter().find_map(|s| match s {
            FittedStep::Pca(p) => Some(p),
            _ => None,
        })
    }
}

fn select(reason: SelectReason, keep: Vec<usize>, columns: &mut Vec<String>) -> FittedStep {
    let dropped = (0..columns.len())
        .filter(|c| !keep.contains(c))
        .map(|c| columns[c].clone())
        .collect();
    *columns = keep.iter().map(|&c| columns[c].clone()).collect();
    FittedStep::SelectColumns {
        reason,
        keep,
        dropped,
    }
}

fn subset_moments(m: stats::Moments, step: &FittedStep) -> stats::Moments {
    let FittedStep::SelectColumns { keep, .. } = step else {
        return m;
    };
    let pick = |v: &Vec<f64>| keep.iter().map(|&c| v[c]).collect();
    stats::Moments {
        min: pick(&m.min),
        max: pick(&m.max),
        mean: pick(&m.mean),
        var: pick(&m.var),
    }
}

/// Steps that keep the width, applied row by row in place (no allocation).
fn apply_in_place(step: &FittedStep, x: &mut Matrix) {
    match step {
        FittedStep::ImputeMedian { medians } => stats::par_rows_mut(x, |row| {
            for (v, &m) in row.iter_mut().zip(medians) {
                if !v.is_finite() {
                    *v = m;
                }
            }
        }),
        FittedStep::SignedLog => stats::par_rows_mut(x, |row| {
            for v in row {
                *v = v.signum() * v.abs().ln_1p();
            }
        }),
        FittedStep::Affine { offset, factor, .. } => stats::par_rows_mut(x, |row| {
            for ((v, &o), &f) in row.iter_mut().zip(offset).zip(factor) {
                *v = (*v - o) * f;
            }
        }),
        FittedStep::Quantile(fit) => stats::par_rows_mut(x, |row| fit.apply_row(row)),
        FittedStep::SelectColumns { .. }
        | FittedStep::Pca(_)
        | FittedStep::Encoder { .. }
        | FittedStep::PiecewiseLinear(_) => {}
    }
}

/// Steps that change the width.
fn apply(step: &FittedStep, x: &Matrix) -> Result<Matrix, DatasetError> {
    match step {
        FittedStep::SelectColumns { keep, .. } => {
            if let Some(&bad) = keep.iter().find(|&&c| c >= x.cols) {
                return Err(DatasetError::Shape(format!(
                    "column selection refers to column {bad} of {}",
                    x.cols
                )));
            }
            Ok(x.select_cols(keep))
        }
        FittedStep::Pca(fit) => fit.transform(x),
        FittedStep::Encoder { layers } => encode(layers, x),
        FittedStep::PiecewiseLinear(fit) => {
            if fit.cols() != x.cols {
                return Err(DatasetError::Shape(format!(
                    "piecewise-linear encoding fitted on {} columns, got {}",
                    fit.cols(),
                    x.cols
                )));
            }
            let mut out = Matrix::zeros(x.rows, fit.width());
            let rows = x.data.chunks_exact(x.cols.max(1));
            for (row, target) in rows.zip(out.data.chunks_exact_mut(fit.width().max(1))) {
                fit.encode_row(row, target);
            }
            Ok(out)
        }
        FittedStep::ImputeMedian { .. }
        | FittedStep::SignedLog
        | FittedStep::Affine { .. }
        | FittedStep::Quantile(_) => {
            let mut y = x.clone();
            apply_in_place(step, &mut y);
            Ok(y)
        }
    }
}

/// Every row through the encoder's layers (each layer checked against its input first: a
/// bundle's layers are data).
fn encode(layers: &[DenseLayer], x: &Matrix) -> Result<Matrix, DatasetError> {
    let mut width = x.cols;
    for layer in layers {
        layer.check(width)?;
        width = layer.outputs;
    }
    let Some((first, rest)) = layers.split_first() else {
        return Ok(x.clone());
    };
    let widest = layers.iter().map(|l| l.outputs).max().unwrap_or(0);
    let mut out = Matrix::zeros(x.rows, width);
    let (mut a, mut b) = (vec![0.0f32; widest], vec![0.0f32; widest]);
    let rows = x.data.chunks_exact(x.cols.max(1));
    for (row, target) in rows.zip(out.data.chunks_exact_mut(width.max(1))) {
        first.forward(row, &mut a[..first.outputs]);
        let mut current = first.outputs;
        for layer in rest {
            layer.forward(&a[..current], &mut b[..layer.outputs]);
            std::mem::swap(&mut a, &mut b);
            current = layer.outputs;
        }
        target.copy_from_slice(&a[..current]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline_wanting(dim: usize) -> (Pipeline, Matrix) {
        let spec = PipelineSpec {
            reduction: Reduction::Autoencoder { dim },
            ..PipelineSpec::default()
        };
        let x = Matrix::new(3, 2, vec![1.0, 2.0, 3.0, 5.0, 5.0, 1.0]).unwrap();
        let schema = FeatureSchema::new(["a", "b"]);
        (Pipeline::fit(&spec, &x, &schema).unwrap(), x)
    }

    /// The piecewise-linear encoding widens the rows, names its columns, and replays on new
    /// rows exactly as fitted.
    #[test]
    fn piecewise_linear_encoding_widens_names_and_replays() {
        let spec = PipelineSpec {
            scaler: ScalerKind::PiecewiseLinear,
            ..PipelineSpec::default()
        };
        let data: Vec<f32> = (0..200).flat_map(|i| [i as f32, (i % 2) as f32]).collect();
        let x = Matrix::new(200, 2, data).unwrap();
        let schema = FeatureSchema::new(["bytes", "syn"]);
        let (pipeline, fitted) = Pipeline::fit_transform(&spec, x.clone(), &schema).unwrap();
        assert_eq!(pipeline.output_dim(), 9, "8 bins of bytes, 1 of the flag");
        assert_eq!(pipeline.output_schema().columns[8], "syn#1");
        assert_eq!(pipeline.transform(&x).unwrap(), fitted);
        let wrong = Matrix::new(1, 3, vec![0.0; 3]).unwrap();
        assert!(pipeline.transform(&wrong).is_err());
    }

    #[test]
    fn an_encoder_step_codes_rows_and_a_wrong_one_is_refused() {
        let (mut pipeline, x) = pipeline_wanting(1);
        assert_eq!(pipeline.pending_reduction(), Some(1));
        let wrong = DenseLayer {
            inputs: 3,
            outputs: 1,
            weight: vec![1.0; 3],
            bias: vec![0.0],
        };
        assert!(pipeline.push_encoder(vec![wrong]).is_err());
        // relu(z_a - z_b + 0.5) on the standardised columns.
        let layer = DenseLayer {
            inputs: 2,
            outputs: 1,
            weight: vec![1.0, -1.0],
            bias: vec![0.5],
        };
        pipeline.push_encoder(vec![layer]).unwrap();
        assert_eq!(pipeline.pending_reduction(), None);
        assert_eq!(pipeline.output_schema().columns, vec!["ae1".to_string()]);
        let scaled = {
            let mut p = pipeline.clone();
            p.steps.pop();
            p.transform(&x).unwrap()
        };
        let coded = pipeline.transform(&x).unwrap();
        for (row, code) in scaled.data.chunks(2).zip(&coded.data) {
            assert!((code - (row[0] - row[1] + 0.5).max(0.0)).abs() < 1e-6);
        }
        // A doctored bundle whose layer does not fit is an error at transform, not a panic.
        if let Some(FittedStep::Encoder { layers }) = pipeline.steps.last_mut() {
            layers[0].weight.pop();
        }
        assert!(pipeline.transform(&x).is_err());
    }
}
