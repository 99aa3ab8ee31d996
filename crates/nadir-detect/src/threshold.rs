//! Decision thresholds chosen on a validation split (never on the test data).
//!
//! A row is flagged when `score >= threshold`, in the score's own units: the log-odds of attack
//! for classifier heads (0 = even odds), the reconstruction error or distance otherwise. Rules:
//!
//! | rule | text form | meaning |
//! |---|---|---|
//! | [`ThresholdRule::Fixed`] | `fixed:0` | this value |
//! | [`ThresholdRule::TargetFpr`] | `fpr:0.01` | lowest threshold whose benign false-positive rate is at most the target |
//! | [`ThresholdRule::BenignPercentile`] | `benign-pct:99` | that percentile of benign scores, nudged up to the next float (LDPI's P99 / P99.99) |
//! | [`ThresholdRule::BenignMax`] | `benign-max`, `benign-max:1.01` | highest benign score (nudged up), optionally moved by a factor of its magnitude (LDPI's max / 1.01 x max; above the max for negative scores too) |
//! | [`ThresholdRule::BestAccuracy`] | `best-accuracy` | the threshold with the highest accuracy on the validation rows (needs both classes there) |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use nadir_eval::bootstrap::quantile_sorted;
use nadir_eval::report::ratio;

/// A threshold rule that cannot be read, calibrated or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// A threshold rule or option with an impossible value.
    #[error("threshold rule {rule}: {reason}")]
    InvalidRule { rule: String, reason: String },
    /// A threshold rule string that does not parse.
    #[error("cannot read threshold rule {input:?}: {reason} (expected fixed:0, fpr:0.01, benign-pct:99, benign-max, benign-max:1.01 or best-accuracy)")]
    ParseRule { input: String, reason: String },
    /// A score that is NaN or infinite.
    #[error("score at row {row} is {value}, not a finite number")]
    NonFiniteScore { row: usize, value: f32 },
    /// Scores and flags of different lengths.
    #[error("threshold calibration: {flags} flags but {scores} scores")]
    LengthMismatch { flags: usize, scores: usize },
}

/// How to choose the decision threshold.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", content = "value", rename_all = "kebab-case")]
pub enum ThresholdRule {
    Fixed(f64),
    TargetFpr(f64),
    BenignPercentile(f64),
    /// Highest benign score moved by this factor of its magnitude: `max + (f - 1) |max|`, which
    /// is `f x max` for the positive distances LDPI scales (1.0 = the max itself, nudged up).
    BenignMax(f64),
    /// Highest accuracy on the calibration split (lowest such threshold on ties).
    BestAccuracy,
}

/// Even odds for a classifier head (P(attack) = 0.5).
impl Default for ThresholdRule {
    fn default() -> Self {
        Self::Fixed(0.0)
    }
}

impl fmt::Display for ThresholdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(v) => write!(f, "fixed:{v}"),
            Self::TargetFpr(v) => write!(f, "fpr:{v}"),
            Self::BenignPercentile(v) => write!(f, "benign-pct:{v}"),
            Self::BenignMax(v) if *v == 1.0 => write!(f, "benign-max"),
            Self::BenignMax(v) => write!(f, "benign-max:{v}"),
            Self::BestAccuracy => write!(f, "best-accuracy"),
        }
    }
}

impl FromStr for ThresholdRule {
    type Err = ThresholdError;

    fn from_str(input: &str) -> Result<Self, ThresholdError> {
        let bad = |reason: &str| ThresholdError::ParseRule {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (kind, value) = match input.split_once(':') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (input.trim(), None),
        };
        let number = |v: Option<&str>| -> Result<f64, ThresholdError> {
            let v = v.ok_or_else(|| bad("this rule needs a number after ':'"))?;
            v.parse::<f64>()
                .map_err(|_| bad(&format!("{v:?} is not a number")))
        };
        let rule = match kind {
            "fixed" => Self::Fixed(number(value)?),
            "fpr" => Self::TargetFpr(number(value)?),
            "benign-pct" | "pct" | "percentile" => Self::BenignPercentile(number(value)?),
            "benign-max" | "max" => match value {
                None => Self::BenignMax(1.0),
                v => Self::BenignMax(number(v)?),
            },
            "best-accuracy" if value.is_none() => Self::BestAccuracy,
            other => return Err(bad(&format!("unknown rule {other:?}"))),
        };
        rule.validate()?;
        Ok(rule)
    }
}

