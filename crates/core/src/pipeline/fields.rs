//! How the data names its fields: `options.fields` (the input format's own field names mapped to
//! the names in the client's data, at list and item level alike) and `options.unknown_fields`
//! (whether keys the format does not read are refused or skipped). `Naming` is what the decoders
//! read; once a field is mapped, the data's name is the one read and the one errors name.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Unexpected, Visitor};

use crate::error::{Error, ErrorCode};

/// `options.unknown_fields`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownFields {
    /// A key the format does not read is an error (`unknown_field`): a misspelt field would
    /// otherwise silently change the numbers.
    #[default]
    Reject,
    /// Such keys are stepped over unread (exports carry prompts, texts and metadata).
    Ignore,
}

impl UnknownFields {
    pub const EXPECTED: &'static str = "`reject` or `ignore`";

    pub fn from_name(name: &str) -> Option<UnknownFields> {
        match name {
            "reject" => Some(UnknownFields::Reject),
            "ignore" => Some(UnknownFields::Ignore),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for UnknownFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = UnknownFields;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(UnknownFields::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<UnknownFields, E> {
                UnknownFields::from_name(name)
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(name), &UnknownFields::EXPECTED))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// `options.fields`: (the format's name, the data's name), in the order given. Which keys are
/// allowed depends on the format, so that is checked once every option is known (`check`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMap(Vec<(String, String)>);

/// What `fields` must be, for error messages.
pub const FIELDS_EXPECTED: &str =
    "`name:data_name` pairs separated by commas, e.g. `chosen_reward:score_chosen,group:subset`";

impl FieldMap {
    /// The name the data gives the format's field `name`.
    pub fn data_name<'s>(&'s self, name: &'s str) -> &'s str {
        self.0.iter().find(|(own, _)| own == name).map_or(name, |(_, data)| data.as_str())
    }

    /// The format's name for the data's key `key`, or `None` when the key names no field: a
    /// field that is mapped is read under its data name only.
    pub fn own_name<'s>(&'s self, key: &'s str) -> Option<&'s str> {
        if let Some((own, _)) = self.0.iter().find(|(_, data)| data == key) {
            return Some(own);
        }
        (!self.0.iter().any(|(own, _)| own == key)).then_some(key)
    }

    /// The text form (`a:b,c:d`) of the query string and the command line; errors at `path`, or
    /// at `path.<name>` for one entry.
    pub fn parse_text(text: &str, path: &str) -> Result<FieldMap, Error> {
        let mut map = FieldMap::default();
        for entry in text.split(',') {
            let Some((own, data)) = entry.split_once(':') else {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    path,
                    format!("invalid value `{text}`: expected {FIELDS_EXPECTED}"),
                ));
            };
            if own.is_empty() {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    path,
                    format!("invalid value `{text}`: an entry has no field name; expected {FIELDS_EXPECTED}"),
                ));
            }
            map.insert(own, data)
                .map_err(|message| Error::at(ErrorCode::InvalidValue, format!("{path}.{own}"), message))?;
        }
        Ok(map)
    }

    /// Adds one entry, refusing what the JSON and the text forms both refuse.
    fn insert(&mut self, own: &str, data: &str) -> Result<(), String> {
        if data.is_empty() {
            return Err(format!("`{own}` is mapped to an empty name"));
        }
        if self.0.iter().any(|(seen, _)| seen == own) {
            return Err(format!("`{own}` is mapped twice"));
        }
        if let Some((other, _)) = self.0.iter().find(|(_, seen)| seen == data) {
            return Err(format!("`{own}` and `{other}` are both mapped to `{data}`"));
        }
        self.0.push((own.to_string(), data.to_string()));
        Ok(())
    }

    /// Every key is one of `fields` (those of `what`, e.g. "format `pairs`"), and no data name
    /// is also the name of a field left unmapped (the data could not say which it means). Errors
    /// at `prefix` + `fields.<key>`.
    pub fn check(&self, fields: &[&str], what: &str, prefix: &str) -> Result<(), Error> {
        for (own, data) in &self.0 {
            let at = || format!("{prefix}fields.{own}");
            if !fields.contains(&own.as_str()) {
                let names: Vec<String> = fields.iter().map(|name| format!("`{name}`")).collect();
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    at(),
                    format!("`{own}` is not a field of {what}; it reads {}", names.join(", ")),
                ));
            }
            let unmapped = |name: &str| !self.0.iter().any(|(mapped, _)| mapped == name);
            if let Some(taken) = fields.iter().find(|name| **name == data && unmapped(name)) {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    at(),
                    format!(
                        "`{data}` is also the name of the field `{taken}`; map `{taken}` too, or choose another name"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The JSON form: an object of strings.
impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = FieldMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object from the format's field names to the data's names (strings)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<FieldMap, A::Error> {
                let mut map = FieldMap::default();
                while let Some(own) = access.next_key::<String>()? {
                    // Checked inside the value, so that an error's path ends with the key.
                    access.next_value_seed(Entry { map: &mut map, own: &own })?;
                }
                Ok(map)
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// One data name of the JSON form, added to the map as it is read.
struct Entry<'m> {
    map: &'m mut FieldMap,
    own: &'m str,
}

impl<'de> DeserializeSeed<'de> for Entry<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Entry<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name of the data (a string)")
    }
    fn visit_str<E: de::Error>(self, data: &str) -> Result<(), E> {
        self.map.insert(self.own, data).map_err(E::custom)
    }
}

