//! Judging a measured metric against its baseline: a pure function from
//! rounds, a baseline value and a tolerance to a verdict.
//!
//! A regression is declared only when the whole 95% confidence interval of
//! the median over rounds is beyond the tolerance (and beyond the absolute
//! floor): one slow round on a noisy machine cannot fail a build.

use crate::model::{Comparison, Direction, Tolerance, Verdict};
use crate::stats::{bootstrap_median_ci, median};

/// The fewest independent rounds a verdict is given on.
pub const MIN_ROUNDS: usize = 3;
/// The confidence level of the interval.
pub const CONFIDENCE: f64 = 0.95;

/// Compares `rounds` (one value per independent round) with `baseline`.
pub fn compare(baseline: f64, rounds: &[f64], tolerance: &Tolerance) -> Comparison {
    let metric = tolerance.metric;
    let invalid = |reason: String| Comparison {
        metric,
        baseline,
        median: f64::NAN,
        ci: (f64::NAN, f64::NAN),
        ratio: f64::NAN,
        ratio_ci: (f64::NAN, f64::NAN),
        rounds: rounds.len(),
        tolerance: *tolerance,
        verdict: Verdict::Invalid { reason },
    };
    if !baseline.is_finite() || baseline <= 0.0 {
        return invalid(format!(
            "the baseline value {baseline} is not a positive number"
        ));
    }
    if let Some(bad) = rounds.iter().find(|r| !r.is_finite()) {
        return invalid(format!("a measured round is {bad}, not a number"));
    }
    if rounds.len() < MIN_ROUNDS {
        return invalid(format!(
            "{} round(s) measured; at least {MIN_ROUNDS} independent rounds are needed to judge",
            rounds.len()
        ));
    }
    let med = median(rounds);
    let ci = bootstrap_median_ci(rounds, CONFIDENCE);
    let ratio = med / baseline;
    let ratio_ci = (ci.0 / baseline, ci.1 / baseline);
    let verdict = decide(baseline, ci, tolerance);
    Comparison {
        metric,
        baseline,
        median: med,
        ci,
        ratio,
        ratio_ci,
        rounds: rounds.len(),
        tolerance: *tolerance,
        verdict,
    }
}

