//! Plain data types every other module speaks: metrics, summaries, runners,
//! results, baselines, tolerances and verdicts.
//!
//! Nothing here depends on Wasmtime, so the comparing and judging code that
//! uses these types is tested without running a component.

mod metric;
mod results;
mod runner;
mod summary;
mod verdict;

pub use metric::{Allocator, Direction, Kind, Metric, ParseError, Unit};
pub use results::*;
pub use runner::Fingerprint;
pub use summary::Summary;
pub use verdict::{Comparison, Tolerance, Verdict};
