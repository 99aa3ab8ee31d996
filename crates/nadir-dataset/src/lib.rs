//! Datasets and fitted preprocessing: the data path in front of every model.
//!
//! Every statistic that shapes the data (medians, scales, correlations, PCA axes, SMOTE
//! neighbours) is fitted on the training split only and saved in [`Pipeline`], so detection
//! applies exactly what training fitted (seeds-spec §7 lists the leaks this prevents).
//!
//! ```text
//! load(path) -> Dataset { schema, x, y, labels, groups, report }
//!   split(&dataset, &SplitSpec) -> Splits { train, val, test }
//!   Pipeline::fit(&spec, &train_x, &schema) -> Pipeline      (train rows only)
//!   pipeline.transform(&x) -> Matrix                         (any rows, same schema)
//!   smote(&train_x, &train_y, k, seed) / class_weights(&train_y, n)
//!   windows(&x, &y, len, stride) -> Tensor3 (N, C, L)
//! ```

pub mod aliases;
pub mod error;
pub mod labels;
pub mod load;
pub mod matrix;
pub mod pipeline;
pub mod schema;
pub mod smote;
pub mod split;
pub mod windows;

pub use error::DatasetError;
pub use labels::{LabelMap, LabelMode};
pub use load::{
    load, load_many, ColumnReport, Dataset, FeaturePolicy, FileFormat, GroupBy, LoadOptions,
    LoadReport, RowErrorPolicy,
};
pub use matrix::Matrix;
pub use pipeline::{
    DenseLayer, FittedStep, PcaSpec, Pipeline, PipelineSpec, Reduction, SampleLayout, ScalerKind,
    TransformReport,
};
pub use schema::{
    byte_grid, parse_byte_column_name, ColumnRole, FeatureSchema, KnownSchema, SchemaMismatch,
};
pub use smote::{class_weights, smote};
pub use split::{
    cross_validation_folds, split, split_normal_only, Fold, SplitSpec, Splits, UNGROUPED,
};
pub use windows::{windows, Tensor3};
