//! Statistics of uncertainty for the figures of `docs/design/math.md` ("Uncertainty: how sure is a
//! figure"): the normal distribution's quantile and tail, standard errors clustered by list,
//! intervals, p-values and Holm's adjustment. Pure computation on plain numbers: no I/O, no serde,
//! no threads.

mod normal;
mod uncertainty;

pub use normal::{erfc, inverse_normal_cdf, two_sided_p_value};
pub use uncertainty::{
    RatioSums, accuracy_interval, critical_value, holm_adjust, interval, mean_standard_error, p_value,
    ratio_standard_error,
};
