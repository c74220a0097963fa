"""The statistics a summary's figures are computed with, as the service computes them (its
``stats`` and ``math::sum``): the same formulas with the floating-point operations in the same
order, so a summary merged here equals the one ``prefeval merge`` writes, to the last bit.

- Φ⁻¹: Wichura, Algorithm AS 241 (PPND16), Applied Statistics 37(3), 1988.
- Compensated (Neumaier) summation.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple


def fmax(a: float, b: float) -> float:
    """Rust's ``f64::max``: the other operand when one is NaN."""
    if a != a:
        return b
    if b != b:
        return a
    return a if a >= b else b


def fmin(a: float, b: float) -> float:
    if a != a:
        return b
    if b != b:
        return a
    return a if a <= b else b


class NeumaierSum:
    """A sum with the running error of every addition carried separately."""

    __slots__ = ("sum", "compensation")

    def __init__(self, value: Optional[float] = None) -> None:
        self.sum = 0.0
        self.compensation = 0.0
        if value is not None:
            self.add(value)

    def add(self, x: float) -> None:
        t = self.sum + x
        if abs(self.sum) >= abs(x):
            self.compensation += (self.sum - t) + x
        else:
            self.compensation += (x - t) + self.sum
        self.sum = t

    def merge(self, other: "NeumaierSum") -> None:
        self.add(other.sum)
        self.add(other.compensation)

    def value(self) -> float:
        return self.sum + self.compensation

    def copy(self) -> "NeumaierSum":
        copy = NeumaierSum()
        copy.sum, copy.compensation = self.sum, self.compensation
        return copy


def mean_standard_error(total: float, squares: float, m: int) -> Optional[float]:
    if m < 2 or not math.isfinite(total) or not math.isfinite(squares):
        return None
    count = float(m)
    variance = fmax((squares - total * (total / count)) / (count - 1.0), 0.0)
    return math.sqrt(variance / count)


def ratio_standard_error(
    lists: int, numerator: float, denominator: float, numerator_squares: float, products: float, denominator_squares: float
) -> Optional[float]:
    if denominator == 0.0:
        return None
    ratio = numerator / denominator
    finite = all(math.isfinite(s) for s in (numerator_squares, products, denominator_squares, ratio))
    if lists < 2 or not finite:
        return None
    m = float(lists)
    residual_squares = fmax(numerator_squares - 2.0 * ratio * products + ratio * ratio * denominator_squares, 0.0)
    variance = m / (m - 1.0) * residual_squares / (denominator * denominator)
    return math.sqrt(variance)


def critical_value(confidence: float) -> float:
    return -inverse_normal_cdf((1.0 - confidence) / 2.0)


def interval(estimate: float, standard_error: float, confidence: float) -> Tuple[float, float]:
    half_width = critical_value(confidence) * standard_error
    return (estimate - half_width, estimate + half_width)


def accuracy_interval(estimate: float, standard_error: float, confidence: float) -> Tuple[float, float]:
    lower, upper = interval(estimate, standard_error, confidence)
    return (fmin(fmax(lower, 0.0), 1.0), fmin(fmax(upper, 0.0), 1.0))


def inverse_normal_cdf(p: float) -> float:
    """Φ⁻¹(p) by AS 241: −∞ at 0, +∞ at 1, NaN outside [0, 1]."""
    if not (0.0 <= p <= 1.0):
        return math.nan
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _polynomial(_A, r) / _polynomial(_B, r)
    tail = p if q < 0.0 else 1.0 - p
    if tail == 0.0:
        return -math.inf if q < 0.0 else math.inf
    r = math.sqrt(-math.log(tail))
    if r <= 5.0:
        r = r - 1.6
        magnitude = _polynomial(_C, r) / _polynomial(_D, r)
    else:
        r = r - 5.0
        magnitude = _polynomial(_E, r) / _polynomial(_F, r)
    return -magnitude if q < 0.0 else magnitude


