//! The per-request count limits a batch, a stream line or a CLI line is validated against. A leaf
//! type: configuration builds it, the pipeline reads it.

/// Per-request count limits (the byte limit is enforced while the body is read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest body of a batch, and longest line of a stream or a file.
    pub max_line_bytes: usize,
    pub max_items_per_list: usize,
    pub max_lists: usize,
    pub max_pairs: u64,
    pub max_evaluated_pairs: u64,
}
