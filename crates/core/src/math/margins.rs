//! How a model's margins d = β·(r_preferred − r_other) are spread over the implied pairs: counts in
//! fixed buckets, for the `prefeval_pair_margin` histogram. Counted inside the kernel pass (a few
//! comparisons per pair), so a request adds its whole histogram at once instead of observing
//! millions of samples one by one.

/// Upper bounds (inclusive) of the buckets, symmetric around 0: a negative margin is a pair the
/// model orders against the human; |d| = 1 is a probability of 0.73, |d| = 4 of 0.98.
pub const MARGIN_BOUNDS: [f64; 13] = [-8.0, -4.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0];

/// Margins counted per bucket (the last bucket is above every bound), with their sum.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MarginCounts {
    pub buckets: [u64; MARGIN_BOUNDS.len() + 1],
    pub sum: f64,
}

impl MarginCounts {
    #[inline]
    pub fn add(&mut self, margin: f64) {
        // The bucket is the number of bounds below the margin: branch-free, vectorisable.
        let bucket = MARGIN_BOUNDS.iter().filter(|&&bound| bound < margin).count();
        self.buckets[bucket] += 1;
        self.sum += margin;
    }

    pub fn merge(&mut self, other: &MarginCounts) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_margin_lands_in_the_first_bucket_whose_bound_is_not_below_it() {
        let mut counts = MarginCounts::default();
        for margin in [-9.0, -8.0, -0.1, 0.0, 0.1, 8.0, 8.5, f64::INFINITY] {
            counts.add(margin);
        }
        assert_eq!(counts.buckets[0], 2, "≤ −8");
        assert_eq!(counts.buckets[6], 2, "(−0.25, 0]");
        assert_eq!(counts.buckets[7], 1, "(0, 0.25]");
        assert_eq!(counts.buckets[12], 1, "(4, 8]");
        assert_eq!(counts.buckets[13], 2, "> 8");
        assert_eq!(counts.count(), 8);
    }
}
