//! A fast path for the common shape of input: native lists of items with `id`, `reward`, `rank`
//! or `rating`, and `length`; `pairs` lists with their lengths; strings without escapes, numbers
//! written plainly. It fills the same wire types as serde would, or gives up (`None`) at the
//! first thing it does not handle — another format, an escape, a duplicate or unknown field,
//! anything invalid — and the caller parses the input again with serde, which then gives the
//! answer or the precise error. So it never decides whether input is valid; it only spares valid
//! input serde's per-field dispatch.
//!
//! Numbers go through Rust's correctly rounded decimal parser; serde_json's (`float_roundtrip`)
//! is correctly rounded too, so both give the same double.

use std::borrow::Cow;

use super::Options;
use super::format::{Level, Schema};
use super::options::{BatchOptions, OptionSettings, resolve_batch_options};
use super::wire::{EvaluateRequest, Id, Number, Object, Rank, Text, WireItem, WireList};

/// A whole `POST /v1/evaluate` body with its options resolved (its own, then `overrides`), or
/// `None` to let serde decide. Lists are read in the naming known when they come: the overrides'
/// alone until the body's `options` have been read; when those rename fields the lists' span is
/// read again (and when native names fail on lists the options will rename, the span is stepped
/// over and read once they are known).
pub fn request<'a>(
    body: &'a [u8],
    defaults: &Options,
    overrides: &OptionSettings,
) -> Option<(EvaluateRequest<'a>, Options)> {
    let mut p = Parser { bytes: body, at: 0 };
    let early = resolve_batch_options(None, defaults, overrides).ok()?;
    let (mut model, mut wire_options, mut resolved) = (None, None, None::<Options>);
    let mut lists: Option<ListsRead<'a>> = None;
    p.object(|p, key| {
        match key {
            b"model" if model.is_none() => model = Some(p.text()?),
            b"options" if wire_options.is_none() => {
                // Small and rare: serde decodes the options object it spans.
                let start = p.at;
                p.skip_value(0)?;
                let slice = p.bytes.get(start..p.at)?;
                let options = serde_json::from_slice::<Object<BatchOptions>>(slice).ok()?;
                resolved = Some(resolve_batch_options(Some(&options.0), defaults, overrides).ok()?);
                wire_options = Some(options);
            }
            b"lists" if lists.is_none() => {
                let start = p.at;
                let naming = resolved.as_ref().unwrap_or(&early);
                match p.lists(naming) {
                    Some(all) => {
                        lists = Some(ListsRead { read: Some(all), start, end: p.at, under_final: resolved.is_some() })
                    }
                    // The options that would read them may follow.
                    None if resolved.is_none() => {
                        p.at = start;
                        p.skip_value(0)?;
                        lists = Some(ListsRead { read: None, start, end: p.at, under_final: false });
                    }
                    None => return None,
                }
            }
            _ => return None,
        }
        Some(())
    })?;
    p.end()?;
    let options = match resolved {
        Some(options) => options,
        None => early.clone(),
    };
    let ListsRead { read, start, end, under_final } = lists?;
    let same_reading = options.naming == early.naming && (!options.naming.renames() || options.format == early.format);
    let lists = match read {
        Some(all) if under_final || same_reading => all,
        _ => {
            let mut again = Parser { bytes: body.get(..end)?, at: start };
            let all = again.lists(&options)?;
            again.end()?;
            all
        }
    };
    Some((EvaluateRequest { model, options: wire_options, lists }, options))
}

/// The lists of a body as first read (or `None`, stepped over), the span they were read from, and
/// whether they were read under the options finally resolved.
struct ListsRead<'a> {
    read: Option<Vec<Object<WireList<'a>>>>,
    start: usize,
    end: usize,
    under_final: bool,
}

/// One list object (a line of a stream) read in `options`' naming, or `None` to let serde decide.
pub fn list<'a>(json: &'a [u8], options: &Options) -> Option<WireList<'a>> {
    let mut p = Parser { bytes: json, at: 0 };
    let list = p.list(options)?;
    p.end()?;
    Some(list)
}

