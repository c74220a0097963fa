//! The charts, drawn with plotters' SVG backend and inlined in the page. Every data mark (a bar, a
//! point, an interval) is drawn in a colour of its own kind, and the drawn SVG gets a
//! `class="mark KIND"` on each element of such a colour, so a reader (or a test) finds the marks
//! of a chart: `<figure class="chart" data-chart="NAME" data-marks="N">` holds the SVG and its
//! legend. Charts aggregate (a bar per bin, an interval per group or pair of models); none draws a
//! point per pair.

use std::fmt::Write;

use std::ops::Range;

use plotters::chart::{ChartContext, MeshStyle};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::html::escape;
use crate::model::{CalibrationBin, Length, Paired};

const BAR: RGBColor = RGBColor(0x3A, 0x78, 0xB5);
const POINT: RGBColor = RGBColor(0x1B, 0x4F, 0x80);
const AGREE: RGBColor = RGBColor(0x3C, 0x9A, 0x5F);
const DISAGREE: RGBColor = RGBColor(0xD0, 0x70, 0x3C);
const INTERVAL: RGBColor = RGBColor(0x2F, 0x5D, 0x8C);
const ESTIMATE: RGBColor = RGBColor(0x12, 0x35, 0x5B);
const LONGER: RGBColor = RGBColor(0x5B, 0x8D, 0xB8);
const SHORTER: RGBColor = RGBColor(0xC4, 0x70, 0x4F);
const WIN_A: RGBColor = RGBColor(0x4C, 0x72, 0xB0);
const TIE: RGBColor = RGBColor(0xB8, 0xB8, 0xB8);
const WIN_B: RGBColor = RGBColor(0xDD, 0x84, 0x52);
const COUNT: RGBColor = RGBColor(0x44, 0x44, 0x44);
const DIAGONAL: RGBColor = RGBColor(0x88, 0x88, 0x88);
const REFERENCES: [RGBColor; 3] = [RGBColor(0xB0, 0x3A, 0x2E), RGBColor(0x7D, 0x4E, 0x9F), RGBColor(0x2E, 0x8B, 0x57)];

/// The class each colour's elements get: data marks (`mark KIND`, counted) and the rest.
const CLASSES: [(RGBColor, &str); 16] = [
    (BAR, "mark bar"),
    (POINT, "mark point"),
    (AGREE, "mark bar agree"),
    (DISAGREE, "mark bar disagree"),
    (INTERVAL, "mark interval"),
    (ESTIMATE, "mark point"),
    (LONGER, "mark bar longer"),
    (SHORTER, "mark bar shorter"),
    (WIN_A, "mark bar a-better"),
    (TIE, "mark bar tied"),
    (WIN_B, "mark bar b-better"),
    (COUNT, "count"),
    (DIAGONAL, "diagonal"),
    (REFERENCES[0], "reference"),
    (REFERENCES[1], "reference"),
    (REFERENCES[2], "reference"),
];

const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// One row of a forest plot: a label, the estimate and its interval.
pub struct ForestRow {
    pub label: String,
    pub value: Option<f64>,
    pub interval: Option<(f64, f64)>,
}

/// The reliability diagram: per non-empty bin a bar up to its observed rate, a point at (mean
/// predicted, observed), its count above; the diagonal of perfect calibration.
pub fn reliability(out: &mut String, bins: &[CalibrationBin]) {
    figure(
        out,
        "reliability",
        "Reliability diagram",
        (440, 340),
        &[(BAR, "observed rate per bin"), (DIAGONAL, "perfect calibration")],
        |area| {
            let mut chart = plane(&area, 44, 0.5f64..1.0, 0.0f64..1.08)?;
            mesh(&mut chart).x_desc("predicted probability").y_desc("observed").draw()?;
            chart.draw_series(LineSeries::new([(0.5, 0.5), (1.0, 1.0)], DIAGONAL.stroke_width(1)))?;
            for bin in bins.iter().filter(|bin| bin.count > 0) {
                let (Some(predicted), Some(observed)) = (bin.mean_predicted, bin.observed) else { continue };
                let gap = (bin.upper - bin.lower) * 0.06;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(bin.lower + gap, 0.0), (bin.upper - gap, observed)],
                    BAR.mix(0.75).filled(),
                )))?;
                chart.draw_series(std::iter::once(Circle::new((predicted, observed), 3, POINT.filled())))?;
                let label = TextStyle::from((FONT, 9)).color(&COUNT).pos(Pos::new(HPos::Center, VPos::Bottom));
                chart.draw_series(std::iter::once(Text::new(
                    compact(bin.count),
                    ((bin.lower + bin.upper) / 2.0, (observed + 0.01).min(1.07)),
                    label,
                )))?;
            }
            Ok(())
        },
    );
}

