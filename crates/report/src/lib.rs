//! prefeval-report: one self-contained HTML page from what prefeval writes, with its charts drawn
//! as inline SVG in Rust.
//!
//! - `read`: the inputs a report is drawn from (an evaluation's summary line, a comparison's, a
//!   `/v1/compare` answer, or several evaluations of the same lists) into a `Report`.
//! - `model`: the figures a report reads, as the JSON names them.
//! - `page`: the document (`Report::to_html`); `sections/`: one file per section; `chart`: the
//!   plotters drawing shared by the charts; `number`: how numbers are shown.
//!
//! No HTTP, no runtime, no clock but `Meta`'s: the same input and date give the same bytes.

mod chart;
mod date;
mod html;
pub mod model;
mod number;
mod page;
mod read;
mod sections;

pub use date::report_date;
pub use page::Meta;
pub use read::{Input, Report, read_inputs, read_summary};
