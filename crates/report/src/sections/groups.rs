//! Groups: a table and a forest plot of each group's accuracy with its interval, marking the
//! micro (all pairs) and macro (mean of the groups) accuracy.

use std::fmt::Write;

use prefeval_core::math::Totals;
use prefeval_core::pipeline::summary::Figures;

use crate::chart::{self, ForestRow};
use crate::html::{count_cell, escape, figure_cell, interval_cell};
use crate::model::Evaluation;

/// Rows of the table; a run may have 10,000 groups, and a page of them all would be megabytes.
const MAX_TABLE_GROUPS: usize = 1000;
/// Rows of the forest plot.
const MAX_PLOTTED_GROUPS: usize = 40;

pub fn write(out: &mut String, evaluation: &Evaluation, scope: &str) {
    let Some(groups) = evaluation.groups.as_ref().filter(|groups| !groups.is_empty()) else {
        return;
    };
    let confidence = evaluation.run.confidence;
    // Intervals from each group's totals, as the summary's own come from its totals.
    let intervals: Vec<Option<(f64, f64)>> =
        groups.iter().map(|group| Figures::new(&Totals::from(&group.totals), confidence).accuracy_ci).collect();
    // The largest groups first when not all fit; ties keep the order of first appearance.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| groups[b].pairs.cmp(&groups[a].pairs).then(a.cmp(&b)));
    let _ = write!(out, "<section data-section=\"groups\" id=\"groups-{scope}\">\n<h3>Groups</h3>\n");
    let plotted: Vec<ForestRow> = order
        .iter()
        .take(MAX_PLOTTED_GROUPS)
        .map(|&index| ForestRow {
            label: groups[index].group.clone(),
            value: groups[index].accuracy,
            interval: intervals[index],
        })
        .collect();
    let mut references = vec![];
    if let Some(accuracy) = evaluation.accuracy {
        references.push(("micro accuracy", accuracy));
    }
    if let Some(accuracy) = evaluation.macro_accuracy {
        references.push(("macro accuracy", accuracy));
    }
    let range = chart::fitted_range(&plotted, &references, (0.0, 1.0));
    chart::forest(out, "groups", "Accuracy by group", "accuracy", &plotted, range, &references);
    if groups.len() > MAX_PLOTTED_GROUPS {
        let _ = writeln!(
            out,
            "<p class=\"note\">The plot shows the {MAX_PLOTTED_GROUPS} groups with the most pairs of {}.</p>",
            groups.len()
        );
    }
    out.push_str(
        "<table data-table=\"groups\" class=\"sortable\">\n<thead><tr><th data-sort=\"text\">group</th>\
         <th data-sort=\"number\">lists</th><th data-sort=\"number\">pairs</th><th data-sort=\"number\">loss</th>\
         <th data-sort=\"number\">chance loss</th><th data-sort=\"number\">accuracy</th><th>accuracy interval</th>\
         </tr></thead>\n<tbody>\n",
    );
    let mut shown: Vec<usize> = order.iter().copied().take(MAX_TABLE_GROUPS).collect();
    shown.sort_unstable();
    for index in shown {
        let group = &groups[index];
        let _ = write!(out, "<tr data-group=\"{0}\"><th scope=\"row\">{0}</th>", escape(&group.group));
        count_cell(out, "lists", group.lists);
        count_cell(out, "pairs", group.pairs);
        figure_cell(out, "loss", group.loss);
        figure_cell(out, "chance_loss", group.chance_loss);
        figure_cell(out, "accuracy", group.accuracy);
        interval_cell(out, "accuracy_ci", intervals[index]);
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    if groups.len() > MAX_TABLE_GROUPS {
        let _ = writeln!(
            out,
            "<p class=\"note\">The table shows the {MAX_TABLE_GROUPS} groups with the most pairs of {}, in order of \
             first appearance; the summary line holds them all.</p>",
            groups.len()
        );
    }
    out.push_str(
        "<p class=\"note\">A group's interval comes from its totals as the run's does from the run's. Micro \
         accuracy counts every pair alike; macro accuracy is the mean of the groups' accuracies.</p>\n</section>\n",
    );
}
