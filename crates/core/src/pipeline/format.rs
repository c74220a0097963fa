//! Input formats: the shapes annotation and training tools export (`docs/design/api.md`, "Input
//! formats"), each turned into one ranked list of items. Results are then identical to the same
//! data sent natively. Errors name the field as the client wrote it (`ranking[1][0]`,
//! `rewards.b`, `items[2].rating`), under the list's path prefix.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize};

use super::fields::Naming;
use super::wire::{Id, Number, Object, RankingEntry, Text, WireItem, WireList};
use crate::error::{Error, ErrorCode};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"id", "items": [{"id", "reward", "rank"}]}`.
    #[default]
    Native,
    /// `{"id", "chosen_reward", "rejected_reward"}` (TRL, RewardBench).
    Pairs,
    /// `{"id", "ranking": ["b", ["a", "c"], "d"], "rewards": {"a": 0.1, ...}}`.
    Ranking,
    /// `{"id", "items": [{"id", "rating", "reward"}]}`: higher rating is better.
    Ratings,
    /// `{"id", "items": [{"id", "rank", "reward"}]}` with 0 the best rank.
    RanksZeroBased,
}

impl Format {
    pub const ALL: [Format; 5] =
        [Format::Native, Format::Pairs, Format::Ranking, Format::Ratings, Format::RanksZeroBased];

    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Pairs => "pairs",
            Format::Ranking => "ranking",
            Format::Ratings => "ratings",
            Format::RanksZeroBased => "ranks_zero_based",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// The list fields this format reads, for error messages.
    fn fields(self) -> &'static str {
        match self {
            Format::Native | Format::RanksZeroBased => "`id`, `items` (items: `id`, `reward`, `rank`, `length`)",
            Format::Pairs => "`id`, `chosen_reward`, `rejected_reward`, `chosen_length`, `rejected_length`",
            Format::Ranking => "`id`, `ranking`, `rewards`, `lengths`",
            Format::Ratings => "`id`, `items` (items: `id`, `rating`, `reward`, `length`)",
        }
    }
}

pub const FORMAT_NAMES: &str = "one of `native`, `pairs`, `ranking`, `ratings`, `ranks_zero_based`";

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Format;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(FORMAT_NAMES)
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Format, E> {
                Format::from_name(name).ok_or_else(|| E::invalid_value(Unexpected::Str(name), &FORMAT_NAMES))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// The shape lists are read in: an input format, or the list of a comparison (`POST /v1/compare`
/// and its stream) in format `native` (`Compare`) or `pairs` (`ComparePairs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    Format(Format),
    Compare,
    ComparePairs,
}

impl Schema {
    /// The list-level fields, then the item-level ones (`id` is both).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Schema::Format(Format::Native | Format::RanksZeroBased) => {
                &["id", "group", "items", "reward", "rank", "length"]
            }
            Schema::Format(Format::Ratings) => &["id", "group", "items", "reward", "rating", "length"],
            Schema::Format(Format::Pairs) => {
                &["id", "group", "chosen_reward", "rejected_reward", "chosen_length", "rejected_length"]
            }
            Schema::Format(Format::Ranking) => &["id", "group", "ranking", "rewards", "lengths"],
            Schema::Compare => &["id", "items", "rewards", "rank", "length"],
            Schema::ComparePairs => &["id", "chosen_rewards", "rejected_rewards", "chosen_length", "rejected_length"],
        }
    }

    /// What the fields are of, for messages.
    pub fn description(self) -> String {
        match self {
            Schema::Format(format) => format!("format `{}`", format.name()),
            Schema::Compare => "a comparison's lists".to_string(),
            Schema::ComparePairs => "a comparison's lists in format `pairs`".to_string(),
        }
    }
}

/// Where a key is: a list, or an item of one.
#[derive(Clone, Copy)]
pub enum Level {
    List,
    Item,
}

impl Schema {
    /// The fields of a list (`Level::List`) or of an item of one, by the format's names.
    pub fn level_fields(self, level: Level) -> &'static [&'static str] {
        use Format::*;
        match (self, level) {
            (Schema::Format(Native | RanksZeroBased | Ratings), Level::List) => &["id", "group", "items"],
            (Schema::Format(Native | RanksZeroBased), Level::Item) => &["id", "reward", "rank", "length"],
            (Schema::Format(Ratings), Level::Item) => &["id", "reward", "rating", "length"],
            (Schema::Format(Pairs), Level::List) => {
                &["id", "group", "chosen_reward", "rejected_reward", "chosen_length", "rejected_length"]
            }
            (Schema::Format(Ranking), Level::List) => &["id", "group", "ranking", "rewards", "lengths"],
            (Schema::Format(Pairs | Ranking), Level::Item) => &[],
            (Schema::Compare, Level::List) => &["id", "items"],
            (Schema::Compare, Level::Item) => &["id", "rewards", "rank", "length"],
            (Schema::ComparePairs, Level::List) => {
                &["id", "chosen_rewards", "rejected_rewards", "chosen_length", "rejected_length"]
            }
            (Schema::ComparePairs, Level::Item) => &[],
        }
    }
}

