//! The option table: every evaluation option once, with its name, the kind of value it takes, the
//! doors that accept it, its one sentence of docs, its check and its effect on `Options`. The
//! JSON body (`options` of a batch or a comparison), the stream's query string, the CLI's flags
//! and compare all fill `Options` from this table; adding an option is one entry here plus its
//! use in the math. Nothing here knows HTTP or clap: the doors turn names and values into calls
//! of `OptionDef::parse_text` / `decode_options` and `OptionSettings::apply`.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Unexpected, Visitor};

use super::fields::{FIELDS_EXPECTED, FieldMap, Naming, UnknownFields};
use super::format::{FORMAT_NAMES, Format, Schema};
use super::json::{Count, Number};
use crate::error::{Error, ErrorCode};
use crate::math::{MathOptions, Normalization};

/// What a door asks of the evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub math: MathOptions,
    pub format: Format,
    /// Of the intervals: 0 < c < 1.
    pub confidence: f64,
    /// K equal-width bins of the calibration figures; none unless asked for.
    pub calibration_bins: Option<usize>,
    /// The k least probable implied pairs of the batch or run; none unless asked for.
    pub top_disagreements: Option<usize>,
    /// Each returned pair also echoes its items' ids (`preferred_id`, `other_id`); off by default,
    /// as the indices already name the items and the ids nearly double an answer with pairs. No
    /// effect without `math.include_pairs`.
    pub include_pair_ids: bool,
    /// Which lines a stream or `prefeval eval` writes; an output choice, so not in `math`.
    pub results: Results,
    /// How the data names its fields and what becomes of keys the format does not read.
    pub naming: Naming,
    /// A comparison's options: its lists have the shape of `POST /v1/compare`, whatever `format`.
    pub comparison: bool,
}

/// `results`: every line (`all`), or only the error lines (`errors`), the summary always last.
/// `errors` keeps a dataset's answer to a few bytes, for clients that send the whole body before
/// reading any of the answer (the answer would otherwise fill the socket buffers while the client
/// is still sending, and the stream, bounded in memory, stops reading: both wait forever).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Results {
    #[default]
    All,
    Errors,
}

impl Results {
    pub const EXPECTED: &str = "`all` or `errors`";

    pub fn from_name(name: &str) -> Option<Results> {
        match name {
            "all" => Some(Results::All),
            "errors" => Some(Results::Errors),
            _ => None,
        }
    }
}

/// The confidence of intervals unless a request says otherwise.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

impl Default for Options {
    fn default() -> Self {
        Options {
            math: MathOptions::default(),
            format: Format::default(),
            confidence: DEFAULT_CONFIDENCE,
            calibration_bins: None,
            top_disagreements: None,
            include_pair_ids: false,
            results: Results::All,
            naming: Naming::default(),
            comparison: false,
        }
    }
}

impl Options {
    /// The defaults of the dataset doors (the stream and `prefeval eval`, a batch file included):
    /// no pairs, which are most of the bytes of a dataset's answer (583 MB instead of 36 MB for
    /// 200,000 lists of 8 items) and which a dataset's figures do not need. `POST /v1/evaluate`
    /// keeps `Options::default()`, pairs included.
    pub fn for_datasets() -> Self {
        let mut options = Options::default();
        options.math.include_pairs = false;
        options
    }

    /// The defaults of a comparison: per-list figures only, so no pairs.
    pub fn for_comparison() -> Self {
        let mut options = Options::default();
        options.math.include_pairs = false;
        options.comparison = true;
        options
    }

    /// The shape lists are read in.
    pub fn schema(&self) -> Schema {
        match (self.comparison, self.format) {
            (false, format) => Schema::Format(format),
            (true, Format::Pairs) => Schema::ComparePairs,
            (true, _) => Schema::Compare,
        }
    }
}

/// Most calibration bins, and most disagreements, one request may ask for.
pub const MAX_CALIBRATION_BINS: u64 = 100;
pub const MAX_TOP_DISAGREEMENTS: u64 = 1000;

/// `options.normalization`: one of the names of `Normalization`, as a JSON string. Decoded by
/// hand: serde's enum form would also take `{"sum": null}` and report other types as syntax errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireNormalization(pub Normalization);

