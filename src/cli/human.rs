//! The few lines `prefeval eval` ends with on stderr (unless `--quiet`), for a person: the counts,
//! the loss with the half-width of its interval beside the chance loss, the accuracy with its
//! interval, τ-b, the lines that failed, the time and the rate. Figures joined by ` · `, wrapped
//! so that no line is wider than 80 columns whatever the figures.

use std::time::Duration;

use crate::pipeline::summary::Summary;

pub const MAX_COLUMNS: usize = 80;

/// The summary of a run that read `bytes` (decoded) in `elapsed`, ending with a newline.
pub fn human_summary(summary: &Summary, bytes: u64, elapsed: Duration) -> String {
    let figures = &summary.figures;
    let mut parts = vec![format!("{} lists, {} pairs", grouped(figures.lists), grouped(figures.pairs))];
    if let Some(loss) = summary.loss {
        let mut part = format!("loss {}", figure(loss));
        if let Some((low, high)) = figures.loss_ci {
            part += &format!(" ± {}", figure((high - low) / 2.0));
        }
        if let Some(chance) = figures.chance_loss {
            part += &format!(" (chance {})", figure(chance));
        }
        parts.push(part);
    }
    if let Some(accuracy) = figures.accuracy {
        let mut part = format!("accuracy {}", figure(accuracy));
        if let Some((low, high)) = figures.accuracy_ci {
            part += &format!(" [{}, {}]", figure(low), figure(high));
        }
        parts.push(part);
    }
    if let Some(tau) = figures.kendall_tau {
        parts.push(format!("τ-b {}", figure(tau)));
    }
    let failed = summary.lines_failed;
    parts.push(format!("{} line{} failed", grouped(failed), if failed == 1 { "" } else { "s" }));
    let seconds = elapsed.as_secs_f64();
    // Under a second, milliseconds: "0.0 s" would say nothing.
    let mut timing = if seconds < 1.0 { format!("{} ms", elapsed.as_millis()) } else { format!("{seconds:.1} s") };
    if seconds > 0.0 {
        timing += &format!(", {:.1} MB/s", bytes as f64 / 1e6 / seconds);
    }
    parts.push(timing);
    wrap(&parts)
}

/// `parts` joined by ` · `, a new line started where the next would pass `MAX_COLUMNS`.
fn wrap(parts: &[String]) -> String {
    let mut out = String::new();
    let mut columns = 0;
    for part in parts {
        let width = part.chars().count();
        if columns > 0 && columns + 3 + width > MAX_COLUMNS {
            out.push('\n');
            columns = 0;
        }
        if columns > 0 {
            out.push_str(" · ");
            columns += 3;
        }
        out.push_str(part);
        columns += width;
    }
    out.push('\n');
    out
}

/// Four decimals, as a person compares losses and accuracies; a magnitude far from 1 (a `sum`
/// loss over long lists) in scientific form, so that no figure is wider than 11 columns.
fn figure(value: f64) -> String {
    if value == 0.0 || (1e-4..1e5).contains(&value.abs()) { format!("{value:.4}") } else { format!("{value:.3e}") }
}

/// `1400000` → `1,400,000`.
fn grouped(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Options;
    use crate::pipeline::run::Run;
    use crate::pipeline::summary::Figures;

    fn summary(figures: Figures, loss: Option<f64>, lines_failed: u64) -> Summary {
        let mut summary = Summary::new(&Default::default(), lines_failed, Run::new(&Options::default(), None));
        summary.figures = figures;
        summary.loss = loss;
        summary
    }

    #[test]
    fn the_figures_read_as_the_example_and_wrap_before_80_columns() {
        let figures = Figures {
            lists: 200_000,
            pairs: 1_400_000,
            accuracy: Some(0.623),
            chance_loss: Some(std::f64::consts::LN_2),
            kendall_tau: Some(0.24),
            loss_se: Some(0.001),
            loss_ci: Some((0.6391, 0.6433)),
            accuracy_se: Some(0.001),
            accuracy_ci: Some((0.621, 0.625)),
        };
        let text = human_summary(&summary(figures, Some(0.6412), 0), 96_720_000, Duration::from_millis(3100));
        assert_eq!(
            text,
            "200,000 lists, 1,400,000 pairs · loss 0.6412 ± 0.0021 (chance 0.6931)\n\
             accuracy 0.6230 [0.6210, 0.6250] · τ-b 0.2400 · 0 lines failed\n\
             3.1 s, 31.2 MB/s\n"
        );
    }

    #[test]
    fn no_line_is_wider_than_80_columns_at_extreme_figures_and_absent_figures_are_left_out() {
        let huge = Figures {
            lists: u64::MAX,
            pairs: u64::MAX,
            accuracy: Some(-0.000_012_345_678),
            chance_loss: Some(-1.234_567_8e300),
            kendall_tau: Some(-1.0),
            loss_se: Some(f64::MAX),
            loss_ci: Some((-f64::MAX, f64::MAX)),
            accuracy_se: Some(1.0),
            accuracy_ci: Some((-1e-300, 123_456_789.0)),
        };
        let text = human_summary(&summary(huge, Some(-f64::MAX), u64::MAX), u64::MAX, Duration::from_secs(u64::MAX));
        for line in text.lines() {
            assert!(line.chars().count() <= MAX_COLUMNS, "{} columns: {line}", line.chars().count());
        }
        let empty = Figures {
            lists: 0,
            pairs: 0,
            accuracy: None,
            chance_loss: None,
            kendall_tau: None,
            loss_se: None,
            loss_ci: None,
            accuracy_se: None,
            accuracy_ci: None,
        };
        let text = human_summary(&summary(empty, None, 1), 10, Duration::ZERO);
        assert_eq!(text, "0 lists, 0 pairs · 1 line failed · 0 ms\n");
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_400_000), "1,400,000");
        assert_eq!(grouped(u64::MAX), "18,446,744,073,709,551,615");
    }
}
