//! Feature values as CICFlowMeter prints them: integers (Java `long`/`int`) or
//! reals (Java `double`, printed by `Double.toString`).

use super::columns::CIC_COLUMNS;

/// Number of flow features (the columns between `Timestamp` and `Label`).
pub const CIC_FEATURE_COUNT: usize = 79;
/// Index of the first feature column (`Flow Duration`) in [`CIC_COLUMNS`].
pub const FIRST_FEATURE_COLUMN: usize = 7;

/// One feature value, keeping the type the reference tool prints it with
/// (`5` vs `5.0` in its CSVs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CicValue {
    Int(i64),
    Real(f64),
}

/// Receives a flow's 79 feature values in column order, each typed as the reference
/// tool prints it. [`super::CicFlow`] computes its features into a visitor, so a
/// CSV row is written value by value, with no array of values in between.
pub trait FeatureVisitor {
    fn int(&mut self, x: i64);
    fn real(&mut self, x: f64);
}

impl CicValue {
    pub fn as_f64(self) -> f64 {
        match self {
            CicValue::Int(x) => x as f64,
            CicValue::Real(x) => x,
        }
    }
}

/// The 79 features of one flow, in dataset column order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CicFeatures {
    values: [CicValue; CIC_FEATURE_COUNT],
}

impl CicFeatures {
    pub(crate) fn new(values: [CicValue; CIC_FEATURE_COUNT]) -> Self {
        CicFeatures { values }
    }
    pub fn values(&self) -> &[CicValue; CIC_FEATURE_COUNT] {
        &self.values
    }
    /// Hands the values to `visitor` in column order.
    pub fn visit(&self, visitor: &mut impl FeatureVisitor) {
        for &value in &self.values {
            match value {
                CicValue::Int(x) => visitor.int(x),
                CicValue::Real(x) => visitor.real(x),
            }
        }
    }
    /// All values as `f64` (NaN/Infinity pass through in compat mode).
    pub fn to_f64_array(&self) -> [f64; CIC_FEATURE_COUNT] {
        self.values.map(CicValue::as_f64)
    }
    /// The value of a feature by its dataset column name (or any alias
    /// [`super::canonical_column`] knows).
    pub fn get(&self, column: &str) -> Option<CicValue> {
        let index = super::columns::canonical_column(column)?;
        index
            .checked_sub(FIRST_FEATURE_COLUMN)
            .and_then(|i| self.values.get(i).copied())
    }
    /// Feature names in order (the dataset columns `Flow Duration` … `Total TCP Flow Time`).
    pub fn names() -> &'static [&'static str] {
        &CIC_COLUMNS[FIRST_FEATURE_COLUMN..FIRST_FEATURE_COLUMN + CIC_FEATURE_COUNT]
    }
}

/// Collects visited values into [`CicFeatures`].
pub(crate) struct CollectFeatures {
    values: [CicValue; CIC_FEATURE_COUNT],
    len: usize,
}

impl CollectFeatures {
    pub(crate) fn new() -> Self {
        CollectFeatures {
            values: [CicValue::Int(0); CIC_FEATURE_COUNT],
            len: 0,
        }
    }
    pub(crate) fn finish(self) -> CicFeatures {
        debug_assert_eq!(self.len, CIC_FEATURE_COUNT);
        CicFeatures::new(self.values)
    }
    fn push(&mut self, value: CicValue) {
        if let Some(slot) = self.values.get_mut(self.len) {
            *slot = value;
            self.len += 1;
        }
    }
}

impl FeatureVisitor for CollectFeatures {
    fn int(&mut self, x: i64) {
        self.push(CicValue::Int(x));
    }
    fn real(&mut self, x: f64) {
        self.push(CicValue::Real(x));
    }
}
