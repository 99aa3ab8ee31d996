//! Why a flow was flagged: the input features that moved its score.
//!
//! - Classifiers (every family but the autoencoder): integrated gradients (Sundararajan et
//!   al., 2017) from the bundle's baseline (the median preprocessed training row) to the flow,
//!   with burn's autodiff. The contributions add up to `score(x) - score(baseline)`; the
//!   record carries the relative gap (`completeness_error`) and the gradient evaluations
//!   (`steps`) that adaptive quadrature spent to get it under 1 % (at most [`MAX_EVALUATIONS`]).
//! - The autoencoder: each input's share of the reconstruction error, which adds up to the
//!   score exactly.
//! - Trees (`gbdt`): exact TreeSHAP values (Lundberg et al., 2020) in log-odds: they add up to
//!   the flow's log-odds minus the model's expected log-odds, which the record gives as its
//!   score and baseline score.
//! - The ensemble (trees + network, soft voting, scored by the log-odds of the members' mean
//!   probability): each member's attributions (in its own log-odds) scaled by its Shapley
//!   share of the ensemble's change. The sum is the ensemble's score minus its baseline
//!   score, up to the network's completeness gap.
//!
//! Contributions are per model input. Without PCA a model input is one raw column (scaled):
//! the record names that column and its raw value. Windowed inputs also get a contribution
//! per time step; a `bytes` input names the packet, offset and header field of each byte.

use std::collections::HashMap;

use nadir_model::{mean_probability_log_odds, Head, InputShape, ModelKind, Trained};
use serde::Serialize;

use crate::flows::parse_byte_column_name;
use crate::DetectError;

/// Most gradient evaluations (path points) spent on one explanation before a larger
/// completeness gap is accepted (34 Gauss-Kronrod intervals).
pub const MAX_EVALUATIONS: usize = 34 * KRONROD_POINTS;
/// Completeness wanted: |sum of contributions - (score - baseline score)| <= 1 % of the difference.
pub const COMPLETENESS_TOLERANCE: f32 = 0.01;
/// Score differences below this count as this for the completeness gap.
pub const SCORE_DIFFERENCE_FLOOR: f32 = 0.01;
/// Interpolated samples per gradient pass (bounds memory).
const ROWS_PER_PASS: usize = 8192;

/// How an explanation was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExplainMethod {
    IntegratedGradients,
    ReconstructionError,
    TreeShap,
    /// TreeSHAP of the trees and integrated gradients of the network, in the ensemble's
    /// log-odds.
    Ensemble,
}

impl ExplainMethod {
    /// The name in alert records (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            ExplainMethod::IntegratedGradients => "integrated-gradients",
            ExplainMethod::ReconstructionError => "reconstruction-error",
            ExplainMethod::TreeShap => "tree-shap",
            ExplainMethod::Ensemble => "tree-shap+integrated-gradients",
        }
    }
}

/// One model input's share of a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// The column (raw feature name, or `pcK` after PCA).
    pub feature: String,
    /// The flow's raw value of that column (the model input itself after PCA), as the model's
    /// preprocessing read it (`f32`).
    pub value: f32,
    pub contribution: f32,
    /// For a `bytes` input: which packet, offset and header field the byte is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why one flow got its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub method: ExplainMethod,
    /// Score of the baseline input (integrated gradients); 0 for reconstruction errors.
    pub baseline_score: f32,
    /// Sum of all contributions (= score - baseline score, up to the completeness error).
    pub total: f32,
    /// |total - (score - baseline score)| / max(|score - baseline score|, 0.01) (integrated
    /// gradients; see [`Attribution::completeness_error`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completeness_error: Option<f32>,
    /// Integration steps used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// The largest contributions by magnitude, largest first.
    pub top: Vec<Contribution>,
    /// Windowed inputs: the summed contribution of each time step (packet), in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_steps: Option<Vec<f32>>,
}

