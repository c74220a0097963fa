//! A summary line read back from a file (by `prefeval merge`): parsed with errors that name the
//! field, and its totals checked against every invariant an evaluation keeps (`totals_check`), so
//! a summary cut short, edited or written by another program is refused instead of merged.

use super::summary::{SummaryInput, SummaryLine};
use super::{decode, totals_check};
use crate::error::{Error, ErrorCode};

/// The summary on `line`. Every field is required, except those a summary writes only when known
/// (`run.model`; `run.input` or, merged, `run.inputs`; one of `loss_sum`/`loss_sum_scaled`,
/// `loss_sum_squares` as `totals_check` says). The error's path names the field at fault, e.g.
/// `summary.totals.agreeing` or `summary.run.beta`.
pub fn read_summary_line(line: &[u8]) -> Result<SummaryInput, Error> {
    let summary = decode::parse::<SummaryLine>(line)?.summary;
    summary.run.check("summary.run")?;
    if summary.normalization != summary.run.normalization {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            "summary.normalization",
            format!(
                "`{}` differs from summary.run.normalization `{}`: the summary was edited",
                summary.normalization, summary.run.normalization
            ),
        ));
    }
    totals_check::check(&summary.totals).map_err(|violation| {
        Error::at(ErrorCode::InvalidValue, format!("summary.{}", violation.field), violation.message)
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = r#""run":{"prefeval":"0.1.0","normalization":"sum","beta":1.0,"format":"native","confidence":0.95,"input":{"bytes":1,"xxh3":"0000000000000001"}}"#;

    #[test]
    fn a_missing_field_or_a_wrapped_count_is_named_by_its_path() {
        let line = |totals: &str| {
            format!(
                r#"{{"summary":{{"normalization":"sum","lines_failed":0,"totals":{{{totals}"chance_loss_sum":0.0,"kendall_tau_sum":0.0,"kendall_tau_lists":0,"agreeing_squares":0.0,"agreeing_pairs":0.0,"pairs_squares":0.0}},{RUN}}}}}"#
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

#[cfg(test)]
mod run_tests {
    use super::*;

    const TOTALS: &str = r#""totals":{"lists":0,"pairs":0,"agreeing":0.0,"loss_sum":0.0,"loss_sum_squares":0.0,"chance_loss_sum":0.0,"kendall_tau_sum":0.0,"kendall_tau_lists":0,"agreeing_squares":0.0,"agreeing_pairs":0.0,"pairs_squares":0.0}"#;

    fn path_of(normalization: &str, run: &str) -> Option<String> {
        let line = format!(r#"{{"summary":{{"normalization":"{normalization}","lines_failed":0,{TOTALS}{run}}}}}"#);
        read_summary_line(line.as_bytes()).err().map(|error| error.path.unwrap_or_default())
    }

    #[test]
    fn the_run_is_required_and_its_missing_or_edited_fields_are_named() {
        let fields = r#""prefeval":"0.1.0","normalization":"sum","beta":1.0,"format":"native","confidence":0.95"#;
        let input = r#","input":{"bytes":1,"xxh3":"0000000000000001"}"#;
        assert_eq!(path_of("sum", &format!(r#","run":{{{fields}{input}}}"#)), None);
        assert_eq!(path_of("sum", "").as_deref(), Some("summary.run"));
        assert_eq!(path_of("sum", &format!(r#","run":{{{fields}}}"#)).as_deref(), Some("summary.run.input"));
        let no_beta = fields.replace(r#""beta":1.0,"#, "");
        assert_eq!(path_of("sum", &format!(r#","run":{{{no_beta}{input}}}"#)).as_deref(), Some("summary.run.beta"));
        assert_eq!(
            path_of("comparisons", &format!(r#","run":{{{fields}{input}}}"#)).as_deref(),
            Some("summary.normalization")
        );
    }
}