impl<'de> Deserialize<'de> for WireNormalization {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        const EXPECTED: &str = Normalization::EXPECTED;
        impl Visitor<'_> for NameVisitor {
            type Value = WireNormalization;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<WireNormalization, E> {
                Normalization::from_name(name)
                    .map(WireNormalization)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(name), &EXPECTED))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl From<WireNormalization> for Normalization {
    fn from(wire: WireNormalization) -> Self {
        wire.0
    }
}

/// The doors an option may come through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// `options` of `POST /v1/evaluate` and of a batch file given to `prefeval eval`.
    Batch,
    /// The query string of `POST /v1/evaluate/stream` and the flags of `prefeval eval`.
    Stream,
    /// `options` of `POST /v1/compare`.
    Compare,
    /// The query string of `POST /v1/compare/stream` and the flags of `prefeval compare`.
    CompareStream,
}

/// The kind of value an option takes, which decides how its text and its JSON are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Number,
    /// An integer from 1 to the bound.
    Count(u64),
    Normalization,
    Format,
    Results,
    /// `options.fields`: an object of strings, or `a:b,c:d` as text.
    Fields,
    UnknownFields,
}

impl Kind {
    /// What a flag's help shows as its value.
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Bool => "true|false",
            Kind::Number => "NUMBER",
            Kind::Count(_) => "N",
            Kind::Normalization => "NORMALIZATION",
            Kind::Format => "FORMAT",
            Kind::Results => "all|errors",
            Kind::Fields => "NAME:DATA_NAME,...",
            Kind::UnknownFields => "reject|ignore",
        }
    }
}

/// One option's value, read but not yet checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Number(f64),
    Count(u64),
    Normalization(Normalization),
    Format(Format),
    Results(Results),
    Fields(Arc<FieldMap>),
    UnknownFields(UnknownFields),
}

/// One entry of the table.
pub struct OptionDef {
    /// The name in JSON and in the query string; flags spell it with dashes.
    pub name: &'static str,
    pub kind: Kind,
    /// What the text form must be, for error messages (`invalid value `x`: expected …`).
    pub expected: &'static str,
    /// One sentence of docs: the flag's help and the reference.
    pub doc: &'static str,
    doors: &'static [Door],
    /// Checks the value (errors at `path`) and sets it.
    set: fn(&mut Options, Value, &str) -> Result<(), Error>,
}

const ALL_DOORS: &[Door] = &[Door::Batch, Door::Stream, Door::Compare, Door::CompareStream];
const EVALUATE_DOORS: &[Door] = &[Door::Batch, Door::Stream];
/// The streams and their command-line doors, evaluate and compare.
const STREAMS: &[Door] = &[Door::Stream, Door::CompareStream];