/// Raw contributions of one sample, per model input.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribution {
    pub contributions: Vec<f32>,
    pub score: f32,
    pub baseline_score: f32,
    pub steps: usize,
}

impl Attribution {
    pub fn total(&self) -> f32 {
        self.contributions.iter().sum()
    }

    /// Completeness gap: |sum of contributions - (score - baseline score)|, relative to the
    /// score difference, which is floored at [`SCORE_DIFFERENCE_FLOOR`]: a flow scored within
    /// 0.01 of the baseline has nothing to explain finer than 1e-4 (the kinks of ReLU networks
    /// leave such noise in any step count).
    pub fn completeness_error(&self) -> f32 {
        let expected = self.score - self.baseline_score;
        (self.total() - expected).abs() / expected.abs().max(SCORE_DIFFERENCE_FLOOR)
    }
}

/// Gauss-Kronrod 7-15 rule on [-1, 1] (QUADPACK's `qk15`): the Kronrod nodes from the largest
/// down to the centre, their weights, and the 7-point Gauss weights of nodes 1, 3, 5 and the
/// centre, which give each interval's error estimate from the same 15 evaluations.
const KRONROD_NODES: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
const KRONROD_WEIGHTS: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_18,
    0.140_653_259_715_525_92,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_83,
];
const GAUSS_WEIGHTS: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];
/// Path points of one Gauss-Kronrod interval.
pub const KRONROD_POINTS: usize = 15;
/// Bound on the per-interval integrals held at once (f64 values, 32 MiB).
const HELD_INTEGRALS: usize = 4 << 20;

/// The points of the 15-point rule on `[from, to]`: (path fraction, Kronrod weight, Gauss
/// weight), weights scaled to the interval.
fn kronrod_points(from: f64, to: f64) -> [(f64, f64, f64); KRONROD_POINTS] {
    let centre = 0.5 * (from + to);
    let half = 0.5 * (to - from);
    let gauss = |j: usize| {
        if j % 2 == 1 {
            GAUSS_WEIGHTS[j / 2]
        } else {
            0.0
        }
    };
    let mut points = [(centre, half * KRONROD_WEIGHTS[7], half * GAUSS_WEIGHTS[3]); KRONROD_POINTS];
    for j in 0..7 {
        let (wk, wg) = (half * KRONROD_WEIGHTS[j], half * gauss(j));
        points[2 * j] = (centre - half * KRONROD_NODES[j], wk, wg);
        points[2 * j + 1] = (centre + half * KRONROD_NODES[j], wk, wg);
    }
    points
}

/// One interval of the path from the baseline (0) to the sample (1).
struct Piece {
    from: f64,
    to: f64,
    /// Kronrod estimate of the integral of each input's gradient over the interval.
    integral: Vec<f64>,
    /// |Kronrod - Gauss| estimate of the interval's share of the total contribution.
    error: f64,
}