/// One list in the native shape, whatever format it came in, with what is needed to name the
/// client's own fields in errors.
#[derive(Debug)]
pub struct ListInput<'a> {
    pub id: Option<Id<'a>>,
    /// The list's group (`lists[].group`), for per-group figures.
    pub group: Option<Text<'a>>,
    pub items: Vec<ItemInput<'a>>,
    shape: Shape,
}

#[derive(Debug)]
pub struct ItemInput<'a> {
    pub id: Option<Id<'a>>,
    pub reward: f64,
    /// 1 = best; `None` when the list is ranked by array order.
    pub rank: Option<u64>,
    /// The user's own measure of the item's length (characters, tokens), ≥ 0, for length bias.
    pub length: Option<f64>,
}

/// Where an item's fields were written, for error paths.
#[derive(Debug)]
enum Shape {
    /// `items[k].reward`, and the rank in `items[k].<rank_field>`.
    Items { rank_field: &'static str },
    /// `chosen_reward`, `rejected_reward`.
    Pair,
    /// `rewards.<id>`, and the rank at `ranking[i]` or `ranking[i][j]`.
    Ranking { positions: Vec<(usize, Option<usize>)> },
    /// `items[k].rewards[model]` of `POST /v1/compare`, and the rank in `items[k].rank`.
    Compared { model: usize },
    /// `chosen_rewards[model]`, `rejected_rewards[model]` of a comparison in format `pairs`.
    ComparedPair { model: usize },
}

impl<'a> ListInput<'a> {
    /// Each item's length in submitted order, or `None` when no item has one (no length figures
    /// are then computed for the list).
    pub fn lengths(&self) -> Option<Vec<Option<f64>>> {
        self.items.iter().any(|item| item.length.is_some()).then(|| self.items.iter().map(|item| item.length).collect())
    }

    /// One model's view of a list of `POST /v1/compare`: `items` with that model's rewards.
    pub fn compared(id: Option<Id<'a>>, items: Vec<ItemInput<'a>>, model: usize) -> ListInput<'a> {
        ListInput { id, group: None, items, shape: Shape::Compared { model } }
    }

    /// One model's view of a comparison's list in format `pairs`: chosen, then rejected.
    pub fn compared_pair(id: Option<Id<'a>>, items: Vec<ItemInput<'a>>, model: usize) -> ListInput<'a> {
        ListInput { id, group: None, items, shape: Shape::ComparedPair { model } }
    }

    /// The field holding the items (`items`, `ranking`), or the list itself for `pairs`, as the
    /// data names it (so are all the fields below: `naming` is the options').
    pub fn items_field<'n>(&self, naming: &'n Naming) -> &'n str {
        match self.shape {
            Shape::Items { .. } | Shape::Compared { .. } => naming.data_name("items"),
            Shape::Pair | Shape::ComparedPair { .. } => "",
            Shape::Ranking { .. } => naming.data_name("ranking"),
        }
    }

    pub fn reward_field(&self, item: usize, naming: &Naming) -> String {
        let n = |name| naming.data_name(name);
        match &self.shape {
            Shape::Items { .. } => format!("{}[{item}].{}", n("items"), n("reward")),
            Shape::Compared { model } => format!("{}[{item}].{}[{model}]", n("items"), n("rewards")),
            Shape::Pair => n(if item == 0 { "chosen_reward" } else { "rejected_reward" }).to_string(),
            Shape::ComparedPair { model } => {
                format!("{}[{model}]", n(if item == 0 { "chosen_rewards" } else { "rejected_rewards" }))
            }
            Shape::Ranking { .. } => {
                let id = self.items.get(item).and_then(|i| i.id.as_ref()).map_or("", Id::as_str);
                format!("{}.{id}", n("rewards"))
            }
        }
    }

    pub fn rank_field(&self, item: usize, naming: &Naming) -> String {
        let n = |name| naming.data_name(name);
        match &self.shape {
            Shape::Items { rank_field } => format!("{}[{item}].{}", n("items"), n(rank_field)),
            Shape::Compared { .. } => format!("{}[{item}].{}", n("items"), n("rank")),
            Shape::Pair | Shape::ComparedPair { .. } => String::new(),
            Shape::Ranking { positions } => match positions.get(item) {
                Some((i, Some(j))) => format!("{}[{i}][{j}]", n("ranking")),
                Some((i, None)) => format!("{}[{i}]", n("ranking")),
                None => n("ranking").to_string(),
            },
        }
    }

    pub fn item_id_field(&self, item: usize, naming: &Naming) -> String {
        match &self.shape {
            Shape::Items { .. } | Shape::Compared { .. } => {
                format!("{}[{item}].{}", naming.data_name("items"), naming.data_name("id"))
            }
            _ => self.rank_field(item, naming),
        }
    }
}