/// The verdict for a measured value whose 95% interval is `ci` (in the
/// metric's unit), against `baseline`.
///
/// A regression needs the interval's end most favourable to the code under
/// test to be worse than the tolerance allows *and* further from the baseline
/// than the absolute floor; an improvement needs the least favourable end
/// better than the tolerance in the other direction. Exactly at the tolerance
/// is not a regression. The gate and `siteboss compare` both decide here.
pub fn decide(baseline: f64, ci: (f64, f64), tolerance: &Tolerance) -> Verdict {
    let t = tolerance.relative;
    let floor = tolerance.absolute_floor.unwrap_or(0.0);
    let (lo, hi) = (ci.0 / baseline, ci.1 / baseline);
    let beyond_floor = |v: f64| (v - baseline).abs() > floor;
    match tolerance.direction {
        Direction::LowerIsBetter if lo > 1.0 + t && beyond_floor(ci.0) => Verdict::Regression,
        Direction::HigherIsBetter if hi < 1.0 - t && beyond_floor(ci.1) => Verdict::Regression,
        Direction::LowerIsBetter if hi < 1.0 - t && beyond_floor(ci.1) => Verdict::Improvement,
        Direction::HigherIsBetter if lo > 1.0 + t && beyond_floor(ci.0) => Verdict::Improvement,
        _ => Verdict::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Metric;

    fn tol(metric: Metric, relative: f64) -> Tolerance {
        Tolerance {
            metric,
            direction: metric.direction(),
            relative,
            absolute_floor: None,
            enforce: true,
        }
    }

    #[test]
    fn a_clear_slowdown_is_a_regression() {
        let c = compare(
            100.0,
            &[130.0, 131.0, 129.0, 132.0, 130.0],
            &tol(Metric::WarmStart, 0.15),
        );
        assert_eq!(c.verdict, Verdict::Regression);
        assert!((c.ratio - 1.30).abs() < 1e-9);
        assert!(c.fails());
    }

    #[test]
    fn exactly_at_tolerance_is_not_a_regression() {
        // Zero spread, ratio exactly 1.25 against +25%: the boundary passes.
        let c = compare(100.0, &[125.0; 5], &tol(Metric::WarmStart, 0.25));
        assert_eq!(c.ratio_ci, (1.25, 1.25));
        assert_eq!(c.verdict, Verdict::Pass);
        // A hair beyond it, with zero spread, fails.
        let c = compare(100.0, &[125.001; 5], &tol(Metric::WarmStart, 0.25));
        assert_eq!(c.verdict, Verdict::Regression);
    }

    #[test]
    fn an_interval_that_reaches_back_inside_the_tolerance_passes() {
        // Median 1.30x, but one round is back at 1.0x: the evidence does not hold up.
        let c = compare(
            100.0,
            &[100.0, 130.0, 131.0, 100.0, 130.0],
            &tol(Metric::WarmStart, 0.15),
        );
        assert!(c.ratio > 1.15);
        assert!(c.ratio_ci.0 <= 1.15, "{:?}", c.ratio_ci);
        assert_eq!(c.verdict, Verdict::Pass);
    }

    #[test]
    fn throughput_regresses_downward() {
        let c = compare(
            200_000.0,
            &[150_000.0, 151_000.0, 149_000.0],
            &tol(Metric::Throughput, 0.20),
        );
        assert_eq!(c.verdict, Verdict::Regression);
        let c = compare(
            200_000.0,
            &[260_000.0, 261_000.0, 259_000.0],
            &tol(Metric::Throughput, 0.20),
        );
        assert_eq!(c.verdict, Verdict::Improvement);
        assert!(!c.fails());
    }

    #[test]
    fn an_improvement_beyond_tolerance_is_reported_and_passes() {
        let c = compare(100.0, &[70.0, 70.5, 69.5], &tol(Metric::Lifecycle, 0.25));
        assert_eq!(c.verdict, Verdict::Improvement);
        assert!(!c.fails());
    }

    #[test]
    fn one_round_cannot_be_judged_and_says_so() {
        let c = compare(100.0, &[500.0], &tol(Metric::WarmStart, 0.25));
        assert!(
            matches!(c.verdict, Verdict::Invalid { ref reason } if reason.contains("at least 3"))
        );
        assert!(c.fails(), "an unjudgeable gate must not pass silently");
        let c = compare(100.0, &[], &tol(Metric::WarmStart, 0.25));
        assert!(matches!(c.verdict, Verdict::Invalid { .. }));
    }

    #[test]
    fn nan_rounds_or_baselines_are_invalid_not_passes() {
        let c = compare(
            100.0,
            &[100.0, f64::NAN, 100.0],
            &tol(Metric::WarmStart, 0.25),
        );
        assert!(matches!(c.verdict, Verdict::Invalid { ref reason } if reason.contains("NaN")));
        assert!(c.fails());
        for b in [f64::NAN, 0.0, -5.0, f64::INFINITY] {
            let c = compare(b, &[100.0, 100.0, 100.0], &tol(Metric::WarmStart, 0.25));
            assert!(matches!(c.verdict, Verdict::Invalid { .. }), "baseline {b}");
        }
    }

    #[test]
    fn the_absolute_floor_forgives_tiny_changes() {
        let mut t = tol(Metric::MemoryPerInstance, 0.10);
        t.absolute_floor = Some(2048.0);
        // 50% worse, but only 1 KiB: below the floor.
        let c = compare(2048.0, &[3072.0; 4], &t);
        assert_eq!(c.verdict, Verdict::Pass);
        let c = compare(16384.0, &[24576.0; 4], &t);
        assert_eq!(c.verdict, Verdict::Regression);
    }

    #[test]
    fn an_unenforced_regression_does_not_fail() {
        let mut t = tol(Metric::ColdStart, 0.25);
        t.enforce = false;
        let c = compare(100.0, &[200.0; 3], &t);
        assert_eq!(c.verdict, Verdict::Regression);
        assert!(!c.fails());
    }
}
