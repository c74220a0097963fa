//! The invariants every `TotalsJson` prefeval writes holds, checked when totals are read back from
//! a file (`prefeval merge`): totals edited by hand, cut short or written by another program are
//! refused, naming the field, rather than merged into figures no input can have (an accuracy above
//! 1, a loss of 0 for a missing sum).
//!
//! Each list counts: n lists, p_i ≥ 1 implied pairs, a_i ≤ p_i agreeing (in halves), a loss
//! l_i ≥ 0, a chance loss ≥ 0, and a τ-b in [−1, 1] where defined. The sums over lists then obey
//! Σa ≤ Σp, n ≤ Σp, (Σx)²/n ≤ Σx² ≤ (Σx)² for x ≥ 0 (Cauchy–Schwarz), Σa² ≤ Σa·p ≤ Σp²,
//! Σa·p ≤ Σa·Σp, Σa ≤ Σa·p and Σp ≤ Σp². Float sums are compared with a relative slack far above
//! their rounding and far below any real inconsistency.

use super::summary::TotalsJson;

/// A field of the totals that no evaluation could have written, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The field's path in a summary line, e.g. `totals.agreeing`.
    pub field: String,
    pub message: String,
}

/// Relative slack of the comparisons between compensated float sums.
const SLACK: f64 = 1e-9;
/// Absolute slack: squares of losses this small lose precision to subnormals.
const TINY: f64 = 1e-300;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
/// Below this a sum of halves or quarters is exact in f64, so its granularity can be checked.
const EXACT: f64 = 4_503_599_627_370_496.0; // 2^52

fn violation(field: &str, message: String) -> Violation {
    Violation { field: format!("totals.{field}"), message }
}

/// x ≤ y up to the rounding of float sums.
fn at_most(x: f64, y: f64) -> bool {
    x <= y + SLACK * y.abs() + TINY
}

/// Checks every invariant of `totals`; the first one broken is the error.
pub fn check(totals: &TotalsJson) -> Result<(), Violation> {
    check_sums_are_numbers(totals)?;
    let lists = totals.lists as f64;
    let pairs = totals.pairs as f64;
    let agreeing = totals.agreeing;
    let require =
        |holds: bool, field: &str, message: String| if holds { Ok(()) } else { Err(violation(field, message)) };

    if totals.lists == 0 {
        return check_empty(totals);
    }
    require(
        totals.pairs >= totals.lists,
        "pairs",
        format!("{} pairs for {} lists: every list implies at least one", totals.pairs, totals.lists),
    )?;
    require(
        granular(agreeing, 2.0) && agreeing * 2.0 < TWO_POW_64,
        "agreeing",
        format!("{agreeing} is not a count of halves"),
    )?;
    require(agreeing <= pairs, "agreeing", format!("{agreeing} agreeing pairs out of {} pairs", totals.pairs))?;
    require(
        totals.kendall_tau_lists <= totals.lists,
        "kendall_tau_lists",
        format!("{} lists with a τ-b out of {} lists", totals.kendall_tau_lists, totals.lists),
    )?;
    let taus = totals.kendall_tau_lists as f64;
    require(
        at_most(totals.kendall_tau_sum.abs(), taus),
        "kendall_tau_sum",
        format!("{} is not a sum of {} values in [-1, 1]", totals.kendall_tau_sum, totals.kendall_tau_lists),
    )?;
    check_loss(totals)?;
    check_square_sums(totals, lists, pairs)
}

/// Every float is finite and not negative (τ-b sums may be negative).
fn check_sums_are_numbers(totals: &TotalsJson) -> Result<(), Violation> {
    let sums = [
        ("agreeing", Some(totals.agreeing)),
        ("loss_sum", totals.loss_sum),
        ("loss_sum_scaled", totals.loss_sum_scaled),
        ("loss_sum_squares", totals.loss_sum_squares),
        ("chance_loss_sum", Some(totals.chance_loss_sum)),
        ("agreeing_squares", Some(totals.agreeing_squares)),
        ("agreeing_pairs", Some(totals.agreeing_pairs)),
        ("pairs_squares", Some(totals.pairs_squares)),
    ];
    for (field, value) in sums {
        if let Some(value) = value {
            if !(value.is_finite() && value >= 0.0) {
                return Err(violation(field, format!("{value} is not a finite number ≥ 0")));
            }
        }
    }
    if !totals.kendall_tau_sum.is_finite() {
        return Err(violation("kendall_tau_sum", format!("{} is not finite", totals.kendall_tau_sum)));
    }
    Ok(())
}

