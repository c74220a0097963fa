//! The Bradley–Terry link: σ(z) and log σ(z), computed stably in f64.
//!
//! `ln(σ(z))` taken literally returns −inf for z ≲ −745 and loses all relative precision well before
//! that, so the log goes through softplus: log σ(z) = −softplus(−z) = min(z, 0) − ln_1p(e^(−|z|)).
//!
//! `e^x` and `ln_1p` are written here rather than taken from libm: straight-line code with no
//! branches and no calls, so the kernel's lane loops compile to vector instructions, and every
//! instruction set computes the same bits (plain IEEE multiplies, adds and divides in a fixed
//! order; no fused multiply-add). Both are within about one ulp of the exact value.

/// log σ(z), finite for every finite z, never positive.
#[inline(always)]
pub fn log_sigmoid(z: f64) -> f64 {
    log_sigmoid_from(z, exp_nonpositive(-z.abs()))
}

/// σ(z) = 1 / (1 + e^(−z)), in the branch that never overflows and keeps relative precision for
/// tiny probabilities (e^z / (1 + e^z) for z < 0). Exactly 0.5 at z = 0.
#[inline(always)]
pub fn sigmoid(z: f64) -> f64 {
    sigmoid_from(z, exp_nonpositive(-z.abs()))
}

/// log σ(z) given t = e^(−|z|).
#[inline(always)]
pub(crate) fn log_sigmoid_from(z: f64, t: f64) -> f64 {
    let negative_part = if z < 0.0 { z } else { 0.0 };
    // `+ 0.0` turns a −0.0 (z → +∞) into 0.0, which JSON writers print more plainly.
    negative_part - ln_1p_unit(t) + 0.0
}

/// σ(z) given t = e^(−|z|).
#[inline(always)]
pub(crate) fn sigmoid_from(z: f64, t: f64) -> f64 {
    (if z >= 0.0 { 1.0 } else { t }) / (1.0 + t)
}

/// 1.5·2⁵²: adding it rounds a double of magnitude < 2⁵¹ to an integer, held in the low bits.
const ROUNDING_SHIFTER: f64 = 6_755_399_441_055_744.0;
const LOG2_E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split so that k·LN2_HI is exact for |k| < 2¹¹ (fdlibm's constants).
const LN2_HI: f64 = 0.6931471803691238;
const LN2_LO: f64 = 1.9082149292705877e-10;
/// 1/k! for k = 2..=13: Taylor terms of e^r; for |r| ≤ ln2/2 the first omitted term is < 2⁻⁵⁷.
const EXP_TAYLOR: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// e^x for x ≤ 0 (x = 0 gives exactly 1; below −745.2 the result rounds to 0, subnormals included).
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f64) -> f64 {
    // Below −746 the result is 0 anyway; the clamp keeps k inside the range the scaling handles.
    let (exp_r, k) = exp_reduced(if x > -746.0 { x } else { -746.0 });
    // 2^k in two normal factors, so a subnormal result is rounded once, by the last multiply.
    let k_half = k >> 1;
    exp_r * power_of_two(k_half) * power_of_two(k - k_half)
}

/// e^x for −708 ≤ x ≤ 0, where the result is a normal double: one scaling, the same bits as
/// `exp_nonpositive` (a multiply by a power of two is exact there).
#[inline(always)]
pub(crate) fn exp_normal(x: f64) -> f64 {
    let (exp_r, k) = exp_reduced(x);
    exp_r * power_of_two(k)
}

/// e^x = e^r · 2^k with k = round(x / ln2) and |r| ≤ ln2/2 (Cody–Waite), for |x| < 2⁵⁰.
#[inline(always)]
fn exp_reduced(x: f64) -> (f64, i64) {
    let k_shifted = x * LOG2_E + ROUNDING_SHIFTER;
    let k = k_shifted - ROUNDING_SHIFTER;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // e^r = 1 + r + r²·Σ cᵢ·rⁱ, the sum by Estrin's scheme: shallow dependency chains keep the
    // vector units busy.
    let c = &EXP_TAYLOR;
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q0 = (c[0] + c[1] * r) + (c[2] + c[3] * r) * r2;
    let q1 = (c[4] + c[5] * r) + (c[6] + c[7] * r) * r2;
    let q2 = (c[8] + c[9] * r) + (c[10] + c[11] * r) * r2;
    let tail = (q0 + q1 * r4) + q2 * r8;
    let exp_r = 1.0 + (r + r2 * tail);
    let k_int = (k_shifted.to_bits() as i64).wrapping_sub(ROUNDING_SHIFTER.to_bits() as i64);
    (exp_r, k_int)
}