impl ThresholdRule {
    /// Checks the rule's number is in range.
    pub fn validate(&self) -> Result<(), ThresholdError> {
        let invalid = |reason: &str| ThresholdError::InvalidRule {
            rule: self.to_string(),
            reason: reason.to_string(),
        };
        match *self {
            Self::Fixed(v) if !v.is_finite() => Err(invalid("the value must be finite")),
            Self::TargetFpr(v) if !(0.0..=1.0).contains(&v) => {
                Err(invalid("a false-positive rate lies in [0, 1]"))
            }
            Self::BenignPercentile(v) if !(0.0..=100.0).contains(&v) => {
                Err(invalid("a percentile lies in [0, 100]"))
            }
            Self::BenignMax(v) if !(v.is_finite() && v > 0.0) => {
                Err(invalid("the factor must be a positive number"))
            }
            _ => Ok(()),
        }
    }

    /// Whether the rule needs scores to calibrate on.
    pub fn needs_scores(&self) -> bool {
        !matches!(self, Self::Fixed(_))
    }

    /// Chooses the threshold from validation scores (higher = more anomalous).
    pub fn calibrate(
        &self,
        scores: &[f32],
        is_anomaly: &[bool],
    ) -> Result<CalibratedThreshold, ThresholdError> {
        self.validate()?;
        if is_anomaly.len() != scores.len() {
            return Err(ThresholdError::LengthMismatch {
                flags: is_anomaly.len(),
                scores: scores.len(),
            });
        }
        if let Some(row) = scores.iter().position(|s| !s.is_finite()) {
            return Err(ThresholdError::NonFiniteScore {
                row,
                value: scores[row],
            });
        }
        let mut benign: Vec<f64> = scores
            .iter()
            .zip(is_anomaly)
            .filter(|(_, &a)| !a)
            .map(|(&s, _)| f64::from(s))
            .collect();
        if self.needs_scores() && benign.is_empty() {
            return Err(ThresholdError::InvalidRule {
                rule: self.to_string(),
                reason: "the validation split holds no benign rows to calibrate on".into(),
            });
        }
        benign.sort_by(f64::total_cmp);
        let value = match *self {
            Self::Fixed(v) => v,
            Self::TargetFpr(target) => {
                // At most `allowed` benign rows may be >= threshold: put the
                // threshold just above the (allowed+1)-th highest benign score.
                let allowed = (target * benign.len() as f64 + 1e-9).floor() as usize;
                if allowed >= benign.len() {
                    benign[0]
                } else {
                    next_up(benign[benign.len() - 1 - allowed])
                }
            }
            Self::BenignPercentile(p) => next_up(quantile_sorted(&benign, p / 100.0)),
            Self::BenignMax(factor) => {
                let max = benign[benign.len() - 1];
                // LDPI's factor scales a distance (max x 1.01); scores can be negative (log-odds),
                // so the max moves by that share of its magnitude: above the max either way.
                let scaled = max + (factor - 1.0) * max.abs();
                if factor >= 1.0 {
                    scaled.max(next_up(max))
                } else {
                    scaled
                }
            }
            Self::BestAccuracy => best_accuracy_threshold(scores, is_anomaly, benign.len())
                .ok_or_else(|| ThresholdError::InvalidRule {
                    rule: self.to_string(),
                    reason: "the validation split holds no anomalous rows to calibrate on".into(),
                })?,
        };
        Ok(CalibratedThreshold::measure(
            *self, value, scores, is_anomaly,
        ))
    }
}

