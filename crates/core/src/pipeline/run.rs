//! What a summary was computed from (`run`): the prefeval version, the model label, the options
//! that change its figures (normalization, β, confidence), the input format, and the fingerprint
//! of the input (`input`, on the stream and the CLI, which read it whole) or of the inputs a merge
//! summed (`inputs`, in file order). A summary read back alone says how to reproduce it, and
//! `prefeval merge` refuses summaries whose figures do not add up (other normalization, β or model).

use serde::{Deserialize, Serialize};

use super::Options;
use super::fingerprint::Fingerprint;
use super::format::Format;
use super::options::{MAX_CALIBRATION_BINS, MAX_TOP_DISAGREEMENTS};
use crate::error::{Error, ErrorCode};
use crate::math::Normalization;

/// The version every `run` records. The core and the binary are one release (the same version in
/// both manifests, checked by a test of the binary).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `run.format` of a merge of summaries of different input formats: the format does not change
/// the figures, so they merge, but no one format names the inputs.
pub const MIXED_FORMATS: &str = "mixed";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub prefeval: String,
    /// The model label, when the request or the command named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The models of a comparison, in order (a comparison has no `model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    pub normalization: String,
    pub beta: f64,
    /// An input format's name, or `mixed` (a merge of several).
    pub format: String,
    pub confidence: f64,
    /// K of the calibration figures, when asked for: summaries of other K do not merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_bins: Option<usize>,
    /// k of the least probable pairs, when asked for: summaries of other k do not merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_disagreements: Option<usize>,
    /// The byte count and xxh3-64 of the input as read (stream and CLI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Fingerprint>,
    /// A merge's inputs, one per summarised input, in file order (a merged file's own flattened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Vec<Fingerprint>>,
}

impl Run {
    /// The run of an evaluation with `options`, labelled `model`.
    pub fn new(options: &Options, model: Option<&str>) -> Run {
        Run {
            prefeval: VERSION.to_string(),
            model: model.map(str::to_string),
            models: None,
            normalization: options.math.normalization.name().to_string(),
            beta: options.math.beta,
            format: options.format.name().to_string(),
            confidence: options.confidence,
            calibration_bins: options.calibration_bins,
            top_disagreements: options.top_disagreements,
            input: None,
            inputs: None,
        }
    }

    /// The run of a comparison of `models` with `options`.
    pub fn compared(options: &Options, models: &[String]) -> Run {
        Run { models: Some(models.to_vec()), ..Run::new(options, None) }
    }

    /// The run over the input with this fingerprint.
    pub fn with_input(self, fingerprint: Fingerprint) -> Run {
        Run { input: Some(fingerprint), ..self }
    }

    /// The normalization named, when it is one.
    pub fn normalization(&self) -> Option<Normalization> {
        Normalization::from_name(&self.normalization)
    }

    /// What a run read back must hold beyond its fields' types; the error's path is below `prefix`
    /// (`summary.run`).
    pub fn check(&self, prefix: &str) -> Result<(), Error> {
        let invalid = |field: &str, message: String| {
            Err(Error::at(ErrorCode::InvalidValue, format!("{prefix}.{field}"), message))
        };
        if self.normalization().is_none() {
            return invalid("normalization", format!("unknown normalization `{}`", self.normalization));
        }
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return invalid("beta", format!("must be a finite number > 0, got {}", self.beta));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return invalid("confidence", format!("must be strictly between 0 and 1, got {}", self.confidence));
        }
        if self.calibration_bins.is_some_and(|bins| !(1..=MAX_CALIBRATION_BINS as usize).contains(&bins)) {
            return invalid("calibration_bins", format!("must be from 1 to {MAX_CALIBRATION_BINS}"));
        }
        if self.top_disagreements.is_some_and(|k| !(1..=MAX_TOP_DISAGREEMENTS as usize).contains(&k)) {
            return invalid("top_disagreements", format!("must be from 1 to {MAX_TOP_DISAGREEMENTS}"));
        }
        if Format::from_name(&self.format).is_none() && self.format != MIXED_FORMATS {
            return invalid("format", format!("unknown format `{}`", self.format));
        }
        match (&self.input, &self.inputs) {
            (Some(_), None) => Ok(()),
            (None, Some(inputs)) if !inputs.is_empty() => Ok(()),
            (None, None) => Err(Error::at(
                ErrorCode::MissingField,
                format!("{prefix}.input"),
                "missing field `input`: without the fingerprint of what it summarises, an input given twice \
                 cannot be told",
            )),
            (None, Some(_)) => invalid("inputs", "must hold at least one fingerprint".to_string()),
            (Some(_), Some(_)) => {
                invalid("inputs", "a run has `input` (one input) or `inputs` (a merge), not both".to_string())
            }
        }
    }

    /// The inputs this run summarises, in order.
    pub fn fingerprints(&self) -> impl Iterator<Item = &Fingerprint> {
        self.input.iter().chain(self.inputs.iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_holds_the_options_that_change_the_figures_and_leaves_out_what_is_unknown() {
        let mut options = Options::default();
        options.math.beta = 2.5;
        let run = Run::new(&options, None);
        let json = serde_json::to_string(&run).unwrap_or_default();
        assert_eq!(
            json,
            format!(
                r#"{{"prefeval":"{VERSION}","normalization":"ordered_pairs","beta":2.5,"format":"native","confidence":0.95}}"#
            )
        );
        let run = Run::new(&Options::default(), Some("rm-7")).with_input(Fingerprint { bytes: 3, xxh3: 0xab });
        let json = serde_json::to_string(&run).unwrap_or_default();
        assert!(json.contains(r#""model":"rm-7","normalization""#), "{json}");
        assert!(
            json.ends_with(
                r#""beta":1.0,"format":"native","confidence":0.95,"input":{"bytes":3,"xxh3":"00000000000000ab"}}"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Run>(&json).ok(), Some(run));
    }

    #[test]
    fn a_run_read_back_needs_known_names_and_one_kind_of_fingerprint() {
        let fingerprint = Fingerprint { bytes: 1, xxh3: 1 };
        let good = Run::new(&Options::default(), None).with_input(fingerprint);
        assert!(good.check("summary.run").is_ok());
        let path_of = |change: fn(&mut Run)| {
            let mut run = good.clone();
            change(&mut run);
            run.check("summary.run").err().and_then(|error| error.path)
        };
        assert_eq!(path_of(|run| run.normalization = "mean".into()).as_deref(), Some("summary.run.normalization"));
        assert_eq!(path_of(|run| run.beta = 0.0).as_deref(), Some("summary.run.beta"));
        assert_eq!(path_of(|run| run.confidence = 1.0).as_deref(), Some("summary.run.confidence"));
        assert_eq!(path_of(|run| run.format = "csv".into()).as_deref(), Some("summary.run.format"));
        assert_eq!(path_of(|run| run.format = MIXED_FORMATS.into()), None);
        assert_eq!(path_of(|run| run.input = None).as_deref(), Some("summary.run.input"));
        assert_eq!(path_of(|run| run.inputs = Some(vec![])).as_deref(), Some("summary.run.inputs"));
        assert_eq!(
            path_of(|run| (run.input, run.inputs) = (None, Some(vec![Fingerprint { bytes: 2, xxh3: 2 }]))),
            None
        );
    }
}
