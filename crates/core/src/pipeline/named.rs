//! Decoding lists named the data's way (`options.fields`, `options.unknown_fields`): serde seeds
//! that know the options, for input whose names are not the format's own. They fill the same wire
//! types as the derived decoders, which stay the path of input named natively. A key is read under
//! the format's name its mapping gives it; a key the format does not read is refused (its path and
//! message name it as the data spells it) or stepped over unbuilt (`IgnoredAny`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::format::{Level, Schema};
use super::options::{BatchOptions, CompareOptions, Options};
use super::wire::{CompareItem, CompareList, CompareRequest, EvaluateRequest, Object, WireItem, WireList};

/// A key of a list or an item: the format's name of the field it holds, or `None` to skip it.
/// Unknown keys are refused here, while the key is being read, so that the error's path ends
/// with the key as written.
struct KeySeed<'o> {
    options: &'o Options,
    level: Level,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<&'static str>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<&'static str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let schema = self.options.schema();
        let naming = &self.options.naming;
        let fields = schema.level_fields(self.level);
        let own = naming.own_name(key).and_then(|own| fields.iter().copied().find(|field| *field == own));
        if own.is_some() || naming.ignores_unknown() {
            return Ok(own);
        }
        let names: Vec<String> = fields.iter().map(|field| format!("`{}`", naming.data_name(field))).collect();
        let what = match schema {
            Schema::Format(format) => format!("format `{}`", format.name()),
            Schema::Compare | Schema::ComparePairs => "a comparison".to_string(),
        };
        Err(E::custom(format_args!(
            "unknown field `{key}` for {what}; it reads {} (set unknown_fields to `ignore` to skip other keys)",
            names.join(", ")
        )))
    }
}

/// A field given twice, named as written (serde's own message needs a static name).
fn duplicate<E: de::Error>(options: &Options, own: &str) -> E {
    E::custom(format_args!("duplicate field `{}`", options.naming.data_name(own)))
}

/// Reads the value of a field that may appear once.
fn once<'de, A: MapAccess<'de>, T>(
    slot: &mut Option<T>,
    options: &Options,
    own: &str,
    read: impl FnOnce(&mut A) -> Result<T, A::Error>,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(duplicate(options, own));
    }
    *slot = Some(read(map)?);
    Ok(())
}

/// One list of a batch or a stream (`WireList`), in the options' format and naming.
#[derive(Clone, Copy)]
pub struct ListSeed<'o>(pub &'o Options);

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = WireList<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = WireList<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let options = self.0;
        let mut list = WireList::default();
        while let Some(key) = map.next_key_seed(KeySeed { options, level: Level::List })? {
            let Some(own) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            match own {
                "id" => once(&mut list.id, options, own, |m| m.next_value(), &mut map)?,
                "group" => once(&mut list.group, options, own, |m| m.next_value(), &mut map)?,
                "items" => once(&mut list.items, options, own, |m| m.next_value_seed(ItemsSeed(options)), &mut map)?,
                "chosen_reward" => once(&mut list.chosen_reward, options, own, |m| m.next_value(), &mut map)?,
                "rejected_reward" => once(&mut list.rejected_reward, options, own, |m| m.next_value(), &mut map)?,
                "ranking" => once(&mut list.ranking, options, own, |m| m.next_value(), &mut map)?,
                "chosen_length" => once(&mut list.chosen_length, options, own, |m| m.next_value(), &mut map)?,
                "rejected_length" => once(&mut list.rejected_length, options, own, |m| m.next_value(), &mut map)?,
                "lengths" => once(&mut list.lengths, options, own, |m| m.next_value(), &mut map)?,
                _ => once(&mut list.rewards, options, own, |m| m.next_value(), &mut map)?,
            }
        }
        Ok(list)
    }
}

/// `items` of a list: an array of item objects.
struct ItemsSeed<'o>(&'o Options);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<Object<WireItem<'de>>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<Object<WireItem<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(ItemSeed(self.0))? {
            items.push(Object(item));
        }
        Ok(items)
    }
}

struct ItemSeed<'o>(&'o Options);

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = WireItem<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = WireItem<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an item object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let options = self.0;
        let mut item = WireItem { id: None, reward: None, rank: None, rating: None, length: None };
        while let Some(key) = map.next_key_seed(KeySeed { options, level: Level::Item })? {
            match key {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(own @ "id") => once(&mut item.id, options, own, |m| m.next_value(), &mut map)?,
                Some(own @ "reward") => once(&mut item.reward, options, own, |m| m.next_value(), &mut map)?,
                Some(own @ "rank") => once(&mut item.rank, options, own, |m| m.next_value(), &mut map)?,
                Some(own @ "length") => once(&mut item.length, options, own, |m| m.next_value(), &mut map)?,
                Some(own) => once(&mut item.rating, options, own, |m| m.next_value(), &mut map)?,
            }
        }
        Ok(item)
    }
}

/// The top-level keys of a body: `(name, …)`, refused as serde's derive refuses them.
struct TopKey(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for TopKey {
    type Value = &'static str;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for TopKey {
    type Value = &'static str;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.0.iter().copied().find(|name| *name == key).ok_or_else(|| E::unknown_field(key, self.0))
    }
}

/// A whole `POST /v1/evaluate` body, its lists read in `options`' naming (the body's own options,
/// already resolved with any overrides: a batch is decoded this way once they are known).
#[derive(Clone, Copy)]
pub struct RequestSeed<'o>(pub &'o Options);

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = EvaluateRequest<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = EvaluateRequest<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a `lists` array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut model, mut options, mut lists) = (None, None, None);
        while let Some(key) = map.next_key_seed(TopKey(&["model", "options", "lists"]))? {
            match key {
                "model" => once(&mut model, self.0, key, |m| m.next_value(), &mut map)?,
                "options" => once(&mut options, self.0, key, |m| m.next_value::<Object<BatchOptions>>(), &mut map)?,
                _ => once(&mut lists, self.0, key, |m| m.next_value_seed(ListsSeed(self.0)), &mut map)?,
            }
        }
        let lists = lists.ok_or_else(|| de::Error::missing_field("lists"))?;
        Ok(EvaluateRequest { model, options, lists })
    }
}

