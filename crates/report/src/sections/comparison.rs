//! The comparison of models: per pair of models the paired differences of loss and accuracy with
//! their intervals (forest plots), p-values with Holm's adjustment, and the lists each model won.

use std::fmt::Write;

use crate::chart::{self, ForestRow};
use crate::html::{count_cell, escape, figure_cell, interval_cell};
use crate::model::{Comparison, Paired};

/// A paired difference and its interval.
type Difference = (Option<f64>, Option<(f64, f64)>);

pub fn write(out: &mut String, comparison: &Comparison) {
    out.push_str(
        "<section id=\"comparison\" data-section=\"comparison\">\n<h2>Comparison</h2>\n<div class=\"charts\">\n",
    );
    // One row per pair of models, `a − b` as the JSON's differences are.
    let rows = |figure: fn(&Paired) -> Difference| -> Vec<ForestRow> {
        (comparison.comparisons.iter())
            .map(|pair| {
                let (value, interval) = figure(pair);
                ForestRow { label: format!("{} − {}", pair.a, pair.b), value, interval }
            })
            .collect()
    };
    let accuracy = rows(|pair| (pair.accuracy_difference, pair.accuracy_difference_ci));
    let loss = rows(|pair| (pair.loss_difference, pair.loss_difference_ci));
    chart::forest(
        out,
        "comparison-accuracy",
        "Accuracy difference",
        "accuracy difference (a − b)",
        &accuracy,
        symmetric(&accuracy),
        &[("no difference", 0.0)],
    );
    chart::forest(
        out,
        "comparison-loss",
        "Loss difference",
        "loss difference (a − b)",
        &loss,
        symmetric(&loss),
        &[("no difference", 0.0)],
    );
    chart::wins(out, &comparison.comparisons);
    out.push_str(
        "</div>\n<table data-table=\"comparisons\">\n<thead><tr><th>a</th><th>b</th><th>loss difference</th>\
         <th>interval</th><th>p</th><th>p (Holm)</th><th>accuracy difference</th><th>interval</th><th>p</th>\
         <th>p (Holm)</th><th>lists a better</th><th>lists b better</th><th>lists tied</th></tr></thead>\n<tbody>\n",
    );
    for pair in &comparison.comparisons {
        let _ = write!(
            out,
            "<tr data-pair=\"{}|{}\"><td>{}</td><td>{}</td>",
            escape(&pair.a),
            escape(&pair.b),
            escape(&pair.a),
            escape(&pair.b)
        );
        figure_cell(out, "loss_difference", pair.loss_difference);
        interval_cell(out, "loss_difference_ci", pair.loss_difference_ci);
        figure_cell(out, "loss_p_value", pair.loss_p_value);
        figure_cell(out, "loss_p_value_holm", pair.loss_p_value_holm);
        figure_cell(out, "accuracy_difference", pair.accuracy_difference);
        interval_cell(out, "accuracy_difference_ci", pair.accuracy_difference_ci);
        figure_cell(out, "accuracy_p_value", pair.accuracy_p_value);
        figure_cell(out, "accuracy_p_value_holm", pair.accuracy_p_value_holm);
        count_cell(out, "lists_a_better", pair.lists_a_better);
        count_cell(out, "lists_b_better", pair.lists_b_better);
        count_cell(out, "lists_tied", pair.lists_tied);
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">Differences are a minus b over the same lists (a negative loss difference: a has the lower loss), with intervals from the \
         paired per-list differences. A lower loss is better, a higher accuracy is. Holm's adjustment holds the \
         chance of any false finding among all pairs at the test's level. A list is won by the model with the lower \
         loss on it.</p>\n</section>\n",
    );
}

/// An x range centred on zero that holds every interval.
fn symmetric(rows: &[ForestRow]) -> (f64, f64) {
    let reach = rows
        .iter()
        .flat_map(|row| row.interval.map(|(lo, hi)| [lo, hi]).unwrap_or([row.value.unwrap_or(0.0); 2]))
        .fold(0.0_f64, |reach, x| reach.max(x.abs()));
    let reach = if reach > 0.0 && reach.is_finite() { reach * 1.15 } else { 1.0 };
    (-reach, reach)
}
