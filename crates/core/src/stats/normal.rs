//! The standard normal distribution where the uncertainty figures need it: Φ⁻¹ for the z of an
//! interval and erfc for a two-sided p-value. std has neither, so each follows a published
//! algorithm with its published coefficients, accurate to a few units in the last place.
//!
//! - Φ⁻¹: M. J. Wichura, "Algorithm AS 241: The Percentage Points of the Normal Distribution",
//!   Applied Statistics 37(3), 1988, pp. 477–484 (PPND16, the double-precision version).
//! - erfc: W. J. Cody, "Rational Chebyshev Approximations for the Error Function", Mathematics of
//!   Computation 23(107), 1969, as in Cody's routine CALERF (SPECFUN, 1990).

// The coefficients keep every digit as published (more than an f64 holds), so that they can be
// checked against the papers digit by digit; the compiler rounds each to the nearest f64.
#![allow(clippy::excessive_precision)]

/// Φ⁻¹(p), the standard normal quantile, by AS 241 (relative error about 1e-16).
/// −∞ at 0, +∞ at 1, NaN outside [0, 1].
pub fn inverse_normal_cdf(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * polynomial(&AS241_A, r) / polynomial(&AS241_B, r);
    }
    // The tails work from the smaller of p and 1 − p, through r = √(−ln(tail)).
    let tail = if q < 0.0 { p } else { 1.0 - p };
    if tail == 0.0 {
        return if q < 0.0 { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    let r = (-tail.ln()).sqrt();
    let magnitude = if r <= 5.0 {
        let r = r - 1.6;
        polynomial(&AS241_C, r) / polynomial(&AS241_D, r)
    } else {
        let r = r - 5.0;
        polynomial(&AS241_E, r) / polynomial(&AS241_F, r)
    };
    if q < 0.0 { -magnitude } else { magnitude }
}

/// erfc(x) = 1 − erf(x) by Cody's rational approximations: relative error of a few ulps over the
/// whole real line, including the far right tail where 1 − erf(x) would be all rounding. 0 from
/// x ≈ 26.54 on (where erfc drops below the smallest normal f64), 2 for x → −∞, NaN for NaN.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    if y <= 0.46875 {
        // erf(x) ≤ 0.49 here, so 1 − erf(x) loses nothing; this covers negative x as well.
        let y_squared = y * y;
        let erf = x * polynomial(&CODY_A, y_squared) / polynomial(&CODY_B, y_squared);
        return 1.0 - erf;
    }
    let upper = if y <= 4.0 {
        polynomial(&CODY_C, y) / polynomial(&CODY_D, y) * exp_minus_square(y)
    } else if y < CODY_X_BIG {
        let z = 1.0 / (y * y);
        let correction = z * polynomial(&CODY_P, z) / polynomial(&CODY_Q, z);
        (FRAC_1_SQRT_PI - correction) / y * exp_minus_square(y)
    } else {
        0.0
    };
    // erfc(−y) = 2 − erfc(y): for x < −0.46875 that lies in (1.49, 2], so no digits cancel.
    if x < 0.0 { 2.0 - upper } else { upper }
}

