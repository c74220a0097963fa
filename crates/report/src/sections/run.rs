//! The header: how the figures were made (the summary's `run`) and how the report was.

use std::fmt::Write;

use prefeval_core::pipeline::fingerprint::Fingerprint;
use prefeval_core::pipeline::run::VERSION;

use crate::html::escape;
use crate::number::json;
use crate::page::Meta;
use crate::read::Report;

pub fn write(out: &mut String, report: &Report, meta: &Meta) {
    out.push_str("<section id=\"run\">\n<h2>Run</h2>\n<table class=\"run\">\n");
    let mut row = |key: &str, label: &str, value: &str| {
        let _ = writeln!(out, "<tr data-run=\"{key}\"><th>{label}</th><td>{}</td></tr>", escape(value));
    };
    row("kind", "report of", report.kind.name());
    if let Some(run) = &report.run {
        if let Some(model) = &run.model {
            row("model", "model", model);
        }
        if let Some(models) = &run.models {
            row("models", "models", &models.join(", "));
        }
        row("normalization", "normalization", &run.normalization);
        row("beta", "β", &json(run.beta));
        row("format", "input format", &run.format);
        row("confidence", "confidence", &json(run.confidence));
        if let Some(bins) = run.calibration_bins {
            row("calibration_bins", "calibration bins", &bins.to_string());
        }
        if let Some(k) = run.top_disagreements {
            row("top_disagreements", "least probable pairs kept", &k.to_string());
        }
        if let Some(input) = &run.input {
            row("input", "input", &fingerprint(input));
        }
        if let Some(inputs) = &run.inputs {
            let shown: Vec<String> = inputs.iter().map(fingerprint).collect();
            row("inputs", "inputs", &shown.join("; "));
        }
        row("prefeval", "computed by", &format!("prefeval {}", run.prefeval));
    } else if let Some(comparison) = &report.comparison {
        row("normalization", "normalization", &comparison.normalization);
        row("confidence", "confidence", &json(comparison.confidence));
    }
    if let Some(failed) = report.lines_failed {
        row("lines_failed", "lines failed", &failed.to_string());
    }
    if !report.sources.is_empty() {
        row("sources", "drawn from", &report.sources.join(", "));
    }
    row("report_date", "report date", &meta.date);
    row("report_prefeval", "report drawn by", &format!("prefeval {VERSION}"));
    out.push_str("</table>\n</section>\n");
}

fn fingerprint(input: &Fingerprint) -> String {
    let value = serde_json::to_value(input).unwrap_or_default();
    match (value.get("bytes"), value.get("xxh3")) {
        (Some(bytes), Some(hash)) => format!("{bytes} bytes, xxh3 {}", hash.as_str().unwrap_or_default()),
        _ => value.to_string(),
    }
}
