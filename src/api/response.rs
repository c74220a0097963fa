//! The wire form of a `POST /v1/evaluate` answer, written straight from the evaluation and the
//! request (for the echoed ids) without intermediate copies.

use serde::Serialize;
use serde::ser::{SerializeSeq, SerializeStruct, Serializer};

use super::request::{EvaluateRequest, Object, RequestItem, Text};
use crate::eval::{BatchEvaluation, ImpliedPair, ListEvaluation, Normalization};

/// Bytes one pair takes in JSON, about: sizes the output buffer once.
const PAIR_JSON_BYTES: usize = 96;

/// About the size of the encoded answer, to size its buffer once in the common case.
pub fn encoded_size_estimate(batch: &BatchEvaluation) -> usize {
    let returned_pairs: usize = batch.lists.iter().map(|l| l.pairs.as_ref().map_or(0, Vec::len)).sum();
    256 + batch.lists.len() * 128 + returned_pairs * PAIR_JSON_BYTES
}

pub fn encode(
    out: &mut impl std::io::Write,
    request: &EvaluateRequest<'_>,
    normalization: Normalization,
    batch: &BatchEvaluation,
) -> Result<(), serde_json::Error> {
    let body = EvaluateResponse {
        loss: batch.loss,
        normalization: normalization.name(),
        summary: Summary { lists: batch.lists.len(), pairs: batch.pairs, accuracy: batch.accuracy },
        lists: Lists { request, batch },
    };
    serde_json::to_writer(out, &body)
}

#[derive(Serialize)]
struct EvaluateResponse<'r> {
    loss: f64,
    normalization: &'static str,
    summary: Summary,
    lists: Lists<'r>,
}

#[derive(Serialize)]
struct Summary {
    lists: usize,
    pairs: u64,
    accuracy: f64,
}

struct Lists<'r> {
    request: &'r EvaluateRequest<'r>,
    batch: &'r BatchEvaluation,
}

impl Serialize for Lists<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.batch.lists.len()))?;
        for (list, evaluation) in self.request.lists.iter().zip(&self.batch.lists) {
            seq.serialize_element(&ListJson { id: list.id.as_ref(), items: &list.items, evaluation })?;
        }
        seq.end()
    }
}

struct ListJson<'r> {
    id: Option<&'r Text<'r>>,
    items: &'r [Object<RequestItem<'r>>],
    evaluation: &'r ListEvaluation,
}

impl Serialize for ListJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = self.evaluation;
        let mut s = serializer.serialize_struct("ListEvaluation", 6)?;
        if let Some(id) = self.id {
            s.serialize_field("id", &*id.0)?;
        }
        s.serialize_field("n", &e.n)?;
        s.serialize_field("pairs_count", &e.pairs_count)?;
        s.serialize_field("loss", &e.loss)?;
        s.serialize_field("accuracy", &e.accuracy)?;
        if let Some(pairs) = &e.pairs {
            s.serialize_field("pairs", &Pairs { items: self.items, pairs })?;
        }
        s.end()
    }
}

struct Pairs<'r> {
    items: &'r [Object<RequestItem<'r>>],
    pairs: &'r [ImpliedPair],
}

impl Serialize for Pairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.pairs.len()))?;
        for pair in self.pairs {
            seq.serialize_element(&PairJson { items: self.items, pair })?;
        }
        seq.end()
    }
}

struct PairJson<'r> {
    items: &'r [Object<RequestItem<'r>>],
    pair: &'r ImpliedPair,
}

impl Serialize for PairJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.pair;
        let id_of = |index: u32| self.items.get(index as usize).and_then(|item| item.id.as_ref()).map(|id| &*id.0);
        let (preferred_id, other_id) = (id_of(p.preferred), id_of(p.other));
        let mut s = serializer.serialize_struct("ImpliedPair", 6)?;
        s.serialize_field("preferred", &p.preferred)?;
        s.serialize_field("other", &p.other)?;
        if let Some(id) = preferred_id {
            s.serialize_field("preferred_id", id)?;
        }
        if let Some(id) = other_id {
            s.serialize_field("other_id", id)?;
        }
        s.serialize_field("probability", &p.probability)?;
        s.serialize_field("log_probability", &p.log_probability)?;
        s.end()
    }
}