/// Every option, in the order error messages list them.
pub static OPTIONS: &[OptionDef] = &[
    OptionDef {
        name: "normalization",
        kind: Kind::Normalization,
        expected: Normalization::EXPECTED,
        doc: "Loss normalization: `ordered_pairs` (default), `comparisons` or `sum`.",
        doors: ALL_DOORS,
        set: |options, value, _| {
            if let Value::Normalization(normalization) = value {
                options.math.normalization = normalization;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "include_pairs",
        kind: Kind::Bool,
        expected: "`true` or `false`",
        doc: "Return every implied pair of every list [default: false on the stream and `prefeval eval`, \
              true on POST /v1/evaluate].",
        doors: EVALUATE_DOORS,
        set: |options, value, _| {
            if let Value::Bool(include) = value {
                options.math.include_pairs = include;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "beta",
        kind: Kind::Number,
        expected: "a number > 0",
        doc: "The Bradley-Terry temperature β (> 0) [default: 1].",
        doors: ALL_DOORS,
        set: |options, value, path| {
            if let Value::Number(beta) = value {
                options.math.beta = check_beta(beta, path)?;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "format",
        kind: Kind::Format,
        expected: FORMAT_NAMES,
        doc: "Input format: native (default), pairs, ranking, ratings or ranks_zero_based (a comparison: native \
              or pairs).",
        doors: ALL_DOORS,
        set: |options, value, path| {
            if let Value::Format(format) = value {
                if options.comparison && !matches!(format, Format::Native | Format::Pairs) {
                    return Err(Error::at(
                        ErrorCode::InvalidValue,
                        path,
                        format!(
                            "format `{}` has no comparison form; a comparison reads `native` (items with \
                             `rewards`) or `pairs` (`chosen_rewards`, `rejected_rewards`)",
                            format.name()
                        ),
                    ));
                }
                options.format = format;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "confidence",
        kind: Kind::Number,
        expected: "a number strictly between 0 and 1",
        doc: "Confidence of the intervals, strictly between 0 and 1 [default: 0.95].",
        doors: ALL_DOORS,
        set: |options, value, path| {
            if let Value::Number(confidence) = value {
                options.confidence = check_confidence(confidence, path)?;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "include_gradients",
        kind: Kind::Bool,
        expected: "`true` or `false`",
        doc: "Return ∂loss/∂reward for every item of every list [default: false].",
        doors: EVALUATE_DOORS,
        set: |options, value, _| {
            if let Value::Bool(include) = value {
                options.math.include_gradients = include;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "calibration_bins",
        kind: Kind::Count(MAX_CALIBRATION_BINS),
        expected: "an integer from 1 to 100",
        doc: "Calibration figures (ECE, Brier) over this many equal-width bins of [1/2, 1].",
        doors: EVALUATE_DOORS,
        set: |options, value, path| {
            if let Value::Count(bins) = value {
                options.calibration_bins = Some(check_count(bins, MAX_CALIBRATION_BINS, path)?);
            }
            Ok(())
        },
    },
    OptionDef {
        name: "top_disagreements",
        kind: Kind::Count(MAX_TOP_DISAGREEMENTS),
        expected: "an integer from 1 to 1000",
        doc: "The k implied pairs with the lowest probability, lowest first.",
        doors: EVALUATE_DOORS,
        set: |options, value, path| {
            if let Value::Count(k) = value {
                options.top_disagreements = Some(check_count(k, MAX_TOP_DISAGREEMENTS, path)?);
            }
            Ok(())
        },
    },
    OptionDef {
        name: "include_pair_ids",
        kind: Kind::Bool,
        expected: "`true` or `false`",
        doc: "Echo the items' ids in every returned pair (`preferred_id`, `other_id`); no effect when \
              pairs are left out [default: false].",
        doors: EVALUATE_DOORS,
        set: |options, value, _| {
            if let Value::Bool(include) = value {
                options.include_pair_ids = include;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "results",
        kind: Kind::Results,
        expected: Results::EXPECTED,
        doc: "Which result lines to write: `all` (default), or `errors` (error lines and the summary \
              only, for clients that send the whole body before reading the answer).",
        doors: STREAMS,
        set: |options, value, _| {
            if let Value::Results(results) = value {
                options.results = results;
            }
            Ok(())
        },
    },
    OptionDef {
        name: "fields",
        kind: Kind::Fields,
        expected: FIELDS_EXPECTED,
        doc: "Names the data gives the format's fields, at list and item level alike, as \
              `name:data_name` pairs separated by commas (e.g. `chosen_reward:score_chosen,group:subset`).",
        doors: ALL_DOORS,
        set: |options, value, _| {
            // Whether the keys are the format's is checked once every option is known (`apply`).
            if let Value::Fields(map) = value {
                options.naming.fields = Some(map);
            }
            Ok(())
        },
    },
    OptionDef {
        name: "unknown_fields",
        kind: Kind::UnknownFields,
        expected: UnknownFields::EXPECTED,
        doc: "Keys of lists and items the format does not read: `reject` them (default) or `ignore` them unread.",
        doors: ALL_DOORS,
        set: |options, value, _| {
            if let Value::UnknownFields(unknown) = value {
                options.naming.unknown = unknown;
            }
            Ok(())
        },
    },
];

impl OptionDef {
    pub fn accepted_by(&self, door: Door) -> bool {
        self.doors.contains(&door)
    }

    /// The option of this name that `door` accepts.
    pub fn find(door: Door, name: &str) -> Option<&'static OptionDef> {
        OPTIONS.iter().find(|def| def.name == name && def.accepted_by(door))
    }

    /// The options `door` accepts, in table order.
    pub fn of(door: Door) -> impl Iterator<Item = &'static OptionDef> {
        OPTIONS.iter().filter(move |def| def.accepted_by(door))
    }

    /// Reads the text form (a query parameter, a flag's value); the error says what was expected.
    pub fn parse_text(&self, text: &str, path: &str) -> Result<Value, Error> {
        let value = match self.kind {
            Kind::Bool => match text {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            Kind::Number => text.parse().ok().map(Value::Number),
            Kind::Count(_) => text.parse().ok().map(Value::Count),
            Kind::Normalization => Normalization::from_name(text).map(Value::Normalization),
            Kind::Format => Format::from_name(text).map(Value::Format),
            Kind::Results => Results::from_name(text).map(Value::Results),
            Kind::Fields => return FieldMap::parse_text(text, path).map(|map| Value::Fields(Arc::new(map))),
            Kind::UnknownFields => UnknownFields::from_name(text).map(Value::UnknownFields),
        };
        value.ok_or_else(|| {
            Error::at(ErrorCode::InvalidValue, path, format!("invalid value `{text}`: expected {}", self.expected))
        })
    }

    /// Checks `value` as `set` would, without a request: for flags, which are checked as parsed.
    pub fn check(&self, value: Value, path: &str) -> Result<(), Error> {
        (self.set)(&mut Options::default(), value, path)
    }
}

/// Options as a door read them, in the order given, not yet applied.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionSettings(Vec<(&'static OptionDef, Value)>);

impl fmt::Debug for OptionDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for OptionDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl OptionSettings {
    pub fn push(&mut self, def: &'static OptionDef, value: Value) {
        self.0.push((def, value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks and sets each value; an error's path is `prefix` + the option's name. A mapping
    /// of `fields` is checked against the format once both are set.
    pub fn apply(&self, options: &mut Options, prefix: &str) -> Result<(), Error> {
        for (def, value) in &self.0 {
            // The full path is built only for an error: applying options is on every request.
            (def.set)(options, value.clone(), def.name).map_err(|mut error| {
                error.path = Some(format!("{prefix}{}", def.name));
                error
            })?;
        }
        if self.0.iter().any(|(def, _)| matches!(def.kind, Kind::Fields | Kind::Format))
            && let Some(map) = &options.naming.fields
        {
            let schema = options.schema();
            map.check(schema.fields(), &schema.description(), prefix)?;
        }
        Ok(())
    }

    /// `defaults` with these settings applied.
    pub fn resolve(&self, defaults: Options, prefix: &str) -> Result<Options, Error> {
        let mut options = defaults;
        self.apply(&mut options, prefix)?;
        Ok(options)
    }
}

/// The names a door accepts, for serde's "expected one of" message.
fn names(door: Door) -> &'static [&'static str] {
    static BATCH: LazyLock<Vec<&'static str>> = LazyLock::new(|| OptionDef::of(Door::Batch).map(|d| d.name).collect());
    static COMPARE: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| OptionDef::of(Door::Compare).map(|d| d.name).collect());
    static STREAM: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| OptionDef::of(Door::Stream).map(|d| d.name).collect());
    static COMPARE_STREAM: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| OptionDef::of(Door::CompareStream).map(|d| d.name).collect());
    match door {
        Door::Batch => &BATCH,
        Door::Compare => &COMPARE,
        Door::Stream => &STREAM,
        Door::CompareStream => &COMPARE_STREAM,
    }
}

/// Decodes a JSON `options` object for `door`: strict as the rest of the wire format (no `null`,
/// strings are never numbers, unknown and repeated names refused), values checked later by
/// `OptionSettings::apply` so that errors name the full path.
pub fn decode_options<'de, D: Deserializer<'de>>(deserializer: D, door: Door) -> Result<OptionSettings, D::Error> {
    struct OptionsVisitor(Door);
    impl<'de> Visitor<'de> for OptionsVisitor {
        type Value = OptionSettings;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(match self.0 {
                Door::Compare | Door::CompareStream => {
                    "an object with `normalization`, `beta`, `confidence`, `format`, `fields` and/or `unknown_fields`"
                }
                _ => "an object of options (`normalization`, `include_pairs`, `beta`, `format`, ...)",
            })
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OptionSettings, A::Error> {
            let mut settings = OptionSettings::default();
            while let Some(def) = map.next_key_seed(OptionName(self.0))? {
                if settings.0.iter().any(|(seen, _)| seen.name == def.name) {
                    return Err(de::Error::duplicate_field(def.name));
                }
                let value = match def.kind {
                    Kind::Bool => Value::Bool(map.next_value()?),
                    Kind::Number => Value::Number(map.next_value::<Number>()?.0),
                    Kind::Count(_) => Value::Count(map.next_value::<Count>()?.0),
                    Kind::Normalization => Value::Normalization(map.next_value::<WireNormalization>()?.0),
                    Kind::Format => Value::Format(map.next_value()?),
                    Kind::Results => Value::Results(map.next_value()?),
                    Kind::Fields => Value::Fields(Arc::new(map.next_value()?)),
                    Kind::UnknownFields => Value::UnknownFields(map.next_value()?),
                };
                settings.push(def, value);
            }
            Ok(settings)
        }
    }
    deserializer.deserialize_map(OptionsVisitor(door))
}

/// An option's name as a map key: refused while the key is read, as serde's derived structs do,
/// so that the error's path names the unknown key.
struct OptionName(Door);

impl<'de> DeserializeSeed<'de> for OptionName {
    type Value = &'static OptionDef;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for OptionName {
    type Value = &'static OptionDef;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an option name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        OptionDef::find(self.0, name).ok_or_else(|| E::unknown_field(name, names(self.0)))
    }
}

/// `options` of `POST /v1/evaluate` (and of a batch file).
#[derive(Debug, Default, PartialEq)]
pub struct BatchOptions(pub OptionSettings);

impl<'de> Deserialize<'de> for BatchOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        decode_options(deserializer, Door::Batch).map(BatchOptions)
    }
}

/// A batch's options over the defaults: its own `options` (errors at `options.<name>`), then
/// `overrides` (the command line's flags over a batch file; none over HTTP).
pub fn resolve_batch_options(
    wire: Option<&BatchOptions>,
    defaults: &Options,
    overrides: &OptionSettings,
) -> Result<Options, Error> {
    let mut options = match wire {
        Some(BatchOptions(settings)) => settings.resolve(defaults.clone(), "options.")?,
        None => defaults.clone(),
    };
    overrides.apply(&mut options, "")?;
    Ok(options)
}

/// `options` of `POST /v1/compare`.
#[derive(Debug, Default, PartialEq)]
pub struct CompareOptions(pub OptionSettings);

impl<'de> Deserialize<'de> for CompareOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        decode_options(deserializer, Door::Compare).map(CompareOptions)
    }
}

fn check_count(count: u64, max: u64, path: &str) -> Result<usize, Error> {
    if !(1..=max).contains(&count) {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            path,
            format!("must be an integer from 1 to {max}, got {count}"),
        ));
    }
    Ok(count as usize)
}

pub fn check_confidence(confidence: f64, path: &str) -> Result<f64, Error> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            path,
            format!("confidence must be a number strictly between 0 and 1, got {confidence}"),
        ));
    }
    Ok(confidence)
}

pub fn check_beta(beta: f64, path: &str) -> Result<f64, Error> {
    if beta.is_nan() || beta <= 0.0 || beta.is_infinite() {
        return Err(Error::at(ErrorCode::InvalidValue, path, format!("beta must be a finite number > 0, got {beta}")));
    }
    Ok(beta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_door_has_options() {
        for (i, def) in OPTIONS.iter().enumerate() {
            assert!(OPTIONS[..i].iter().all(|other| other.name != def.name), "{} twice", def.name);
        }
        for door in [Door::Batch, Door::Stream, Door::Compare, Door::CompareStream] {
            assert!(OptionDef::of(door).count() >= 3);
        }
    }

    #[test]
    fn text_and_json_forms_set_the_same_options() {
        let mut from_text = OptionSettings::default();
        for (name, text) in [("normalization", "sum"), ("beta", "2.5"), ("include_pairs", "false"), ("format", "pairs")]
        {
            let def = OptionDef::find(Door::Stream, name).expect("a stream option");
            from_text.push(def, def.parse_text(text, name).expect("valid text"));
        }
        let json = r#"{"normalization":"sum","beta":2.5,"include_pairs":false,"format":"pairs"}"#;
        let BatchOptions(from_json) = serde_json::from_str(json).expect("valid options");
        assert_eq!(from_text, from_json);
        let options = from_json.resolve(Options::default(), "options.").expect("valid values");
        assert_eq!(options.math.normalization, Normalization::Sum);
        assert_eq!(options.math.beta, 2.5);
        assert!(!options.math.include_pairs);
        assert_eq!(options.format, Format::Pairs);
    }

    #[test]
    fn a_check_names_the_path_it_is_given() {
        let def = OptionDef::find(Door::Batch, "beta").expect("beta");
        let mut settings = OptionSettings::default();
        settings.push(def, Value::Number(0.0));
        let error = settings.resolve(Options::default(), "options.").expect_err("beta 0 is refused");
        assert_eq!(error.path.as_deref(), Some("options.beta"));
        let error = def.parse_text("x", "beta").expect_err("not a number");
        assert_eq!(error.message, "invalid value `x`: expected a number > 0");
    }
}