/// The pairs per probability bin, stacked: those the human agreed with, then the others.
pub fn probabilities(out: &mut String, bins: &[CalibrationBin], agreeing: &[f64]) {
    let top = bins.iter().map(|bin| bin.count).max().unwrap_or(0).max(1) as f64 * 1.08;
    figure(
        out,
        "probabilities",
        "Pair probabilities",
        (440, 340),
        &[(AGREE, "human agreed"), (DISAGREE, "human disagreed")],
        |area| {
            let mut chart = plane(&area, 56, 0.5f64..1.0, 0.0f64..top)?;
            mesh(&mut chart)
                .x_desc("probability of the predicted winner")
                .y_desc("pairs")
                .y_label_formatter(&|count: &f64| {
                    if count.fract() == 0.0 { format!("{count:.0}") } else { String::new() }
                })
                .draw()?;
            for (bin, &agreed) in bins.iter().zip(agreeing) {
                let gap = (bin.upper - bin.lower) * 0.06;
                let (lo, hi) = (bin.lower + gap, bin.upper - gap);
                if agreed > 0.0 {
                    chart.draw_series(std::iter::once(Rectangle::new([(lo, 0.0), (hi, agreed)], AGREE.filled())))?;
                }
                if (bin.count as f64) > agreed {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(lo, agreed), (hi, bin.count as f64)],
                        DISAGREE.filled(),
                    )))?;
                }
            }
            Ok(())
        },
    );
}

/// A forest plot: one row per label, its interval and estimate, with vertical reference lines.
#[allow(clippy::too_many_arguments)]
pub fn forest(
    out: &mut String,
    name: &str,
    title: &str,
    x_desc: &str,
    rows: &[ForestRow],
    (lo, hi): (f64, f64),
    references: &[(&str, f64)],
) {
    if rows.is_empty() {
        return;
    }
    let n = rows.len();
    let labels: Vec<String> = rows.iter().map(|row| truncated(&row.label, 30)).collect();
    let widest = labels.iter().map(|label| label.chars().count()).max().unwrap_or(0);
    let label_area = (widest as u32 * 15 / 2 + 28).clamp(48, 260);
    let height = 70 + 24 * n as u32;
    let mut legend: Vec<(RGBColor, &str)> = vec![(INTERVAL, "interval"), (ESTIMATE, "estimate")];
    legend.extend(references.iter().zip(REFERENCES).map(|((label, _), color)| (color, *label)));
    figure(out, name, title, (520, height), &legend, |area| {
        let mut chart = plane(&area, label_area, lo..hi, -0.5f64..(n as f64 - 0.5))?;
        let row_label = |y: &f64| {
            let index = y.round();
            if (y - index).abs() > 1e-9 || index < 0.0 {
                return String::new();
            }
            labels.get(n - 1 - index as usize).cloned().unwrap_or_default()
        };
        mesh(&mut chart).disable_y_mesh().y_labels(n).y_label_formatter(&row_label).x_desc(x_desc).draw()?;
        for ((_, x), color) in references.iter().zip(REFERENCES) {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*x, -0.5), (*x, n as f64 - 0.5)],
                color.stroke_width(1),
            )))?;
        }
        for (index, row) in rows.iter().enumerate() {
            let y = (n - 1 - index) as f64;
            if let Some((from, to)) = row.interval {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(from, y), (to, y)],
                    INTERVAL.stroke_width(2),
                )))?;
            }
            if let Some(value) = row.value {
                chart.draw_series(std::iter::once(Circle::new((value, y), 4, ESTIMATE.filled())))?;
            }
        }
        Ok(())
    });
}

