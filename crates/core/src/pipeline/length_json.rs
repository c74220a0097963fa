//! Length bias in JSON: the figures a summary shows (`length`) and the pair counts it carries so
//! shards merge exactly (`totals.length`), both directions here, like `summary.rs` for `Totals`.

use serde::{Deserialize, Serialize};

use crate::math::{LengthCounts, LengthFigures};

/// `length` of a summary (docs/design/api.md, "Dataset-scale figures"); ratios without pairs are
/// left out. Read back by the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LengthJson {
    pub pairs: u64,
    pub baseline_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_follows_length: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_preferred_longer: Option<f64>,
    pub pairs_preferred_longer: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy_preferred_shorter: Option<f64>,
    pub pairs_preferred_shorter: u64,
}

impl LengthJson {
    /// The figures of `counts`, or `None` when no pair had both lengths (then no `length` is written).
    pub fn of(counts: &LengthCounts) -> Option<LengthJson> {
        counts.figures().map(|figures: LengthFigures| LengthJson {
            pairs: figures.pairs,
            baseline_accuracy: figures.baseline_accuracy,
            reward_follows_length: figures.reward_follows_length,
            accuracy_preferred_longer: figures.accuracy_preferred_longer,
            pairs_preferred_longer: figures.pairs_preferred_longer,
            accuracy_preferred_shorter: figures.accuracy_preferred_shorter,
            pairs_preferred_shorter: figures.pairs_preferred_shorter,
        })
    }
}

/// `totals.length`: the pair counts, agreements as numbers of pairs (a reward tie counts ½).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthTotalsJson {
    pub pairs: u64,
    pub pairs_preferred_longer: u64,
    pub agreeing_preferred_longer: f64,
    pub pairs_preferred_shorter: u64,
    pub agreeing_preferred_shorter: f64,
}

impl From<&LengthCounts> for LengthTotalsJson {
    fn from(counts: &LengthCounts) -> Self {
        LengthTotalsJson {
            pairs: counts.pairs,
            pairs_preferred_longer: counts.preferred_longer,
            agreeing_preferred_longer: counts.agreeing_preferred_longer_halves as f64 / 2.0,
            pairs_preferred_shorter: counts.preferred_shorter,
            agreeing_preferred_shorter: counts.agreeing_preferred_shorter_halves as f64 / 2.0,
        }
    }
}

impl LengthTotalsJson {
    /// The counts, or the name of the first field that is no count of pairs (negative, not a
    /// whole number of halves, or larger than the pairs it is a share of).
    pub fn counts(&self) -> Result<LengthCounts, &'static str> {
        let halves = |agreeing: f64, name| {
            let doubled = agreeing * 2.0;
            // Halves of real counts are integers well inside f64's exact range.
            (doubled.is_finite() && doubled >= 0.0 && doubled.fract() == 0.0 && doubled <= 2f64.powi(53))
                .then_some(doubled as u64)
                .ok_or(name)
        };
        let counts = LengthCounts {
            pairs: self.pairs,
            preferred_longer: self.pairs_preferred_longer,
            agreeing_preferred_longer_halves: halves(self.agreeing_preferred_longer, "agreeing_preferred_longer")?,
            preferred_shorter: self.pairs_preferred_shorter,
            agreeing_preferred_shorter_halves: halves(self.agreeing_preferred_shorter, "agreeing_preferred_shorter")?,
        };
        match counts.inconsistency() {
            Some(name) => Err(name),
            None => Ok(counts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_to_json_and_back_and_impossible_ones_are_named() {
        let mut counts = LengthCounts::default();
        counts.add_pair(9.0, 2.0, 0.0);
        counts.add_pair(9.0, 2.0, 1.0);
        counts.add_pair(1.0, 2.0, -1.0);
        counts.add_pair(1.0, 1.0, 1.0);
        let json = LengthTotalsJson::from(&counts);
        assert_eq!(json.agreeing_preferred_longer, 1.5);
        assert_eq!(json.counts(), Ok(counts));
        let text = serde_json::to_string(&json).unwrap();
        let back: LengthTotalsJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back, json);
        assert_eq!(
            LengthTotalsJson { agreeing_preferred_longer: 0.25, ..json }.counts(),
            Err("agreeing_preferred_longer")
        );
        assert_eq!(
            LengthTotalsJson { agreeing_preferred_longer: 9.0, ..json }.counts(),
            Err("agreeing_preferred_longer")
        );
        assert_eq!(LengthTotalsJson { pairs: 1, ..json }.counts(), Err("pairs_preferred_longer"));
        let figures = LengthJson::of(&counts).unwrap();
        assert_eq!((figures.pairs, figures.pairs_preferred_longer, figures.pairs_preferred_shorter), (4, 2, 1));
        assert_eq!(LengthJson::of(&LengthCounts::default()), None);
    }
}