/// What a key of a list or an item holds: one of the fields this path reads, or nothing to read.
#[derive(Clone, Copy)]
enum Key {
    Id,
    Group,
    Items,
    ChosenReward,
    RejectedReward,
    Reward,
    Rank,
    Rating,
    Length,
    ChosenLength,
    RejectedLength,
    /// A key the options ignore.
    Skip,
}

/// The field a format's own name names at `level`, among those this path reads (`ranking`,
/// `rewards` and `lengths` are serde's).
#[inline(always)]
fn own_key(name: &[u8], level: Level) -> Option<Key> {
    Some(match (level, name) {
        (_, b"id") => Key::Id,
        (Level::List, b"group") => Key::Group,
        (Level::List, b"items") => Key::Items,
        (Level::List, b"chosen_reward") => Key::ChosenReward,
        (Level::List, b"rejected_reward") => Key::RejectedReward,
        (Level::Item, b"reward") => Key::Reward,
        (Level::Item, b"rank") => Key::Rank,
        (Level::Item, b"rating") => Key::Rating,
        (Level::Item, b"length") => Key::Length,
        (Level::List, b"chosen_length") => Key::ChosenLength,
        (Level::List, b"rejected_length") => Key::RejectedLength,
        _ => return None,
    })
}

/// A key as the options read it, or `None` to give up (unknown keys refused go to serde, which
/// names them). Native naming takes the keys of every format this path reads, as serde's
/// decoding of the union does.
#[inline(always)]
fn key_of(key: &[u8], level: Level, options: &Options) -> Option<Key> {
    let naming = &options.naming;
    if !naming.renames() {
        return own_key(key, level);
    }
    let key = std::str::from_utf8(key).ok()?;
    let fields = Schema::Format(options.format).level_fields(level);
    match naming.own_name(key).filter(|own| fields.contains(own)) {
        Some(own) => own_key(own.as_bytes(), level),
        None if naming.ignores_unknown() => Some(Key::Skip),
        None => None,
    }
}

/// Deepest nesting stepped over (in `options`, and in ignored values) before giving the input to
/// serde.
const MAX_SKIPPED_DEPTH: usize = 32;