/// Accuracy where the human preferred the longer item and the shorter one, per model, with the
/// length-only baseline.
pub fn length(out: &mut String, lengths: &[(String, &Length)]) {
    let bars = 2 * lengths.len();
    let labels: Vec<String> = lengths
        .iter()
        .flat_map(|(model, _)| {
            if model.is_empty() {
                [String::from("longer preferred"), String::from("shorter preferred")]
            } else {
                let model = truncated(model, 14);
                [format!("{model} · longer"), format!("{model} · shorter")]
            }
        })
        .collect();
    let baseline = lengths.first().map(|(_, length)| length.baseline_accuracy).unwrap_or(0.5);
    let legend = [
        (LONGER, "accuracy, longer preferred"),
        (SHORTER, "accuracy, shorter preferred"),
        (REFERENCES[0], "length-only baseline"),
    ];
    figure(
        out,
        "length",
        "Accuracy by which item the human preferred",
        ((150 * bars as u32).max(360), 320),
        &legend,
        |area| {
            let mut chart = plane(&area, 44, -0.5f64..(bars as f64 - 0.5), 0.0f64..1.0)?;
            let bar_label = |x: &f64| {
                let index = x.round();
                if (x - index).abs() > 1e-9 || index < 0.0 {
                    String::new()
                } else {
                    labels.get(index as usize).cloned().unwrap_or_default()
                }
            };
            mesh(&mut chart).disable_x_mesh().x_labels(bars).x_label_formatter(&bar_label).y_desc("accuracy").draw()?;
            for (index, (_, length)) in lengths.iter().enumerate() {
                let at = (2 * index) as f64;
                for (offset, value, color) in
                    [(0.0, length.accuracy_preferred_longer, LONGER), (1.0, length.accuracy_preferred_shorter, SHORTER)]
                {
                    if let Some(value) = value {
                        let x = at + offset;
                        chart.draw_series(std::iter::once(Rectangle::new(
                            [(x - 0.35, 0.0), (x + 0.35, value)],
                            color.filled(),
                        )))?;
                    }
                }
            }
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, baseline), (bars as f64 - 0.5, baseline)],
                REFERENCES[0].stroke_width(2),
            )))?;
            Ok(())
        },
    );
}

/// Per pair of models, the share of lists each won and tied, stacked.
pub fn wins(out: &mut String, pairs: &[Paired]) {
    if pairs.is_empty() {
        return;
    }
    let n = pairs.len();
    let labels: Vec<String> = pairs.iter().map(|pair| truncated(&format!("{} vs {}", pair.a, pair.b), 34)).collect();
    let widest = labels.iter().map(|label| label.chars().count()).max().unwrap_or(0);
    let legend = [(WIN_A, "lists a won"), (TIE, "tied"), (WIN_B, "lists b won")];
    figure(out, "wins", "Lists won", (520, 70 + 28 * n as u32), &legend, |area| {
        let mut chart =
            plane(&area, (widest as u32 * 15 / 2 + 28).clamp(48, 280), 0.0f64..1.0, -0.5f64..(n as f64 - 0.5))?;
        let row_label = |y: &f64| {
            let index = y.round();
            if (y - index).abs() > 1e-9 || index < 0.0 {
                String::new()
            } else {
                labels.get(n - 1 - index as usize).cloned().unwrap_or_default()
            }
        };
        mesh(&mut chart).disable_y_mesh().y_labels(n).y_label_formatter(&row_label).x_desc("share of lists").draw()?;
        for (index, pair) in pairs.iter().enumerate() {
            let y = (n - 1 - index) as f64;
            let total = (pair.lists_a_better + pair.lists_tied + pair.lists_b_better) as f64;
            if total == 0.0 {
                continue;
            }
            let mut from = 0.0;
            for (count, color) in [(pair.lists_a_better, WIN_A), (pair.lists_tied, TIE), (pair.lists_b_better, WIN_B)] {
                if count == 0 {
                    continue;
                }
                let to = from + count as f64 / total;
                chart.draw_series(std::iter::once(Rectangle::new([(from, y - 0.3), (to, y + 0.3)], color.filled())))?;
                from = to;
            }
        }
        Ok(())
    });
}

type Plane<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart on `area` with the report's margins: `x` by `y`, with `y_labels` pixels for the y
/// axis's labels.
fn plane<'a, 'b>(
    area: &'a Area<'b>,
    y_labels: u32,
    x: Range<f64>,
    y: Range<f64>,
) -> Result<Plane<'a, 'b>, Box<dyn std::error::Error>> {
    Ok(ChartBuilder::on(area).margin(12).x_label_area_size(36).y_label_area_size(y_labels).build_cartesian_2d(x, y)?)
}

/// The axes of a chart as every chart draws them: no light grid lines, the report's label font.
fn mesh<'m, 'a, 'b>(chart: &'m mut Plane<'a, 'b>) -> MeshStyle<'a, 'm, RangedCoordf64, RangedCoordf64, SVGBackend<'b>> {
    let mut mesh = chart.configure_mesh();
    mesh.max_light_lines(0).label_style((FONT, 11));
    mesh
}

