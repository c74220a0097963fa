//! The wire form of a batch and of one list, in every input format at once (a list is decoded
//! before the format is known: `options` may follow `lists`). Decoding is strict: strings are
//! never numbers or booleans, `null` is never a value, unknown fields are refused (a misspelt
//! option would otherwise silently change the numbers), and every failure names its field. Which
//! fields a format allows is checked when the list is converted (`format.rs`).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

pub(crate) use super::json::present;
pub use super::json::{Count, Id, Number, Object, Rank, Text};
use super::options::{BatchOptions, CompareOptions};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object with a `lists` array")]
pub struct EvaluateRequest<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub model: Option<Text<'a>>,
    #[serde(default, deserialize_with = "present")]
    pub options: Option<Object<BatchOptions>>,
    #[serde(borrow)]
    pub lists: Vec<Object<WireList<'a>>>,
}

/// A `POST /v1/compare` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a JSON object with `models` and `lists`")]
pub struct CompareRequest<'a> {
    #[serde(borrow)]
    pub models: Vec<Text<'a>>,
    #[serde(default, deserialize_with = "present")]
    pub options: Option<Object<CompareOptions>>,
    #[serde(borrow)]
    pub lists: Vec<Object<CompareList<'a>>>,
}

/// A list of a comparison in either of its formats: `native` (`items`, each with `rewards`) or
/// `pairs` (`chosen_rewards`, `rejected_rewards`, and optionally `chosen_length`,
/// `rejected_length`). Which fields a format allows is checked when the list is converted
/// (`compare_lines::model_lists`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a list object with an `items` array")]
pub struct CompareList<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Id<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub items: Option<Vec<Object<CompareItem<'a>>>>,
    #[serde(default, deserialize_with = "present")]
    pub chosen_rewards: Option<Vec<Number>>,
    #[serde(default, deserialize_with = "present")]
    pub rejected_rewards: Option<Vec<Number>>,
    #[serde(default, deserialize_with = "present")]
    pub chosen_length: Option<Number>,
    #[serde(default, deserialize_with = "present")]
    pub rejected_length: Option<Number>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an item object with a `rewards` array, one reward per model")]
pub struct CompareItem<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Id<'a>>,
    pub rewards: Vec<Number>,
    #[serde(default, deserialize_with = "present")]
    pub rank: Option<Rank>,
    #[serde(default, deserialize_with = "present")]
    pub length: Option<Number>,
}

/// One list in any format: the union of the fields of every format (see `Format`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a list object")]
pub struct WireList<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Id<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub group: Option<Text<'a>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub items: Option<Vec<Object<WireItem<'a>>>>,
    #[serde(default, deserialize_with = "present")]
    pub chosen_reward: Option<Number>,
    #[serde(default, deserialize_with = "present")]
    pub rejected_reward: Option<Number>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub ranking: Option<Vec<RankingEntry<'a>>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub rewards: Option<RewardMap<'a>>,
    #[serde(default, deserialize_with = "present")]
    pub chosen_length: Option<Number>,
    #[serde(default, deserialize_with = "present")]
    pub rejected_length: Option<Number>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub lengths: Option<LengthMap<'a>>,
}

/// One item in any format that has `items`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an item object")]
pub struct WireItem<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<Id<'a>>,
    #[serde(default, deserialize_with = "present")]
    pub reward: Option<Number>,
    #[serde(default, deserialize_with = "present")]
    pub rank: Option<Rank>,
    #[serde(default, deserialize_with = "present")]
    pub rating: Option<Number>,
    #[serde(default, deserialize_with = "present")]
    pub length: Option<Number>,
}

/// A position of a `ranking`: one id, or an array of tied ids.
#[derive(Debug)]
pub enum RankingEntry<'a> {
    One(Id<'a>),
    Tied(Vec<Id<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RankingEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = RankingEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an item id (a string or an integer), or an array of tied item ids")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RankingEntry::One(Id::text(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RankingEntry::One(Id::text(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(RankingEntry::One(Id::text(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Id::deserialize(de::value::I64Deserializer::new(v)).map(RankingEntry::One)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Id::deserialize(de::value::U64Deserializer::new(v)).map(RankingEntry::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Id::deserialize(de::value::F64Deserializer::new(v)).map(RankingEntry::One)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut tied = Vec::new();
                while let Some(id) = seq.next_element::<Id<'de>>()? {
                    tied.push(id);
                }
                Ok(RankingEntry::Tied(tied))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// `rewards` of the `ranking` format: item id → reward, in the order written.
#[derive(Debug, Default)]
pub struct RewardMap<'a>(pub Vec<(Text<'a>, Number)>);

impl<'de: 'a, 'a> Deserialize<'de> for RewardMap<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(IdMapVisitor("an object of item id to reward")).map(RewardMap)
    }
}

/// `lengths` of the `ranking` format: item id → length, in the order written.
#[derive(Debug, Default)]
pub struct LengthMap<'a>(pub Vec<(Text<'a>, Number)>);

impl<'de: 'a, 'a> Deserialize<'de> for LengthMap<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(IdMapVisitor("an object of item id to length")).map(LengthMap)
    }
}

/// An object of item id → number, its entries in the order written; `.0` is what it must be.
struct IdMapVisitor(&'static str);

impl<'de> Visitor<'de> for IdMapVisitor {
    type Value = Vec<(Text<'de>, Number)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<Text<'de>, Number>()? {
            entries.push(entry);
        }
        Ok(entries)
    }
}