struct ListsSeed<'o>(&'o Options);

impl<'de> DeserializeSeed<'de> for ListsSeed<'_> {
    type Value = Vec<Object<WireList<'de>>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListsSeed<'_> {
    type Value = Vec<Object<WireList<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of lists")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut lists = Vec::new();
        while let Some(list) = seq.next_element_seed(ListSeed(self.0))? {
            lists.push(Object(list));
        }
        Ok(lists)
    }
}

/// A whole `POST /v1/compare` body, its lists read in `options`' naming.
#[derive(Clone, Copy)]
pub struct CompareSeed<'o>(pub &'o Options);

impl<'de> DeserializeSeed<'de> for CompareSeed<'_> {
    type Value = CompareRequest<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CompareSeed<'_> {
    type Value = CompareRequest<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with `models` and `lists`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut models, mut options, mut lists) = (None, None, None);
        while let Some(key) = map.next_key_seed(TopKey(&["models", "options", "lists"]))? {
            match key {
                "models" => once(&mut models, self.0, key, |m| m.next_value(), &mut map)?,
                "options" => once(&mut options, self.0, key, |m| m.next_value::<Object<CompareOptions>>(), &mut map)?,
                _ => once(&mut lists, self.0, key, |m| m.next_value_seed(CompareListsSeed(self.0)), &mut map)?,
            }
        }
        let models = models.ok_or_else(|| de::Error::missing_field("models"))?;
        let lists = lists.ok_or_else(|| de::Error::missing_field("lists"))?;
        Ok(CompareRequest { models, options, lists })
    }
}

struct CompareListsSeed<'o>(&'o Options);

impl<'de> DeserializeSeed<'de> for CompareListsSeed<'_> {
    type Value = Vec<Object<CompareList<'de>>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CompareListsSeed<'_> {
    type Value = Vec<Object<CompareList<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of lists")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut lists = Vec::new();
        while let Some(list) = seq.next_element_seed(CompareListSeed(self.0))? {
            lists.push(Object(list));
        }
        Ok(lists)
    }
}

/// One list of a comparison (a line of the compare stream), read in `options`' naming.
#[derive(Clone, Copy)]
pub struct CompareListSeed<'o>(pub &'o Options);

impl<'de> DeserializeSeed<'de> for CompareListSeed<'_> {
    type Value = CompareList<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CompareListSeed<'_> {
    type Value = CompareList<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list object with an `items` array")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let options = self.0;
        let mut list = CompareList::default();
        while let Some(key) = map.next_key_seed(KeySeed { options, level: Level::List })? {
            match key {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(own @ "id") => once(&mut list.id, options, own, |m| m.next_value(), &mut map)?,
                Some(own @ "chosen_rewards") => {
                    once(&mut list.chosen_rewards, options, own, |m| m.next_value(), &mut map)?
                }
                Some(own @ "rejected_rewards") => {
                    once(&mut list.rejected_rewards, options, own, |m| m.next_value(), &mut map)?
                }
                Some(own @ "chosen_length") => {
                    once(&mut list.chosen_length, options, own, |m| m.next_value(), &mut map)?
                }
                Some(own @ "rejected_length") => {
                    once(&mut list.rejected_length, options, own, |m| m.next_value(), &mut map)?
                }
                Some(own) => {
                    once(&mut list.items, options, own, |m| m.next_value_seed(CompareItemsSeed(options)), &mut map)?
                }
            }
        }
        // Which fields the format needs is checked when the list is converted.
        Ok(list)
    }
}

/// A required field missing, named as the data would spell it.
fn missing<E: de::Error>(options: &Options, own: &str) -> E {
    let name: Cow<'_, str> = Cow::Borrowed(options.naming.data_name(own));
    E::custom(format_args!("missing field `{name}`"))
}

struct CompareItemsSeed<'o>(&'o Options);

impl<'de> DeserializeSeed<'de> for CompareItemsSeed<'_> {
    type Value = Vec<Object<CompareItem<'de>>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CompareItemsSeed<'_> {
    type Value = Vec<Object<CompareItem<'de>>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of items")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(CompareItemSeed(self.0))? {
            items.push(Object(item));
        }
        Ok(items)
    }
}

struct CompareItemSeed<'o>(&'o Options);

impl<'de> DeserializeSeed<'de> for CompareItemSeed<'_> {
    type Value = CompareItem<'de>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CompareItemSeed<'_> {
    type Value = CompareItem<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an item object with a `rewards` array, one reward per model")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let options = self.0;
        let (mut id, mut rewards, mut rank, mut length) = (None, None, None, None);
        while let Some(key) = map.next_key_seed(KeySeed { options, level: Level::Item })? {
            match key {
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
                Some(own @ "id") => once(&mut id, options, own, |m| m.next_value(), &mut map)?,
                Some(own @ "rewards") => once(&mut rewards, options, own, |m| m.next_value(), &mut map)?,
                Some(own @ "length") => once(&mut length, options, own, |m| m.next_value(), &mut map)?,
                Some(own) => once(&mut rank, options, own, |m| m.next_value(), &mut map)?,
            }
        }
        let rewards = rewards.ok_or_else(|| missing(options, "rewards"))?;
        Ok(CompareItem { id, rewards, rank, length })
    }
}
