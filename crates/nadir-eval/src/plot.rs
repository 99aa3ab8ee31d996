//! Plots as PNG and SVG (`plotters`): confusion matrix heatmap, ROC, PR,
//! training history and score histograms.
//!
//! Every function takes a path *stem* (`dir/roc`) and writes `stem.png` and
//! `stem.svg`, returning both paths. Each chart is drawn once by a function
//! generic over the plotters backend.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{ConfusionMatrix, EvalError, Evaluation, PrCurve, RocCurve};

const SIZE: (u32, u32) = (800, 600);

/// One named series of a line chart (e.g. `train loss` per epoch).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

type DrawResult = Result<(), String>;

fn to_msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Draws `draw` into `stem.png` and `stem.svg`.
fn both_formats(
    stem: &Path,
    draw_png: impl FnOnce(DrawingArea<BitMapBackend, Shift>) -> DrawResult,
    draw_svg: impl FnOnce(DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<Vec<PathBuf>, EvalError> {
    if let Some(parent) = stem.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| EvalError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |message: String| EvalError::Plot { path, message }
    };
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(to_msg).map_err(fail(&png))?;
        draw_png(root.clone()).map_err(fail(&png))?;
        root.present().map_err(to_msg).map_err(fail(&png))?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(to_msg).map_err(fail(&svg))?;
        draw_svg(root.clone()).map_err(fail(&svg))?;
        root.present().map_err(to_msg).map_err(fail(&svg))?;
    }
    Ok(vec![png, svg])
}

/// A finite axis range padded so that a flat series still has height.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}

fn draw_confusion<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    cm: &ConfusionMatrix,
    names: &[String],
) -> DrawResult {
    use plotters::coord::ranged1d::SegmentValue;
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let n = cm.n_classes();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Confusion matrix (colour = share of the true class)",
            ("sans-serif", 22),
        )
        .margin(10)
        .x_label_area_size(60)
        .y_label_area_size(110)
        // An integer range a..b holds b - a + 1 segments.
        .build_cartesian_2d(
            (0..n.max(2) - 1).into_segmented(),
            (0..n.max(2) - 1).into_segmented(),
        )
        .map_err(to_msg)?;
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let x_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) => name(*i),
        _ => String::new(),
    };
    // Row 0 at the top, as in the printed table.
    let y_label = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => name(n - 1 - *i),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(n)
        .y_labels(n)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .draw()
        .map_err(to_msg)?;
    let share = |t: usize, p: usize| cm.get(t, p) as f64 / cm.row_total(t).max(1) as f64;
    let cells = (0..n).flat_map(|t| {
        (0..n).map(move |p| {
            let y = n - 1 - t;
            let colour = HSLColor(0.6, 0.7, 0.95 - 0.6 * share(t, p));
            Rectangle::new(
                [
                    (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                    (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                ],
                colour.filled(),
            )
        })
    });
    chart.draw_series(cells).map_err(to_msg)?;
    let size = if n > 8 { 11 } else { 20 };
    chart
        .draw_series((0..n).flat_map(|t| {
            (0..n).map(move |p| {
                let colour = if share(t, p) > 0.6 { WHITE } else { BLACK };
                let style = ("sans-serif", size)
                    .into_font()
                    .color(&colour)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                Text::new(
                    format!("{}", cm.get(t, p)),
                    (SegmentValue::CenterOf(p), SegmentValue::CenterOf(n - 1 - t)),
                    style,
                )
            })
        }))
        .map_err(to_msg)?;
    Ok(())
}

/// Confusion matrix heatmap (colour = share of the true class's row).
pub fn plot_confusion(
    cm: &ConfusionMatrix,
    class_names: &[String],
    stem: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    both_formats(
        stem,
        |a| draw_confusion(a, cm, class_names),
        |a| draw_confusion(a, cm, class_names),
    )
}

fn draw_curve<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    points: &[(f64, f64)],
    diagonal: bool,
) -> DrawResult {
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..1.0, 0.0..1.02)
        .map_err(to_msg)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(to_msg)?;
    if diagonal {
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
            .map_err(to_msg)?;
    }
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))
        .map_err(to_msg)?;
    Ok(())
}

/// ROC curve with the chance diagonal; `auc` goes into the title.
pub fn plot_roc(roc: &RocCurve, auc: Option<f64>, stem: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let points: Vec<(f64, f64)> = roc
        .fpr
        .iter()
        .copied()
        .zip(roc.tpr.iter().copied())
        .collect();
    let title = match auc {
        Some(a) => format!("ROC curve (AUC = {a:.4})"),
        None => "ROC curve".to_string(),
    };
    let axes = ("false-positive rate", "true-positive rate");
    both_formats(
        stem,
        |a| draw_curve(a, &title, axes, &points, true),
        |a| draw_curve(a, &title, axes, &points, true),
    )
}