/// Without lists every count and sum is zero.
fn check_empty(totals: &TotalsJson) -> Result<(), Violation> {
    let fields = [
        ("pairs", totals.pairs as f64),
        ("agreeing", totals.agreeing),
        ("loss_sum", totals.loss_sum.unwrap_or(0.0)),
        ("loss_sum_scaled", totals.loss_sum_scaled.unwrap_or(0.0)),
        ("loss_sum_squares", totals.loss_sum_squares.unwrap_or(0.0)),
        ("chance_loss_sum", totals.chance_loss_sum),
        ("kendall_tau_sum", totals.kendall_tau_sum),
        ("kendall_tau_lists", totals.kendall_tau_lists as f64),
        ("agreeing_squares", totals.agreeing_squares),
        ("agreeing_pairs", totals.agreeing_pairs),
        ("pairs_squares", totals.pairs_squares),
    ];
    if let Some((field, value)) = fields.iter().find(|(_, value)| *value != 0.0) {
        return Err(violation(field, format!("{value} with 0 lists")));
    }
    match (totals.loss_sum, totals.loss_sum_squares) {
        (Some(_), Some(_)) => Ok(()),
        (None, _) => Err(violation("loss_sum", "missing".into())),
        (_, None) => Err(violation("loss_sum_squares", "missing, although a sum of no losses cannot overflow".into())),
    }
}

/// Exactly one of `loss_sum` and `loss_sum_scaled`, the scaled one only for a sum past f64; the
/// sum of squares between (Σl)²/n and (Σl)², absent only when (Σl)² overflows too.
fn check_loss(totals: &TotalsJson) -> Result<(), Violation> {
    let lists = totals.lists as f64;
    let loss_sum = match (totals.loss_sum, totals.loss_sum_scaled) {
        (Some(sum), None) => sum,
        (None, Some(scaled)) => {
            if !at_most(f64::MAX / TWO_POW_64, scaled) {
                return Err(violation(
                    "loss_sum_scaled",
                    format!("{scaled} is given instead of loss_sum, which it does not overflow"),
                ));
            }
            // The sum itself is past f64: so is its square, and nothing below bounds it.
            return Ok(());
        }
        (None, None) => return Err(violation("loss_sum", "missing (and no loss_sum_scaled instead)".into())),
        (Some(_), Some(_)) => {
            return Err(violation("loss_sum_scaled", "present beside loss_sum: one of them is written".into()));
        }
    };
    let square = loss_sum * loss_sum;
    match totals.loss_sum_squares {
        None if at_most(f64::MAX, square) => Ok(()),
        None => Err(violation(
            "loss_sum_squares",
            format!("missing, although it is at most loss_sum² = {square}, which does not overflow"),
        )),
        Some(squares) => {
            if !at_most(square / lists, squares) {
                return Err(violation(
                    "loss_sum_squares",
                    format!("{squares} is below loss_sum²/lists = {}", square / lists),
                ));
            }
            if !at_most(squares, square) {
                return Err(violation("loss_sum_squares", format!("{squares} is above loss_sum² = {square}")));
            }
            Ok(())
        }
    }
}