/// `prefix.field`, or whichever of the two is not empty.
pub fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// Converts a decoded list of `format` into the native shape; `prefix` is the list's path. Paths
/// and messages name fields as the data does (`naming`).
pub fn to_input<'a>(wire: WireList<'a>, format: Format, naming: &Naming, prefix: &str) -> Result<ListInput<'a>, Error> {
    let at = |field: &str| join(prefix, field);
    let n = |field: &'static str| naming.data_name(field);
    let item_field = |k: usize, field: &str| format!("{}[{k}].{}", naming.data_name("items"), naming.data_name(field));
    let unknown = |field: &str| {
        Error::at(
            ErrorCode::UnknownField,
            at(field),
            format!("unknown field `{field}` for format `{}`; it reads {}", format.name(), format.fields()),
        )
    };
    let missing = |field: &str| Error::at(ErrorCode::MissingField, at(field), format!("missing field `{field}`"));
    let WireList {
        id,
        group,
        items,
        chosen_reward,
        rejected_reward,
        ranking,
        rewards,
        chosen_length,
        rejected_length,
        lengths,
    } = wire;
    match format {
        Format::Native | Format::Ratings | Format::RanksZeroBased => {
            let extra = [
                ("chosen_reward", chosen_reward.is_some()),
                ("rejected_reward", rejected_reward.is_some()),
                ("ranking", ranking.is_some()),
                ("rewards", rewards.is_some()),
                ("chosen_length", chosen_length.is_some()),
                ("rejected_length", rejected_length.is_some()),
                ("lengths", lengths.is_some()),
            ];
            // Other formats' fields, decoded under native names: refused unless unknown fields
            // are ignored.
            if let Some((field, _)) = extra.iter().find(|(_, present)| *present)
                && !naming.ignores_unknown()
            {
                return Err(unknown(n(field)));
            }
            let items = items.ok_or_else(|| missing(n("items")))?;
            let refuse = (!naming.ignores_unknown()).then_some(&unknown as FieldError<'_>);
            let items = match format {
                Format::Ratings => rated_items(items, &at, &item_field, refuse, &missing)?,
                _ => ranked_items(items, format == Format::RanksZeroBased, &at, &item_field, refuse, &missing)?,
            };
            let rank_field = if format == Format::Ratings { "rating" } else { "rank" };
            Ok(ListInput { id, group, items, shape: Shape::Items { rank_field } })
        }
        Format::Pairs => {
            let extra = [
                ("items", items.is_some()),
                ("ranking", ranking.is_some()),
                ("rewards", rewards.is_some()),
                ("lengths", lengths.is_some()),
            ];
            // Other formats' fields, decoded under native names: refused unless unknown fields
            // are ignored.
            if let Some((field, _)) = extra.iter().find(|(_, present)| *present)
                && !naming.ignores_unknown()
            {
                return Err(unknown(n(field)));
            }
            let chosen = chosen_reward.ok_or_else(|| missing(n("chosen_reward")))?;
            let rejected = rejected_reward.ok_or_else(|| missing(n("rejected_reward")))?;
            let length = |value: Option<Number>, field: &'static str| {
                value.map(|value| length_of(value, || at(n(field)))).transpose()
            };
            let chosen_length = length(chosen_length, "chosen_length")?;
            let rejected_length = length(rejected_length, "rejected_length")?;
            let item = |name: &'static str, reward: Number, length: Option<f64>| ItemInput {
                id: Some(Id::text(name)),
                reward: reward.0,
                rank: None,
                length,
            };
            Ok(ListInput {
                id,
                group,
                items: vec![item("chosen", chosen, chosen_length), item("rejected", rejected, rejected_length)],
                shape: Shape::Pair,
            })
        }
        Format::Ranking => {
            let extra = [
                ("items", items.is_some()),
                ("chosen_reward", chosen_reward.is_some()),
                ("rejected_reward", rejected_reward.is_some()),
                ("chosen_length", chosen_length.is_some()),
                ("rejected_length", rejected_length.is_some()),
            ];
            // Other formats' fields, decoded under native names: refused unless unknown fields
            // are ignored.
            if let Some((field, _)) = extra.iter().find(|(_, present)| *present)
                && !naming.ignores_unknown()
            {
                return Err(unknown(n(field)));
            }
            let ranking = ranking.ok_or_else(|| missing(n("ranking")))?;
            let rewards = rewards.ok_or_else(|| missing(n("rewards")))?;
            let mut input = ranking_items(id, ranking, rewards.0, &at, [n("ranking"), n("rewards")])?;
            if let Some(lengths) = lengths {
                add_ranking_lengths(&mut input.items, lengths.0, &at, n("lengths"))?;
            }
            input.group = group;
            Ok(input)
        }
    }
}

