//! A fast path for the common shape of input: native lists of items with `id`, `reward`, `rank`
//! or `rating`, strings without escapes, numbers written plainly. It fills the same wire types
//! as serde would, or gives up (`None`) at the first thing it does not handle — another format,
//! an escape, a duplicate or unknown field, anything invalid — and the caller parses the input
//! again with serde, which then gives the answer or the precise error. So it never decides
//! whether input is valid; it only spares valid input serde's per-field dispatch.
//!
//! Numbers go through Rust's correctly rounded decimal parser; serde_json's (`float_roundtrip`)
//! is correctly rounded too, so both give the same double.

use std::borrow::Cow;

use super::options::BatchOptions;
use super::wire::{EvaluateRequest, Id, Number, Object, Rank, Text, WireItem, WireList};

/// A whole `POST /v1/evaluate` body, or `None` to let serde decide.
pub fn request(body: &[u8]) -> Option<EvaluateRequest<'_>> {
    let mut p = Parser { bytes: body, at: 0 };
    let (mut model, mut options, mut lists) = (None, None, None);
    p.object(|p, key| {
        match key {
            b"model" if model.is_none() => model = Some(p.text()?),
            b"options" if options.is_none() => {
                // Small and rare: serde decodes the options object it spans.
                let start = p.at;
                p.skip_value(0)?;
                let slice = p.bytes.get(start..p.at)?;
                options = Some(serde_json::from_slice::<Object<BatchOptions>>(slice).ok()?);
            }
            b"lists" if lists.is_none() => {
                let mut all = Vec::new();
                p.array(|p| {
                    all.push(Object(p.list()?));
                    Some(())
                })?;
                lists = Some(all);
            }
            _ => return None,
        }
        Some(())
    })?;
    p.end()?;
    Some(EvaluateRequest { model, options, lists: lists? })
}

/// One list object (a line of a stream), or `None` to let serde decide.
pub fn list(json: &[u8]) -> Option<WireList<'_>> {
    let mut p = Parser { bytes: json, at: 0 };
    let list = p.list()?;
    p.end()?;
    Some(list)
}

