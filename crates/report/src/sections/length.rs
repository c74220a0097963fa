//! Length bias: the length-only baseline (prefer the longer item when the human did more often),
//! and the model's accuracy on the pairs where the human preferred the longer item and the
//! shorter one.

use std::fmt::Write;

use crate::chart;
use crate::html::{count_cell, escape, figure_cell};
use crate::model::Length;
use crate::read::Report;

/// The length section of one model.
pub fn write(out: &mut String, model: &str, length: Option<&Length>, scope: &str) {
    let Some(length) = length else {
        return;
    };
    let _ = write!(out, "<section data-section=\"length\" id=\"length-{scope}\">\n<h3>Length bias</h3>\n");
    chart::length(out, &[(String::new(), length)]);
    table(out, &[(model.to_string(), length)]);
    out.push_str("</section>\n");
}

/// The length section of a comparison: every model's figures side by side.
pub fn write_comparison(out: &mut String, report: &Report) {
    let Some(comparison) = &report.comparison else {
        return;
    };
    let lengths: Vec<(String, &Length)> = comparison
        .models
        .iter()
        .filter_map(|model| model.length.as_ref().map(|length| (model.model.clone(), length)))
        .collect();
    if lengths.is_empty() {
        return;
    }
    out.push_str("<section data-section=\"length\" id=\"length-comparison\">\n<h2>Length bias</h2>\n");
    chart::length(out, &lengths);
    table(out, &lengths);
    out.push_str("</section>\n");
}

fn table(out: &mut String, lengths: &[(String, &Length)]) {
    out.push_str(
        "<table data-table=\"length\">\n<thead><tr><th>model</th><th>pairs with lengths</th><th>length-only baseline</th>\
         <th>reward follows length</th><th>accuracy, longer preferred</th><th>pairs</th>\
         <th>accuracy, shorter preferred</th><th>pairs</th></tr></thead>\n<tbody>\n",
    );
    for (model, length) in lengths {
        let _ = write!(out, "<tr data-model=\"{0}\"><th scope=\"row\">{0}</th>", escape(model));
        count_cell(out, "pairs", length.pairs);
        figure_cell(out, "baseline_accuracy", Some(length.baseline_accuracy));
        figure_cell(out, "reward_follows_length", length.reward_follows_length);
        figure_cell(out, "accuracy_preferred_longer", length.accuracy_preferred_longer);
        count_cell(out, "pairs_preferred_longer", length.pairs_preferred_longer);
        figure_cell(out, "accuracy_preferred_shorter", length.accuracy_preferred_shorter);
        count_cell(out, "pairs_preferred_shorter", length.pairs_preferred_shorter);
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">The baseline is the accuracy of a model that prefers the longer item \
         when raters did so more often, else the shorter. A reward model that merely follows length scores high \
         where the longer item was preferred and low where the shorter was.</p>\n",
    );
}
