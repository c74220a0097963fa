//! What a report is drawn from, read and checked: the summary line of an evaluation (`prefeval
//! eval`, the stream, `prefeval merge`) or of a comparison (`prefeval compare`, the compare stream,
//! `prefeval diff`, their merges), a `/v1/compare` answer, or several evaluations of the same lists
//! from different models, compared as `prefeval diff` compares them.
//!
//! Summary lines go through the core's readers (`read_summary_line`, `read_compare_summary`), so
//! a report is drawn only from a summary whose totals hold together; the figures drawn are then
//! read as the line has them, so every number shown is the number written.

use prefeval_core::error::{Error, ErrorCode};
use prefeval_core::pipeline::compare_totals::{compare_summary_line, is_compare_summary, read_compare_summary};
use prefeval_core::pipeline::diff::{DiffInput, diff_all};
use prefeval_core::pipeline::read_summary::read_summary_line;
use prefeval_core::pipeline::run::Run;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::model::{Comparison, Evaluation, Headline};

/// One input: a name for messages and labels (a file's path), and its bytes.
pub struct Input<'a> {
    pub name: String,
    pub bytes: &'a [u8],
}

/// Whether a report shows one evaluation or a comparison of models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Evaluation,
    Comparison,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Evaluation => "evaluation",
            Kind::Comparison => "comparison",
        }
    }
}

/// Everything a report draws.
#[derive(Clone, Debug)]
pub struct Report {
    pub kind: Kind,
    /// The inputs' names, in order (empty when drawn from a summary line alone).
    pub sources: Vec<String>,
    /// The run of the summary (a comparison of several evaluations has the comparison's).
    pub run: Option<Run>,
    pub lines_failed: Option<u64>,
    /// One row per model.
    pub headline: Vec<Headline>,
    /// The evaluations whose own figures (calibration, groups, length, disagreements) are drawn,
    /// each with its model's label.
    pub evaluations: Vec<(String, Evaluation)>,
    pub comparison: Option<Comparison>,
}

impl Report {
    /// The report as drawn from the input named `name`: the name is listed as its source, and
    /// labels an evaluation whose run names no model.
    pub fn drawn_from(mut self, name: &str) -> Report {
        self.sources = vec![name.to_string()];
        if self.kind == Kind::Evaluation && self.run.as_ref().is_none_or(|run| run.model.is_none()) {
            let label = file_name(name);
            for row in &mut self.headline {
                row.model = label.to_string();
            }
            for (model, _) in &mut self.evaluations {
                *model = label.to_string();
            }
        }
        self
    }
}

/// The report of a summary line, an evaluation's or a comparison's (what the service draws).
pub fn read_summary(line: &[u8]) -> Result<Report, Error> {
    match is_compare_summary(line) {
        Some(true) => {
            read_compare_summary(line)?;
            comparison_report(summary_of::<Comparison>(line)?, Vec::new(), Vec::new())
        }
        _ => {
            read_summary_line(line)?;
            let evaluation = summary_of::<Evaluation>(line)?;
            let model = evaluation.run.model.clone().unwrap_or_else(|| "model".to_string());
            Ok(Report {
                kind: Kind::Evaluation,
                sources: Vec::new(),
                run: Some(evaluation.run.clone()),
                lines_failed: Some(evaluation.lines_failed),
                headline: vec![Headline::of_evaluation(&model, &evaluation)],
                evaluations: vec![(model, evaluation)],
                comparison: None,
            })
        }
    }
}