type FieldError<'f> = &'f dyn Fn(&str) -> Error;
/// `items[k].<field>` as the data names both.
type ItemField<'f> = &'f dyn Fn(usize, &str) -> String;

fn ranked_items<'a>(
    items: Vec<Object<WireItem<'a>>>,
    zero_based: bool,
    at: &dyn Fn(&str) -> String,
    item_field: ItemField<'_>,
    unknown: Option<FieldError<'_>>,
    missing: FieldError<'_>,
) -> Result<Vec<ItemInput<'a>>, Error> {
    items
        .into_iter()
        .enumerate()
        .map(|(k, Object(item))| {
            if let (Some(_), Some(unknown)) = (item.rating, unknown) {
                return Err(unknown(&item_field(k, "rating")));
            }
            let reward = item.reward.ok_or_else(|| missing(&item_field(k, "reward")))?;
            let rank = match (item.rank, zero_based) {
                (Some(rank), true) => Some(rank.0.checked_add(1).ok_or_else(|| {
                    Error::at(ErrorCode::InvalidValue, at(&item_field(k, "rank")), "rank is too large")
                })?),
                (Some(rank), false) if rank.0 == 0 => {
                    return Err(Error::at(
                        ErrorCode::InvalidValue,
                        at(&item_field(k, "rank")),
                        "invalid value: integer `0`, expected an integer rank ≥ 1 (1 = best); \
                         send format `ranks_zero_based` for ranks where 0 is best",
                    ));
                }
                (rank, _) => rank.map(|r| r.0),
            };
            let length = item.length.map(|value| length_of(value, || at(&item_field(k, "length")))).transpose()?;
            Ok(ItemInput { id: item.id, reward: reward.0, rank, length })
        })
        .collect()
}

/// Ratings become ranks: the highest rating is rank 1, equal ratings tie.
fn rated_items<'a>(
    items: Vec<Object<WireItem<'a>>>,
    at: &dyn Fn(&str) -> String,
    item_field: ItemField<'_>,
    unknown: Option<FieldError<'_>>,
    missing: FieldError<'_>,
) -> Result<Vec<ItemInput<'a>>, Error> {
    let mut ratings = Vec::with_capacity(items.len());
    let mut inputs = Vec::with_capacity(items.len());
    for (k, Object(item)) in items.into_iter().enumerate() {
        if let (Some(_), Some(unknown)) = (item.rank, unknown) {
            return Err(unknown(&item_field(k, "rank")));
        }
        let reward = item.reward.ok_or_else(|| missing(&item_field(k, "reward")))?;
        let rating = item.rating.ok_or_else(|| missing(&item_field(k, "rating")))?;
        if !rating.0.is_finite() {
            return Err(Error::at(ErrorCode::InvalidValue, at(&item_field(k, "rating")), "rating must be finite"));
        }
        let length = item.length.map(|value| length_of(value, || at(&item_field(k, "length")))).transpose()?;
        ratings.push(rating.0);
        inputs.push(ItemInput { id: item.id, reward: reward.0, rank: None, length });
    }
    // Rank = 1 + the number of distinct ratings above this one (0.0 and −0.0 are one rating).
    let mut distinct: Vec<f64> = ratings.iter().map(|r| r + 0.0).collect();
    distinct.sort_by(|a, b| b.total_cmp(a));
    distinct.dedup();
    for (input, rating) in inputs.iter_mut().zip(&ratings) {
        let above = distinct.partition_point(|&r| r > *rating);
        input.rank = Some(above as u64 + 1);
    }
    Ok(inputs)
}

