//! How numbers are shown: each figure carries its JSON form exactly (`data-value`, the shortest
//! form that reads back to the same f64, as serde_json writes it) and is shown rounded to four
//! significant digits (the report says so); counts are shown whole.

/// The JSON text of `value`, as the summary line has it.
pub fn json(value: f64) -> String {
    // A finite f64 always serializes; the summaries hold finite numbers only.
    serde_json::to_string(&value).unwrap_or_else(|_| "null".to_string())
}

/// `value` rounded to four significant digits: fixed notation from 1e-4 to 1e6, else scientific
/// (`1.235e-12`); trailing zeros of the fraction dropped.
pub fn shown(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return if value.is_nan() {
            "NaN".to_string()
        } else if value == 0.0 {
            "0".to_string()
        } else {
            value.to_string()
        };
    }
    let exponent = value.abs().log10().floor() as i32;
    if !(-4..6).contains(&exponent) {
        let text = format!("{value:.3e}");
        return match text.split_once('e') {
            Some((mantissa, power)) => format!("{}e{power}", trim_fraction(mantissa)),
            None => text,
        };
    }
    let decimals = (3 - exponent).max(0) as usize;
    trim_fraction(&format!("{value:.decimals$}")).to_string()
}

/// An interval shown as `[lo, hi]`.
pub fn shown_interval(interval: (f64, f64)) -> String {
    format!("[{}, {}]", shown(interval.0), shown(interval.1))
}

/// The JSON text of an interval, `[lo,hi]`.
pub fn json_interval(interval: (f64, f64)) -> String {
    format!("[{},{}]", json(interval.0), json(interval.1))
}

fn trim_fraction(text: &str) -> &str {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { text }
}

#[cfg(test)]
mod tests {
    use super::{json, shown};

    #[test]
    fn four_significant_digits() {
        assert_eq!(shown(0.447), "0.447");
        assert_eq!(shown(1.3276874813822475), "1.328");
        assert_eq!(shown(0.5), "0.5");
        assert_eq!(shown(663.8437406911237), "663.8");
        assert_eq!(shown(-0.023065862884125765), "-0.02307");
        assert_eq!(shown(0.00012346), "0.0001235");
        assert_eq!(shown(1.2344e-12), "1.234e-12");
        assert_eq!(shown(123456.0), "123456");
        assert_eq!(shown(9.99996), "10");
        assert_eq!(shown(0.0), "0");
    }

    #[test]
    fn json_is_the_shortest_round_trip() {
        assert_eq!(json(0.1), "0.1");
        assert_eq!(json(1.0), "1.0");
        assert_eq!(json(0.403687070028073), "0.403687070028073");
    }
}
