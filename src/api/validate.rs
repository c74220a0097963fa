//! Turns a decoded request into evaluation input, enforcing the contract's rules and the
//! configured limits. Every refusal names the field at fault and, for limits, the setting.

use super::error::{ApiError, ErrorCode};
use super::request::{EvaluateRequest, RequestList, Text};
use crate::eval::{EvalOptions, ListError, RankedList};
use crate::limits::Limits;
use crate::metrics::{MODEL_OTHER, MODEL_UNSPECIFIED};

/// Longest `id` (list or item), in bytes.
pub const MAX_ID_BYTES: usize = 1024;
/// Longest `model` label, in bytes.
pub const MAX_MODEL_BYTES: usize = 256;

pub fn validate(request: &EvaluateRequest<'_>, limits: &Limits) -> Result<(EvalOptions, Vec<RankedList>), ApiError> {
    let options = options_of(request)?;
    if let Some(model) = &request.model {
        check_length(model, MAX_MODEL_BYTES, "model")?;
        check_not_reserved(model)?;
    }
    if request.lists.is_empty() {
        return Err(empty_batch());
    }
    if request.lists.len() > limits.max_lists {
        return Err(ApiError::at(
            ErrorCode::TooManyLists,
            "lists",
            format!(
                "{} lists in one request; the limit is {} (PREFEVAL_MAX_LISTS / --max-lists)",
                request.lists.len(),
                limits.max_lists
            ),
        ));
    }

    let mut lists = Vec::with_capacity(request.lists.len());
    let mut total_pairs = 0u64;
    for (index, list) in request.lists.iter().enumerate() {
        let ranked = ranked_list(index, list, &options, limits)?;
        total_pairs += ranked.pairs();
        if options.include_pairs && total_pairs > limits.max_pairs {
            return Err(ApiError::at(
                ErrorCode::TooManyPairs,
                "options.include_pairs",
                format!(
                    "the response would return more than {} pairs (PREFEVAL_MAX_PAIRS / --max-pairs); \
                     set options.include_pairs to false or send fewer or shorter lists",
                    limits.max_pairs
                ),
            ));
        }
        if total_pairs > limits.max_evaluated_pairs {
            return Err(ApiError::at(
                ErrorCode::TooManyPairs,
                "lists",
                format!(
                    "the lists imply more than {} pairs to evaluate (PREFEVAL_MAX_EVALUATED_PAIRS / \
                     --max-evaluated-pairs); split the batch",
                    limits.max_evaluated_pairs
                ),
            ));
        }
        lists.push(ranked);
    }
    Ok((options, lists))
}

pub fn empty_batch() -> ApiError {
    ApiError::at(ErrorCode::EmptyBatch, "lists", "`lists` must hold at least one list")
}

fn options_of(request: &EvaluateRequest<'_>) -> Result<EvalOptions, ApiError> {
    let mut options = EvalOptions::default();
    let Some(wire) = &request.options else { return Ok(options) };
    if let Some(normalization) = wire.normalization {
        options.normalization = normalization.into();
    }
    if let Some(include_pairs) = wire.include_pairs {
        options.include_pairs = include_pairs;
    }
    if let Some(beta) = wire.beta {
        if beta.0.is_nan() || beta.0 <= 0.0 {
            return Err(ApiError::at(
                ErrorCode::InvalidValue,
                "options.beta",
                format!("beta must be > 0, got {}", beta.0),
            ));
        }
        options.beta = beta.0;
    }
    Ok(options)
}