/// Precision-recall curve; `ap` (average precision) goes into the title.
pub fn plot_pr(pr: &PrCurve, ap: Option<f64>, stem: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let points: Vec<(f64, f64)> = pr
        .recall
        .iter()
        .copied()
        .zip(pr.precision.iter().copied())
        .collect();
    let title = match ap {
        Some(a) => format!("Precision-recall curve (AP = {a:.4})"),
        None => "Precision-recall curve".to_string(),
    };
    let axes = ("recall", "precision");
    both_formats(
        stem,
        |a| draw_curve(a, &title, axes, &points, false),
        |a| draw_curve(a, &title, axes, &points, false),
    )
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn draw_history<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
) -> DrawResult {
    let epochs = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let (lo, hi) = padded_range(series.iter().flat_map(|s| s.values.iter().copied()));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(1.0..epochs as f64, lo..hi)
        .map_err(to_msg)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(to_msg)?;
    for (k, s) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        // NaN/inf epochs (a diverged step) are skipped rather than drawn off-chart.
        let points = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite())
            .map(|(i, &v)| ((i + 1) as f64, v));
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(to_msg)?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(to_msg)?;
    Ok(())
}

/// Training history: one line per series against the epoch number.
pub fn plot_history(
    title: &str,
    series: &[Series],
    stem: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    both_formats(
        stem,
        |a| draw_history(a, title, series),
        |a| draw_history(a, title, series),
    )
}

/// Bin counts of `scores` over `bins` equal-width bins spanning `range`.
fn histogram(scores: impl Iterator<Item = f64>, range: (f64, f64), bins: usize) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    let width = (range.1 - range.0) / bins as f64;
    for s in scores {
        let bin = ((s - range.0) / width).floor();
        let bin = if bin.is_finite() {
            bin.max(0.0) as usize
        } else {
            0
        };
        counts[bin.min(bins - 1)] += 1;
    }
    counts
}

