//! Kendall's τ-b between a human ranking and a model's rewards (docs/design/math.md, "Evaluation figures
//! beside the loss"), in O(N log N) by Knight's algorithm: one sort by (rank, reward), then a
//! merge sort of the rewards in which every exchange is one discordant pair. A list of 10,000
//! items has 5·10^7 pairs, which a direct count would visit one by one.

use std::cmp::Ordering;

/// Kendall's τ-b over all N(N−1)/2 item pairs: (n_c − n_d) / √((n₀ − n₁)(n₀ − n₂)), n₁ the pairs
/// tied in rank, n₂ the pairs tied in reward. `ranks`: lower is better, ties allowed. A pair is
/// concordant when the better-ranked item has the higher reward, so +1 means the rewards order the
/// items exactly as the ranking does. Rewards are finite; 0.0 and −0.0 are one reward.
///
/// `None` when every rank or every reward is equal (including N < 2): τ-b is then 0/0.
///
/// # Panics
/// When `ranks` and `rewards` differ in length.
pub fn kendall_tau_b(ranks: &[u64], rewards: &[f64]) -> Option<f64> {
    assert_eq!(ranks.len(), rewards.len(), "kendall_tau_b needs one rank per reward");
    let n = ranks.len() as u128;
    // `+ 0.0` turns −0.0 into 0.0: the total order used below would otherwise split them.
    let mut items: Vec<(u64, f64)> = ranks.iter().zip(rewards).map(|(&rank, &reward)| (rank, reward + 0.0)).collect();
    // Better rank first and, within a rank, higher reward first: then an earlier item with a
    // lower reward is always a discordant pair, never a pair tied in rank.
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.total_cmp(&a.1)));

    let tied_in_rank = tied_pairs(&items, |a, b| a.0 == b.0);
    let tied_in_both = tied_pairs(&items, |a, b| a == b);
    let mut sorted_rewards: Vec<f64> = items.iter().map(|item| item.1).collect();
    let discordant = sort_descending_counting_exchanges(&mut sorted_rewards);
    let tied_in_reward = tied_pairs(&sorted_rewards, |a, b| a == b);

    let all = n * n.saturating_sub(1) / 2;
    let untied_in_rank = all - tied_in_rank;
    let untied_in_reward = all - tied_in_reward;
    // n_c + n_d = n₀ − n₁ − n₂ + n₃ (inclusion–exclusion over the ties), so n_c − n_d needs
    // only n_d. (Taking away the pairs tied in reward only, never more than those untied in
    // rank, keeps the unsigned arithmetic ≥ 0.)
    let concordant_plus_discordant = untied_in_rank - (tied_in_reward - tied_in_both);
    tau_b_from_counts(untied_in_rank, untied_in_reward, concordant_plus_discordant as i128 - 2 * discordant as i128)
}

/// τ-b = (n_c − n_d) / √((n₀ − n₁)(n₀ − n₂)) from exact integer counts; `None` when a factor is 0.
/// The one place the formula is written, so every way of counting gives the same bits.
pub fn tau_b_from_counts(
    untied_in_rank: u128,
    untied_in_reward: u128,
    concordant_minus_discordant: i128,
) -> Option<f64> {
    if untied_in_rank == 0 || untied_in_reward == 0 {
        return None;
    }
    let numerator = concordant_minus_discordant as f64;
    // Equal factors (as without ties) need no square root, so a perfect order gives exactly ±1.
    let denominator = if untied_in_rank == untied_in_reward {
        untied_in_rank as f64
    } else {
        ((untied_in_rank * untied_in_reward) as f64).sqrt()
    };
    // |τ-b| ≤ 1 holds exactly; the clamp only guards the last bit of the rounded denominator.
    Some((numerator / denominator).clamp(-1.0, 1.0))
}

/// Σ t(t−1)/2 over the runs of consecutive equal items of a sorted slice.
fn tied_pairs<T>(sorted: &[T], equal: impl Fn(&T, &T) -> bool) -> u128 {
    let mut pairs = 0u128;
    let mut run = 1u128;
    for window in sorted.windows(2) {
        if equal(&window[0], &window[1]) {
            // The new item pairs with each of the `run` equal items before it.
            pairs += run;
            run += 1;
        } else {
            run = 1;
        }
    }
    pairs
}

