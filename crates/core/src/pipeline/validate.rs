//! Turns decoded input into evaluation input, enforcing the contract's rules and the configured
//! limits: options, the model label, and each list (below its path prefix). Every refusal names
//! the field at fault and, for limits, the setting.

use super::Options;
use super::decode::{NamedRead, parse, parse_named, parse_seed};
use super::fast_decode;
use super::fields::Naming;
use super::format::{ListInput, join, to_input};
use super::named::{ListSeed, RequestSeed};
use super::options::{BatchOptions, OptionSettings, resolve_batch_options};
use super::wire::{EvaluateRequest, Object, Text};
use crate::error::{Error, ErrorCode};
use crate::limits::Limits;
use crate::math::{ListError, RankedList};

/// Longest `id` (list or item), in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest `model` label, in bytes.
pub const MAX_MODEL_BYTES: usize = 256;
/// The per-model metrics label of requests without a model, and of models past the label bound:
/// reserved, so that no client's model can be counted as either.
pub const MODEL_UNSPECIFIED: &str = "unspecified";
pub const MODEL_OTHER: &str = "other";
/// Longest `group`, in bytes.
pub const MAX_GROUP_BYTES: usize = 256;

/// A batch ready to evaluate: its options, model and ranked lists, with the lists as sent (for the
/// ids the answer echoes).
pub struct Batch<'a> {
    pub model: Option<Text<'a>>,
    pub options: Options,
    pub inputs: Vec<ListInput<'a>>,
    pub ranked: Vec<RankedList>,
}

/// Decodes and validates a `POST /v1/evaluate` body (or a batch file): every list in the format
/// of `options.format`, under the batch limits. The body's own options apply over the door's
/// `defaults` (`Options::default()` over HTTP, `Options::for_datasets()` for a file), then
/// `overrides` (a batch file's options, overridden by command-line flags; none over HTTP).
pub fn batch<'a>(
    body: &'a [u8],
    limits: &Limits,
    defaults: &Options,
    overrides: &OptionSettings,
) -> Result<Batch<'a>, Error> {
    // The fast path takes plain batches; serde decides everything else, errors included.
    let (request, options) = match fast_decode::request(body, defaults, overrides) {
        Some(decoded) => decoded,
        None => decode_batch(body, defaults, overrides)?,
    };
    if let Some(model) = &request.model {
        check_model(model, "model")?;
    }
    if request.lists.is_empty() {
        return Err(empty_batch());
    }
    if request.lists.len() > limits.max_lists {
        return Err(too_many_lists(request.lists.len(), limits));
    }
    let mut inputs = Vec::with_capacity(request.lists.len());
    let mut ranked = Vec::with_capacity(request.lists.len());
    let mut total_pairs = 0u64;
    for (index, Object(wire)) in request.lists.into_iter().enumerate() {
        let prefix = format!("lists[{index}]");
        let input = to_input(wire, options.format, &options.naming, &prefix)?;
        let list = rank(&input, &prefix, &options, limits)?;
        total_pairs += list.pairs();
        if options.math.include_pairs && total_pairs > limits.max_pairs {
            return Err(too_many_returned_pairs("options.include_pairs", limits));
        }
        if total_pairs > limits.max_evaluated_pairs {
            return Err(too_many_evaluated_pairs("lists", limits, "split the batch"));
        }
        inputs.push(input);
        ranked.push(list);
    }
    Ok(Batch { model: request.model, options, inputs, ranked })
}

/// A batch body with serde, its options over `defaults` then `overrides` (see `parse_named`).
fn decode_batch<'a>(
    body: &'a [u8],
    defaults: &Options,
    overrides: &OptionSettings,
) -> Result<(EvaluateRequest<'a>, Options), Error> {
    let read = parse_named(
        body,
        |request: &EvaluateRequest<'_>| request.options.as_ref().map(|o| &o.0),
        |wire| resolve_batch_options(wire, defaults, overrides),
    )?;
    match read {
        NamedRead::Read(request, options) => Ok((request, options)),
        NamedRead::ReadAgain(options) => Ok((parse_seed(body, RequestSeed(&options))?, options)),
    }
}

/// Decodes and validates one line of a stream (or of a file): one list, under the per-list limits.
pub fn line<'a>(json: &'a [u8], options: &Options, limits: &Limits) -> Result<(ListInput<'a>, RankedList), Error> {
    let wire = match fast_decode::list(json, options) {
        Some(wire) => wire,
        None if options.naming.renames() => parse_seed(json, ListSeed(options))?,
        None => parse(json)?,
    };
    let naming = &options.naming;
    let input = to_input(wire, options.format, naming, "")?;
    let ranked = rank(&input, "", options, limits)?;
    if options.math.include_pairs && ranked.pairs() > limits.max_pairs {
        return Err(too_many_returned_pairs("include_pairs", limits));
    }
    if ranked.pairs() > limits.max_evaluated_pairs {
        return Err(too_many_evaluated_pairs(input.items_field(naming), limits, "send a shorter list"));
    }
    Ok((input, ranked))
}

fn too_many_returned_pairs(path: &str, limits: &Limits) -> Error {
    Error::at(
        ErrorCode::TooManyPairs,
        path,
        format!(
            "the answer would return more than {} pairs (PREFEVAL_MAX_PAIRS / --max-pairs); \
             set include_pairs to false or send fewer or shorter lists",
            limits.max_pairs
        ),
    )
}

pub(super) fn too_many_evaluated_pairs(path: &str, limits: &Limits, advice: &str) -> Error {
    Error::at(
        ErrorCode::TooManyPairs,
        path,
        format!(
            "the lists imply more than {} pairs to evaluate (PREFEVAL_MAX_EVALUATED_PAIRS / \
             --max-evaluated-pairs); {advice}",
            limits.max_evaluated_pairs
        ),
    )
}

