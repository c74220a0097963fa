//! The pair kernel: log σ(β·d), agreement and margin buckets for a block of reward differences
//! d = r_preferred − r_other, in `LANES` independent lanes.
//!
//! Pair k of a block always goes to lane k mod `LANES`, and lanes fold in a fixed order at the
//! end, so the result is the same bits whether a machine runs 8, 4, 2 or 1 lanes per instruction.
//! The lane loop is compiled once per instruction set (AVX-512, AVX2, the baseline) and the
//! widest one the CPU has is chosen at run time, so one binary stays portable.

use super::logistic::{exp_nonpositive, exp_normal, log_sigmoid_from, sigmoid_from};
use super::margins::{MARGIN_BOUNDS, MarginCounts};
use super::sum::NeumaierSum;

/// Lanes of the kernel: one AVX-512 register of f64, two of AVX2.
pub const LANES: usize = 8;
/// Differences per block: a multiple of `LANES`, small enough for the stack and L1.
pub const BLOCK: usize = 1024;

const BUCKETS: usize = MARGIN_BOUNDS.len() + 1;
/// Buckets 0..=6 (margins ≤ 0) and 7..=13 (> 0) are counted in the bytes of one word per lane
/// each, emptied before any byte can overflow.
const BUCKETS_PER_WORD: usize = 7;
const MAX_PAIRS_PER_LANE_BETWEEN_FLUSHES: usize = 255;

/// Sums of a run of blocks, lane by lane.
#[derive(Clone, Copy, Debug)]
pub struct LaneTotals {
    sum: [f64; LANES],
    compensation: [f64; LANES],
    margin_sum: [f64; LANES],
    agreeing_halves: [u64; LANES],
    /// Pairs whose rewards are equal.
    reward_ties: [u64; LANES],
    /// Margins per bucket of `MarginCounts`, all lanes together.
    buckets: [u64; BUCKETS],
    pairs: u64,
}

impl Default for LaneTotals {
    fn default() -> Self {
        LaneTotals {
            sum: [0.0; LANES],
            compensation: [0.0; LANES],
            margin_sum: [0.0; LANES],
            agreeing_halves: [0; LANES],
            reward_ties: [0; LANES],
            buckets: [0; BUCKETS],
            pairs: 0,
        }
    }
}

/// The folded totals: Σ log σ, agreeing pairs in halves, margin buckets.
pub struct Folded {
    pub log_probability_sum: NeumaierSum,
    pub agreeing_halves: u64,
    pub reward_ties: u64,
    pub pairs: u64,
    pub margins: MarginCounts,
}

impl LaneTotals {
    pub fn fold(&self) -> Folded {
        let mut log_probability_sum = NeumaierSum::default();
        for lane in 0..LANES {
            log_probability_sum.add(self.sum[lane]);
        }
        for lane in 0..LANES {
            log_probability_sum.add(self.compensation[lane]);
        }
        let margins = MarginCounts { buckets: self.buckets, sum: self.margin_sum.iter().sum() };
        Folded {
            log_probability_sum,
            agreeing_halves: self.agreeing_halves.iter().sum(),
            reward_ties: self.reward_ties.iter().sum(),
            pairs: self.pairs,
            margins,
        }
    }
}