/// The two-sided p-value of a standard normal statistic: Pr(|Z| ≥ |z|) = erfc(|z|/√2).
pub fn two_sided_p_value(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// e^(−y²) for y ≥ 0. y² itself rounds, and e^(−y²) turns that absolute error into a relative
/// error of up to y²·ε (7e-14 at y = 26); so y is split as s + (y − s), s = ⌊16y⌋/16, whose
/// square is exact, and e^(−y²) = e^(−s²)·e^(−(y − s)(y + s)) (Cody's device).
fn exp_minus_square(y: f64) -> f64 {
    let s = (y * 16.0).trunc() / 16.0;
    let rest = (y - s) * (y + s);
    (-s * s).exp() * (-rest).exp()
}

/// Σ c_i·x^i by Horner's rule, coefficients from the constant term up.
fn polynomial(coefficients: &[f64], x: f64) -> f64 {
    coefficients.iter().rev().fold(0.0, |sum, &c| sum * x + c)
}

/// 1/√π (Cody's SQRPI).
const FRAC_1_SQRT_PI: f64 = 5.6418958354775628695e-1;

/// Cody's XBIG for IEEE double: erfc(x) is below the smallest normal f64 from here on.
const CODY_X_BIG: f64 = 26.543;

// AS 241, |p − ½| ≤ 0.425: Φ⁻¹ = q·A(r)/B(r), r = 0.180625 − q².
const AS241_A: [f64; 8] = [
    3.3871328727963666080e0,
    1.3314166789178437745e+2,
    1.9715909503065514427e+3,
    1.3731693765509461125e+4,
    4.5921953931549871457e+4,
    6.7265770927008700853e+4,
    3.3430575583588128105e+4,
    2.5090809287301226727e+3,
];
const AS241_B: [f64; 8] = [
    1.0,
    4.2313330701600911252e+1,
    6.8718700749205790830e+2,
    5.3941960214247511077e+3,
    2.1213794301586595867e+4,
    3.9307895800092710610e+4,
    2.8729085735721942674e+4,
    5.2264952788528545610e+3,
];

// AS 241, r = √(−ln(tail)) ≤ 5: |Φ⁻¹| = C(r − 1.6)/D(r − 1.6).
const AS241_C: [f64; 8] = [
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
];
const AS241_D: [f64; 8] = [
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
];

// AS 241, r > 5 (tail below about 1.4e-11): |Φ⁻¹| = E(r − 5)/F(r − 5).
const AS241_E: [f64; 8] = [
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
];
const AS241_F: [f64; 8] = [
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
];

// Cody, |x| ≤ 0.46875: erf(x) = x·A(x²)/B(x²). Cody lists the coefficients in the order his
// loops consume them; here every array runs from the constant term up, so this is his A4, A3,
// A2, A1, A5 and B4, B3, B2, B1, 1.
const CODY_A: [f64; 5] = [
    3.20937758913846947e03,
    3.77485237685302021e02,
    1.13864154151050156e02,
    3.16112374387056560e00,
    1.85777706184603153e-1,
];
const CODY_B: [f64; 5] =
    [2.84423683343917062e03, 1.28261652607737228e03, 2.44024637934444173e02, 2.36012909523441209e01, 1.0];

// Cody, 0.46875 < |x| ≤ 4: erfc(x) = e^(−x²)·C(x)/D(x). (His C8, C7, …, C1, C9 and D8, …, D1, 1.)
const CODY_C: [f64; 9] = [
    1.23033935479799725e03,
    2.05107837782607147e03,
    1.71204761263407058e03,
    8.81952221241769090e02,
    2.98635138197400131e02,
    6.61191906371416295e01,
    8.88314979438837594e00,
    5.64188496988670089e-1,
    2.15311535474403846e-8,
];
const CODY_D: [f64; 9] = [
    1.23033935480374942e03,
    3.43936767414372164e03,
    4.36261909014324716e03,
    3.29079923573345963e03,
    1.62138957456669019e03,
    5.37181101862009858e02,
    1.17693950891312499e02,
    1.57449261107098347e01,
    1.0,
];

// Cody, |x| > 4: erfc(x) = e^(−x²)/x·(1/√π − z·P(z)/Q(z)), z = 1/x².
// (Cody's P5, P4, P3, P2, P1, P6 and Q5, Q4, Q3, Q2, Q1, 1.)
const CODY_P: [f64; 6] = [
    6.58749161529837803e-4,
    1.60837851487422766e-2,
    1.25781726111229246e-1,
    3.60344899949804439e-1,
    3.05326634961232344e-1,
    1.63153871373020978e-2,
];
const CODY_Q: [f64; 6] = [
    2.33520497626869185e-3,
    6.05183413124413191e-2,
    5.27905102951428412e-1,
    1.87295284992346047e00,
    2.56852019228982242e00,
    1.0,
];

#[cfg(test)]
mod tests {
    use super::*;
    use prefeval_testkit::SplitMix64;

    fn assert_relative(actual: f64, expected: f64, tolerance: f64) {
        assert!((actual - expected).abs() <= tolerance * expected.abs(), "{actual:e} vs {expected:e}");
    }

    #[test]
    fn quantiles_match_reference_values() {
        // Reference: Φ⁻¹ of the f64 argument, from 60-digit arithmetic.
        let cases = [
            (0.95, 1.6448536269514722),
            (0.975, 1.959963984540054),
            (0.995, 2.5758293035489004),
            (0.3, -0.5244005127080408),
            (0.1, -1.2815515655446004),
            (0.075, -1.439531470938456),
            (0.025, -1.9599639845400543),
            (1e-5, -4.264890793922825),
            (1e-10, -6.361340902404057),
            (1e-20, -9.262340089798407),
            (1e-100, -21.273453560965326),
            (1e-300, -37.0470962993612),
        ];
        for (p, expected) in cases {
            assert_relative(inverse_normal_cdf(p), expected, 1e-12);
        }
        assert_relative(inverse_normal_cdf(1.0 - 1e-10), 6.361340889697422, 1e-12);
    }

    #[test]
    fn quantile_edges_and_symmetry() {
        assert_eq!(inverse_normal_cdf(0.5), 0.0);
        assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inverse_normal_cdf(1.0), f64::INFINITY);
        for bad in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
            assert!(inverse_normal_cdf(bad).is_nan());
        }
        // p and 1 − p are both exact for p = k/2^10, and the algorithm is odd about ½.
        for k in 1..1024 {
            let p = f64::from(k) / 1024.0;
            assert_eq!(inverse_normal_cdf(p), -inverse_normal_cdf(1.0 - p), "p = {p}");
        }
    }

    #[test]
    fn erfc_matches_reference_values() {
        // Reference: erfc of the f64 argument, from 40-digit arithmetic.
        let cases = [
            (0.0, 1.0),
            (1e-10, 0.999999999887162),
            (0.25, 0.7236736098317631),
            (0.46875, 0.507386526782062),
            (0.5, 0.4795001221869535),
            (1.0, 0.15729920705028513),
            (2.0, 0.004677734981047266),
            (3.0, 2.209049699858544e-05),
            (4.0, 1.541725790028002e-08),
            (4.5, 1.9661604415428876e-10),
            (5.0, 1.5374597944280349e-12),
            (6.0, 2.1519736712498913e-17),
            (10.0, 2.088487583762545e-45),
            (26.0, 5.663192408856143e-296),
            (-1.0, 1.8427007929497148),
            (-3.0, 1.9999779095030015),
        ];
        for (x, expected) in cases {
            assert_relative(erfc(x), expected, 1e-13);
        }
        assert_eq!(erfc(30.0), 0.0);
        assert_eq!(erfc(f64::INFINITY), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
        assert_eq!(erfc(-30.0), 2.0);
        assert!(erfc(f64::NAN).is_nan());
    }

    #[test]
    fn erfc_is_continuous_across_its_branches() {
        // One ulp either side of the two switches between approximations, against the same
        // 40-digit reference: a mismatch between branches would show as a jump here.
        let cases = [
            (0.46874999999999994, 0.5073865267820621),
            (0.46875000000000006, 0.507386526782062),
            (3.9999999999999996, 1.5417257900280076e-08),
            (4.000000000000001, 1.5417257900279907e-08),
        ];
        for (x, expected) in cases {
            assert_relative(erfc(x), expected, 1e-13);
        }
    }

    #[test]
    fn quantile_and_erfc_invert_each_other() {
        // Φ(x) = erfc(−x/√2)/2; both functions are independent transcriptions, so agreement
        // checks each. In the far tail a relative error δ in x shows up as x²·δ in p.
        let mut rng = SplitMix64::new(0x0E4F);
        for _ in 0..10_000 {
            let p = if rng.below(2) == 0 { rng.unit() } else { 10f64.powf(-rng.between(1.0, 300.0)) };
            if p == 0.0 {
                continue;
            }
            let x = inverse_normal_cdf(p);
            let roundtrip = erfc(-x / std::f64::consts::SQRT_2) / 2.0;
            assert_relative(roundtrip, p, 1e-15 * (4.0 + x * x));
        }
    }

    #[test]
    fn two_sided_p_values() {
        assert_relative(two_sided_p_value(1.959963984540054), 0.05, 1e-12);
        assert_relative(two_sided_p_value(-2.5758293035489004), 0.01, 1e-12);
        assert_eq!(two_sided_p_value(0.0), 1.0);
        assert_eq!(two_sided_p_value(f64::INFINITY), 0.0);
        assert_eq!(two_sided_p_value(-3.0), two_sided_p_value(3.0));
    }
}
