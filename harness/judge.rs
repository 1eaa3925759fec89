//! Judging a measured metric against its baseline: pure functions from
//! rounds, a baseline and a tolerance to a verdict. Timed and counted metrics
//! are judged by the same [`decide`].
//!
//! A regression is declared only when the whole 95% confidence interval is
//! beyond the tolerance (and beyond the absolute floor): one slow round on a
//! noisy machine cannot fail a build.
//!
//! - [`compare`] treats the baseline as exact: right for counts, which repeat
//!   to well under 1%.
//! - [`compare_samples`] also resamples the baseline's own rounds, so a
//!   baseline recorded in a fast (or slow) minute widens the interval instead
//!   of shifting every later verdict: right for clock readings.

use crate::model::{Comparison, Direction, Kind, Tolerance, Verdict};
use crate::stats::{bootstrap_median_ci, bootstrap_ratio_ci, median};

/// The fewest independent rounds a verdict is given on.
pub const MIN_ROUNDS: usize = 3;
/// The confidence level of the interval.
pub const CONFIDENCE: f64 = 0.95;

/// Why `value` cannot serve as a baseline for the tolerance's metric, if it
/// cannot: a timed baseline must be positive, a counted one may be zero (no
/// page faults, no system calls), and then only the absolute floor judges.
fn bad_baseline(value: f64, tolerance: &Tolerance) -> Option<String> {
    let ok = match tolerance.metric.kind() {
        Kind::Timed => value.is_finite() && value > 0.0,
        Kind::Counted => value.is_finite() && value >= 0.0,
    };
    (!ok).then(|| {
        format!(
            "the baseline value {value} is not a {} number",
            if tolerance.metric.kind() == Kind::Timed {
                "positive"
            } else {
                "non-negative"
            }
        )
    })
}

fn invalid(baseline: f64, rounds: usize, tolerance: &Tolerance, reason: String) -> Comparison {
    Comparison {
        metric: tolerance.metric,
        baseline,
        median: f64::NAN,
        ci: (f64::NAN, f64::NAN),
        ratio: f64::NAN,
        ratio_ci: (f64::NAN, f64::NAN),
        rounds,
        baseline_rounds: 0,
        tolerance: *tolerance,
        verdict: Verdict::Invalid { reason },
    }
}

/// Why `rounds` cannot be judged, if they cannot.
fn bad_rounds(rounds: &[f64], whose: &str) -> Option<String> {
    if let Some(bad) = rounds.iter().find(|r| !r.is_finite()) {
        return Some(format!("a {whose} round is {bad}, not a number"));
    }
    (rounds.len() < MIN_ROUNDS).then(|| {
        format!(
            "{} {whose} round(s); at least {MIN_ROUNDS} independent rounds are needed to judge",
            rounds.len()
        )
    })
}

/// Compares `rounds` (one value per independent round) with an exact
/// `baseline` value.
pub fn compare(baseline: f64, rounds: &[f64], tolerance: &Tolerance) -> Comparison {
    if let Some(reason) =
        bad_baseline(baseline, tolerance).or_else(|| bad_rounds(rounds, "measured"))
    {
        return invalid(baseline, rounds.len(), tolerance, reason);
    }
    let med = median(rounds);
    let ci = bootstrap_median_ci(rounds, CONFIDENCE);
    Comparison {
        metric: tolerance.metric,
        baseline,
        median: med,
        ci,
        ratio: med / baseline,
        ratio_ci: (ci.0 / baseline, ci.1 / baseline),
        rounds: rounds.len(),
        baseline_rounds: 0,
        tolerance: *tolerance,
        verdict: decide(baseline, ci, tolerance),
    }
}

/// Compares `rounds` with a baseline that is itself a sample of rounds: the
/// interval is that of `median(rounds) / median(baseline)` with both sides
/// resampled, so the baseline's own spread widens it.
pub fn compare_samples(baseline: &[f64], rounds: &[f64], tolerance: &Tolerance) -> Comparison {
    let base = median(baseline);
    if let Some(reason) = bad_rounds(baseline, "baseline")
        .or_else(|| bad_baseline(base, tolerance))
        .or_else(|| bad_rounds(rounds, "measured"))
    {
        return invalid(base, rounds.len(), tolerance, reason);
    }
    let med = median(rounds);
    let ratio_ci = bootstrap_ratio_ci(baseline, rounds, CONFIDENCE);
    let ci = (ratio_ci.0 * base, ratio_ci.1 * base);
    Comparison {
        metric: tolerance.metric,
        baseline: base,
        median: med,
        ci,
        ratio: med / base,
        ratio_ci,
        rounds: rounds.len(),
        baseline_rounds: baseline.len(),
        tolerance: *tolerance,
        verdict: decide(base, ci, tolerance),
    }
}

