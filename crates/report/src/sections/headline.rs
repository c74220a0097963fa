//! The headline figures, one row per model: loss beside chance loss, accuracy, τ-b, each with its
//! interval where the summary has one.

use std::fmt::Write;

use crate::html::{count_cell, escape, figure_cell, interval_cell};
use crate::read::Report;

pub fn write(out: &mut String, report: &Report) {
    let macro_accuracy = report.headline.iter().any(|row| row.macro_accuracy.is_some());
    out.push_str(
        "<section id=\"headline\">\n<h2>Headline figures</h2>\n<table class=\"figures\" data-table=\"headline\">\n\
         <thead><tr><th>model</th><th>lists</th><th>pairs</th><th>loss</th><th>loss interval</th>\
         <th>chance loss</th><th>accuracy</th><th>accuracy interval</th><th>τ-b</th>",
    );
    if macro_accuracy {
        out.push_str("<th>macro accuracy</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &report.headline {
        let _ = write!(out, "<tr data-model=\"{0}\"><th scope=\"row\">{0}</th>", escape(&row.model));
        count_cell(out, "lists", row.lists);
        count_cell(out, "pairs", row.pairs);
        figure_cell(out, "loss", row.loss);
        interval_cell(out, "loss_ci", row.loss_ci);
        figure_cell(out, "chance_loss", row.chance_loss);
        figure_cell(out, "accuracy", row.accuracy);
        interval_cell(out, "accuracy_ci", row.accuracy_ci);
        figure_cell(out, "kendall_tau", row.kendall_tau);
        if macro_accuracy {
            figure_cell(out, "macro_accuracy", row.macro_accuracy);
        }
        out.push_str("</tr>\n");
    }
    out.push_str(
        "</tbody>\n</table>\n<p class=\"note\">Loss is the mean listwise loss (lower is better); chance loss is \
         what rewards that say nothing would score. Accuracy is the share of implied pairs the model orders as \
         the human did, a reward tie counting one half. τ-b has no interval.</p>\n</section>\n",
    );
}
