//! `prefeval eval`'s progress bar on stderr, when stderr is a terminal: bytes read of the file's
//! size, rate, time left and lines done (a spinner when the size is unknown, as for stdin). It
//! fits in 80 columns whatever the figures: every field but the bar has a bounded width, and the
//! bar takes what the terminal has left.

use std::cell::Cell;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// With the file's size: the bar (`wide_bar`: as wide as the rest of the line allows), bytes read
/// and of how many, rate, time left, lines done.
const BAR: &str = "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}";
/// Without a size (stdin): a spinner, bytes read, rate, lines done.
const SPINNER: &str = "{spinner} {binary_bytes} {binary_bytes_per_sec} {msg}";

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Cell<u64>,
}

impl Progress {
    /// A bar when `shown` and stderr is a terminal; nothing otherwise.
    pub fn new(size: Option<u64>, shown: bool) -> Progress {
        let lines = Cell::new(0);
        if !shown || !std::io::stderr().is_terminal() {
            return Progress { bar: None, lines };
        }
        let (bar, template) = match size {
            Some(size) => (ProgressBar::new(size), BAR),
            None => (ProgressBar::new_spinner(), SPINNER),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Progress { bar: Some(bar), lines }
    }

    pub fn advance(&self, bytes: u64, lines: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            if lines > 0 {
                self.lines.set(self.lines.get().saturating_add(lines));
                bar.set_message(lines_done(self.lines.get()));
            }
        }
    }

    /// Takes the bar off the terminal: the summary that follows says what it said.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `937 lines`, `12.3k lines`, `4.6M lines`, ...: at most 12 columns for any count.
fn lines_done(lines: u64) -> String {
    if lines < 10_000 {
        return format!("{lines} lines");
    }
    let mut value = lines as f64;
    let mut prefix = 0;
    while value >= 999.95 && prefix < 6 {
        value /= 1000.0;
        prefix += 1;
    }
    format!("{value:.1}{} lines", ["", "k", "M", "G", "T", "P", "E"][prefix])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most columns each placeholder of indicatif 0.17 writes, for any figures: bytes as
    /// `1023.99 KiB` (and `16.00 EiB` at most), a rate with `/s`, an ETA as `{:#}` of a
    /// `HumanDuration` of at most u64::MAX seconds (`584942417355y`), a percentage, our message.
    fn widest(placeholder: &str) -> usize {
        match placeholder {
            "binary_bytes" | "binary_total_bytes" => "1023.99 KiB".len(),
            "binary_bytes_per_sec" => "1023.99 KiB/s".len(),
            "eta" => "584942417355y".len(),
            "spinner" => 1,
            "msg" => (0..64).map(|shift| lines_done(u64::MAX >> shift).chars().count()).max().unwrap_or(0),
            other => panic!("no known width for {{{other}}}"),
        }
    }

    /// The columns a template takes at most, but for a `wide_bar`, which takes what is left.
    fn widest_line(template: &str) -> usize {
        let mut width = 0;
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            width += rest[..start].chars().count();
            let end = rest[start..].find('}').map_or(rest.len(), |end| start + end);
            let name = &rest[start + 1..end];
            if name != "wide_bar" {
                width += widest(name.split(':').next().unwrap_or(name));
            }
            rest = &rest[(end + 1).min(rest.len())..];
        }
        width + rest.chars().count()
    }

    #[test]
    fn every_template_fits_in_80_columns_at_any_figures_with_room_for_the_bar() {
        assert!(widest_line(BAR) + 10 <= 80, "{} columns besides the bar", widest_line(BAR));
        assert!(widest_line(SPINNER) <= 80, "{} columns", widest_line(SPINNER));
        assert!(ProgressStyle::with_template(BAR).is_ok() && ProgressStyle::with_template(SPINNER).is_ok());
    }

    #[test]
    fn line_counts_are_short_and_read_as_counts() {
        assert_eq!(lines_done(937), "937 lines");
        assert_eq!(lines_done(12_345), "12.3k lines");
        assert_eq!(lines_done(999_960), "1.0M lines");
        assert_eq!(lines_done(4_600_000), "4.6M lines");
        assert_eq!(lines_done(u64::MAX), "18.4E lines");
    }
}
