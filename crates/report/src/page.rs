//! The document: head (styles, a content security policy that forbids every request), the
//! sections in order, the script that sorts, filters and downloads the tables. Everything is
//! inline: the page opens from disk on a machine with no network.

use std::fmt::Write;

use prefeval_core::pipeline::run::VERSION;

use crate::html::escape;
use crate::read::{Kind, Report};
use crate::sections;

const STYLE: &str = include_str!("../assets/report.css");
const SCRIPT: &str = include_str!("../assets/report.js");

/// What a report says about its own making, besides its input.
#[derive(Clone, Debug)]
pub struct Meta {
    /// The day the report was drawn, `YYYY-MM-DD` (`report_date`).
    pub date: String,
}

impl Report {
    /// The report as one HTML document.
    pub fn to_html(&self, meta: &Meta) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = match self.kind {
            Kind::Evaluation => format!("prefeval report: {}", self.headline[0].model),
            Kind::Comparison => format!(
                "prefeval report: {}",
                self.headline.iter().map(|row| row.model.as_str()).collect::<Vec<_>>().join(" vs ")
            ),
        };
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\" data-report-kind=\"{kind}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
             script-src 'unsafe-inline'; img-src data:\">\n\
             <meta name=\"generator\" content=\"prefeval {VERSION}\">\n<title>{title}</title>\n<style>\n{STYLE}</style>\n\
             </head>\n<body>\n<main>\n<h1>{title}</h1>\n",
            kind = self.kind.name(),
            title = escape(&title),
        );
        sections::run::write(&mut out, self, meta);
        sections::headline::write(&mut out, self);
        if let Some(comparison) = &self.comparison {
            sections::comparison::write(&mut out, comparison);
        }
        let several = self.evaluations.len() > 1 || self.kind == Kind::Comparison;
        if self.kind == Kind::Comparison && self.evaluations.is_empty() {
            sections::length::write_comparison(&mut out, self);
        }
        for (index, (model, evaluation)) in self.evaluations.iter().enumerate() {
            let _ = writeln!(out, "<div class=\"model\" data-model=\"{}\">", escape(model));
            if several {
                let _ = writeln!(out, "<h2 class=\"model-name\">{}</h2>", escape(model));
            }
            let scope = format!("m{index}");
            sections::calibration::write(&mut out, evaluation, &scope);
            sections::groups::write(&mut out, evaluation, &scope);
            sections::length::write(&mut out, model, evaluation.length.as_ref(), &scope);
            sections::disagreements::write(&mut out, evaluation, &scope);
            out.push_str("</div>\n");
        }
        let _ = write!(
            out,
            "<footer>\n<p>Numbers are shown to four significant digits, counts whole; each figure holds \
             the number of the JSON it came from exactly in its <code>data-value</code>. Intervals are at the \
             run's confidence. Drawn by prefeval {VERSION}.</p>\n</footer>\n</main>\n<script>\n{SCRIPT}</script>\n\
             </body>\n</html>\n"
        );
        out
    }
}