fn draw_scores<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    scores: &[f32],
    is_anomaly: &[bool],
    threshold: Option<f64>,
) -> DrawResult {
    const BINS: usize = 50;
    let range = padded_range(
        scores
            .iter()
            .map(|&s| f64::from(s))
            .chain(threshold.filter(|t| t.abs() < 1e12)),
    );
    let width = (range.1 - range.0) / BINS as f64;
    let pick = |want: bool| {
        scores
            .iter()
            .zip(is_anomaly)
            .filter(move |(_, &a)| a == want)
            .map(|(&s, _)| f64::from(s))
    };
    let benign = histogram(pick(false), range, BINS);
    let anomalous = histogram(pick(true), range, BINS);
    let max = benign
        .iter()
        .chain(&anomalous)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption("Score distribution (log count)", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(range.0..range.1, (0.5f64..max as f64 * 2.0).log_scale())
        .map_err(to_msg)?;
    chart
        .configure_mesh()
        .x_desc("score (higher = more anomalous)")
        .y_desc("rows")
        .draw()
        .map_err(to_msg)?;
    for (counts, colour, name) in [
        (&benign, PALETTE[0], "benign"),
        (&anomalous, PALETTE[3], "anomalous"),
    ] {
        let bars = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| {
                let x0 = range.0 + i as f64 * width;
                Rectangle::new(
                    [(x0, 0.5), (x0 + width, c as f64)],
                    colour.mix(0.5).filled(),
                )
            });
        chart
            .draw_series(bars)
            .map_err(to_msg)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
    }
    if let Some(t) = threshold.filter(|t| *t >= range.0 && *t <= range.1) {
        chart
            .draw_series(LineSeries::new(
                [(t, 0.5), (t, max as f64 * 2.0)],
                BLACK.stroke_width(2),
            ))
            .map_err(to_msg)?
            .label(format!("threshold {t:.4}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(to_msg)?;
    Ok(())
}

/// Histogram of benign and anomalous scores, with the threshold as a line.
pub fn plot_score_histogram(
    scores: &[f32],
    is_anomaly: &[bool],
    threshold: Option<f64>,
    stem: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    crate::check_lengths("score histogram", is_anomaly.len(), scores.len())?;
    crate::check_scores(scores)?;
    both_formats(
        stem,
        |a| draw_scores(a, scores, is_anomaly, threshold),
        |a| draw_scores(a, scores, is_anomaly, threshold),
    )
}

/// The standard report plots into `dir`: `confusion`, `roc`, `pr` and, when
/// scores are given, `scores` (each as PNG and SVG). Returns the files written.
pub fn plot_evaluation(
    evaluation: &Evaluation,
    detection_scores: Option<(&[f32], &[bool])>,
    dir: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    let names: Vec<String> = evaluation
        .classification
        .per_class
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let mut files = plot_confusion(
        &evaluation.classification.confusion,
        &names,
        &dir.join("confusion"),
    )?;
    if let Some(d) = &evaluation.detection {
        if let Some(roc) = &d.roc {
            files.extend(plot_roc(roc, d.roc_auc, &dir.join("roc"))?);
        }
        if let Some(pr) = &d.pr {
            files.extend(plot_pr(pr, d.pr_auc, &dir.join("pr"))?);
        }
        if let Some((scores, flags)) = detection_scores {
            files.extend(plot_score_histogram(
                scores,
                flags,
                Some(d.threshold),
                &dir.join("scores"),
            )?);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{evaluate_binary, EvalOptions};

    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{} is not a PNG", path.display());
        let be =
            |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        (be(16), be(20))
    }

    #[test]
    fn report_plots_are_written_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let scores: Vec<f32> = (0..200).map(|i| (i % 100) as f32 / 100.0).collect();
        let y: Vec<bool> = (0..200).map(|i| (i % 100) > 40 + i % 30).collect();
        let e = evaluate_binary(
            &scores,
            &y,
            0.5,
            ["normal", "attack"],
            &EvalOptions::default(),
        )
        .unwrap();
        let files = plot_evaluation(&e, Some((&scores, &y)), dir.path()).unwrap();
        if let Some(keep) = std::env::var_os("NADIR_KEEP_PLOTS") {
            for f in &files {
                std::fs::copy(f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
            }
        }
        assert_eq!(files.len(), 8);
        for f in &files {
            let ext = f.extension().unwrap().to_str().unwrap();
            if ext == "png" {
                assert_eq!(png_size(f), SIZE);
            } else {
                let text = std::fs::read_to_string(f).unwrap();
                assert!(text.starts_with("<svg"), "{}", f.display());
            }
        }
        let roc_svg = std::fs::read_to_string(dir.path().join("roc.svg")).unwrap();
        assert!(roc_svg.contains("AUC ="), "title carries the AUC");
        let cm_svg = std::fs::read_to_string(dir.path().join("confusion.svg")).unwrap();
        assert!(cm_svg.contains("attack") && cm_svg.contains("predicted"));
    }

    #[test]
    fn history_skips_nan_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let series = [
            Series {
                name: "train loss".into(),
                values: vec![0.9, 0.5, f64::NAN, 0.3],
            },
            Series {
                name: "val loss".into(),
                values: vec![1.0, 0.6, 0.5, 0.45],
            },
        ];
        let files = plot_history("history", &series, &dir.path().join("history")).unwrap();
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(svg.contains("val loss") && !svg.contains("NaN"));
    }

    #[test]
    fn histogram_bins_clamp_edges() {
        let counts = histogram([0.0, 0.5, 1.0, 0.99].into_iter(), (0.0, 1.0), 2);
        assert_eq!(counts, vec![1, 3]);
    }
}

/// One scored flow on the timeline: seconds from the first flow, score, flagged or not.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimelinePoint {
    pub seconds: f64,
    pub score: f64,
    pub anomaly: bool,
}

fn draw_timeline<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    points: &[TimelinePoint],
    threshold: f64,
) -> DrawResult {
    // Scores spanning orders of magnitude (reconstruction errors) are drawn as log10.
    let positive = points.iter().all(|p| p.score > 0.0) && threshold > 0.0;
    let (min, max) = points
        .iter()
        .map(|p| p.score)
        .fold((threshold, threshold), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let log = positive && max / min > 100.0;
    let scale = |v: f64| if log { v.log10() } else { v };
    let points: Vec<TimelinePoint> = points
        .iter()
        .map(|p| TimelinePoint {
            score: scale(p.score),
            ..*p
        })
        .collect();
    let points = &points[..];
    let shown_threshold = scale(threshold);
    let end = points
        .iter()
        .map(|p| p.seconds)
        .filter(|s| s.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let (lo, hi) = padded_range(
        points
            .iter()
            .map(|p| p.score)
            .chain(std::iter::once(shown_threshold)),
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.0..end, lo..hi)
        .map_err(to_msg)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first flow")
        .y_desc(if log {
            "anomaly score (log10)"
        } else {
            "anomaly score"
        })
        .draw()
        .map_err(to_msg)?;
    let finite = |p: &&TimelinePoint| p.seconds.is_finite() && p.score.is_finite();
    chart
        .draw_series(
            points
                .iter()
                .filter(finite)
                .filter(|p| !p.anomaly)
                .map(|p| Circle::new((p.seconds, p.score), 2, PALETTE[0].mix(0.5).filled())),
        )
        .map_err(to_msg)?
        .label("normal")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, PALETTE[0].filled()));
    chart
        .draw_series(
            points
                .iter()
                .filter(finite)
                .filter(|p| p.anomaly)
                .map(|p| TriangleMarker::new((p.seconds, p.score), 5, RED.filled())),
        )
        .map_err(to_msg)?
        .label("anomaly")
        .legend(|(x, y)| TriangleMarker::new((x + 10, y), 5, RED.filled()));
    chart
        .draw_series(LineSeries::new(
            [(0.0, shown_threshold), (end, shown_threshold)],
            BLACK.stroke_width(2),
        ))
        .map_err(to_msg)?
        .label(format!("threshold {threshold:.4}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(to_msg)?;
    Ok(())
}

/// Scores over time with the threshold line; anomalies as red triangles (`detect --plot`).
pub fn plot_timeline(
    title: &str,
    points: &[TimelinePoint],
    threshold: f64,
    stem: &Path,
) -> Result<Vec<PathBuf>, EvalError> {
    both_formats(
        stem,
        |a| draw_timeline(a, title, points, threshold),
        |a| draw_timeline(a, title, points, threshold),
    )
}
