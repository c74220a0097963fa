//! Parsing JSON into the wire types with errors that name the field at fault, below a path prefix
//! (`lists[3]` in a batch; nothing for one line of a stream, whose error carries its line number).

use serde::Deserialize;
use serde::de::DeserializeSeed;

use super::Options;
use super::wire::{Object, present};
use crate::error::{Error, ErrorCode};

/// Parses one JSON object (a batch body, or one line of a stream) into `T`. The fast path parses
/// once; only failing input is parsed again with path tracking, so valid input pays nothing for
/// precise error paths.
pub fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, Error> {
    match serde_json::from_slice::<Object<T>>(json) {
        Ok(parsed) => Ok(parsed.0),
        Err(_) => {
            let mut parser = serde_json::Deserializer::from_slice(json);
            let error = match serde_path_to_error::deserialize::<_, Object<T>>(&mut parser) {
                Ok(_) => match parser.end() {
                    // Unreachable in practice (the fast path failed), but never panic on input.
                    Ok(()) => return Err(Error::new(ErrorCode::MalformedJson, "the JSON could not be parsed")),
                    Err(error) => {
                        return Err(Error::new(
                            ErrorCode::MalformedJson,
                            format!("malformed JSON: {}", message_of(&error)),
                        ));
                    }
                },
                Err(error) => error,
            };
            Err(describe(error))
        }
    }
}

/// As `parse`, with a seed that carries what decoding needs to know (the options' naming, see
/// `named.rs`). The seed itself insists on an object.
pub fn parse_seed<'a, S: DeserializeSeed<'a> + Clone>(json: &'a [u8], seed: S) -> Result<S::Value, Error> {
    let mut parser = serde_json::Deserializer::from_slice(json);
    if let Ok(value) = seed.clone().deserialize(&mut parser)
        && parser.end().is_ok()
    {
        return Ok(value);
    }
    let mut parser = serde_json::Deserializer::from_slice(json);
    let mut track = serde_path_to_error::Track::new();
    let error = match seed.deserialize(serde_path_to_error::Deserializer::new(&mut parser, &mut track)) {
        Ok(_) => {
            let message = match parser.end() {
                Ok(()) => "the JSON could not be parsed".to_string(),
                Err(error) => format!("malformed JSON: {}", message_of(&error)),
            };
            return Err(Error::new(ErrorCode::MalformedJson, message));
        }
        Err(error) => serde_path_to_error::Error::new(track.path(), error),
    };
    Err(describe(error))
}

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = error.path().to_string();
    let inner = error.inner();
    let message = message_of(inner);
    let at = |suffix: Option<&str>| -> Option<String> {
        let base = if path == "." { String::new() } else { path.clone() };
        match suffix {
            Some(field) if base.is_empty() => Some(field.to_string()),
            Some(field) => Some(format!("{base}.{field}")),
            None if base.is_empty() => None,
            None => Some(base),
        }
    };
    let (code, path) = match inner.classify() {
        serde_json::error::Category::Data => {
            if let Some(field) = backticked(&message, "missing field `") {
                (ErrorCode::MissingField, at(Some(field)))
            } else if message.starts_with("unknown field `") {
                // The tracked path already ends with the unknown key.
                (ErrorCode::UnknownField, at(None))
            } else if message.starts_with("invalid type") {
                (ErrorCode::InvalidType, at(None))
            } else {
                (ErrorCode::InvalidValue, at(None))
            }
        }
        _ if message.starts_with("number out of range") => (ErrorCode::NumberOutOfRange, at(None)),
        // A syntax error's position is in the message; a field path would mislead.
        _ => (ErrorCode::MalformedJson, None),
    };
    let message = match code {
        ErrorCode::NumberOutOfRange => "number out of range: it does not fit in a 64-bit float".to_string(),
        ErrorCode::MalformedJson => format!("malformed JSON: {message}"),
        _ => message,
    };
    Error { code, message, path, retry_after_secs: None }
}

/// serde_json's message without its " at line L column C" suffix for data errors, which point
/// at the field by path instead; syntax errors keep the position.
fn message_of(error: &serde_json::Error) -> String {
    let full = error.to_string();
    if error.classify() != serde_json::error::Category::Data {
        return full;
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    full.strip_suffix(&suffix).map(str::to_string).unwrap_or(full)
}

/// The name between `prefix` and the next backtick.
fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// What `parse_named` found: the body read, or the options under which to read it again.
pub enum NamedRead<R> {
    Read(R, Options),
    /// The options map fields: the caller reads the body again with its seed for them.
    ReadAgain(Options),
}

/// A body whose `options` decide how its lists read (a batch, a comparison): read under the
/// format's own names first, as options may follow the lists; to be read again under the options'
/// naming when they map fields, or when the own names failed and the options rename.
/// `options_of` resolves the body's options (`wire_options` finds them in a read body); options
/// that cannot be resolved are the error reported, since they decide how the lists read.
pub fn parse_named<'a, R, O>(
    body: &'a [u8],
    wire_options: impl Fn(&R) -> Option<&O>,
    options_of: impl Fn(Option<&O>) -> Result<Options, Error>,
) -> Result<NamedRead<R>, Error>
where
    R: Deserialize<'a>,
    O: for<'de> Deserialize<'de>,
{
    let error = match parse::<R>(body) {
        Ok(request) => {
            let options = options_of(wire_options(&request))?;
            // Keys the format does not read were refused by name or are other formats' fields,
            // which `to_input` drops when they are ignored; a mapping changes what every key means.
            if options.naming.fields.is_none() {
                return Ok(NamedRead::Read(request, options));
            }
            return Ok(NamedRead::ReadAgain(options));
        }
        Err(error) => error,
    };
    // Lists named the data's way fail under the own names: find the options alone, read again.
    #[derive(Deserialize)]
    #[serde(bound = "O: for<'o> Deserialize<'o>")]
    struct OptionsOnly<O> {
        #[serde(default, deserialize_with = "present")]
        options: Option<Object<O>>,
    }
    let probe = serde_json::from_slice::<Object<OptionsOnly<O>>>(body).ok();
    match probe.map(|Object(probe)| options_of(probe.options.as_ref().map(|o| &o.0))) {
        Some(Ok(options)) if options.naming.renames() => Ok(NamedRead::ReadAgain(options)),
        Some(Err(options_error)) => Err(options_error),
        _ => Err(error),
    }
}
