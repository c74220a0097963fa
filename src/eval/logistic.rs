//! The Bradley–Terry link: σ(z) and log σ(z), computed stably in f64.
//!
//! `ln(σ(z))` taken literally returns −inf for z ≲ −745 and loses all relative precision well before
//! that, so the log goes through softplus: log σ(z) = −softplus(−z) = min(z, 0) − ln_1p(e^(−|z|)).

/// log σ(z), finite for every finite z, never positive.
#[inline]
pub fn log_sigmoid(z: f64) -> f64 {
    // `+ 0.0` turns a −0.0 (z → +∞) into 0.0, which JSON writers print more plainly.
    z.min(0.0) - (-z.abs()).exp().ln_1p() + 0.0
}

/// σ(z) = 1 / (1 + e^(−z)), in the branch that never overflows and keeps relative precision for
/// tiny probabilities (e^z / (1 + e^z) for z < 0). Exactly 0.5 at z = 0.
#[inline]
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sigmoid_matches_closed_forms() {
        assert_eq!(log_sigmoid(0.0), -std::f64::consts::LN_2);
        assert_eq!(log_sigmoid(-1000.0), -1000.0);
        assert_eq!(log_sigmoid(1000.0), 0.0);
        assert!(log_sigmoid(1000.0).is_sign_positive());
        // ln σ(40) = −ln(1 + e^−40) ≈ −e^−40, which a naive ln(σ) rounds to 0.
        let expected = -(-40f64).exp();
        assert!((log_sigmoid(40.0) - expected).abs() <= 1e-15 * expected.abs());
    }

    #[test]
    fn sigmoid_is_half_at_zero_and_stays_in_unit_interval() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-1e6), 0.0);
        assert_eq!(sigmoid(1e6), 1.0);
        assert!(sigmoid(-700.0) > 0.0);
    }
}