/// One item per id in order of first appearance in `ranking`; its rank is its position (1-based).
fn ranking_items<'a>(
    id: Option<Id<'a>>,
    ranking: Vec<RankingEntry<'a>>,
    rewards: Vec<(Text<'a>, Number)>,
    at: &dyn Fn(&str) -> String,
    [ranking_name, rewards_name]: [&str; 2],
) -> Result<ListInput<'a>, Error> {
    let mut reward_of: HashMap<&str, f64> = HashMap::with_capacity(rewards.len());
    for (item_id, reward) in &rewards {
        if reward_of.insert(&item_id.0, reward.0).is_some() {
            return Err(Error::at(
                ErrorCode::InvalidValue,
                at(&format!("{rewards_name}.{}", item_id.0)),
                format!("`{}` has two rewards", item_id.0),
            ));
        }
    }
    let mut items = Vec::new();
    let mut positions = Vec::new();
    let mut seen: HashMap<Cow<'a, str>, String> = HashMap::new();
    for (i, entry) in ranking.into_iter().enumerate() {
        let ids: Vec<(Id<'a>, Option<usize>)> = match entry {
            RankingEntry::One(item_id) => vec![(item_id, None)],
            RankingEntry::Tied(tied) if tied.is_empty() => {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    at(&format!("{ranking_name}[{i}]")),
                    "an empty tie ranks no item: leave it out, or put the tied ids in it",
                ));
            }
            RankingEntry::Tied(tied) => tied.into_iter().enumerate().map(|(j, t)| (t, Some(j))).collect(),
        };
        for (item_id, j) in ids {
            let field = match j {
                Some(j) => format!("{ranking_name}[{i}][{j}]"),
                None => format!("{ranking_name}[{i}]"),
            };
            let Some(&reward) = reward_of.get(item_id.as_str()) else {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    at(&field),
                    format!("`{}` has no reward in `rewards`", item_id.text),
                ));
            };
            if let Some(first) = seen.get(&item_id.text) {
                return Err(Error::at(
                    ErrorCode::InvalidValue,
                    at(&field),
                    format!("`{}` is ranked twice (first at {first})", item_id.text),
                ));
            }
            // By text: `3` and `"3"` are one item, as `rewards` keys are strings.
            seen.insert(item_id.text.clone(), field);
            positions.push((i, j));
            items.push(ItemInput { id: Some(item_id), reward, rank: Some(i as u64 + 1), length: None });
        }
    }
    if let Some((extra, _)) = rewards.iter().find(|(item_id, _)| !seen.contains_key(item_id.0.as_ref())) {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            at(&format!("{rewards_name}.{}", extra.0)),
            format!("`{}` has a reward but is not in `ranking`", extra.0),
        ));
    }
    Ok(ListInput { id, group: None, items, shape: Shape::Ranking { positions } })
}

/// A length as given: a finite number ≥ 0 (`-0` is 0), else an error at `path()`.
fn length_of(value: Number, path: impl FnOnce() -> String) -> Result<f64, Error> {
    if value.0.is_finite() && value.0 >= 0.0 {
        // −0.0 + 0.0 is +0.0: one zero, whatever the data wrote.
        return Ok(value.0 + 0.0);
    }
    Err(Error::at(ErrorCode::InvalidValue, path(), format!("length must be a finite number ≥ 0, not {}", value.0)))
}

/// The `lengths` of a `ranking` list onto its items (by id, as `rewards`): an id not in `ranking`,
/// or given twice, is an error at `lengths.<id>`; an item without a length has none.
fn add_ranking_lengths(
    items: &mut [ItemInput<'_>],
    lengths: Vec<(Text<'_>, Number)>,
    at: &dyn Fn(&str) -> String,
    lengths_name: &str,
) -> Result<(), Error> {
    let index: HashMap<&str, usize> =
        items.iter().enumerate().filter_map(|(k, item)| Some((item.id.as_ref()?.as_str(), k))).collect();
    let mut given = vec![false; items.len()];
    let mut found = Vec::with_capacity(lengths.len());
    for (item_id, value) in &lengths {
        let field = || at(&format!("{lengths_name}.{}", item_id.0));
        let Some(&k) = index.get(item_id.0.as_ref()) else {
            return Err(Error::at(
                ErrorCode::InvalidValue,
                field(),
                format!("`{}` has a length but is not in `ranking`", item_id.0),
            ));
        };
        if std::mem::replace(&mut given[k], true) {
            return Err(Error::at(ErrorCode::InvalidValue, field(), format!("`{}` has two lengths", item_id.0)));
        }
        found.push((k, length_of(*value, field)?));
    }
    for (k, length) in found {
        items[k].length = Some(length);
    }
    Ok(())
}