/// 2^k for −1022 ≤ k ≤ 1023.
#[inline(always)]
fn power_of_two(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// √2, the top of the reduced range of ln below.
const SQRT_2: f64 = std::f64::consts::SQRT_2;
/// fdlibm's minimax coefficients of ln((1+s)/(1−s)) = 2s + s·R(s²) on |s| ≤ 0.1716.
const LG: [f64; 7] = [
    0.6666666666666735,
    0.3999999999940942,
    0.2857142874366239,
    0.22222198432149784,
    0.1818357216161805,
    0.15313837699209373,
    0.14798198605116586,
];

/// ln(1 + t) for 0 ≤ t ≤ 1, as fdlibm's ln(1 + f) on a reduced f, with no rounding in forming f:
/// for t ≤ √2 − 1, f = t; above, 1 + t = 2·(1 + f) with f = (t − 1)/2 split into a double and its
/// exact rounding error. One division, where libm's ln_1p needs two.
#[inline(always)]
pub(crate) fn ln_1p_unit(t: f64) -> f64 {
    // Below 2⁻⁶⁰, ln(1 + t) rounds to t; the polynomial then runs on a harmless argument instead,
    // since squaring a tiny t would underflow (slow subnormal arithmetic on x86).
    let tiny = t < TINY;
    let t_exact = t;
    let t = if tiny { TINY } else { t };
    let above = t > SQRT_2 - 1.0;
    // t − 1 and its rounding error, exactly (Fast2Sum: |−1| ≥ t).
    let t_minus_1 = t - 1.0;
    let t_minus_1_error = t - (t_minus_1 + 1.0);
    let f = if above { t_minus_1 * 0.5 } else { t };
    let f_error = if above { t_minus_1_error * 0.5 } else { 0.0 };
    let k = if above { 1.0 } else { 0.0 };
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let odd = w * (LG[1] + w * (LG[3] + w * LG[5]));
    let even = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])));
    let r = even + odd;
    let half_f_squared = 0.5 * f * f;
    // ln(1 + f + δ) = ln(1 + f) + δ/(1 + f) to first order; δ is below an ulp of f, so 1 − f is
    // close enough to 1/(1 + f) (|f| ≤ 0.3).
    let correction = f_error * (1.0 - f);
    let ln = k * LN2_HI - ((half_f_squared - (s * (half_f_squared + r) + (k * LN2_LO + correction))) - f);
    if tiny { t_exact } else { ln }
}

/// 2⁻⁶⁰.
const TINY: f64 = 8.673_617_379_884_035e-19;

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    /// Distance in units in the last place between two finite doubles of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

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

    #[test]
    fn exp_is_within_one_ulp_of_libm_down_to_subnormals() {
        for x in [0.0, -1e-300, -0.5, -1.0, -300.0, -707.9, -708.0] {
            assert_eq!(exp_normal(x), exp_nonpositive(x), "{x}");
        }
        let mut rng = SplitMix64::new(7);
        let mut worst = 0;
        for i in 0..200_000 {
            // Dense near 0, and across the whole range down to the underflow.
            let x = if i % 2 == 0 { -rng.unit() * 2.0 } else { -rng.unit() * 745.0 };
            let (got, want) = (exp_nonpositive(x), x.exp());
            if want >= f64::MIN_POSITIVE {
                worst = worst.max(ulps(got, want));
            } else {
                // Subnormal: one rounding, so within one unit of the smallest subnormal.
                assert!((got - want).abs() <= 5e-324, "e^{x}: {got} vs {want}");
            }
        }
        assert!(worst <= 1, "worst {worst} ulps");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(-746.0), 0.0);
        assert_eq!(exp_nonpositive(-1e300), 0.0);
        assert_eq!(exp_nonpositive(-745.0), (-745f64).exp());
    }

    #[test]
    fn ln_1p_is_within_one_ulp_of_libm_on_the_unit_interval() {
        let mut rng = SplitMix64::new(11);
        let mut worst = 0;
        for i in 0..200_000 {
            let t = match i % 3 {
                0 => rng.unit(),
                // Tiny arguments, where 1 + t rounds away most of t.
                1 => rng.unit() * 1e-10,
                _ => (-rng.unit() * 700.0).exp(),
            };
            worst = worst.max(ulps(ln_1p_unit(t), t.ln_1p()));
        }
        assert!(worst <= 1, "worst {worst} ulps");
        assert_eq!(ln_1p_unit(0.0), 0.0);
        assert_eq!(ln_1p_unit(1.0), std::f64::consts::LN_2);
        assert_eq!(ln_1p_unit(5e-324), 5e-324);
    }

    #[test]
    fn log_sigmoid_stays_within_a_few_ulps_of_the_libm_form() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..100_000 {
            let z = (rng.unit() - 0.5) * 80.0;
            let libm = z.min(0.0) - (-z.abs()).exp().ln_1p();
            let got = log_sigmoid(z);
            assert!((got - libm).abs() <= 4.0 * f64::EPSILON * libm.abs(), "{z}: {got} vs {libm}");
        }
    }
}
