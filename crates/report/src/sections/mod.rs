//! One file per section of the report, each writing its HTML into the page.

pub mod calibration;
pub mod comparison;
pub mod disagreements;
pub mod groups;
pub mod headline;
pub mod length;
pub mod run;