/// The index of the first `"`, `\\` or control character at or after `from`, eight bytes at a
/// time (the test serde_json's own string scan uses: a byte's high bit is set in `found` for the
/// first such byte of a word; later bits may be false alarms, so only the lowest is trusted).
fn special_byte(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = word ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let found = (control | quote | backslash) & (ONES << 7);
        if found != 0 {
            return Some(from + offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(from + offset + tail)
}

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
        // Keys and ids are short: a plain loop beats the word scan of `skip_string` here.
        let start = self.at + 1;
        let rest = self.bytes.get(start..)?;
        let length = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[length] != b'"' {
            return None;
        }
        self.at = start + length + 1;
        Some(&rest[..length])
    }

    /// Steps over a string, escapes included, refusing what serde refuses when it steps over
    /// one: control characters, unknown escapes, `\u` without four hex digits. (Like serde, it
    /// does not check UTF-8 or surrogates in a string it does not build.)
    fn skip_string(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        let mut at = self.at + 1;
        loop {
            at = special_byte(self.bytes, at)?;
            match self.bytes[at] {
                b'"' => {
                    self.at = at + 1;
                    return Some(());
                }
                b'\\' => match self.bytes.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                    b'u' if self.bytes.get(at + 2..at + 6)?.iter().all(u8::is_ascii_hexdigit) => at += 6,
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    fn text(&mut self) -> Option<Text<'a>> {
        let raw = self.raw_string()?;
        Some(Text(Cow::Borrowed(std::str::from_utf8(raw).ok()?)))
    }

    /// A string id, or an integer id written plainly within i64/u64, its digits borrowed as
    /// serde writes them (JSON has no leading zeros; `-0`, a float to serde, goes to serde).
    #[inline(always)]
    fn id(&mut self) -> Option<Id<'a>> {
        if self.peek()? == b'"' {
            let raw = self.raw_string()?;
            return Some(Id::text(std::str::from_utf8(raw).ok()?));
        }
        let (literal, float) = self.number_literal()?;
        let fits = literal.parse::<i64>().is_ok() || literal.parse::<u64>().is_ok();
        (!float && fits && literal != "-0").then_some(Id { text: Cow::Borrowed(literal), integer: true })
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

    fn lists(&mut self, options: &Options) -> Option<Vec<Object<WireList<'a>>>> {
        let mut all = Vec::new();
        self.array(|p| {
            all.push(Object(p.list(options)?));
            Some(())
        })?;
        Some(all)
    }

    fn list(&mut self, options: &Options) -> Option<WireList<'a>> {
        let mut list = WireList::default();
        self.object(|p, key| {
            match key_of(key, Level::List, options)? {
                Key::Id if list.id.is_none() => list.id = Some(p.id()?),
                Key::Group if list.group.is_none() => list.group = Some(p.text()?),
                Key::Items if list.items.is_none() => {
                    let mut items = Vec::new();
                    p.array(|p| {
                        items.push(Object(p.item(options)?));
                        Some(())
                    })?;
                    list.items = Some(items);
                }
                Key::ChosenReward if list.chosen_reward.is_none() => list.chosen_reward = Some(p.number()?),
                Key::RejectedReward if list.rejected_reward.is_none() => list.rejected_reward = Some(p.number()?),
                Key::ChosenLength if list.chosen_length.is_none() => list.chosen_length = Some(p.number()?),
                Key::RejectedLength if list.rejected_length.is_none() => list.rejected_length = Some(p.number()?),
                Key::Skip => p.skip_value(0)?,
                // An item's field in a list, a field given twice: serde's.
                _ => return None,
            }
            Some(())
        })?;
        Some(list)
    }

    fn item(&mut self, options: &Options) -> Option<WireItem<'a>> {
        let mut item = WireItem { id: None, reward: None, rank: None, rating: None, length: None };
        self.object(|p, key| {
            match key_of(key, Level::Item, options)? {
                Key::Id if item.id.is_none() => item.id = Some(p.id()?),
                Key::Reward if item.reward.is_none() => item.reward = Some(p.number()?),
                Key::Rank if item.rank.is_none() => item.rank = Some(p.rank()?),
                Key::Rating if item.rating.is_none() => item.rating = Some(p.number()?),
                Key::Length if item.length.is_none() => item.length = Some(p.number()?),
                Key::Skip => p.skip_value(0)?,
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
            b'"' => self.skip_string(),
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
        let fast =
            request(body.as_bytes(), &Options::default(), &OptionSettings::default()).map(|(request, _)| request);
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
    fn lengths_take_the_fast_path_and_equal_serde() {
        assert!(agrees(
            r#"{"lists":[{"items":[{"reward":1,"length":12},{"length":-0,"reward":0.5,"rank":2},{"reward":0,"length":2.5e3}]}]}"#
        ));
        assert!(agrees(
            r#"{"lists":[{"chosen_reward":1,"rejected_reward":0,"chosen_length":3.5,"rejected_length":0}]}"#
        ));
        assert!(agrees(r#"{"lists":[{"rejected_length":7,"chosen_reward":1,"rejected_reward":0}]}"#));
        // Negative lengths are read (to_input refuses them by name); what serde refuses goes to it.
        assert!(agrees(r#"{"lists":[{"items":[{"reward":1,"length":-3}]}]}"#));
        for body in [
            r#"{"lists":[{"items":[{"reward":1,"length":"3"}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,"length":null}]}]}"#,
            r#"{"lists":[{"items":[{"reward":1,"length":1,"length":2}]}]}"#,
            r#"{"lists":[{"chosen_reward":1,"rejected_reward":0,"chosen_length":1e400}]}"#,
        ] {
            assert!(!agrees(body), "{body}");
        }
        assert!(!agrees(r#"{"lists":[{"ranking":["a"],"rewards":{"a":1},"lengths":{"a":1}}]}"#));
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

    /// The fast path and serde's seeded decoding, for a body whose options rename.
    fn agrees_renamed(body: &str) -> bool {
        use crate::pipeline::decode::parse_seed;
        use crate::pipeline::named::RequestSeed;
        let fast = request(body.as_bytes(), &Options::default(), &OptionSettings::default());
        if let Some((fast, options)) = &fast {
            let slow = parse_seed(body.as_bytes(), RequestSeed(options)).expect("serde reads what the fast path read");
            assert_eq!(format!("{:?}", fast.lists), format!("{:?}", slow.lists), "{body}");
        }
        fast.is_some()
    }

    #[test]
    fn renamed_exports_take_the_fast_path_wherever_their_options_are() {
        let text = format!("\"{}\"", "Human: say \\\"hi\\\"\\n\\nAssistant: \\u00e9 \\\\ ok\\t".repeat(50));
        let row = format!(
            r#"{{"prompt_id":"p1","prompt":{text},"chosen":[{{"role":"user","content":{text}}}],"meta":{{"a":[1,2.5,null,true,{{}}]}},"score_chosen":1.5,"score_rejected":-2,"subset":"chat"}}"#
        );
        let options = r#"{"format":"pairs","unknown_fields":"ignore","fields":{"chosen_reward":"score_chosen","rejected_reward":"score_rejected","group":"subset","id":"prompt_id"}}"#;
        for body in [
            format!(r#"{{"options":{options},"lists":[{row},{row}]}}"#),
            format!(r#"{{"lists":[{row},{row}],"options":{options}}}"#),
        ] {
            assert!(agrees_renamed(&body), "{}", &body[..200]);
        }
        // Integer ids, native items renamed, options last.
        let body = r#"{"lists":[{"qid":3,"rs":[{"id":-1,"s":1,"x":"\""},{"id":18446744073709551615,"s":0}]}],
            "options":{"fields":{"id":"qid","items":"rs","reward":"s"},"unknown_fields":"ignore"}}"#;
        assert!(agrees_renamed(body));
        let body = r#"{"options":{"fields":{"length":"n_tokens"}},"lists":[{"items":[{"reward":1,"n_tokens":4},{"reward":0}]}]}"#;
        assert!(agrees_renamed(body));
        let body = r#"{"options":{"format":"pairs","fields":{"chosen_length":"a","rejected_length":"b"}},
            "lists":[{"chosen_reward":1,"rejected_reward":0,"a":10,"b":0.5}]}"#;
        assert!(agrees_renamed(body));
        // What serde refuses when it steps over a value, the fast path leaves to serde.
        for bad in [r#""\x""#, r#""\u12G4""#, "\"tab\there\"", r#""open"#] {
            let body = format!(r#"{{"options":{{"unknown_fields":"ignore"}},"lists":[{{"t":{bad},"items":[]}}]}}"#);
            assert!(!agrees_renamed(&body), "{body}");
        }
    }

    #[test]
    fn the_word_scan_finds_the_first_quote_backslash_or_control_byte() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.below(40))
                .map(|_| match rng.below(8) {
                    0 => b'"',
                    1 => b'\\',
                    2 => rng.below(0x20) as u8,
                    3 => 0x80 + rng.below(0x80) as u8,
                    _ => 0x20 + rng.below(0x60) as u8,
                })
                .collect();
            let from = rng.below(bytes.len() as u64 + 2) as usize;
            let naive =
                bytes.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20));
            assert_eq!(special_byte(&bytes, from), naive.map(|k| from + k), "{bytes:?} from {from}");
        }
    }
}