/// Sweeps thresholds from the highest score down: flagging every row with score >= t gives
/// tp + (benign - fp) correct rows. Returns the score with the most correct rows.
fn best_accuracy_threshold(scores: &[f32], is_anomaly: &[bool], benign: usize) -> Option<f64> {
    if benign == scores.len() {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Flagging nothing: every benign row is right.
    let (mut best, mut best_correct) = (f64::INFINITY, benign);
    let mut correct = benign;
    for (k, &i) in order.iter().enumerate() {
        if is_anomaly[i] {
            correct += 1;
        } else {
            correct -= 1;
        }
        // Only between distinct scores: ties are flagged together.
        let last_of_tie = order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie && correct >= best_correct {
            (best, best_correct) = (f64::from(scores[i]), correct);
        }
    }
    Some(best)
}

/// The smallest f64 above `x`, and above `x` as an f32 score too: a score equal
/// to the benign maximum must not be flagged (LDPI "nudges up to the next float").
fn next_up(x: f64) -> f64 {
    let as_f32 = x as f32;
    let up32 = if f64::from(as_f32) > x {
        as_f32
    } else {
        f32_next_up(as_f32)
    };
    f64::from(up32)
}

/// `f32::next_up` (stable only since Rust 1.86; the workspace supports 1.85).
fn f32_next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

/// A chosen threshold with what it does on the split it was chosen on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibratedThreshold {
    pub rule: ThresholdRule,
    pub value: f64,
    /// False-positive rate on the calibration split.
    pub calibration_fpr: f64,
    /// Recall on the calibration split (NaN-free: 0 without anomalies).
    pub calibration_recall: f64,
    pub calibration_rows: usize,
}

impl CalibratedThreshold {
    fn measure(rule: ThresholdRule, value: f64, scores: &[f32], is_anomaly: &[bool]) -> Self {
        let (mut fp, mut neg, mut tp, mut pos) = (0usize, 0usize, 0usize, 0usize);
        for (&s, &a) in scores.iter().zip(is_anomaly) {
            let flagged = f64::from(s) >= value;
            if a {
                pos += 1;
                tp += usize::from(flagged);
            } else {
                neg += 1;
                fp += usize::from(flagged);
            }
        }
        Self {
            rule,
            value,
            calibration_fpr: ratio(fp as f64, neg as f64),
            calibration_recall: ratio(tp as f64, pos as f64),
            calibration_rows: scores.len(),
        }
    }
}

/// Thresholds from the scores of held-out benign rows only (LDPI, seeds-spec §4.6), stored in
/// the bundle so that any of them can be chosen at detection time by name.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenignThresholds {
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
    pub max_1_01: f64,
}

impl BenignThresholds {
    /// The names `--threshold` accepts, in increasing order of strictness.
    pub const NAMES: [&'static str; 5] = ["p99", "p99.9", "p99.99", "max", "1.01max"];

    /// All of them from scores of benign rows only.
    pub fn from_benign(benign_scores: &[f32]) -> Result<Self, ThresholdError> {
        let all_benign = vec![false; benign_scores.len()];
        let at = |rule: ThresholdRule| rule.calibrate(benign_scores, &all_benign).map(|t| t.value);
        Ok(Self {
            p99: at(ThresholdRule::BenignPercentile(99.0))?,
            p99_9: at(ThresholdRule::BenignPercentile(99.9))?,
            p99_99: at(ThresholdRule::BenignPercentile(99.99))?,
            max: at(ThresholdRule::BenignMax(1.0))?,
            max_1_01: at(ThresholdRule::BenignMax(1.01))?,
        })
    }

    /// The threshold called `name` (one of [`Self::NAMES`]).
    pub fn named(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p99" => self.p99,
            "p99.9" => self.p99_9,
            "p99.99" => self.p99_99,
            "max" => self.max,
            "1.01max" | "max*1.01" => self.max_1_01,
            _ => return None,
        })
    }
}

/// Thresholds stored with the model: the one detection applies by default, and the
/// benign-score thresholds when the validation split held benign rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Flag a sample when its anomaly score is `>= decision.value`.
    pub decision: CalibratedThreshold,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benign: Option<BenignThresholds>,
}

/// What `--threshold` asks for: a number, or a threshold stored in the bundle by name.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdChoice {
    /// The bundle's decision threshold.
    Default,
    Value(f64),
    Named(String),
}