/// Integrated gradients of every sample of `x` (`shape` samples, preprocessed) against
/// `baseline` (one sample). The path integral is adaptive Gauss-Kronrod quadrature: the
/// intervals whose error estimate is largest are halved until the completeness gap is within
/// [`COMPLETENESS_TOLERANCE`] or [`MAX_EVALUATIONS`] are spent. A flow far outside the training
/// range (tens of standard deviations) has its whole score change in a sliver of the path
/// near the baseline: uniform steps need hundreds of points to see it, the bisection resolves
/// it with few (on the bench's hybrid: see bench/detect/run.sh).
pub fn integrated_gradients(
    model: &Trained,
    shape: InputShape,
    benign_class: u32,
    x: &[f32],
    baseline: &[f32],
) -> Result<Vec<Attribution>, DetectError> {
    let width = shape.sample_len();
    if baseline.len() != width || width == 0 || !x.len().is_multiple_of(width) {
        return Err(DetectError::Input(format!(
            "explanation: {} input values and a baseline of {} for samples of {width}",
            x.len(),
            baseline.len()
        )));
    }
    let n = x.len() / width;
    // Scores of the samples and the baseline, from the same differentiable function.
    let mut ends = x.to_vec();
    ends.extend_from_slice(baseline);
    let end_scores = model.score_gradients(&ends, shape, benign_class)?.scores;
    let baseline_score = end_scores[n];
    let mut attributions: Vec<Attribution> = (0..n)
        .map(|i| Attribution {
            contributions: vec![0.0; width],
            score: end_scores[i],
            baseline_score,
            steps: 0,
        })
        .collect();
    let most_pieces = MAX_EVALUATIONS / KRONROD_POINTS;
    let group = (HELD_INTEGRALS / (most_pieces * width)).clamp(1, ROWS_PER_PASS);
    for first in (0..n).step_by(group) {
        let samples = first..(first + group).min(n);
        let mut pieces: Vec<Vec<Piece>> = samples.clone().map(|_| Vec::new()).collect();
        let mut work: Vec<(usize, f64, f64)> = samples.clone().map(|i| (i, 0.0, 1.0)).collect();
        while !work.is_empty() {
            for chunk in work.chunks((ROWS_PER_PASS / KRONROD_POINTS).max(1)) {
                let mut path = Vec::with_capacity(chunk.len() * KRONROD_POINTS * width);
                for &(i, from, to) in chunk {
                    let sample = &x[i * width..(i + 1) * width];
                    for (alpha, _, _) in kronrod_points(from, to) {
                        let alpha = alpha as f32;
                        path.extend(
                            sample
                                .iter()
                                .zip(baseline)
                                .map(|(&v, &b)| b + alpha * (v - b)),
                        );
                    }
                }
                let gradients = model.score_gradients(&path, shape, benign_class)?.gradients;
                for (&(i, from, to), interval) in chunk
                    .iter()
                    .zip(gradients.chunks_exact(KRONROD_POINTS * width))
                {
                    let sample = &x[i * width..(i + 1) * width];
                    let mut integral = vec![0.0f64; width];
                    let (mut kronrod, mut gauss) = (0.0f64, 0.0f64);
                    for ((_, wk, wg), row) in kronrod_points(from, to)
                        .into_iter()
                        .zip(interval.chunks_exact(width))
                    {
                        let mut along = 0.0f64;
                        for ((m, &g), (&v, &b)) in integral
                            .iter_mut()
                            .zip(row)
                            .zip(sample.iter().zip(baseline))
                        {
                            *m += wk * f64::from(g);
                            along += f64::from(g) * f64::from(v - b);
                        }
                        kronrod += wk * along;
                        gauss += wg * along;
                    }
                    pieces[i - first].push(Piece {
                        from,
                        to,
                        integral,
                        error: (kronrod - gauss).abs(),
                    });
                    attributions[i].steps += KRONROD_POINTS;
                }
            }
            let mut touched: Vec<usize> = work.iter().map(|&(i, _, _)| i).collect();
            touched.dedup();
            work.clear();
            for i in touched {
                let sample = &x[i * width..(i + 1) * width];
                let attribution = &mut attributions[i];
                let held = &mut pieces[i - first];
                let mut sum = vec![0.0f64; width];
                for piece in held.iter() {
                    for (s, m) in sum.iter_mut().zip(&piece.integral) {
                        *s += m;
                    }
                }
                for ((c, s), (&v, &b)) in attribution
                    .contributions
                    .iter_mut()
                    .zip(&sum)
                    .zip(sample.iter().zip(baseline))
                {
                    *c = (s * f64::from(v - b)) as f32;
                }
                let affordable =
                    (MAX_EVALUATIONS.saturating_sub(attribution.steps)) / (2 * KRONROD_POINTS);
                if attribution.completeness_error() <= COMPLETENESS_TOLERANCE || affordable == 0 {
                    continue;
                }
                // Halve the intervals whose error is above their share of the tolerance (all of
                // them when none is: the estimates missed what the completeness gap shows),
                // largest errors first, as far as the budget goes.
                let expected = f64::from(
                    (attribution.score - baseline_score)
                        .abs()
                        .max(SCORE_DIFFERENCE_FLOOR),
                );
                let allowance = 0.5 * f64::from(COMPLETENESS_TOLERANCE) * expected;
                held.sort_by(|a, b| b.error.total_cmp(&a.error));
                let over = held
                    .iter()
                    .take_while(|p| p.error > allowance * (p.to - p.from))
                    .count();
                let split = if over == 0 { held.len() } else { over }.min(affordable);
                for piece in held.drain(..split) {
                    let middle = 0.5 * (piece.from + piece.to);
                    work.push((i, piece.from, middle));
                    work.push((i, middle, piece.to));
                }
            }
        }
    }
    Ok(attributions)
}

