//! The wire form of `POST /v1/evaluate` and its decoding. Decoding is strict: strings are never
//! numbers or booleans, `null` is never a value, unknown fields are refused (a misspelt option
//! would otherwise silently change the numbers), and every failure names its field.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

use super::error::{ApiError, ErrorCode};
use crate::eval::Normalization;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object with a `lists` array")]
pub struct EvaluateRequest<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub model: Option<Text<'a>>,
    #[serde(default, deserialize_with = "present")]
    pub options: Option<Object<RequestOptions>>,
    #[serde(borrow)]
    pub lists: Vec<Object<RequestList<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an object with `normalization`, `include_pairs` and/or `beta`")]
pub struct RequestOptions {
    #[serde(default, deserialize_with = "present")]
    pub normalization: Option<WireNormalization>,
    #[serde(default, deserialize_with = "present")]
    pub include_pairs: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub beta: Option<Number>,
}

/// `options.normalization`: one of the names of `Normalization`, as a JSON string. Decoded by
/// hand: serde's enum form would also take `{"sum": null}` and report other types as syntax errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireNormalization(pub Normalization);

impl<'de> Deserialize<'de> for WireNormalization {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        const EXPECTED: &str = "one of `ordered_pairs`, `comparisons`, `sum`";
        impl Visitor<'_> for NameVisitor {
            type Value = WireNormalization;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<WireNormalization, E> {
                Normalization::ALL
                    .into_iter()
                    .find(|n| n.name() == name)
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a list object with an `items` array")]
pub struct RequestList<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Text<'a>>,
    #[serde(borrow)]
    pub items: Vec<Object<RequestItem<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an item object with a numeric `reward`")]
pub struct RequestItem<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Text<'a>>,
    pub reward: Number,
    #[serde(default, deserialize_with = "present")]
    pub rank: Option<Rank>,
}

/// An optional field that, when present, must hold a value: `null` is refused rather than taken
/// as "absent", so a client bug that nulls a field is seen, not silently defaulted.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A struct that only a JSON object can fill. serde's derived structs also accept an array of
/// their fields in order (`[null, 1.5]` as an item); that form is no part of the contract, and
/// accepting it would let malformed input through as numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Object<T>(pub T);

impl<T> std::ops::Deref for Object<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// A JSON string, borrowed from the body when it has no escapes (most ids), so items cost no
/// allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// A JSON number as f64 (integers included: `3` is 3.0); never a string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
        }
        deserializer.deserialize_f64(NumberVisitor)
    }
}

/// A rank: an integer ≥ 1 (1 = best). `2.0` is the integer 2, as JSON Schema's `integer` has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rank(pub u64);

/// Largest float that still names one integer exactly.
const MAX_EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for Rank {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RankVisitor;
        const EXPECTED: &str = "an integer rank ≥ 1 (1 = best)";
        impl Visitor<'_> for RankVisitor {
            type Value = Rank;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rank, E> {
                if v == 0 {
                    return Err(E::invalid_value(Unexpected::Unsigned(v), &EXPECTED));
                }
                Ok(Rank(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rank, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &EXPECTED)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rank, E> {
                if v.fract() == 0.0 && (1.0..=MAX_EXACT_FLOAT_INTEGER).contains(&v) {
                    Ok(Rank(v as u64))
                } else {
                    Err(E::invalid_value(Unexpected::Float(v), &EXPECTED))
                }
            }
        }
        deserializer.deserialize_any(RankVisitor)
    }
}

/// Parses a request body. The fast path parses once; only a failing body is parsed again with
/// path tracking, so valid requests pay nothing for precise error paths.
pub fn decode(body: &[u8]) -> Result<EvaluateRequest<'_>, ApiError> {
    match serde_json::from_slice::<Object<EvaluateRequest<'_>>>(body) {
        Ok(request) => Ok(request.0),
        Err(_) => {
            let mut parser = serde_json::Deserializer::from_slice(body);
            let error = match serde_path_to_error::deserialize::<_, Object<EvaluateRequest<'_>>>(&mut parser) {
                Ok(_) => match parser.end() {
                    // Unreachable in practice (the fast path failed), but never panic on input.
                    Ok(()) => return Err(ApiError::new(ErrorCode::MalformedJson, "request body could not be parsed")),
                    Err(error) => {
                        return Err(ApiError::new(
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

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
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
    ApiError { code, message, path, retry_after_secs: None }
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
