//! Strict JSON values for the wire format: a field that may be absent but never `null`, structs
//! only a JSON object can fill, borrowed strings, numbers that are never strings, and the integer
//! forms of counts and ranks. Shared by the list shapes (`wire`) and the option table (`options`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An optional field that, when present, must hold a value: `null` is refused rather than taken
/// as "absent", so a client bug that nulls a field is seen, not silently defaulted.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
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

/// A list's or an item's `id`: a JSON string, or a JSON integer (many exports number their
/// prompts), echoed back in the form it came in. `text` is the string, or the integer's decimal
/// digits; formats that look ids up (`ranking`, whose `rewards` keys are strings) compare `text`,
/// so `3` and `"3"` name the same item there. Numbers that are not integers are refused (`1.5`,
/// `1.0`, `1e3`: echoing them "as given" would need their spelling), and so are integers outside
/// i64/u64 (send those as strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Id<'a> {
    pub text: Cow<'a, str>,
    pub integer: bool,
}

impl<'a> Id<'a> {
    /// A string id.
    pub fn text(text: impl Into<Cow<'a, str>>) -> Id<'a> {
        Id { text: text.into(), integer: false }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// What an id must be, for error messages.
pub const ID_EXPECTED: &str = "a string or an integer id";

impl Serialize for Id<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.integer {
            // The digits came from an i64 or a u64, so one of them reads them back.
            if let Ok(value) = self.text.parse::<i64>() {
                return serializer.serialize_i64(value);
            }
            if let Ok(value) = self.text.parse::<u64>() {
                return serializer.serialize_u64(value);
            }
        }
        serializer.serialize_str(&self.text)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Id<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = Id<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(ID_EXPECTED)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Id<'de>, E> {
                Ok(Id::text(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id<'de>, E> {
                Ok(Id::text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Id<'de>, E> {
                Ok(Id::text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id<'de>, E> {
                Ok(Id { text: Cow::Owned(v.to_string()), integer: true })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id<'de>, E> {
                Ok(Id { text: Cow::Owned(v.to_string()), integer: true })
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id<'de>, E> {
                // serde_json reads an integer literal past u64 (or below i64) as a float.
                if v.fract() == 0.0 && v.abs() >= 9.2e18 {
                    return Err(E::invalid_value(
                        Unexpected::Float(v),
                        &"an integer id from -2^63 to 2^64-1; send larger ids as strings",
                    ));
                }
                Err(E::invalid_type(Unexpected::Float(v), &self))
            }
        }
        deserializer.deserialize_any(IdVisitor)
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

/// A count an option asks for: a non-negative integer (`4.0` is 4, as JSON Schema's `integer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Rank::deserialize_as(deserializer, "a positive integer").map(|rank| Count(rank.0))
    }
}

/// A rank: an integer ≥ 0; the format says whether 0 or 1 is best. `2.0` is the integer 2, as
/// JSON Schema's `integer` has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rank(pub u64);

/// Largest float that still names one integer exactly.
const MAX_EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for Rank {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Rank::deserialize_as(deserializer, "an integer rank ≥ 1 (1 = best; 0 = best with format `ranks_zero_based`)")
    }
}

impl Rank {
    /// A non-negative integer (integral floats included), described as `expected` in errors.
    fn deserialize_as<'de, D: Deserializer<'de>>(deserializer: D, expected: &'static str) -> Result<Rank, D::Error> {
        struct RankVisitor(&'static str);
        impl Visitor<'_> for RankVisitor {
            type Value = Rank;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(self.0)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rank, E> {
                Ok(Rank(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rank, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rank, E> {
                if v.fract() == 0.0 && (0.0..=MAX_EXACT_FLOAT_INTEGER).contains(&v) {
                    Ok(Rank(v as u64))
                } else {
                    Err(E::invalid_value(Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(RankVisitor(expected))
    }
}