/// Each input's share of the autoencoder's score (the mean squared reconstruction error).
pub fn reconstruction_attributions(
    model: &Trained,
    shape: InputShape,
    x: &[f32],
) -> Result<Vec<Attribution>, DetectError> {
    let width = shape.sample_len().max(1);
    let reconstruction = model.raw_outputs(x, shape)?;
    Ok(x.chunks_exact(width)
        .zip(reconstruction.chunks_exact(width))
        .map(|(input, output)| {
            let contributions: Vec<f32> = input
                .iter()
                .zip(output)
                .map(|(v, r)| (v - r) * (v - r) / width as f32)
                .collect();
            Attribution {
                score: contributions.iter().sum(),
                contributions,
                baseline_score: 0.0,
                steps: 0,
            }
        })
        .collect())
}

/// Exact TreeSHAP values of a tree model, in log-odds (score = the flow's log-odds, baseline =
/// the expected log-odds; they add up exactly).
pub fn tree_shap_attributions(
    model: &Trained,
    shape: InputShape,
    x: &[f32],
) -> Result<Vec<Attribution>, DetectError> {
    let width = shape.sample_len().max(1);
    let shap = model.tree_shap(x, shape)?;
    Ok(shap
        .contributions
        .chunks_exact(width)
        .zip(&shap.expected)
        .map(|(contributions, &expected)| Attribution {
            score: expected + contributions.iter().sum::<f32>(),
            contributions: contributions.to_vec(),
            baseline_score: expected,
            steps: 0,
        })
        .collect())
}

/// Soft voting's attributions, in the ensemble's log-odds `L(a, b)` (a, b: the members'
/// log-odds; TreeSHAP values and integrated gradients are in those): each member's
/// contributions are scaled by its Shapley share of the change in `L` per unit of its own
/// change, so that both members' shares add up to `L(a, b) - L(a0, b0)` exactly.
fn ensemble_attributions(trees: Vec<Attribution>, network: Vec<Attribution>) -> Vec<Attribution> {
    let ensemble = |a: f64, b: f64| mean_probability_log_odds(a, b);
    trees
        .into_iter()
        .zip(network)
        .map(|(t, n)| {
            let (a0, a) = (f64::from(t.baseline_score), f64::from(t.score));
            let (b0, b) = (f64::from(n.baseline_score), f64::from(n.score));
            let tree_factor = shapley_slope(a0, a, |x| ensemble(x, b0), |x| ensemble(x, b));
            let network_factor = shapley_slope(b0, b, |x| ensemble(a0, x), |x| ensemble(a, x));
            Attribution {
                contributions: t
                    .contributions
                    .iter()
                    .zip(&n.contributions)
                    .map(|(&ct, &cn)| {
                        (f64::from(ct) * tree_factor + f64::from(cn) * network_factor) as f32
                    })
                    .collect(),
                score: ensemble(a, b) as f32,
                baseline_score: ensemble(a0, b0) as f32,
                steps: n.steps,
            }
        })
        .collect()
}