fn ranked_list(
    index: usize,
    list: &RequestList<'_>,
    options: &EvalOptions,
    limits: &Limits,
) -> Result<RankedList, ApiError> {
    let items_path = || format!("lists[{index}].items");
    if let Some(id) = &list.id {
        check_length(id, MAX_ID_BYTES, &format!("lists[{index}].id"))?;
    }
    let n = list.items.len();
    if n > limits.max_items_per_list {
        return Err(ApiError::at(
            ErrorCode::TooManyItems,
            items_path(),
            format!(
                "list has {n} items; the limit is {} (PREFEVAL_MAX_ITEMS_PER_LIST / --max-items-per-list)",
                limits.max_items_per_list
            ),
        ));
    }
    for (item, entry) in list.items.iter().enumerate() {
        if let Some(id) = &entry.id {
            check_length(id, MAX_ID_BYTES, &format!("lists[{index}].items[{item}].id"))?;
        }
    }
    let ranked_items = list.items.iter().filter(|item| item.rank.is_some()).count();
    if ranked_items != 0 && ranked_items != n {
        let first_differs = list.items.iter().position(|item| item.rank.is_some() != list.items[0].rank.is_some());
        let item = first_differs.unwrap_or(0);
        return Err(ApiError::at(
            ErrorCode::MixedRanking,
            format!("lists[{index}].items[{item}].rank"),
            format!(
                "{ranked_items} of the list's {n} items have a `rank`: give every item a rank, or none (array order)"
            ),
        ));
    }
    let rewards: Vec<f64> = list.items.iter().map(|item| item.reward.0).collect();
    let ranks: Option<Vec<u64>> =
        (ranked_items == n).then(|| list.items.iter().filter_map(|i| i.rank).map(|r| r.0).collect());
    let ranked = RankedList::new(rewards, ranks.as_deref()).map_err(|e| list_error(index, e))?;
    ranked.check_reward_spread(options.beta).map_err(|e| list_error(index, e))?;
    Ok(ranked)
}

fn list_error(index: usize, error: ListError) -> ApiError {
    let items = format!("lists[{index}].items");
    match error {
        ListError::TooFewItems { n } => {
            ApiError::at(ErrorCode::TooFewItems, items, format!("a list needs at least 2 items, this one has {n}"))
        }
        ListError::TooManyItems { n } => ApiError::at(ErrorCode::TooManyItems, items, format!("list has {n} items")),
        ListError::RanksMissing { item } => ApiError::at(
            ErrorCode::MixedRanking,
            format!("{items}[{item}].rank"),
            "give every item a rank, or none (array order)",
        ),
        ListError::NonFiniteReward { item } => {
            ApiError::at(ErrorCode::InvalidValue, format!("{items}[{item}].reward"), "reward must be a finite number")
        }
        ListError::NoPreferences => ApiError::at(
            ErrorCode::NoPreferences,
            items,
            "every item shares one rank, so the list implies no preference to evaluate",
        ),
        ListError::RewardSpreadOverflow { item } => ApiError::at(
            ErrorCode::NonFiniteResult,
            format!("{items}[{item}].reward"),
            "beta × (largest − smallest reward) of this list overflows a 64-bit float; rescale the rewards",
        ),
    }
}

/// `model` names the service's own metrics labels take: a client's model of that name would merge
/// with them. Compared exactly, case-sensitively, as Prometheus compares label values: `Other` or
/// `others` is a series of its own and stays allowed.
const RESERVED_MODELS: [&str; 2] = [MODEL_UNSPECIFIED, MODEL_OTHER];

fn check_not_reserved(model: &Text<'_>) -> Result<(), ApiError> {
    if RESERVED_MODELS.contains(&model.0.as_ref()) {
        return Err(ApiError::at(
            ErrorCode::InvalidValue,
            "model",
            format!(
                "model {:?} is reserved: `{MODEL_UNSPECIFIED}` and `{MODEL_OTHER}` are the metrics labels of \
                 requests without a model and of models past the label bound; choose another name",
                model.0
            ),
        ));
    }
    Ok(())
}

fn check_length(text: &Text<'_>, max: usize, path: &str) -> Result<(), ApiError> {
    if text.0.len() > max {
        return Err(ApiError::at(
            ErrorCode::InvalidValue,
            path,
            format!("{} bytes long; at most {max} bytes are allowed", text.0.len()),
        ));
    }
    Ok(())
}