/// Sorts `values` in descending order (bottom-up merge sort, stable) and returns how many pairs
/// stood in strictly ascending order: an earlier value lower than a later one.
fn sort_descending_counting_exchanges(values: &mut Vec<f64>) -> u128 {
    let n = values.len();
    let mut buffer = vec![0.0; n];
    let mut exchanges = 0u128;
    let mut width = 1;
    while width < n {
        for start in (0..n).step_by(2 * width) {
            let middle = (start + width).min(n);
            let end = (start + 2 * width).min(n);
            exchanges += merge_descending(&values[start..middle], &values[middle..end], &mut buffer[start..end]);
        }
        std::mem::swap(values, &mut buffer);
        width *= 2;
    }
    exchanges
}

/// Merges two descending runs into `out`; returns the pairs (left, right) with left < right.
fn merge_descending(left: &[f64], right: &[f64], out: &mut [f64]) -> u128 {
    let (mut i, mut j) = (0, 0);
    let mut exchanges = 0u128;
    for slot in out.iter_mut() {
        // An equal right value waits for the left one: a tie in reward is no exchange.
        let take_right = j < right.len() && (i == left.len() || right[j].total_cmp(&left[i]) == Ordering::Greater);
        if take_right {
            *slot = right[j];
            j += 1;
            // `right[j]` beats every left value not yet placed: each is one discordant pair.
            exchanges += (left.len() - i) as u128;
        } else {
            *slot = left[i];
            i += 1;
        }
    }
    exchanges
}

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    /// τ-b by its definition, visiting every pair.
    fn direct(ranks: &[u64], rewards: &[f64]) -> Option<f64> {
        let n = ranks.len();
        let (mut concordant, mut discordant, mut tied_rank, mut tied_reward) = (0i64, 0i64, 0i64, 0i64);
        for a in 0..n {
            for b in a + 1..n {
                if ranks[a] == ranks[b] {
                    tied_rank += 1;
                }
                if rewards[a] == rewards[b] {
                    tied_reward += 1;
                }
                if ranks[a] == ranks[b] || rewards[a] == rewards[b] {
                    continue;
                }
                let (better, worse) = if ranks[a] < ranks[b] { (a, b) } else { (b, a) };
                if rewards[better] > rewards[worse] {
                    concordant += 1;
                } else {
                    discordant += 1;
                }
            }
        }
        let all = (n * n.saturating_sub(1) / 2) as i64;
        let product = (all - tied_rank) * (all - tied_reward);
        (product != 0).then(|| (concordant - discordant) as f64 / (product as f64).sqrt())
    }

    /// `n` ranks and rewards with many ties on both sides, zeros of both signs among the rewards.
    fn tied_list(rng: &mut SplitMix64, n: usize) -> (Vec<u64>, Vec<f64>) {
        let rank_levels = 1 + rng.below(n as u64);
        let ranks = (0..n).map(|_| 1 + rng.below(rank_levels)).collect();
        let reward_levels = 1 + rng.below(n as u64);
        let continuous = rng.below(4) == 0;
        let rewards = (0..n)
            .map(|_| {
                if continuous {
                    return rng.between(-3.0, 3.0);
                }
                let reward = (rng.below(reward_levels) as f64 - (reward_levels / 2) as f64) * 0.25;
                if reward == 0.0 && rng.below(2) == 0 { -0.0 } else { reward }
            })
            .collect();
        (ranks, rewards)
    }

    fn assert_close(actual: Option<f64>, expected: Option<f64>) {
        match (actual, expected) {
            (Some(a), Some(e)) => assert!((a - e).abs() <= 1e-12 * e.abs(), "{a} vs {e}"),
            _ => assert_eq!(actual, expected),
        }
    }

    #[test]
    fn matches_the_pairwise_definition_on_random_lists_with_ties() {
        let mut rng = SplitMix64::new(0x6B65_6E64);
        for _ in 0..2000 {
            let n = 2 + rng.below(40) as usize;
            let (ranks, rewards) = tied_list(&mut rng, n);
            assert_close(kendall_tau_b(&ranks, &rewards), direct(&ranks, &rewards));
        }
    }

    #[test]
    fn matches_the_pairwise_definition_on_ten_thousand_items() {
        let mut rng = SplitMix64::new(10_000);
        let n = 10_000;
        let ranks: Vec<u64> = (0..n).map(|_| rng.below(3000)).collect();
        let rewards: Vec<f64> = (0..n).map(|_| (rng.below(5000) as f64 * 1e-3).sin()).collect();
        assert_close(kendall_tau_b(&ranks, &rewards), direct(&ranks, &rewards));
    }

    #[test]
    fn a_million_items_with_known_discordance() {
        // Rewards fall with rank except in k disjoint adjacent swaps, each one discordant pair:
        // τ-b = (n₀ − 2k) / n₀. A quadratic count would take minutes here.
        let n = 1_000_000u64;
        let ranks: Vec<u64> = (1..=n).collect();
        let mut rewards: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
        let swaps = 1000;
        for s in 0..swaps {
            rewards.swap(2 * s * 97, 2 * s * 97 + 1);
        }
        let all = (n * (n - 1) / 2) as f64;
        let expected = (all - 2.0 * swaps as f64) / all;
        assert_close(kendall_tau_b(&ranks, &rewards), Some(expected));
    }

    #[test]
    fn perfect_and_reversed_orders_are_exactly_plus_and_minus_one() {
        for n in [2u64, 3, 7, 1000] {
            let ranks: Vec<u64> = (1..=n).collect();
            let falling: Vec<f64> = (0..n).map(|i| 10.0 - i as f64 * 0.5).collect();
            let rising: Vec<f64> = falling.iter().rev().copied().collect();
            assert_eq!(kendall_tau_b(&ranks, &falling), Some(1.0));
            assert_eq!(kendall_tau_b(&ranks, &rising), Some(-1.0));
        }
    }

    #[test]
    fn equal_ranks_or_equal_rewards_leave_it_undefined() {
        assert_eq!(kendall_tau_b(&[1, 2, 3], &[0.5, 0.5, 0.5]), None);
        assert_eq!(kendall_tau_b(&[4, 4, 4], &[0.1, 0.2, 0.3]), None);
        assert_eq!(kendall_tau_b(&[1, 2], &[0.0, -0.0]), None);
        assert_eq!(kendall_tau_b(&[1], &[1.0]), None);
        assert_eq!(kendall_tau_b(&[], &[]), None);
    }

    #[test]
    fn two_items() {
        assert_eq!(kendall_tau_b(&[1, 2], &[2.0, 1.0]), Some(1.0));
        assert_eq!(kendall_tau_b(&[1, 2], &[1.0, 2.0]), Some(-1.0));
        assert_eq!(kendall_tau_b(&[2, 1], &[1.0, 2.0]), Some(1.0));
        assert_eq!(kendall_tau_b(&[7, 3], &[-0.0, 1e-300]), Some(1.0));
    }

    #[test]
    fn ties_on_either_side_by_hand() {
        // Ranks 1, 1, 2 with rewards 3, 2, 1: two concordant pairs, one tied in rank:
        // 2 / √((3 − 1)(3 − 0)).
        let expected = 2.0 / 6f64.sqrt();
        assert_close(kendall_tau_b(&[1, 1, 2], &[3.0, 2.0, 1.0]), Some(expected));
        // Ranks 1, 2, 3 with rewards 1, 0, −0: one concordant pair each from items 0–1 and 0–2,
        // items 1–2 tied in reward: 2 / √(3 · 2).
        assert_close(kendall_tau_b(&[1, 2, 3], &[1.0, 0.0, -0.0]), Some(expected));
        // Two discordant pairs, the third tied in both: −2 / √((3 − 1)(3 − 1)).
        assert_eq!(kendall_tau_b(&[1, 1, 2], &[1.0, 1.0, 1.5]), Some(-1.0));
        // One concordant pair, one discordant, two tied in rank and two in reward: 0.
        assert_eq!(kendall_tau_b(&[1, 2, 1, 2], &[1.0, 0.0, 0.0, 1.0]), Some(0.0));
    }
}