/// A member's Shapley share of a two-member function's change, per unit of the member's own
/// change from `x0` to `x`: the mean of its effect with the other member at its baseline
/// (`other_at_baseline`) and at its value (`other_at_value`). When the member barely moves
/// (its contributions then add up to ~0) the slope over a small step stands in.
fn shapley_slope(
    x0: f64,
    x: f64,
    other_at_baseline: impl Fn(f64) -> f64,
    other_at_value: impl Fn(f64) -> f64,
) -> f64 {
    const SMALLEST_STEP: f64 = 1e-3;
    let x1 = if (x - x0).abs() < SMALLEST_STEP {
        x0 + SMALLEST_STEP
    } else {
        x
    };
    let change = 0.5
        * ((other_at_baseline(x1) - other_at_baseline(x0))
            + (other_at_value(x1) - other_at_value(x0)));
    change / (x1 - x0)
}

/// Attributions of every sample of `x` by the method that fits the model.
pub fn attributions(
    model: &Trained,
    benign_class: u32,
    x: &[f32],
    baseline: &[f32],
) -> Result<(ExplainMethod, Vec<Attribution>), DetectError> {
    let shape = model.config().input;
    if let Some([trees, network]) = model.members() {
        let trees = tree_shap_attributions(trees, shape, x)?;
        let network = integrated_gradients(network, shape, benign_class, x, baseline)?;
        Ok((
            ExplainMethod::Ensemble,
            ensemble_attributions(trees, network),
        ))
    } else if model.kind() == ModelKind::Gbdt {
        Ok((
            ExplainMethod::TreeShap,
            tree_shap_attributions(model, shape, x)?,
        ))
    } else if model.config().head == Head::Reconstruction {
        Ok((
            ExplainMethod::ReconstructionError,
            reconstruction_attributions(model, shape, x)?,
        ))
    } else {
        Ok((
            ExplainMethod::IntegratedGradients,
            integrated_gradients(model, shape, benign_class, x, baseline)?,
        ))
    }
}

/// Names model inputs and finds their raw values, for turning attributions into
/// [`Explanation`]s.
#[derive(Debug, Clone)]
pub struct InputNames {
    /// Name of each model input (the pipeline's output columns).
    names: Vec<String>,
    /// For each model input, its column in the raw row, when it is one raw column.
    raw_index: Vec<Option<usize>>,
    /// `bytes` inputs: (packet, offset) of each model input named `b{p}_{o}`.
    byte_position: Vec<Option<(usize, usize)>>,
    /// Raw index of each `b{p}_{o}` column, to read a packet's header kind and lengths.
    raw_bytes: HashMap<(usize, usize), usize>,
    shape: InputShape,
}

impl InputNames {
    pub fn new(input_schema: &[String], output_schema: &[String], shape: InputShape) -> Self {
        let raw_index: Vec<Option<usize>> = output_schema
            .iter()
            .map(|name| input_schema.iter().position(|c| c == name))
            .collect();
        let byte_position: Vec<Option<(usize, usize)>> = output_schema
            .iter()
            .map(|n| parse_byte_column_name(n))
            .collect();
        let raw_bytes = input_schema
            .iter()
            .enumerate()
            .filter_map(|(index, name)| Some((parse_byte_column_name(name)?, index)))
            .collect();
        InputNames {
            names: output_schema.to_vec(),
            raw_index,
            byte_position,
            raw_bytes,
            shape,
        }
    }