def _polynomial(coefficients: List[float], x: float) -> float:
    """Σ c_i·x^i by Horner's rule, coefficients from the constant term up (no fused multiply-add)."""
    total = 0.0
    for c in reversed(coefficients):
        total = total * x + c
    return total


# AS 241's coefficients, every published digit (Python rounds each to the nearest double, as the
# service's compiler does).
_A = [
    3.3871328727963666080e0,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
]
_B = [
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
]
_C = [
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
]
_D = [
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
]
_E = [
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
]
_F = [
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
]


# erfc as the service computes it (W. J. Cody's rational approximations, coefficients from the
# constant term up), so that p-values recomputed here are the service's to the last bit.
_CODY_A = [3.20937758913846947e03, 3.77485237685302021e02, 1.13864154151050156e02, 3.16112374387056560e00, 1.85777706184603153e-1]
_CODY_B = [2.84423683343917062e03, 1.28261652607737228e03, 2.44024637934444173e02, 2.36012909523441209e01, 1.0]
_CODY_C = [
    1.23033935479799725e03, 2.05107837782607147e03, 1.71204761263407058e03, 8.81952221241769090e02,
    2.98635138197400131e02, 6.61191906371416295e01, 8.88314979438837594e00, 5.64188496988670089e-1,
    2.15311535474403846e-8,
]
_CODY_D = [
    1.23033935480374942e03, 3.43936767414372164e03, 4.36261909014324716e03, 3.29079923573345963e03,
    1.62138957456669019e03, 5.37181101862009858e02, 1.17693950891312499e02, 1.57449261107098347e01, 1.0,
]
_CODY_P = [6.58749161529837803e-4, 1.60837851487422766e-2, 1.25781726111229246e-1, 3.60344899949804439e-1, 3.05326634961232344e-1, 1.63153871373020978e-2]
_CODY_Q = [2.33520497626869185e-3, 6.05183413124413191e-2, 5.27905102951428412e-1, 1.87295284992346047e00, 2.56852019228982242e00, 1.0]
_FRAC_1_SQRT_PI = 5.6418958354775628695e-1
_CODY_X_BIG = 26.543


def _horner(coefficients: List[float], x: float) -> float:
    total = 0.0
    for c in reversed(coefficients):
        total = total * x + c
    return total


def _exp_minus_square(y: float) -> float:
    s = math.trunc(y * 16.0) / 16.0
    rest = (y - s) * (y + s)
    return math.exp(-s * s) * math.exp(-rest)


def erfc(x: float) -> float:
    if math.isnan(x):
        return math.nan
    y = abs(x)
    if y <= 0.46875:
        y_squared = y * y
        return 1.0 - x * _horner(_CODY_A, y_squared) / _horner(_CODY_B, y_squared)
    if y <= 4.0:
        upper = _horner(_CODY_C, y) / _horner(_CODY_D, y) * _exp_minus_square(y)
    elif y < _CODY_X_BIG:
        z = 1.0 / (y * y)
        correction = z * _horner(_CODY_P, z) / _horner(_CODY_Q, z)
        upper = (_FRAC_1_SQRT_PI - correction) / y * _exp_minus_square(y)
    else:
        upper = 0.0
    return 2.0 - upper if x < 0.0 else upper


def p_value(estimate: float, standard_error: float) -> float:
    """Two-sided p-value of "the true value is 0"; with SE = 0, 1 for a zero estimate, else 0."""
    if standard_error == 0.0:
        return 1.0 if estimate == 0.0 else 0.0
    return erfc(abs(estimate / standard_error) / math.sqrt(2.0))


def holm_adjust(p_values: List[float]) -> List[float]:
    """Holm's step-down adjustment over one family, in the input order (ties sorted stably)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for step, i in enumerate(order):
        running = fmax(running, fmin((m - step) * p_values[i], 1.0))
        adjusted[i] = running
    return adjusted