/// The verdict for a measured value whose 95% interval is `ci` (in the
/// metric's unit), against `baseline`.
///
/// A regression needs the interval's end most favourable to the code under
/// test to be worse than the tolerance allows *and* further from the baseline
/// than the absolute floor; an improvement needs the least favourable end
/// better than the tolerance in the other direction. Exactly at the tolerance
/// is not a regression. A baseline of zero (a counted metric: no faults, no
/// system calls) is judged by the absolute floor alone. An interval with a
/// NaN end is never a regression or an improvement; callers reject NaN
/// before deciding. The gate, `siteboss compare` and `siteboss ab` all
/// decide here.
pub fn decide(baseline: f64, ci: (f64, f64), tolerance: &Tolerance) -> Verdict {
    let t = tolerance.relative;
    let floor = tolerance.absolute_floor.unwrap_or(0.0);
    let beyond_floor = |v: f64| (v - baseline).abs() > floor;
    // `worse_than(v, limit)`: v is past the relative limit on the bad side.
    let above = |v: f64, factor: f64| {
        if baseline == 0.0 {
            v > 0.0
        } else {
            v / baseline > factor
        }
    };
    let below = |v: f64, factor: f64| {
        if baseline == 0.0 {
            v < 0.0
        } else {
            v / baseline < factor
        }
    };
    let (lo, hi) = ci;
    match tolerance.direction {
        // The favourable end decides a regression: the low end for a cost,
        // the high end for a rate.
        Direction::LowerIsBetter if above(lo, 1.0 + t) && beyond_floor(lo) => Verdict::Regression,
        Direction::HigherIsBetter if below(hi, 1.0 - t) && beyond_floor(hi) => Verdict::Regression,
        // The unfavourable end decides an improvement.
        Direction::LowerIsBetter if below(hi, 1.0 - t) && beyond_floor(hi) => Verdict::Improvement,
        Direction::HigherIsBetter if above(lo, 1.0 + t) && beyond_floor(lo) => Verdict::Improvement,
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
            paired_relative: None,
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
        let c = compare(
            100.0,
            &[100.0, f64::INFINITY, 100.0],
            &tol(Metric::WarmStart, 0.25),
        );
        assert!(matches!(c.verdict, Verdict::Invalid { .. }));
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
    fn the_favourable_end_of_the_interval_decides_a_regression() {
        let t = tol(Metric::Lifecycle, 0.10);
        // Lower is better: the low end decides. Low end inside the tolerance
        // (1.09) with the high end far beyond it (3.0) passes...
        assert_eq!(decide(100.0, (109.0, 300.0), &t), Verdict::Pass);
        // ...and a low end just beyond it fails, whatever the high end.
        assert_eq!(decide(100.0, (110.5, 111.0), &t), Verdict::Regression);
        // An improvement needs the high end beyond the tolerance.
        assert_eq!(decide(100.0, (50.0, 91.0), &t), Verdict::Pass);
        assert_eq!(decide(100.0, (50.0, 89.0), &t), Verdict::Improvement);

        let t = tol(Metric::Throughput, 0.10);
        // Higher is better: the high end decides. High end inside (0.91)
        // with the low end far below (0.2) passes...
        assert_eq!(decide(100.0, (20.0, 91.0), &t), Verdict::Pass);
        // ...a high end below 0.9 fails...
        assert_eq!(decide(100.0, (85.0, 89.5), &t), Verdict::Regression);
        // ...and an improvement needs the low end above 1.1.
        assert_eq!(decide(100.0, (109.0, 300.0), &t), Verdict::Pass);
        assert_eq!(decide(100.0, (111.0, 300.0), &t), Verdict::Improvement);
    }

    #[test]
    fn a_zero_counted_baseline_is_judged_by_the_floor() {
        let mut t = tol(Metric::PageFaultsLifecycle, 0.05);
        t.absolute_floor = Some(0.5);
        // No faults before; 0.4 per lifecycle is within the floor, 0.6 is not.
        assert_eq!(compare(0.0, &[0.4; 5], &t).verdict, Verdict::Pass);
        let c = compare(0.0, &[0.6; 5], &t);
        assert_eq!(c.verdict, Verdict::Regression);
        assert!(c.ratio.is_infinite() || c.ratio.is_nan());
        assert_eq!(compare(0.0, &[0.0; 5], &t).verdict, Verdict::Pass);
        // A timed metric cannot have a zero baseline.
        let c = compare(0.0, &[1.0; 5], &tol(Metric::WarmStart, 0.1));
        assert!(
            matches!(c.verdict, Verdict::Invalid { ref reason } if reason.contains("positive"))
        );
    }

    #[test]
    fn a_two_sample_verdict_widens_with_the_baselines_spread() {
        let t = tol(Metric::WarmStart, 0.15);
        let measured = [125.0, 124.0, 126.0, 125.5, 124.5, 125.2, 124.8];
        // Against a tight baseline at 100, 1.25x is a regression.
        let tight = [100.0, 100.2, 99.8, 100.1, 99.9, 100.0, 100.0];
        assert_eq!(
            compare_samples(&tight, &measured, &t).verdict,
            Verdict::Regression
        );
        // Against a baseline with the same median whose rounds reach 125
        // (recorded in a fast minute and a slow one), it is not proven.
        let loose = [100.0, 80.0, 125.0, 100.0, 126.0, 79.0, 100.0];
        let c = compare_samples(&loose, &measured, &t);
        assert_eq!(c.baseline, 100.0);
        assert!(c.ratio_ci.0 <= 1.15, "{:?}", c.ratio_ci);
        assert_eq!(c.verdict, Verdict::Pass);
        assert_eq!(c.baseline_rounds, 7);
        // Too few baseline rounds cannot be judged.
        let c = compare_samples(&[100.0, 101.0], &measured, &t);
        assert!(
            matches!(c.verdict, Verdict::Invalid { ref reason } if reason.contains("baseline round"))
        );
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