/// Deepest nesting stepped over inside `options` before giving the input to serde.
const MAX_SKIPPED_DEPTH: usize = 32;

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// The next non-whitespace byte, consumed.
    fn next_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn end(&mut self) -> Option<()> {
        self.skip_whitespace();
        (self.at == self.bytes.len()).then_some(())
    }

    /// `{ "key": value, ... }`, each value read by `member` (which returns `None` to give up).
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.delimited::<b'{', b'}'>(|parser| {
            let key = parser.raw_string()?;
            if parser.next_token()? != b':' {
                return None;
            }
            parser.skip_whitespace();
            member(parser, key)
        })
    }

    /// `[ value, ... ]`, each value read by `element`.
    fn array(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.delimited::<b'[', b']'>(element)
    }

    /// `OPEN item, item, ... CLOSE`, possibly empty; each item read by `item`, whitespace before
    /// it skipped.
    fn delimited<const OPEN: u8, const CLOSE: u8>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if self.next_token()? != OPEN {
            return None;
        }
        self.skip_whitespace();
        if self.peek()? == CLOSE {
            self.at += 1;
            return Some(());
        }
        loop {
            self.skip_whitespace();
            item(self)?;
            match self.next_token()? {
                b',' => continue,
                token if token == CLOSE => return Some(()),
                _ => return None,
            }
        }
    }

    /// The bytes of a string with no escapes and no control characters, quotes excluded.
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let rest = self.bytes.get(start..)?;
        let length = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[length] != b'"' {
            return None;
        }
        self.at = start + length + 1;
        Some(&rest[..length])
    }

    fn text(&mut self) -> Option<Text<'a>> {
        let raw = self.raw_string()?;
        Some(Text(Cow::Borrowed(std::str::from_utf8(raw).ok()?)))
    }

    /// A string id, or an integer id written plainly within i64/u64, its digits borrowed as
    /// serde writes them (JSON has no leading zeros; `-0`, a float to serde, goes to serde).
    fn id(&mut self) -> Option<Id<'a>> {
        if self.peek()? == b'"' {
            let raw = self.raw_string()?;
            return Some(Id::text(std::str::from_utf8(raw).ok()?));
        }
        let (literal, float) = self.number_literal()?;
        let fits = literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
        (!float && fits && literal != "-0").then(|| Id { text: Cow::Borrowed(literal), integer: true })
    }

    /// The literal of a JSON number, checked against the grammar; whether it has a fraction or
    /// an exponent.
    fn number_literal(&mut self) -> Option<(&'a str, bool)> {
        let start = self.at;
        let bytes = self.bytes;
        let mut i = start;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        match bytes.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let mut float = false;
        if bytes.get(i) == Some(&b'.') {
            float = true;
            i += 1;
            if !bytes.get(i)?.is_ascii_digit() {
                return None;
            }
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            float = true;
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if !bytes.get(i)?.is_ascii_digit() {
                return None;
            }
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.at = i;
        // ASCII by construction.
        Some((std::str::from_utf8(bytes.get(start..i)?).ok()?, float))
    }

    fn number(&mut self) -> Option<Number> {
        let (literal, _) = self.number_literal()?;
        // Correctly rounded, like serde_json's: its integers reach f64 by `as`, which rounds to
        // nearest too, and `-0` is −0.0 in both.
        let value = literal.parse::<f64>().ok()?;
        // Out of range (serde answers `number out of range`).
        value.is_finite().then_some(Number(value))
    }

    /// A rank written as a plain non-negative integer; other forms go to serde.
    fn rank(&mut self) -> Option<Rank> {
        let (literal, float) = self.number_literal()?;
        if float {
            return None;
        }
        literal.parse::<u64>().ok().map(Rank)
    }

    fn list(&mut self) -> Option<WireList<'a>> {
        let mut list = WireList {
            id: None,
            group: None,
            items: None,
            chosen_reward: None,
            rejected_reward: None,
            ranking: None,
            rewards: None,
        };
        self.object(|p, key| {
            match key {
                b"id" if list.id.is_none() => list.id = Some(p.id()?),
                b"group" if list.group.is_none() => list.group = Some(p.text()?),
                b"items" if list.items.is_none() => {
                    let mut items = Vec::new();
                    p.array(|p| {
                        items.push(Object(p.item()?));
                        Some(())
                    })?;
                    list.items = Some(items);
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(list)
    }

    fn item(&mut self) -> Option<WireItem<'a>> {
        let mut item = WireItem { id: None, reward: None, rank: None, rating: None };
        self.object(|p, key| {
            match key {
                b"id" if item.id.is_none() => item.id = Some(p.id()?),
                b"reward" if item.reward.is_none() => item.reward = Some(p.number()?),
                b"rank" if item.rank.is_none() => item.rank = Some(p.rank()?),
                b"rating" if item.rating.is_none() => item.rating = Some(p.number()?),
                _ => return None,
            }
            Some(())
        })?;
        Some(item)
    }

    /// Steps over any JSON value without building it (for the options object, which serde then
    /// reads). Strings with escapes and nesting are handled; validity is serde's to judge.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        // Hostile nesting must not exhaust the stack; serde refuses it past 128 levels anyway.
        if depth > MAX_SKIPPED_DEPTH {
            return None;
        }
        self.skip_whitespace();
        match self.peek()? {
            b'{' => self.object(|p, _| p.skip_value(depth + 1)),
            b'[' => self.array(|p| p.skip_value(depth + 1)),
            b'"' => self.raw_string().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number_literal().map(|_| ()),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    fn serde_request(body: &[u8]) -> Option<EvaluateRequest<'_>> {
        serde_json::from_slice::<Object<EvaluateRequest<'_>>>(body).ok().map(|o| o.0)
    }

    /// Whenever the fast path answers, serde answers the same; the fast path takes the common
    /// shapes.
    fn agrees(body: &str) -> bool {
        let fast = request(body.as_bytes());
        let slow = serde_request(body.as_bytes());
        if let Some(fast) = &fast {
            assert_eq!(Some(format!("{fast:?}")), slow.as_ref().map(|s| format!("{s:?}")), "{body}");
            // Equal bits, not only equal Debug text.
            for (f, s) in fast.lists.iter().zip(&slow.as_ref().unwrap().lists) {
                for (a, b) in f.items.iter().flatten().zip(s.items.iter().flatten()) {
                    assert_eq!(a.reward.map(|n| n.0.to_bits()), b.reward.map(|n| n.0.to_bits()), "{body}");
                }
            }
        }
        fast.is_some()
    }

    #[test]
    fn plain_native_batches_take_the_fast_path_and_equal_serde() {
        assert!(agrees(r#"{"lists":[{"items":[{"reward":1},{"reward":-0.5}]}]}"#));
        assert!(agrees(
            r#" { "model" : "m", "options": {"include_pairs": false, "beta": 2.5},
                "lists" : [ {"id":"p0","group":"g","items":[{"id":"a","reward":1e-3,"rank":2},
                {"id":"b","reward":-0,"rank":1},{"reward":123456789012345678901234567890.5,"rating":4}]} ] } "#
        ));
        // Integers as serde reads them: -0 is −0.0, large ones round to the nearest double.
        assert!(agrees(
            r#"{"lists":[{"items":[{"reward":-0},{"reward":18446744073709551615},{"reward":-9223372036854775808}]}]}"#
        ));
        assert!(agrees(
            r#"{"lists":[{"items":[{"reward":-0.0},{"reward":4.9e-324},{"reward":1.7976931348623157e308}]}]}"#
        ));
        assert!(agrees(r#"{"lists":[{"id":"Ünïcödé ✓","items":[]}]}"#));
    }

    #[test]
    fn anything_unusual_goes_to_serde() {
        for body in [
            r#"{"lists":[{"items":[{"reward":1e400}]}]}"#,
            r#"{"lists":[{"items":[{"reward":184467440737095516150}]}]}"#,
            r#"{"lists":[{"items":[{"reward":"1"}]}]}"#,
            r#"{"lists":[{"items":[{"reward":null}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,"reward":2}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,"extra":2}]}]}"#,
            r#"{"lists":[{"id":"a\"b","items":[]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,"rank":2.0}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,"rank":-1}]}]}"#,
            r#"{"lists":[{"chosen_reward":1,"rejected_reward":0}]}"#,
            r#"{"lists":[{"items":[{"reward":01}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1.}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,}]}]}"#,
            r#"{"lists":[]} x"#,
            r#"{"lists":[],"lists":[]}"#,
            r#"{"options":{"beta":0},"lists":[]}"#,
            r#"{"options":{"beta":"x"},"lists":[]}"#,
            r#"{"model":null,"lists":[]}"#,
            r#"[{"lists":[]}]"#,
            &format!(r#"{{"options":{}1{},"lists":[]}}"#, "[".repeat(100_000), "]".repeat(100_000)),
            "{\"lists\":[{\"id\":\"tab\there\",\"items\":[]}]}",
        ] {
            agrees(body);
        }
        assert!(!agrees(r#"{"lists":[{"ranking":["a"],"rewards":{"a":1}}]}"#));
        assert!(!agrees(r#"{"lists":[{"items":[{"reward":1e400}]}]}"#));
    }

    #[test]
    fn random_bodies_and_their_mutations_agree_with_serde() {
        let mut rng = SplitMix64::new(17);
        let mut fast_taken = 0;
        for case in 0..3000 {
            let lists: Vec<String> = (0..1 + rng.below(4))
                .map(|l| {
                    let items: Vec<String> = (0..rng.below(5))
                        .map(|k| {
                            let reward = match rng.below(4) {
                                0 => format!("{}", rng.below(1000) as i64 - 500),
                                1 => format!("{:e}", rng.between(-1e6, 1e6)),
                                _ => format!("{}", rng.between(-10.0, 10.0)),
                            };
                            let rank = if rng.below(3) == 0 {
                                format!(",\"rank\":{}", 1 + rng.below(4))
                            } else {
                                String::new()
                            };
                            format!("{{\"id\":\"i{k}\",\"reward\":{reward}{rank}}}")
                        })
                        .collect();
                    format!("{{\"id\":\"l{l}\",\"items\":[{}]}}", items.join(","))
                })
                .collect();
            let mut body = format!("{{\"model\":\"m{case}\",\"lists\":[{}]}}", lists.join(",")).into_bytes();
            if case % 2 == 1 {
                // A byte changed, dropped or doubled anywhere.
                let at = rng.below(body.len() as u64) as usize;
                match rng.below(3) {
                    0 => body[at] = b"{}[]\":,.-+e0 9an\\"[rng.below(17) as usize],
                    1 => {
                        body.remove(at);
                    }
                    _ => body.insert(at, body[at]),
                }
            }
            if let Ok(text) = std::str::from_utf8(&body) {
                fast_taken += usize::from(agrees(text));
            }
        }
        assert!(fast_taken > 1500, "the fast path took {fast_taken} bodies");
    }
}
