//! Escaping and the small HTML pieces every section writes: a figure cell that carries its JSON
//! value, a count cell, a note for a section whose figures the input does not carry.

use std::fmt::Write;

use crate::number::{json, json_interval, shown, shown_interval};

/// `text` safe inside an element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A `<td>` showing `value` rounded, with its JSON text in `data-value`; `–` when absent.
pub fn figure_cell(out: &mut String, name: &str, value: Option<f64>) {
    match value {
        Some(value) => {
            let _ = write!(out, r#"<td data-figure="{name}" data-value="{}">{}</td>"#, json(value), shown(value));
        }
        None => {
            let _ = write!(out, r#"<td data-figure="{name}" class="none">–</td>"#);
        }
    }
}

/// A `<td>` showing an interval rounded, with its JSON `[lo,hi]` in `data-value`.
pub fn interval_cell(out: &mut String, name: &str, value: Option<(f64, f64)>) {
    match value {
        Some(value) => {
            let _ = write!(
                out,
                r#"<td data-figure="{name}" data-value="{}">{}</td>"#,
                json_interval(value),
                shown_interval(value)
            );
        }
        None => {
            let _ = write!(out, r#"<td data-figure="{name}" class="none">–</td>"#);
        }
    }
}

/// A `<td>` showing a count whole.
pub fn count_cell(out: &mut String, name: &str, value: u64) {
    let _ = write!(out, r#"<td data-figure="{name}" data-value="{value}">{value}</td>"#);
}

/// A figure shown inline (`<span>`), rounded, with its JSON text.
pub fn figure_span(name: &str, value: f64) -> String {
    format!(r#"<span data-figure="{name}" data-value="{}">{}</span>"#, json(value), shown(value))
}

/// Why a section is missing, and how to get it.
pub fn absent(out: &mut String, section: &str, why: &str) {
    let _ = write!(out, r#"<p class="absent" data-absent="{section}">{}</p>"#, escape(why));
}