/// Adds the pairs of `diffs` to `totals`. With `outputs`, also writes each pair's log σ and σ
/// (both slices at least as long as `diffs`).
pub fn accumulate(diffs: &[f64], beta: f64, totals: &mut LaneTotals, outputs: Option<(&mut [f64], &mut [f64])>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { accumulate_avx512(diffs, beta, totals, outputs) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { accumulate_avx2(diffs, beta, totals, outputs) };
        }
    }
    accumulate_lanes(diffs, beta, totals, outputs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn accumulate_avx512(diffs: &[f64], beta: f64, totals: &mut LaneTotals, outputs: Option<(&mut [f64], &mut [f64])>) {
    accumulate_lanes(diffs, beta, totals, outputs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2(diffs: &[f64], beta: f64, totals: &mut LaneTotals, outputs: Option<(&mut [f64], &mut [f64])>) {
    accumulate_lanes(diffs, beta, totals, outputs)
}

#[inline(always)]
fn accumulate_lanes(diffs: &[f64], beta: f64, totals: &mut LaneTotals, outputs: Option<(&mut [f64], &mut [f64])>) {
    match outputs {
        None => lanes::<false>(diffs, beta, totals, &mut [], &mut []),
        Some((log_probabilities, probabilities)) => {
            lanes::<true>(diffs, beta, totals, log_probabilities, probabilities)
        }
    }
}

#[inline(always)]
fn lanes<const OUTPUT: bool>(
    diffs: &[f64],
    beta: f64,
    totals: &mut LaneTotals,
    log_probabilities: &mut [f64],
    probabilities: &mut [f64],
) {
    let mut t = *totals;
    const SLICE: usize = LANES * MAX_PAIRS_PER_LANE_BETWEEN_FLUSHES;
    for (s, slice) in diffs.chunks(SLICE).enumerate() {
        let mut counters = ByteCounters::default();
        // Full chunks and the tail are two loops on purpose: with `used` a constant `LANES`, the
        // full chunks' masks fold away (one loop over `chunks` measured 4% slower).
        let chunks = slice.chunks_exact(LANES);
        let tail = chunks.remainder();
        for (c, chunk) in chunks.enumerate() {
            let mut d = [0.0; LANES];
            d.copy_from_slice(chunk);
            let (lp, p) = chunk_of_pairs::<OUTPUT>(&d, LANES, beta, &mut t, &mut counters);
            if OUTPUT {
                let at = s * SLICE + c * LANES;
                if let (Some(lp_out), Some(p_out)) =
                    (log_probabilities.get_mut(at..at + LANES), probabilities.get_mut(at..at + LANES))
                {
                    lp_out.copy_from_slice(&lp);
                    p_out.copy_from_slice(&p);
                }
            }
        }
        if !tail.is_empty() {
            // The last pairs go to lanes 0.. of the same accumulators; the unused lanes see a
            // difference of 0 that `used` keeps out of every total.
            let mut d = [0.0; LANES];
            d[..tail.len()].copy_from_slice(tail);
            let (lp, p) = chunk_of_pairs::<OUTPUT>(&d, tail.len(), beta, &mut t, &mut counters);
            let at = s * SLICE + slice.len() - tail.len();
            if OUTPUT {
                if let (Some(lp_out), Some(p_out)) =
                    (log_probabilities.get_mut(at..at + tail.len()), probabilities.get_mut(at..at + tail.len()))
                {
                    lp_out.copy_from_slice(&lp[..tail.len()]);
                    p_out.copy_from_slice(&p[..tail.len()]);
                }
            }
        }
        counters.empty_into(&mut t.buckets);
    }
    t.pairs += diffs.len() as u64;
    *totals = t;
}

/// Below this |z|, e^(−|z|) and every intermediate of log σ are normal doubles. Above it,
/// subnormal arithmetic would slow the whole lane loop several times over on x86 (microcode
/// assists), so those lanes take the exact scalar path instead, and only up to where e^(−|z|)
/// rounds to 0.
const NORMAL_LIMIT: f64 = 708.0;
const UNDERFLOW_LIMIT: f64 = 746.0;

/// The pairs of `d[..used]` (`used` ≤ `LANES`), lane k taking `d[k]`: their log σ and σ, with
/// their sums, agreement and margins added to the lanes' totals. Three loops over the lanes, the
/// first and last straight-line code that vectorises.
#[inline(always)]
fn chunk_of_pairs<const OUTPUT: bool>(
    d: &[f64; LANES],
    used: usize,
    beta: f64,
    t: &mut LaneTotals,
    counters: &mut ByteCounters,
) -> ([f64; LANES], [f64; LANES]) {
    let mut z = [0.0; LANES];
    let mut lp = [0.0; LANES];
    let mut p = [0.0; LANES];
    for lane in 0..LANES {
        z[lane] = beta * d[lane];
        let a = z[lane].abs();
        let e = exp_normal(-(if a < NORMAL_LIMIT { a } else { NORMAL_LIMIT }));
        let e = if a < NORMAL_LIMIT { e } else { 0.0 };
        lp[lane] = log_sigmoid_from(z[lane], e);
        if OUTPUT {
            p[lane] = sigmoid_from(z[lane], e);
        }
    }
    // e^(−|z|) is a tiny nonzero number here: exact, slowly, in the rare lanes that need it.
    let subnormal = |z: f64| (NORMAL_LIMIT..UNDERFLOW_LIMIT).contains(&z.abs());
    if z.iter().any(|&z| subnormal(z)) {
        for lane in 0..LANES {
            if subnormal(z[lane]) {
                let e = exp_nonpositive(-z[lane].abs());
                lp[lane] = log_sigmoid_from(z[lane], e);
                p[lane] = sigmoid_from(z[lane], e);
            }
        }
    }
    for lane in 0..LANES {
        let used = lane < used;
        let x = if used { lp[lane] } else { 0.0 };
        // Neumaier: carry the rounding error of each addition in the compensation.
        let sum = t.sum[lane];
        let next = sum + x;
        t.compensation[lane] += if sum.abs() >= x.abs() { (sum - next) + x } else { (x - next) + sum };
        t.sum[lane] = next;
        let halves = u64::from(d[lane] > 0.0) * 2 + u64::from(d[lane] == 0.0);
        t.agreeing_halves[lane] += if used { halves } else { 0 };
        t.reward_ties[lane] += u64::from(used && d[lane] == 0.0);
        counters.count(z[lane], lane, used);
        t.margin_sum[lane] += if used { z[lane] } else { 0.0 };
    }
    (lp, p)
}

/// Per lane, one byte per margin bucket: a pair adds 1 to its bucket's byte with one shift and
/// one add, where comparing against every bound would take 13 of each.
#[derive(Default)]
struct ByteCounters {
    not_positive: [u64; LANES],
    positive: [u64; LANES],
}

impl ByteCounters {
    #[inline(always)]
    fn count(&mut self, z: f64, lane: usize, used: bool) {
        // The bounds are ±2^j (j = −2..=3) and 0, so a margin's bucket follows from the exponent
        // of |z|: for z > 0 (bounds inclusive above) of the next double below z.
        let positive = z > 0.0;
        let bits = z.abs().to_bits() - u64::from(positive);
        let exponent = (bits >> 52) as i64 - 1023;
        let class = (exponent + 3).clamp(0, 6) as u64;
        let one = if used { 1u64 << (8 * if positive { class } else { 6 - class }) } else { 0 };
        // Both words take an add (one of them 0): selects, not branches, so lanes vectorise.
        self.positive[lane] += if positive { one } else { 0 };
        self.not_positive[lane] += if positive { 0 } else { one };
    }

    fn empty_into(&self, buckets: &mut [u64; BUCKETS]) {
        for lane in 0..LANES {
            for byte in 0..BUCKETS_PER_WORD {
                buckets[byte] += (self.not_positive[lane] >> (8 * byte)) & 0xFF;
                buckets[BUCKETS_PER_WORD + byte] += (self.positive[lane] >> (8 * byte)) & 0xFF;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::logistic::{log_sigmoid, sigmoid};
    use prefeval_testkit::SplitMix64;

    fn diffs(seed: u64, n: usize) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        (0..n).map(|k| if k % 17 == 0 { 0.0 } else { rng.between(-12.0, 12.0) }).collect()
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits_as_the_baseline() {
        for n in [0, 1, 7, 8, 9, 100, BLOCK] {
            let d = diffs(n as u64, n);
            let mut dispatched = LaneTotals::default();
            let (mut lp, mut p) = (vec![0.0; n], vec![0.0; n]);
            accumulate(&d, 0.7, &mut dispatched, Some((&mut lp, &mut p)));
            let mut baseline = LaneTotals::default();
            let (mut lp0, mut p0) = (vec![0.0; n], vec![0.0; n]);
            accumulate_lanes(&d, 0.7, &mut baseline, Some((&mut lp0, &mut p0)));
            let (a, b) = (dispatched.fold(), baseline.fold());
            assert_eq!(a.log_probability_sum.value().to_bits(), b.log_probability_sum.value().to_bits());
            assert_eq!(a.margins, b.margins);
            assert_eq!((&lp, &p), (&lp0, &p0));
            // The AVX2 build too, where the CPU has it (the dispatch above prefers AVX-512).
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut avx2 = LaneTotals::default();
                let (mut lp2, mut p2) = (vec![0.0; n], vec![0.0; n]);
                // SAFETY: AVX2 support was checked just above.
                unsafe { accumulate_avx2(&d, 0.7, &mut avx2, Some((&mut lp2, &mut p2))) };
                let c = avx2.fold();
                assert_eq!(c.log_probability_sum.value().to_bits(), b.log_probability_sum.value().to_bits());
                assert_eq!(c.margins, b.margins);
                assert_eq!((&lp2, &p2), (&lp0, &p0));
            }
        }
    }

    #[test]
    fn margins_on_and_next_to_every_bound_land_in_the_buckets_of_the_definition() {
        let mut d = vec![0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300];
        for bound in MARGIN_BOUNDS {
            d.extend([bound, f64::from_bits(bound.to_bits() + 1), f64::from_bits(bound.to_bits().saturating_sub(1))]);
        }
        // 300 of one value: more than a byte holds per lane.
        d.extend(std::iter::repeat_n(0.3, 3000));
        let mut totals = LaneTotals::default();
        accumulate(&d, 1.0, &mut totals, None);
        let mut want = MarginCounts::default();
        for &z in &d {
            want.add(z);
        }
        assert_eq!(totals.fold().margins.buckets, want.buckets);
    }

    #[test]
    fn huge_margins_take_the_exact_path_and_agree_with_the_scalar_functions() {
        let mut rng = SplitMix64::new(9);
        let mut d: Vec<f64> = (0..4000).map(|_| rng.between(-800.0, 800.0)).collect();
        // Both sides of the subnormal band and of the underflow, for both signs.
        for edge in [700.0, 708.0, 709.0, 720.0, 745.0, 745.2, 746.0, 1e5] {
            d.extend([edge, -edge, f64::from_bits(f64::to_bits(edge) - 1), -f64::from_bits(f64::to_bits(edge) - 1)]);
        }
        let (mut lp, mut p) = (vec![0.0; d.len()], vec![0.0; d.len()]);
        let mut totals = LaneTotals::default();
        accumulate(&d, 1.0, &mut totals, Some((&mut lp, &mut p)));
        for (k, &z) in d.iter().enumerate() {
            assert_eq!(lp[k].to_bits(), log_sigmoid(z).to_bits(), "log σ({z})");
            assert_eq!(p[k].to_bits(), sigmoid(z).to_bits(), "σ({z})");
            // The subnormal results are the ones libm gives.
            let libm = if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) };
            if libm < f64::MIN_POSITIVE {
                assert!((p[k] - libm).abs() <= 5e-324, "σ({z}) = {} vs {libm}", p[k]);
            }
        }
    }

    #[test]
    fn folded_totals_match_pair_by_pair_definitions() {
        let d = diffs(5, 3000);
        let beta = 1.3;
        let mut totals = LaneTotals::default();
        let (mut lp, mut p) = (vec![0.0; d.len()], vec![0.0; d.len()]);
        for (k, block) in d.chunks(BLOCK).enumerate() {
            let at = k * BLOCK;
            accumulate(block, beta, &mut totals, Some((&mut lp[at..at + block.len()], &mut p[at..at + block.len()])));
        }
        let folded = totals.fold();
        let mut want = NeumaierSum::default();
        let mut margins = MarginCounts::default();
        let mut halves = 0;
        for (k, &x) in d.iter().enumerate() {
            let z = beta * x;
            assert_eq!(lp[k], log_sigmoid(z));
            assert_eq!(p[k], sigmoid(z));
            want.add(log_sigmoid(z));
            margins.add(z);
            halves += u64::from(x > 0.0) * 2 + u64::from(x == 0.0);
        }
        let got = folded.log_probability_sum.value();
        assert!((got - want.value()).abs() <= 1e-14 * want.value().abs(), "{got} vs {}", want.value());
        assert_eq!(folded.agreeing_halves, halves);
        assert_eq!(folded.reward_ties, d.iter().filter(|&&x| x == 0.0).count() as u64);
        assert_eq!(folded.margins.buckets, margins.buckets);
        assert!((folded.margins.sum - margins.sum).abs() <= 1e-9);
    }
}