    /// The explanation of one sample: its `top` largest contributions, named.
    pub fn explain(
        &self,
        method: ExplainMethod,
        attribution: &Attribution,
        raw_row: &[f32],
        model_row: &[f32],
        top: usize,
    ) -> Explanation {
        let mut order: Vec<usize> = (0..attribution.contributions.len()).collect();
        order.sort_by(|&a, &b| {
            attribution.contributions[b]
                .abs()
                .total_cmp(&attribution.contributions[a].abs())
        });
        let top = order
            .into_iter()
            .take(top)
            .map(|i| Contribution {
                feature: self
                    .names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("input {i}")),
                value: match self.raw_index.get(i).copied().flatten() {
                    Some(r) => raw_row[r],
                    None => model_row[i],
                },
                contribution: attribution.contributions[i],
                field: self
                    .byte_position
                    .get(i)
                    .copied()
                    .flatten()
                    .map(|(packet, offset)| self.byte_field(raw_row, packet, offset)),
            })
            .collect();
        let integrated = matches!(
            method,
            ExplainMethod::IntegratedGradients | ExplainMethod::Ensemble
        );
        Explanation {
            method,
            baseline_score: attribution.baseline_score,
            total: attribution.total(),
            completeness_error: integrated.then(|| attribution.completeness_error()),
            steps: integrated.then_some(attribution.steps),
            top,
            time_steps: time_step_contributions(self.shape, &attribution.contributions),
        }
    }

    fn byte_field(&self, raw_row: &[f32], packet: usize, offset: usize) -> String {
        let read = |at: usize| {
            self.raw_bytes
                .get(&(packet, at))
                .and_then(|&i| raw_row.get(i))
                .map(|&v| v as u8)
        };
        let version = read(0).map(|b| b >> 4);
        let (ip_header, protocol) = match version {
            Some(6) => (40, read(6)),
            Some(4) => (read(0).map_or(20, |b| usize::from(b & 0x0f) * 4), read(9)),
            _ => (20, None),
        };
        let transport_header = match protocol {
            Some(6) => read(ip_header + 12).map_or(20, |b| usize::from(b >> 4) * 4),
            _ => 8,
        };
        format!(
            "packet {packet}, byte {offset}: {}",
            header_field(version, ip_header, protocol, transport_header, offset)
        )
    }
}

/// Windowed inputs (several channels along time steps, stored channel-major): the summed
/// contribution of each step.
fn time_step_contributions(shape: InputShape, contributions: &[f32]) -> Option<Vec<f32>> {
    let InputShape::Windows { channels, length } = shape else {
        return None;
    };
    if channels < 2 || contributions.len() != channels * length {
        return None;
    }
    let mut steps = vec![0.0f32; length];
    for channel in contributions.chunks_exact(length) {
        for (s, &c) in steps.iter_mut().zip(channel) {
            *s += c;
        }
    }
    Some(steps)
}