/// Draws a chart and writes it as a figure with its marks classed and counted, and its legend.
fn figure(
    out: &mut String,
    name: &str,
    title: &str,
    size: (u32, u32),
    legend: &[(RGBColor, &str)],
    draw: impl FnOnce(Area<'_>) -> Drawn,
) {
    let mut svg = String::new();
    let drawn = {
        let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        area.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(area.clone()))
            .and_then(|()| area.present().map_err(Into::into))
    };
    if let Err(error) = drawn {
        let _ = writeln!(
            out,
            "<p class=\"absent\" data-absent=\"{name}\">The chart could not be drawn: {}</p>",
            escape(&error.to_string())
        );
        return;
    }
    let (svg, marks) = classed(&svg);
    let _ = write!(
        out,
        "<figure class=\"chart\" data-chart=\"{name}\" data-marks=\"{marks}\">\n<div class=\"chart-title\">{}</div>\n{svg}<figcaption>",
        escape(title)
    );
    for (color, label) in legend {
        let _ = write!(
            out,
            "<span class=\"key\"><i style=\"background:#{:02X}{:02X}{:02X}\"></i>{}</span>",
            color.0,
            color.1,
            color.2,
            escape(label)
        );
    }
    out.push_str("</figcaption>\n</figure>\n");
}

/// The SVG with `class` on every element drawn in a classed colour, and the count of data marks.
/// plotters writes one element per line, its colour as `fill="#RRGGBB"` or `stroke="#RRGGBB"`.
fn classed(svg: &str) -> (String, usize) {
    let mut out = String::with_capacity(svg.len() + 1024);
    let mut marks = 0;
    // Each classed colour as plotters writes it in a fill and in a stroke.
    let painted: Vec<(String, String, &str)> = CLASSES
        .iter()
        .map(|(color, class)| {
            let hex = format!("\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
            (format!("fill={hex}"), format!("stroke={hex}"), *class)
        })
        .collect();
    for line in svg.lines() {
        let class = (painted.iter())
            .find(|(fill, stroke, _)| line.contains(fill.as_str()) || line.contains(stroke.as_str()))
            .map(|(_, _, class)| *class);
        match (class, line.find(' ')) {
            (Some(class), Some(space)) if line.starts_with('<') => {
                if class.starts_with("mark") {
                    marks += 1;
                }
                out.push_str(&line[..space]);
                let _ = write!(out, " class=\"{class}\"");
                out.push_str(&line[space..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    (out, marks)
}

fn truncated(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(chars - 1).collect();
        cut.push('…');
        cut
    }
}

/// A count in at most four characters or so (`950`, `12.3k`, `375k`, `1.2M`): a label above a bar
/// narrower than a long number; the table beside the chart has the count whole.
fn compact(count: u64) -> String {
    let scaled = |value: f64, unit: &str| {
        if value < 10.0 { format!("{:.1}{unit}", value).replace(".0", "") } else { format!("{value:.0}{unit}") }
    };
    match count {
        0..1_000 => count.to_string(),
        1_000..999_500 => scaled(count as f64 / 1e3, "k"),
        999_500..999_500_000 => scaled(count as f64 / 1e6, "M"),
        _ => scaled(count as f64 / 1e9, "G"),
    }
}

/// An x range that holds every row's estimate and interval and the reference lines, padded,
/// within `bounds`.
pub fn fitted_range(rows: &[ForestRow], references: &[(&str, f64)], bounds: (f64, f64)) -> (f64, f64) {
    let xs = rows
        .iter()
        .flat_map(|row| row.interval.map(|(lo, hi)| vec![lo, hi]).unwrap_or_default().into_iter().chain(row.value))
        .chain(references.iter().map(|(_, x)| *x))
        .filter(|x| x.is_finite());
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if lo > hi {
        return bounds;
    }
    let pad = ((hi - lo) * 0.1).max(0.01);
    ((lo - pad).max(bounds.0), (hi + pad).min(bounds.1))
}

#[cfg(test)]
mod tests {
    use super::{ForestRow, compact, fitted_range};

    #[test]
    fn counts_are_compact() {
        assert_eq!(compact(950), "950");
        assert_eq!(compact(1_000), "1k");
        assert_eq!(compact(12_345), "12k");
        assert_eq!(compact(375_001), "375k");
        assert_eq!(compact(999_499), "999k");
        assert_eq!(compact(999_500), "1M");
        assert_eq!(compact(1_234_567), "1.2M");
    }

    #[test]
    fn forest_ranges_hold_every_interval_and_reference() {
        let rows = [
            ForestRow { label: "a".into(), value: Some(0.5), interval: Some((0.45, 0.55)) },
            ForestRow { label: "b".into(), value: Some(0.6), interval: None },
        ];
        let (lo, hi) = fitted_range(&rows, &[("micro", 0.52)], (0.0, 1.0));
        assert!(lo < 0.45 && hi > 0.6 && lo >= 0.0 && hi <= 1.0, "{lo} {hi}");
        assert_eq!(fitted_range(&[], &[], (0.0, 1.0)), (0.0, 1.0));
    }
}