/// The sums of squares and products of agreeing (a) and implied (p) pairs per list.
fn check_square_sums(totals: &TotalsJson, lists: f64, pairs: f64) -> Result<(), Violation> {
    let agreeing = totals.agreeing;
    let (a2, ap, p2) = (totals.agreeing_squares, totals.agreeing_pairs, totals.pairs_squares);
    let rules = [
        ("agreeing_squares", granular(a2, 4.0), format!("{a2} is not a sum of squared halves")),
        ("agreeing_pairs", granular(ap, 2.0), format!("{ap} is not a sum of halves times counts")),
        ("pairs_squares", granular(p2, 1.0), format!("{p2} is not a sum of squared counts")),
        ("pairs_squares", at_most(pairs * pairs / lists, p2), format!("{p2} is below pairs²/lists")),
        ("pairs_squares", at_most(p2, pairs * pairs), format!("{p2} is above pairs²")),
        ("pairs_squares", at_most(pairs, p2), format!("{p2} is below pairs = {pairs}")),
        ("agreeing_squares", at_most(agreeing * agreeing / lists, a2), format!("{a2} is below agreeing²/lists")),
        ("agreeing_squares", at_most(a2, agreeing * agreeing), format!("{a2} is above agreeing²")),
        ("agreeing_squares", at_most(a2, ap), format!("{a2} is above agreeing_pairs = {ap}")),
        ("agreeing_pairs", at_most(ap, p2), format!("{ap} is above pairs_squares = {p2}")),
        ("agreeing_pairs", at_most(ap, agreeing * pairs), format!("{ap} is above agreeing × pairs")),
        ("agreeing_pairs", at_most(agreeing, ap), format!("{ap} is below agreeing = {agreeing}")),
    ];
    match rules.into_iter().find(|(_, holds, _)| !holds) {
        Some((field, _, message)) => Err(violation(field, message)),
        None => Ok(()),
    }
}

/// Whether `value` is a whole number of 1/`per_unit`, where f64 can tell.
fn granular(value: f64, per_unit: f64) -> bool {
    value >= EXACT || (value * per_unit).fract() == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::Totals;
    use crate::math::evaluation_for_totals as list;

    fn written() -> TotalsJson {
        let mut totals = Totals::default();
        for (loss, pairs, halves, tau) in [(0.25, 3, 6, Some(1.0)), (0.5, 1, 1, None), (1.0, 2, 0, Some(-1.0))] {
            totals.add(&list(loss, pairs, halves, tau));
        }
        TotalsJson::from(&totals)
    }

    fn field_of(totals: &TotalsJson) -> Option<String> {
        check(totals).err().map(|violation| violation.field)
    }

    #[test]
    fn totals_prefeval_writes_pass() {
        assert_eq!(check(&written()), Ok(()));
        assert_eq!(check(&TotalsJson::from(&Totals::default())), Ok(()));
        let mut equal = Totals::default();
        (0..1000).for_each(|_| equal.add(&list(0.1, 7, 9, Some(0.3))));
        assert_eq!(check(&TotalsJson::from(&equal)), Ok(()), "equal lists meet Cauchy–Schwarz with equality");
        let mut huge = Totals::default();
        (0..3).for_each(|_| huge.add(&list(1.5e308, 1, 2, None)));
        assert_eq!(check(&TotalsJson::from(&huge)), Ok(()), "an overflowing loss sum, written scaled");
    }

    #[test]
    fn each_broken_invariant_names_its_field() {
        type Change = fn(&mut TotalsJson);
        let cases: [(&str, Change); 14] = [
            ("totals.agreeing", |t| t.agreeing = 7.0),
            ("totals.agreeing", |t| t.agreeing = 2.25),
            ("totals.pairs", |t| t.pairs = 2),
            ("totals.kendall_tau_lists", |t| t.kendall_tau_lists = 4),
            ("totals.kendall_tau_sum", |t| t.kendall_tau_sum = 2.5),
            ("totals.loss_sum", |t| t.loss_sum = None),
            ("totals.loss_sum", |t| t.loss_sum = Some(-1.0)),
            ("totals.loss_sum_scaled", |t| t.loss_sum_scaled = Some(1.0)),
            ("totals.loss_sum_squares", |t| t.loss_sum_squares = None),
            ("totals.loss_sum_squares", |t| t.loss_sum_squares = Some(0.1)),
            ("totals.loss_sum_squares", |t| t.loss_sum_squares = Some(4.0)),
            ("totals.pairs_squares", |t| t.pairs_squares = 1e6),
            ("totals.agreeing_squares", |t| t.agreeing_squares = 0.1),
            ("totals.chance_loss_sum", |t| t.chance_loss_sum = f64::NAN),
        ];
        for (field, break_it) in cases {
            let mut totals = written();
            break_it(&mut totals);
            assert_eq!(field_of(&totals).as_deref(), Some(field), "{totals:?}");
        }
        let empty_with_pairs = TotalsJson { pairs: 1, ..TotalsJson::from(&Totals::default()) };
        assert_eq!(field_of(&empty_with_pairs).as_deref(), Some("totals.pairs"));
    }
}
