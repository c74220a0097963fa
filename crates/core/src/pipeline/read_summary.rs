//! A summary line read back from a file (by `prefeval merge`): parsed with errors that name the
//! field, and its totals checked against every invariant an evaluation keeps (`totals_check`), so
//! a summary cut short, edited or written by another program is refused instead of merged.

use std::collections::HashSet;

use super::dataset::{MAX_GROUPS, disagreement_order};
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
    check_groups(&summary)?;
    check_calibration(&summary)?;
    check_disagreements(&summary)?;
    check_length(&summary)?;
    Ok(summary)
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::at(ErrorCode::InvalidValue, field, message)
}

/// At most `MAX_GROUPS` distinct groups, each with totals an evaluation can write, together no
/// more lists than the whole.
fn check_groups(summary: &SummaryInput) -> Result<(), Error> {
    let Some(groups) = &summary.groups else { return Ok(()) };
    if groups.len() > MAX_GROUPS {
        return Err(invalid("summary.groups", format!("{} groups; a run has at most {MAX_GROUPS}", groups.len())));
    }
    let mut names = HashSet::new();
    let mut lists = 0u64;
    for (index, group) in groups.iter().enumerate() {
        if !names.insert(group.group.as_str()) {
            return Err(invalid(
                format!("summary.groups[{index}].group"),
                format!("`{}` is listed twice", group.group),
            ));
        }
        totals_check::check(&group.totals)
            .map_err(|violation| invalid(format!("summary.groups[{index}].{}", violation.field), violation.message))?;
        lists = lists.saturating_add(group.totals.lists);
    }
    if lists > summary.totals.lists {
        return Err(invalid("summary.groups", format!("the groups hold {lists} lists of {}", summary.totals.lists)));
    }
    Ok(())
}

/// `totals.calibration` has `run.calibration_bins` bins (both or neither), each with sums its
/// count of pairs can have, together every pair.
fn check_calibration(summary: &SummaryInput) -> Result<(), Error> {
    let bins = match (&summary.totals.calibration, summary.run.calibration_bins) {
        (None, None) => return Ok(()),
        (Some(bins), Some(k)) if bins.len() == k => bins,
        (bins, k) => {
            return Err(invalid(
                "summary.totals.calibration",
                format!(
                    "has {} bins where summary.run.calibration_bins is {}",
                    bins.as_ref().map_or(0, Vec::len),
                    k.map_or("absent".to_string(), |k| k.to_string())
                ),
            ));
        }
    };
    let mut pairs = 0u64;
    for (index, bin) in bins.iter().enumerate() {
        let field = |name: &str| format!("summary.totals.calibration[{index}].{name}");
        let count = bin.count as f64;
        // q is in [½, 1] and (q − y)² in [0, 1]; sums of halves are exact.
        let slack = 1e-9 * count + 1e-300;
        if !(bin.sum_predicted >= 0.5 * count - slack && bin.sum_predicted <= count + slack) {
            return Err(invalid(
                field("sum_predicted"),
                format!("{} is no sum of {} values in [1/2, 1]", bin.sum_predicted, bin.count),
            ));
        }
        let halves = bin.sum_observed * 2.0;
        if !(halves.fract() == 0.0 && bin.sum_observed >= 0.0 && bin.sum_observed <= count) {
            return Err(invalid(
                field("sum_observed"),
                format!("{} is no count of halves of {} pairs", bin.sum_observed, bin.count),
            ));
        }
        if !(bin.sum_squared_error >= 0.0 && bin.sum_squared_error <= count + slack) {
            return Err(invalid(
                field("sum_squared_error"),
                format!("{} is no sum of {} values in [0, 1]", bin.sum_squared_error, bin.count),
            ));
        }
        pairs = pairs.checked_add(bin.count).ok_or_else(|| invalid(field("count"), "the counts overflow"))?;
    }
    if pairs != summary.totals.pairs {
        return Err(invalid(
            "summary.totals.calibration",
            format!("the bins count {pairs} pairs where the totals have {}", summary.totals.pairs),
        ));
    }
    Ok(())
}

/// `disagreements` hold at most `run.top_disagreements` pairs (both or neither), in order, each a
/// probability of a line of one of the summary's inputs.
fn check_disagreements(summary: &SummaryInput) -> Result<(), Error> {
    let (found, k) = match (&summary.disagreements, summary.run.top_disagreements) {
        (None, None) => return Ok(()),
        (Some(found), Some(k)) => (found, k),
        (_, k) => {
            let k = k.map_or("absent".to_string(), |k| k.to_string());
            return Err(invalid(
                "summary.disagreements",
                format!("present or absent where summary.run.top_disagreements is {k}"),
            ));
        }
    };
    if found.len() > k {
        return Err(invalid("summary.disagreements", format!("{} pairs where k is {k}", found.len())));
    }
    let inputs = summary.run.fingerprints().count();
    for (index, pair) in found.iter().enumerate() {
        let field = |name: &str| format!("summary.disagreements[{index}].{name}");
        if !(0.0..=1.0).contains(&pair.probability) {
            return Err(invalid(field("probability"), format!("{} is no probability", pair.probability)));
        }
        if pair.line == 0 {
            return Err(invalid(field("line"), "lines are numbered from 1"));
        }
        if pair.input.is_some_and(|input| input >= inputs) {
            return Err(invalid(field("input"), format!("the run has {inputs} inputs")));
        }
        if index > 0 && disagreement_order(&found[index - 1], pair).is_gt() {
            return Err(invalid(field("probability"), "the pairs are not least probable first"));
        }
    }
    Ok(())
}

/// `totals.length` holds counts of pairs, no more than the whole's.
fn check_length(summary: &SummaryInput) -> Result<(), Error> {
    let Some(length) = &summary.totals.length else { return Ok(()) };
    let counts =
        length.counts().map_err(|name| invalid(format!("summary.totals.length.{name}"), "is no count of pairs"))?;
    if counts.pairs > summary.totals.pairs {
        return Err(invalid(
            "summary.totals.length.pairs",
            format!("{} pairs with lengths of {} pairs", counts.pairs, summary.totals.pairs),
        ));
    }
    Ok(())
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