/// What a decoder needs to read lists named the data's way. The default (no mapping, unknown
/// fields refused) is the native naming, decoded exactly as before options could rename.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Naming {
    pub fields: Option<Arc<FieldMap>>,
    pub unknown: UnknownFields,
}

impl Naming {
    /// Whether lists must be decoded knowing the options (a mapping, or unknown keys skipped).
    pub fn renames(&self) -> bool {
        self.fields.is_some() || self.unknown == UnknownFields::Ignore
    }

    pub fn ignores_unknown(&self) -> bool {
        self.unknown == UnknownFields::Ignore
    }

    /// The name the data gives the format's field `name` (for error paths and messages).
    pub fn data_name<'s>(&'s self, name: &'s str) -> &'s str {
        match &self.fields {
            Some(map) => map.data_name(name),
            None => name,
        }
    }

    /// The format's name for the data's key, if it names one (not yet checked against a format).
    pub fn own_name<'s>(&'s self, key: &'s str) -> Option<&'s str> {
        match &self.fields {
            Some(map) => map.own_name(key),
            None => Some(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_forms_agree_and_refuse_the_same() {
        let text = FieldMap::parse_text("chosen_reward:score_chosen,group:subset", "fields").expect("valid");
        let json: FieldMap =
            serde_json::from_str(r#"{"chosen_reward":"score_chosen","group":"subset"}"#).expect("valid");
        assert_eq!(text, json);
        assert_eq!(text.data_name("chosen_reward"), "score_chosen");
        assert_eq!(text.data_name("id"), "id");
        assert_eq!(text.own_name("score_chosen"), Some("chosen_reward"));
        assert_eq!(text.own_name("chosen_reward"), None, "a mapped field is read under its data name only");
        assert_eq!(text.own_name("prompt"), Some("prompt"));
        for (bad, path) in [
            ("chosen_reward", "fields"),
            ("chosen_reward:a,:b", "fields"),
            ("chosen_reward:", "fields.chosen_reward"),
            ("id:a,id:b", "fields.id"),
            ("id:a,group:a", "fields.group"),
        ] {
            let error = FieldMap::parse_text(bad, "fields").expect_err(bad);
            assert_eq!(error.path.as_deref(), Some(path), "{bad}");
        }
        for bad in [r#"{"id":""}"#, r#"{"id":"a","group":"a"}"#, r#"{"id":1}"#, r#"["id"]"#] {
            assert!(serde_json::from_str::<FieldMap>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_checked_against_the_fields_given() {
        let pairs = &["id", "group", "chosen_reward", "rejected_reward"];
        let map = FieldMap::parse_text("chosen_reward:score_chosen,id:prompt_id", "fields").expect("valid");
        assert!(map.check(pairs, "format `pairs`", "options.").is_ok());
        let error = map.check(&["id", "group", "items"], "format `native`", "options.").expect_err("not native");
        assert_eq!(error.path.as_deref(), Some("options.fields.chosen_reward"));
        assert!(error.message.contains("format `native`"), "{}", error.message);
        // A data name that is another field's own name, unless that one is mapped too.
        let taken = FieldMap::parse_text("id:group", "fields").expect("valid");
        assert_eq!(taken.check(pairs, "", "").expect_err("taken").path.as_deref(), Some("fields.id"));
        let swapped = FieldMap::parse_text("id:group,group:id", "fields").expect("valid");
        assert!(swapped.check(pairs, "", "").is_ok());
    }
}
