//! The least probable pairs the run kept (at most its k): a table a reviewer sorts, filters and
//! downloads as CSV, to check those labels first.

use std::fmt::Write;

use prefeval_core::pipeline::summary::OwnedId;

use crate::html::{absent, count_cell, escape, figure_cell};
use crate::model::Evaluation;

pub fn write(out: &mut String, evaluation: &Evaluation, scope: &str) {
    let Some(disagreements) = &evaluation.disagreements else {
        absent(
            out,
            "disagreements",
            "No disagreements kept: evaluate with --top-disagreements k (top_disagreements=k on the stream or \
             /v1/report) for the pairs a reviewer should check first.",
        );
        return;
    };
    let merged = disagreements.iter().any(|row| row.input.is_some());
    let _ = write!(
        out,
        "<section data-section=\"disagreements\" id=\"disagreements-{scope}\">\n<h3>Least probable pairs</h3>\n\
         <div class=\"tools\"><input type=\"search\" placeholder=\"filter rows\" aria-label=\"filter rows\" \
         data-filter=\"disagreements-{scope}\"> <button type=\"button\" data-download=\"disagreements-{scope}\">\
         Download CSV</button></div>\n<table data-table=\"disagreements\" id=\"table-disagreements-{scope}\" \
         class=\"sortable\">\n<thead><tr>"
    );
    if merged {
        out.push_str("<th data-sort=\"number\" data-column=\"input\">input</th>");
    }
    out.push_str(
        "<th data-sort=\"number\" data-column=\"line\">line</th><th data-sort=\"text\" data-column=\"list_id\">list id</th>\
         <th data-sort=\"number\" data-column=\"preferred\">preferred</th><th data-sort=\"text\" data-column=\"preferred_id\">\
         preferred id</th><th data-sort=\"number\" data-column=\"other\">other</th><th data-sort=\"text\" \
         data-column=\"other_id\">other id</th><th data-sort=\"number\" data-column=\"probability\" aria-sort=\"ascending\">\
         probability</th></tr></thead>\n<tbody>\n",
    );
    for row in disagreements {
        out.push_str("<tr>");
        if merged {
            count_cell(out, "input", row.input.unwrap_or(0) as u64);
        }
        count_cell(out, "line", row.line);
        id_cell(out, "list_id", row.list_id.as_ref());
        count_cell(out, "preferred", u64::from(row.preferred));
        id_cell(out, "preferred_id", row.preferred_id.as_ref());
        count_cell(out, "other", u64::from(row.other));
        id_cell(out, "other_id", row.other_id.as_ref());
        figure_cell(out, "probability", Some(row.probability));
        out.push_str("</tr>\n");
    }
    let _ = write!(
        out,
        "</tbody>\n</table>\n<p class=\"note\">The {} least probable of the run's implied pairs (at most the k asked \
         for), least probable first: the model's probability that the human-preferred item wins. Items are their \
         indices in the list{}. Click a column's head to sort.</p>\n</section>\n",
        disagreements.len(),
        if merged { "; input is the index of the input in the run's inputs" } else { "" }
    );
}

fn id_cell(out: &mut String, name: &str, id: Option<&OwnedId>) {
    match id {
        Some(id) => {
            let text = serde_json::to_string(id).unwrap_or_default();
            let shown = text.trim_matches('"');
            let _ = write!(out, "<td data-figure=\"{name}\" data-value=\"{}\">{}</td>", escape(&text), escape(shown));
        }
        None => {
            let _ = write!(out, "<td data-figure=\"{name}\" class=\"none\"></td>");
        }
    }
}