/// The header field at byte `offset` of a packet that starts at its IP header (the `bytes`
/// family's layout): IPv4/IPv6 fields, then TCP/UDP/ICMP fields, then payload. `ip_header` and
/// `transport_header` are the header lengths read from the packet itself.
pub fn header_field(
    version: Option<u8>,
    ip_header: usize,
    protocol: Option<u8>,
    transport_header: usize,
    offset: usize,
) -> String {
    // (end offset, field) in order; the first entry whose end lies past the offset names it.
    const IPV4: &[(usize, &str)] = &[
        (1, "IPv4 version/IHL"),
        (2, "IPv4 DSCP/ECN"),
        (4, "IPv4 total length"),
        (6, "IPv4 identification"),
        (8, "IPv4 flags/fragment offset"),
        (9, "IPv4 TTL"),
        (10, "IPv4 protocol"),
        (12, "IPv4 header checksum (masked)"),
        (16, "IPv4 source address (masked)"),
        (20, "IPv4 destination address (masked)"),
        (usize::MAX, "IPv4 options"),
    ];
    const IPV6: &[(usize, &str)] = &[
        (4, "IPv6 version/traffic class/flow label"),
        (6, "IPv6 payload length"),
        (7, "IPv6 next header"),
        (8, "IPv6 hop limit"),
        (24, "IPv6 source address (masked)"),
        (40, "IPv6 destination address (masked)"),
    ];
    const TCP: &[(usize, &str)] = &[
        (2, "TCP source port (masked)"),
        (4, "TCP destination port (masked)"),
        (8, "TCP sequence number"),
        (12, "TCP acknowledgement number"),
        (13, "TCP data offset"),
        (14, "TCP flags"),
        (16, "TCP window"),
        (18, "TCP checksum (masked)"),
        (20, "TCP urgent pointer"),
        (usize::MAX, "TCP options"),
    ];
    const UDP: &[(usize, &str)] = &[
        (2, "UDP source port (masked)"),
        (4, "UDP destination port (masked)"),
        (6, "UDP length"),
        (8, "UDP checksum (masked)"),
    ];
    const ICMP: &[(usize, &str)] = &[
        (1, "ICMP type"),
        (2, "ICMP code"),
        (4, "ICMP checksum"),
        (8, "ICMP rest of header"),
    ];
    let find = |table: &[(usize, &'static str)], at: usize| {
        table
            .iter()
            .find(|(end, _)| at < *end)
            .map_or("header", |(_, name)| *name)
            .to_string()
    };
    let ip_table = match version {
        Some(4) => IPV4,
        Some(6) => IPV6,
        _ => return format!("offset {offset} (not an IP packet)"),
    };
    if offset < ip_header {
        return find(ip_table, offset);
    }
    let at = offset - ip_header;
    let table = match protocol {
        Some(6) => TCP,
        Some(17) => UDP,
        Some(1) | Some(58) => ICMP,
        _ => return format!("byte {at} after the IP header"),
    };
    if at < transport_header {
        find(table, at)
    } else {
        format!("payload byte {}", at - transport_header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 15-point Kronrod rule is exact for polynomials up to degree 22 and its embedded
    /// 7-point Gauss rule up to degree 13: a mistyped node or weight breaks one of them.
    #[test]
    fn kronrod_and_gauss_rules_integrate_polynomials_exactly() {
        let (from, to) = (0.25, 1.0);
        for degree in 0..=22 {
            let exact =
                (f64::powi(to, degree + 1) - f64::powi(from, degree + 1)) / f64::from(degree + 1);
            let points = kronrod_points(from, to);
            let kronrod: f64 = points.iter().map(|&(a, wk, _)| wk * a.powi(degree)).sum();
            assert!(
                (kronrod - exact).abs() < 1e-13,
                "Kronrod, degree {degree}: {kronrod} vs {exact}"
            );
            let gauss: f64 = points.iter().map(|&(a, _, wg)| wg * a.powi(degree)).sum();
            if degree <= 13 {
                assert!(
                    (gauss - exact).abs() < 1e-13,
                    "Gauss, degree {degree}: {gauss} vs {exact}"
                );
            }
        }
        assert_eq!(
            kronrod_points(0.0, 1.0)
                .iter()
                .filter(|p| p.2 != 0.0)
                .count(),
            7
        );
    }

    #[test]
    fn header_fields_of_ipv4_tcp_udp_and_ipv6() {
        assert_eq!(header_field(Some(4), 20, Some(6), 20, 8), "IPv4 TTL");
        assert_eq!(
            header_field(Some(4), 20, Some(6), 20, 12),
            "IPv4 source address (masked)"
        );
        assert_eq!(header_field(Some(4), 20, Some(6), 20, 33), "TCP flags");
        assert_eq!(header_field(Some(4), 20, Some(6), 32, 45), "TCP options");
        assert_eq!(header_field(Some(4), 20, Some(6), 20, 45), "payload byte 5");
        assert_eq!(header_field(Some(4), 20, Some(17), 8, 24), "UDP length");
        assert_eq!(header_field(Some(4), 20, Some(17), 8, 30), "payload byte 2");
        assert_eq!(header_field(Some(4), 24, Some(6), 20, 21), "IPv4 options");
        assert_eq!(header_field(Some(6), 40, Some(6), 20, 7), "IPv6 hop limit");
        assert_eq!(header_field(Some(6), 40, Some(6), 20, 53), "TCP flags");
        assert_eq!(parse_byte_column_name("b3_17"), Some((3, 17)));
        assert_eq!(parse_byte_column_name("bytes"), None);
    }
}
