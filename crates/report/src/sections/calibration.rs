//! Calibration: the reliability diagram (each bin's observed rate against its mean predicted
//! probability, the diagonal, the bins' counts) with ECE and Brier, and the histogram of the pair
//! probabilities split by whether the human agreed with the model's predicted winner.

use std::fmt::Write;

use crate::chart;
use crate::html::{absent, count_cell, figure_cell, figure_span};
use crate::model::Evaluation;

pub fn write(out: &mut String, evaluation: &Evaluation, scope: &str) {
    let Some(calibration) = &evaluation.calibration else {
        absent(
            out,
            "calibration",
            "No calibration figures: evaluate with --calibration-bins K (calibration_bins=K on the stream or \
             /v1/report) for a reliability diagram and the histogram of pair probabilities.",
        );
        return;
    };
    let _ = write!(out, "<section data-section=\"calibration\" id=\"calibration-{scope}\">\n<h3>Calibration</h3>\n<p>");
    if let Some(ece) = calibration.ece {
        let _ = write!(out, "ECE {} ", figure_span("ece", ece));
    }
    if let Some(brier) = calibration.brier {
        let _ = write!(out, "· Brier {}", figure_span("brier", brier));
    }
    out.push_str("</p>\n<div class=\"charts\">\n");
    // Agreeing pairs per bin: Σy of the totals (a reward tie counting one half), else count × rate.
    let agreeing: Vec<f64> = match &evaluation.totals.calibration {
        Some(sums) if sums.len() == calibration.bins.len() => sums.iter().map(|bin| bin.sum_observed).collect(),
        _ => calibration.bins.iter().map(|bin| bin.count as f64 * bin.observed.unwrap_or(0.0)).collect(),
    };
    chart::reliability(out, &calibration.bins);
    chart::probabilities(out, &calibration.bins, &agreeing);
    out.push_str("</div>\n<table data-table=\"calibration\">\n<thead><tr><th>bin</th><th>pairs</th>\
                  <th>mean predicted</th><th>observed</th><th>agreeing</th><th>disagreeing</th></tr></thead>\n<tbody>\n");
    for (bin, agreeing) in calibration.bins.iter().zip(&agreeing) {
        let _ = write!(out, "<tr><td>[{}, {}{}</td>", bin.lower, bin.upper, if bin.upper >= 1.0 { "]" } else { ")" });
        count_cell(out, "count", bin.count);
        figure_cell(out, "mean_predicted", bin.mean_predicted);
        figure_cell(out, "observed", bin.observed);
        figure_cell(out, "agreeing", Some(*agreeing));
        figure_cell(out, "disagreeing", Some(bin.count as f64 - agreeing));
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">Each pair is oriented so the model's predicted winner comes first: \
         its probability is at least ½, and it is observed (agreeing) when the human preferred that item. A \
         calibrated model's bars meet the diagonal.</p>\n</section>\n",
    );
}
