//! Tolerances, comparisons against a baseline, and the verdicts they give.

use super::{Direction, Metric};
use serde::{Deserialize, Serialize};

/// How far a metric may move in its worse direction before it is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// The metric this applies to.
    pub metric: Metric,
    /// Which way is better (recorded in the file so a reader need not look it up).
    pub direction: Direction,
    /// The relative change allowed, as a fraction: 0.25 allows 25% worse.
    pub relative: f64,
    /// A change smaller than this, in the metric's unit, is never a regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_floor: Option<f64>,
    /// The relative change allowed when base and head are measured in lock
    /// step (`siteboss ab`), where a slow episode hits both alike; `relative`
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_relative: Option<f64>,
    /// Whether a regression fails the build, or is only reported.
    pub enforce: bool,
}

/// The outcome of comparing one metric with its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// Within tolerance, or not enough evidence that it is not.
    Pass,
    /// Worse than the tolerance allows, and the whole confidence interval agrees.
    Regression,
    /// Better than the tolerance, with the whole interval agreeing:
    /// re-record the baseline so the gate protects the gain.
    Improvement,
    /// The samples cannot be judged (no rounds, or a value that is not finite).
    Invalid {
        /// Why, in one line.
        reason: String,
    },
}

/// A metric measured in several rounds, compared with its baseline value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The metric compared.
    pub metric: Metric,
    /// The baseline value.
    pub baseline: f64,
    /// The median over rounds of the measured value.
    pub median: f64,
    /// The 95% confidence interval of that median (bootstrap over rounds).
    pub ci: (f64, f64),
    /// `median / baseline`.
    pub ratio: f64,
    /// The confidence interval as ratios to the baseline.
    pub ratio_ci: (f64, f64),
    /// How many rounds were compared.
    pub rounds: usize,
    /// How many of the baseline's own rounds were resampled (0 when the
    /// baseline was taken as exact).
    #[serde(default)]
    pub baseline_rounds: usize,
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// The judgement.
    pub verdict: Verdict,
}

impl Tolerance {
    /// This tolerance as `siteboss ab` applies it: `paired_relative` in place
    /// of `relative`, and no absolute floor (ratios are judged, not units).
    pub fn paired(&self) -> Tolerance {
        Tolerance {
            relative: self.paired_relative.unwrap_or(self.relative),
            absolute_floor: None,
            ..*self
        }
    }
}

impl Comparison {
    /// Whether this comparison should fail a build.
    pub fn fails(&self) -> bool {
        match self.verdict {
            Verdict::Regression => self.tolerance.enforce,
            Verdict::Invalid { .. } => true,
            Verdict::Pass | Verdict::Improvement => false,
        }
    }
}
