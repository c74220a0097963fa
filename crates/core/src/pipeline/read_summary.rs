//! A summary line read back from a file (by `prefeval merge`): parsed with errors that name the
//! field, and its totals checked against every invariant an evaluation keeps (`totals_check`), so
//! a summary cut short, edited or written by another program is refused instead of merged.

use super::summary::{SummaryInput, SummaryLine};
use super::{decode, totals_check};
use crate::error::{Error, ErrorCode};

/// The summary on `line`. Every field is required, except those a summary writes only when known
/// (`input`, and one of `loss_sum`/`loss_sum_scaled`, `loss_sum_squares` as `totals_check` says).
/// The error's path names the field at fault, e.g. `summary.totals.agreeing`.
pub fn read_summary_line(line: &[u8]) -> Result<SummaryInput, Error> {
    let summary = decode::parse::<SummaryLine>(line)?.summary;
    totals_check::check(&summary.totals).map_err(|violation| {
        Error::at(ErrorCode::InvalidValue, format!("summary.{}", violation.field), violation.message)
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_field_or_a_wrapped_count_is_named_by_its_path() {
        let line = |totals: &str| {
            format!(
                r#"{{"summary":{{"normalization":"sum","lines_failed":0,"totals":{{{totals}"chance_loss_sum":0.0,"kendall_tau_sum":0.0,"kendall_tau_lists":0,"agreeing_squares":0.0,"agreeing_pairs":0.0,"pairs_squares":0.0}}}}}}"#
            )
        };
        let path_of = |totals: &str| read_summary_line(line(totals).as_bytes()).err().and_then(|error| error.path);
        let empty = r#""lists":0,"pairs":0,"agreeing":0.0,"loss_sum":0.0,"loss_sum_squares":0.0,"#;
        assert_eq!(path_of(empty), None);
        assert_eq!(
            path_of(r#""lists":0,"agreeing":0.0,"loss_sum":0.0,"loss_sum_squares":0.0,"#).as_deref(),
            Some("summary.totals.pairs")
        );
        let wrapped = r#""lists":18446744073709551616,"pairs":0,"agreeing":0.0,"loss_sum":0.0,"loss_sum_squares":0.0,"#;
        assert_eq!(path_of(wrapped).as_deref(), Some("summary.totals.lists"));
        let no_loss = r#""lists":0,"pairs":0,"agreeing":0.0,"loss_sum_squares":0.0,"#;
        assert_eq!(path_of(no_loss).as_deref(), Some("summary.totals.loss_sum"));
    }
}
