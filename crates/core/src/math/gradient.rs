//! The gradient of one list's loss with respect to each of its rewards (docs/design/math.md, "Evaluation
//! figures beside the loss"): the direction a trainer would move each reward, and so which items
//! drive the loss.

use super::logistic::sigmoid;
use super::sum::NeumaierSum;

/// ∂L/∂r_k = (β/Z)·[ Σ_{(k,b) implied} −σ(−d_kb) + Σ_{(c,k) implied} σ(−d_ck) ], d_ab = β(r_a − r_b),
/// for L = −(1/Z)·Σ log σ(d_ab) over the implied preferences (a ranked strictly better than b).
/// `ranks`: lower is better, ties imply nothing; `divisor` is the list's Z. O(N²).
///
/// # Panics
/// When `ranks` and `rewards` differ in length.
pub fn loss_gradients(ranks: &[u64], rewards: &[f64], beta: f64, divisor: f64) -> Vec<f64> {
    assert_eq!(ranks.len(), rewards.len(), "loss_gradients needs one rank per reward");
    let n = rewards.len();
    // One compensated sum per item: an item of a 10,000-item list collects ~10^4 terms.
    let mut sums = vec![NeumaierSum::default(); n];
    for a in 0..n {
        for b in a + 1..n {
            let (better, worse) = match ranks[a].cmp(&ranks[b]) {
                std::cmp::Ordering::Less => (a, b),
                std::cmp::Ordering::Greater => (b, a),
                std::cmp::Ordering::Equal => continue,
            };
            // σ(−d) is the probability the model puts on the wrong order: a pair pulls its two
            // rewards apart in proportion to how wrong the model is about it.
            let pull = sigmoid(-(beta * (rewards[better] - rewards[worse])));
            sums[better].add(-pull);
            sums[worse].add(pull);
        }
    }
    let scale = beta / divisor;
    // `+ 0.0`: an item without pairs reports 0, not −0.
    sums.iter().map(|sum| scale * sum.value() + 0.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    /// log σ(z) = −ln(1 + e^(−z)), in the form that neither overflows nor loses the small tail.
    fn stable_log_sigmoid(z: f64) -> f64 {
        if z >= 0.0 { -(-z).exp().ln_1p() } else { z - z.exp().ln_1p() }
    }

    /// L = −(1/Z)·Σ log σ(β(r_a − r_b)) over every pair with a ranked strictly better than b.
    fn loss(ranks: &[u64], rewards: &[f64], beta: f64, divisor: f64) -> f64 {
        let mut total = 0.0;
        for a in 0..ranks.len() {
            for b in 0..ranks.len() {
                if ranks[a] < ranks[b] {
                    total += stable_log_sigmoid(beta * (rewards[a] - rewards[b]));
                }
            }
        }
        -total / divisor
    }

    fn random_list(rng: &mut SplitMix64) -> (Vec<u64>, Vec<f64>) {
        let n = 2 + rng.below(9) as usize;
        let rank_levels = 1 + rng.below(n as u64);
        let ranks = (0..n).map(|_| rng.below(rank_levels)).collect();
        // Half the lists draw rewards from a coarse grid, so that rewards tie too.
        let grid = rng.below(2) == 0;
        let rewards =
            (0..n).map(|_| if grid { rng.below(5) as f64 * 0.5 - 1.0 } else { rng.between(-3.0, 3.0) }).collect();
        (ranks, rewards)
    }

    #[test]
    fn matches_central_differences_of_the_loss() {
        let mut rng = SplitMix64::new(0x6772_6164);
        let h = 1e-5;
        for _ in 0..500 {
            let (ranks, rewards) = random_list(&mut rng);
            let n = rewards.len() as f64;
            let beta = [0.5, 1.0, 2.5][rng.below(3) as usize];
            let divisor = [n * (n - 1.0), 1.0, 3.0][rng.below(3) as usize];
            let gradients = loss_gradients(&ranks, &rewards, beta, divisor);
            let largest = gradients.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            for (k, &gradient) in gradients.iter().enumerate() {
                let (mut up, mut down) = (rewards.clone(), rewards.clone());
                up[k] += h;
                down[k] -= h;
                let difference =
                    (loss(&ranks, &up, beta, divisor) - loss(&ranks, &down, beta, divisor)) / (up[k] - down[k]);
                // Truncation (h²) and rounding (ε/h) of the difference quotient are both ~1e-10
                // of the loss; a component that nearly cancels is judged against the largest.
                let tolerance = 1e-6 * gradient.abs() + 1e-9 * largest;
                assert!((difference - gradient).abs() <= tolerance, "item {k}: {difference} vs {gradient}");
            }
        }
    }

    #[test]
    fn gradients_sum_to_zero() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..200 {
            let (ranks, rewards) = random_list(&mut rng);
            let gradients = loss_gradients(&ranks, &rewards, 1.5, 7.0);
            let magnitude: f64 = gradients.iter().map(|g| g.abs()).sum();
            let total: f64 = gradients.iter().sum();
            assert!(total.abs() <= 1e-15 * magnitude.max(1e-300), "{total} of {magnitude}");
        }
    }

    #[test]
    fn two_items_by_hand() {
        // Equal rewards: σ(0) = ½, so ∓(β/Z)·½ with β = 1, Z = N(N−1) = 2.
        assert_eq!(loss_gradients(&[1, 2], &[0.3, 0.3], 1.0, 2.0), vec![-0.25, 0.25]);
        // d = 2·ln 3 gives σ(−d) = 1/(1 + 9) = 0.1; with β = 2, Z = 1 the pull is ∓0.2.
        let g = loss_gradients(&[2, 1], &[0.0, 3f64.ln()], 2.0, 1.0);
        assert!((g[0] - 0.2).abs() <= 1e-15 && (g[1] + 0.2).abs() <= 1e-15, "{g:?}");
        // A tie in rank implies no preference, so no gradient.
        assert_eq!(loss_gradients(&[1, 1], &[0.0, 5.0], 1.0, 2.0), vec![0.0, 0.0]);
        // A far-off wrong order saturates the pull at β/Z instead of overflowing.
        assert_eq!(loss_gradients(&[1, 2], &[-1e308, 1e308], 1.0, 1.0), vec![-1.0, 1.0]);
    }
}