impl FromStr for ThresholdChoice {
    type Err = ThresholdError;

    fn from_str(input: &str) -> Result<Self, ThresholdError> {
        let text = input.trim();
        if text == "default" || text == "decision" {
            return Ok(Self::Default);
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Self::Value(v)),
            Ok(_) => Err(ThresholdError::ParseRule {
                input: input.to_string(),
                reason: "a threshold must be a finite number".into(),
            }),
            Err(_) => Ok(Self::Named(text.to_string())),
        }
    }
}

/// A threshold resolved against a bundle: the value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedThreshold {
    pub value: f64,
    /// `default (fpr:0.01)`, `p99`, `given`.
    pub source: String,
}

impl Thresholds {
    /// Resolves a choice; an unknown name is refused with the names this bundle holds.
    pub fn resolve(&self, choice: &ThresholdChoice) -> Result<AppliedThreshold, ThresholdError> {
        match choice {
            ThresholdChoice::Default => Ok(AppliedThreshold {
                value: self.decision.value,
                source: format!("default ({})", self.decision.rule),
            }),
            ThresholdChoice::Value(v) => Ok(AppliedThreshold {
                value: *v,
                source: "given".into(),
            }),
            ThresholdChoice::Named(name) => match self.benign.as_ref().and_then(|b| b.named(name)) {
                Some(value) => Ok(AppliedThreshold {
                    value,
                    source: name.clone(),
                }),
                None => Err(ThresholdError::InvalidRule {
                    rule: name.clone(),
                    reason: match self.benign {
                        Some(_) => format!(
                            "not a number and not a stored threshold; this bundle holds default, {}",
                            BenignThresholds::NAMES.join(", ")
                        ),
                        None => "not a number, and this bundle stores only its default threshold (its validation split held no benign rows)".into(),
                    },
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_round_trips() {
        for (text, rule) in [
            ("fixed:0.5", ThresholdRule::Fixed(0.5)),
            ("fpr:0.01", ThresholdRule::TargetFpr(0.01)),
            ("benign-pct:99", ThresholdRule::BenignPercentile(99.0)),
            ("benign-max", ThresholdRule::BenignMax(1.0)),
            ("benign-max:1.01", ThresholdRule::BenignMax(1.01)),
            ("best-accuracy", ThresholdRule::BestAccuracy),
        ] {
            assert_eq!(text.parse::<ThresholdRule>().unwrap(), rule);
            assert_eq!(rule.to_string(), text);
        }
        for bad in [
            "fpr:2",
            "benign-pct:101",
            "fixed",
            "fixed:x",
            "magic:1",
            "fixed:NaN",
        ] {
            assert!(
                bad.parse::<ThresholdRule>().is_err(),
                "{bad} should not parse"
            );
        }
    }

    #[test]
    fn target_fpr_flags_at_most_that_share_of_benign_rows() {
        // 100 benign scores 0.00..0.99 plus anomalies.
        let mut scores: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let mut y = vec![false; 100];
        scores.extend([0.95, 0.5, 2.0]);
        y.extend([true, true, true]);
        let t = ThresholdRule::TargetFpr(0.05)
            .calibrate(&scores, &y)
            .unwrap();
        assert!((t.calibration_fpr - 0.05).abs() < 1e-12, "{t:?}");
        // Lowest such threshold: just above benign 0.94, so 0.95 is flagged.
        assert!(
            t.value > f64::from(0.94f32) && t.value <= f64::from(0.95f32),
            "{t:?}"
        );
        assert!((t.calibration_recall - 2.0 / 3.0).abs() < 1e-12);
        let zero = ThresholdRule::TargetFpr(0.0)
            .calibrate(&scores, &y)
            .unwrap();
        assert_eq!(zero.calibration_fpr, 0.0);
        assert!(zero.value > f64::from(0.99f32));
    }

    #[test]
    fn best_accuracy_picks_the_separating_score() {
        // Benign 0.1..0.4 and one benign outlier at 0.9; anomalies 0.6, 0.7, 0.8.
        let scores = [0.1f32, 0.2, 0.3, 0.4, 0.9, 0.6, 0.7, 0.8];
        let y = [false, false, false, false, false, true, true, true];
        let t = ThresholdRule::BestAccuracy.calibrate(&scores, &y).unwrap();
        // Flagging >= 0.6 gets 7 of 8 right; no threshold gets all 8.
        assert_eq!(t.value, f64::from(0.6f32));
        assert!((t.calibration_recall - 1.0).abs() < 1e-12);
        assert!((t.calibration_fpr - 0.2).abs() < 1e-12);
        let no_anomalies = ThresholdRule::BestAccuracy.calibrate(&scores[..4], &y[..4]);
        assert!(no_anomalies.is_err());
    }

    #[test]
    fn ties_never_push_fpr_over_target() {
        let scores = [0.5f32; 10];
        let y = [false; 10];
        let t = ThresholdRule::TargetFpr(0.3)
            .calibrate(&scores, &y)
            .unwrap();
        assert_eq!(t.calibration_fpr, 0.0);
    }

    #[test]
    fn benign_max_excludes_every_benign_row() {
        let scores = [0.1f32, 0.7, 0.3, 0.9];
        let y = [false, false, false, true];
        let t = ThresholdRule::BenignMax(1.0)
            .calibrate(&scores, &y)
            .unwrap();
        assert!(t.value > f64::from(0.7f32) && t.value < 0.7001);
        assert_eq!(t.calibration_fpr, 0.0);
        assert_eq!(t.calibration_recall, 1.0);
    }

    #[test]
    fn benign_thresholds_are_ordered_and_named() {
        let benign: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        let t = BenignThresholds::from_benign(&benign).unwrap();
        assert!((t.p99 - 0.98990).abs() < 1e-4, "{t:?}");
        assert!(t.p99 < t.p99_9 && t.p99_9 < t.p99_99 && t.p99_99 < t.max && t.max < t.max_1_01);
        let values: Vec<f64> = BenignThresholds::NAMES
            .iter()
            .map(|n| t.named(n).unwrap())
            .collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        let stored = Thresholds {
            decision: ThresholdRule::Fixed(0.5)
                .calibrate(&[0.1], &[false])
                .unwrap(),
            benign: Some(t),
        };
        let pick = |text: &str| stored.resolve(&text.parse().unwrap());
        assert_eq!(pick("p99.9").unwrap().value, t.p99_9);
        assert_eq!(pick("0.25").unwrap().value, 0.25);
        assert_eq!(pick("default").unwrap().value, 0.5);
        let err = pick("p42").unwrap_err().to_string();
        assert!(err.contains("p99.99") && err.contains("p42"), "{err}");
        assert!("inf".parse::<ThresholdChoice>().is_err());
        assert!((t.max_1_01 - 0.9999 * 1.01).abs() < 1e-6);
        // Log-odds can all be negative: 1.01max must still lie above the max.
        let negative: Vec<f32> = benign.iter().map(|s| s - 5.0).collect();
        let t = BenignThresholds::from_benign(&negative).unwrap();
        assert!(t.max < t.max_1_01, "{t:?}");
        assert!(
            (t.max_1_01 - (t.max + 0.01 * t.max.abs())).abs() < 1e-3,
            "{t:?}"
        );
    }

    #[test]
    fn calibration_without_benign_rows_is_refused() {
        let err = ThresholdRule::TargetFpr(0.1)
            .calibrate(&[0.3, 0.4], &[true, true])
            .unwrap_err();
        assert!(err.to_string().contains("no benign rows"), "{err}");
        // A fixed threshold needs no data.
        assert!(ThresholdRule::Fixed(0.5).calibrate(&[0.3], &[true]).is_ok());
    }

    #[test]
    fn serde_round_trip() {
        let rule = ThresholdRule::BenignPercentile(99.99);
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(json, r#"{"rule":"benign-percentile","value":99.99}"#);
        assert_eq!(serde_json::from_str::<ThresholdRule>(&json).unwrap(), rule);
    }
}