pub(super) fn too_many_lists(count: usize, limits: &Limits) -> Error {
    Error::at(
        ErrorCode::TooManyLists,
        "lists",
        format!("{count} lists in one request; the limit is {} (PREFEVAL_MAX_LISTS / --max-lists)", limits.max_lists),
    )
}

pub fn empty_batch() -> Error {
    Error::at(ErrorCode::EmptyBatch, "lists", "`lists` must hold at least one list")
}

/// The options of a batch body (`options`) over `defaults`.
pub fn options_of(wire: Option<&BatchOptions>, defaults: &Options) -> Result<Options, Error> {
    resolve_batch_options(wire, defaults, &OptionSettings::default())
}

/// A ranked list from one list's input; `prefix` is the list's path (`lists[3]`, or empty).
pub(super) fn rank(
    input: &ListInput<'_>,
    prefix: &str,
    options: &Options,
    limits: &Limits,
) -> Result<RankedList, Error> {
    let at = |field: &str| join(prefix, field);
    let naming = &options.naming;
    if let Some(id) = &input.id {
        check_length(id.as_str(), MAX_ID_BYTES, || at(naming.data_name("id")))?;
    }
    if let Some(group) = &input.group {
        check_length(&group.0, MAX_GROUP_BYTES, || at(naming.data_name("group")))?;
    }
    let n = input.items.len();
    if n > limits.max_items_per_list {
        return Err(Error::at(
            ErrorCode::TooManyItems,
            at(input.items_field(naming)),
            format!(
                "list has {n} items; the limit is {} (PREFEVAL_MAX_ITEMS_PER_LIST / --max-items-per-list)",
                limits.max_items_per_list
            ),
        ));
    }
    for (item, entry) in input.items.iter().enumerate() {
        if let Some(id) = &entry.id {
            check_length(id.as_str(), MAX_ID_BYTES, || at(&input.item_id_field(item, naming)))?;
        }
    }
    let ranked_items = input.items.iter().filter(|item| item.rank.is_some()).count();
    if ranked_items != 0 && ranked_items != n {
        let first_differs = input.items.iter().position(|item| item.rank.is_some() != input.items[0].rank.is_some());
        let item = first_differs.unwrap_or(0);
        return Err(Error::at(
            ErrorCode::MixedRanking,
            at(&input.rank_field(item, naming)),
            format!(
                "{ranked_items} of the list's {n} items have a `rank`: give every item a rank, or none (array order)"
            ),
        ));
    }
    let rewards: Vec<f64> = input.items.iter().map(|item| item.reward).collect();
    let ranks: Option<Vec<u64>> = (ranked_items == n).then(|| input.items.iter().filter_map(|i| i.rank).collect());
    let list_error = |error| list_error(input, prefix, naming, error);
    let ranked = RankedList::new(rewards, ranks.as_deref()).map_err(list_error)?;
    ranked.check_reward_spread(options.math.beta).map_err(list_error)?;
    Ok(ranked)
}

fn list_error(input: &ListInput<'_>, prefix: &str, naming: &Naming, error: ListError) -> Error {
    let items = join(prefix, input.items_field(naming));
    let at = |field: String| join(prefix, &field);
    match error {
        ListError::TooFewItems { n } => {
            Error::at(ErrorCode::TooFewItems, items, format!("a list needs at least 2 items, this one has {n}"))
        }
        ListError::TooManyItems { n } => Error::at(ErrorCode::TooManyItems, items, format!("list has {n} items")),
        ListError::RanksMissing { item } => Error::at(
            ErrorCode::MixedRanking,
            at(input.rank_field(item, naming)),
            "give every item a rank, or none (array order)",
        ),
        ListError::NonFiniteReward { item } => {
            Error::at(ErrorCode::InvalidValue, at(input.reward_field(item, naming)), "reward must be a finite number")
        }
        ListError::NoPreferences => Error::at(
            ErrorCode::NoPreferences,
            items,
            "every item shares one rank, so the list implies no preference to evaluate",
        ),
        ListError::RewardSpreadOverflow { item } => Error::at(
            ErrorCode::NonFiniteResult,
            at(input.reward_field(item, naming)),
            "beta × (largest − smallest reward) of this list overflows a 64-bit float; rescale the rewards",
        ),
    }
}

/// `model` labels per-model metrics series: not empty (Prometheus reads `model=""` as no label at
/// all), bounded in length, and not one of the service's own labels (a client naming its model
/// `other` would merge with the models past the label bound). Compared exactly: `Other` is a
/// different label and is accepted.
pub fn check_model(model: &Text<'_>, path: &str) -> Result<(), Error> {
    if model.0.is_empty() {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            path,
            "model is empty; name the model, or leave it out to be counted as `unspecified`",
        ));
    }
    check_length(&model.0, MAX_MODEL_BYTES, || path.to_string())?;
    if [MODEL_UNSPECIFIED, MODEL_OTHER].contains(&model.0.as_ref()) {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            path,
            format!(
                "model {:?} is reserved: `{MODEL_UNSPECIFIED}` and `{MODEL_OTHER}` are the metrics labels of \
                 requests without a model and of models past the label bound; choose another name",
                model.0
            ),
        ));
    }
    Ok(())
}

/// `path` is built only for the error: formatting one per item id was a tenth of a small batch.
fn check_length(text: &str, max: usize, path: impl FnOnce() -> String) -> Result<(), Error> {
    if text.len() > max {
        return Err(Error::at(
            ErrorCode::InvalidValue,
            path(),
            format!("{} bytes long; at most {max} bytes are allowed", text.len()),
        ));
    }
    Ok(())
}
