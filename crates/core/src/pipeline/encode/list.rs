//! One list result, `lists[i]` of a batch answer or (with its `line`) a result line: its fields
//! written by hand in the contract's order, and its pairs, with their ids (`write_pair_with_ids`)
//! or without (`pairs.rs`, straight into the output block).
//!
//! It must not write anything around a list (the batch's fields are `batch.rs`'s, the newline of
//! a line is `lines.rs`'s), and its bytes must stay those serde_json writes for the same values.

use std::io::{self, Write};

use serde_json::ser::{CompactFormatter, Formatter};

use super::{OutputBlocks, pairs, write_f64, write_id, write_json, write_u64};
use crate::math::{ImpliedPair, ListEvaluation};
use crate::pipeline::format::{ItemInput, ListInput};

/// One list result: `lists[i]` of a batch answer, or, with its `line`, one line of a stream.
pub struct ListJson<'r> {
    pub line: Option<u64>,
    pub input: &'r ListInput<'r>,
    pub evaluation: &'r ListEvaluation,
    /// Whether each pair echoes its items' ids (`Options::include_pair_ids`).
    pub pair_ids: bool,
}

/// `{"line"?, "id"?, "n", "pairs_count", "loss", "accuracy", "chance_loss", "kendall_tau"?,
/// "gradients"?, "pairs"?}`: the contract's `ListEvaluation` (with `line`, `StreamResult`).
pub(super) fn write_list<W: Write>(w: &mut OutputBlocks<W>, list: &ListJson<'_>) -> io::Result<()> {
    let e = list.evaluation;
    w.write_all(b"{")?;
    if let Some(line) = list.line {
        w.write_all(b"\"line\":")?;
        write_u64(w, line)?;
        w.write_all(b",")?;
    }
    if let Some(id) = &list.input.id {
        w.write_all(b"\"id\":")?;
        write_id(w, id)?;
        w.write_all(b",")?;
    }
    w.write_all(b"\"n\":")?;
    write_u64(w, e.n as u64)?;
    w.write_all(b",\"pairs_count\":")?;
    write_u64(w, e.pairs_count)?;
    w.write_all(b",\"loss\":")?;
    write_f64(w, e.loss)?;
    w.write_all(b",\"accuracy\":")?;
    write_f64(w, e.accuracy)?;
    w.write_all(b",\"chance_loss\":")?;
    write_f64(w, e.chance_loss)?;
    if let Some(tau) = e.kendall_tau {
        w.write_all(b",\"kendall_tau\":")?;
        write_f64(w, tau)?;
    }
    if let Some(gradients) = &e.gradients {
        w.write_all(b",\"gradients\":")?;
        write_json(w, gradients)?;
    }
    if let Some(pairs) = &e.pairs {
        w.write_all(b",\"pairs\":[")?;
        if list.pair_ids {
            for (index, pair) in pairs.iter().enumerate() {
                if index > 0 {
                    w.write_all(b",")?;
                }
                write_pair_with_ids(w, pair, &list.input.items)?;
            }
        } else {
            pairs::write_pairs(w, pairs)?;
        }
        w.write_all(b"]")?;
    }
    w.write_all(b"}")
}

/// `{"preferred", "other", "preferred_id"?, "other_id"?, "probability", "log_probability"}`: the
/// contract's `ImpliedPair` with the ids of the items that have one (`pairs` writes those without).
fn write_pair_with_ids(w: &mut impl Write, pair: &ImpliedPair, items: &[ItemInput<'_>]) -> io::Result<()> {
    w.write_all(b"{\"preferred\":")?;
    CompactFormatter.write_u32(w, pair.preferred)?;
    w.write_all(b",\"other\":")?;
    CompactFormatter.write_u32(w, pair.other)?;
    let id_of = |index: u32| items.get(index as usize).and_then(|item| item.id.as_ref());
    if let Some(id) = id_of(pair.preferred) {
        w.write_all(b",\"preferred_id\":")?;
        write_id(w, id)?;
    }
    if let Some(id) = id_of(pair.other) {
        w.write_all(b",\"other_id\":")?;
        write_id(w, id)?;
    }
    w.write_all(b",\"probability\":")?;
    write_f64(w, pair.probability)?;
    w.write_all(b",\"log_probability\":")?;
    write_f64(w, pair.log_probability)?;
    w.write_all(b"}")
}

#[cfg(test)]
mod tests {
    use super::super::reference::{IDS, PairReference, floats};
    use super::*;
    use crate::pipeline::wire::Id;
    use prefeval_testkit::SplitMix64 as Random;

    /// Every kind of string id, none, and integer ids (the largest and smallest of 64 bits).
    fn id_of_index(k: usize) -> Option<Id<'static>> {
        match k % (IDS.len() + 3) {
            k if k < IDS.len() => IDS[k].map(Id::text),
            k if k == IDS.len() => Some(Id { text: i64::MIN.to_string().into(), integer: true }),
            k if k == IDS.len() + 1 => Some(Id { text: u64::MAX.to_string().into(), integer: true }),
            _ => Some(Id { text: "7".into(), integer: true }),
        }
    }

    #[test]
    fn pairs_are_the_bytes_serde_json_writes_for_them_with_ids_and_without() {
        let mut random = Random::new(0xB1D5);
        let values = floats(&mut random, 20_000);
        let items: Vec<ItemInput<'_>> =
            (0..40).map(|k| ItemInput { id: id_of_index(k), reward: 0.0, rank: None, length: None }).collect();
        let pairs: Vec<ImpliedPair> = (0..values.len())
            .map(|index| {
                // Indices inside the items, and past them (no id to echo).
                let mut index_of = || match random.below(4) {
                    0 => random.next_u64() as u32,
                    _ => random.below(items.len() as u64) as u32,
                };
                ImpliedPair {
                    preferred: index_of(),
                    other: index_of(),
                    probability: values[index],
                    log_probability: values[(index * 7 + 3) % values.len()],
                }
            })
            .collect();
        let id_of = |index: u32| items.get(index as usize).and_then(|item| item.id.as_ref());
        let reference = |pair: &ImpliedPair, with_ids: bool| {
            serde_json::to_string(&PairReference {
                preferred: pair.preferred,
                other: pair.other,
                preferred_id: if with_ids { id_of(pair.preferred) } else { None },
                other_id: if with_ids { id_of(pair.other) } else { None },
                probability: pair.probability,
                log_probability: pair.log_probability,
            })
            .unwrap()
        };
        for pair in &pairs {
            let mut mine = Vec::new();
            write_pair_with_ids(&mut mine, pair, &items).unwrap();
            assert_eq!(String::from_utf8(mine).unwrap(), reference(pair, true), "{pair:?}");
        }
        // Without ids, all in one run: the pairs cross many block boundaries.
        let mut blocks = OutputBlocks::new(Vec::new());
        pairs::write_pairs(&mut blocks, &pairs).unwrap();
        let mine = String::from_utf8(blocks.finish().unwrap()).unwrap();
        let expected: Vec<String> = pairs.iter().map(|pair| reference(pair, false)).collect();
        assert_eq!(mine, expected.join(","));
    }
}
