//! The API tokens: parsed from settings, compared in constant time, never printed (`Debug` shows
//! only how many there are). A leaf type: configuration builds it, the auth middleware reads it.

use std::fmt;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiTokens(Vec<Vec<u8>>);

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} token(s), redacted>", self.0.len())
    }
}

impl ApiTokens {
    /// Tokens separated by commas or newlines; blanks and `#` comment lines are ignored.
    pub fn parse(text: &str) -> ApiTokens {
        let tokens = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.starts_with('#'))
            .map(|t| t.as_bytes().to_vec())
            .collect();
        ApiTokens(tokens)
    }

    /// Adds the tokens of another source (flag and file together).
    pub fn extend(&mut self, other: ApiTokens) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `presented` is one of the tokens. Every token is compared in full, whatever
    /// matches, so timing reveals neither which token nor how much of it matched.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        self.0.iter().fold(false, |found, token| found | constant_time_eq(token, presented))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is compared openly: it is not secret enough to matter and cannot be hidden cheaply.
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_files_alike() {
        let tokens = ApiTokens::parse("alpha, beta\n# comment\n\ngamma\n");
        assert_eq!(tokens.len(), 3);
        assert!(tokens.accepts(b"beta"));
        assert!(!tokens.accepts(b"bet"));
        assert!(!tokens.accepts(b""));
        assert_eq!(format!("{tokens:?}"), "<3 token(s), redacted>");
    }
}