/// The report of the inputs of `prefeval report`: one output of any kind, or several evaluations
/// of the same lists. Errors name the input and what is wrong with it.
pub fn read_inputs(inputs: &[Input<'_>]) -> Result<Report, String> {
    match inputs {
        [] => Err("no input: give an output of prefeval eval, compare, merge or diff".to_string()),
        [input] => read_one(input),
        _ => read_several(inputs),
    }
}

fn read_one(input: &Input<'_>) -> Result<Report, String> {
    let name = &input.name;
    let Some(last) = last_line(input.bytes) else {
        return Err(format!("{name} is empty"));
    };
    if is_compare_summary(last).is_some() {
        return read_summary(last).map(|report| report.drawn_from(name)).map_err(|error| located(name, &error));
    }
    // A `/v1/compare` answer: one JSON document (perhaps pretty-printed), no `run`.
    let answer: Result<Comparison, _> = serde_json::from_slice(input.bytes);
    match answer {
        Ok(comparison) => comparison_report(comparison, Vec::new(), vec![name.clone()]).map_err(|e| located(name, &e)),
        Err(_) => Err(format!(
            "{name}: its last line is no summary of prefeval eval, compare, merge or diff, and it is no \
             /v1/compare answer; did its run finish?"
        )),
    }
}

fn read_several(inputs: &[Input<'_>]) -> Result<Report, String> {
    let mut evaluations = Vec::with_capacity(inputs.len());
    for input in inputs {
        let name = &input.name;
        let Some(last) = last_line(input.bytes) else {
            return Err(format!("{name} is empty"));
        };
        match is_compare_summary(last) {
            Some(false) => {}
            Some(true) => {
                return Err(format!(
                    "{name} is a comparison: several inputs must be evaluations of the same lists by \
                     different models (give a comparison alone)"
                ));
            }
            None => return Err(format!("{name}: its last line is no summary of prefeval eval; did its run finish?")),
        }
        read_summary_line(last).map_err(|error| located(name, &error))?;
        evaluations.push(summary_of::<Evaluation>(last).map_err(|error| located(name, &error))?);
    }
    let lines: Vec<DiffInput<'_>> = inputs
        .iter()
        .map(|input| DiffInput { name: input.name.clone(), lines: input.bytes.split(|&b| b == b'\n').collect() })
        .collect();
    let sides: Vec<&DiffInput<'_>> = lines.iter().collect();
    let confidence = evaluations[0].run.confidence;
    let summary = diff_all(&sides, confidence)?;
    // Drawn from the comparison's own line, so its numbers are the ones `prefeval diff` writes.
    let line = compare_summary_line(&summary);
    let comparison = summary_of::<Comparison>(&line).map_err(|error| error.message)?;
    let labelled = comparison.models.iter().map(|model| model.model.clone()).zip(evaluations).collect();
    comparison_report(comparison, labelled, inputs.iter().map(|input| input.name.clone()).collect())
        .map_err(|error| error.message)
}

fn comparison_report(
    comparison: Comparison,
    evaluations: Vec<(String, Evaluation)>,
    sources: Vec<String>,
) -> Result<Report, Error> {
    if comparison.models.len() < 2 {
        return Err(Error::at(ErrorCode::InvalidValue, "models", "a comparison names two models or more"));
    }
    let headline = comparison.models.iter().map(|model| Headline::of_model(model, &comparison)).collect();
    Ok(Report {
        kind: Kind::Comparison,
        sources,
        run: comparison.run.clone(),
        lines_failed: comparison.lines_failed,
        headline,
        evaluations,
        comparison: Some(comparison),
    })
}

/// The `summary` of a summary line as `T`.
fn summary_of<T: DeserializeOwned>(line: &[u8]) -> Result<T, Error> {
    #[derive(Deserialize)]
    struct Line<T> {
        summary: T,
    }
    serde_json::from_slice::<Line<T>>(line).map(|line| line.summary).map_err(|error| {
        Error::at(ErrorCode::InvalidValue, "summary", format!("the summary line does not read: {error}"))
    })
}

/// The last line holding anything but white space.
fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    bytes.split(|&b| b == b'\n').rev().find(|line| !line.iter().all(u8::is_ascii_whitespace))
}

fn located(name: &str, error: &Error) -> String {
    match error.path.as_deref() {
        Some(path) => format!("{name}: {path}: {}", error.message),
        None => format!("{name}: {}", error.message),
    }
}

/// The last component of a path: what labels a model that its run does not name.
fn file_name(name: &str) -> &str {
    name.rsplit('/').find(|part| !part.is_empty()).unwrap_or(name)
}
