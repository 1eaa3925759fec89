//! Statistics over samples: summaries, slopes and bootstrap intervals.
//!
//! Pure functions of their inputs. The bootstrap uses a fixed-seed generator,
//! so the same samples always give the same interval.

use crate::model::{Histogram, Summary, Unit};

/// The value at quantile `q` (0..=1) of sorted `xs`, interpolating linearly.
///
/// Returns NaN for an empty slice.
pub fn quantile_sorted(xs: &[f64], q: f64) -> f64 {
    match xs.len() {
        0 => f64::NAN,
        1 => xs[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
        }
    }
}

/// The median of `xs`, reordering `xs` instead of copying it (the
/// bootstrap's resamples are scratch). NaN for an empty slice.
fn median_in_place(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    let (left, mid, _) = xs.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        *mid
    } else {
        // The upper middle value and the largest of the lower half.
        let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + *mid) / 2.0
    }
}

/// The median of `xs` (any order). NaN for an empty slice.
pub fn median(xs: &[f64]) -> f64 {
    median_in_place(&mut xs.to_vec())
}

/// Summarises samples that were not taken in rounds.
pub fn summarize(samples: &[f64], unit: Unit) -> Summary {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = quantile_sorted(&v, 0.5);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = quantile_sorted(&dev, 0.5);
    // Modified z-score (Iglewicz and Hoaglin): 0.6745 * |x - median| / MAD.
    let outliers = if mad > 0.0 {
        v.iter()
            .filter(|x| 0.6745 * (*x - med).abs() / mad > 3.5)
            .count()
    } else {
        0
    };
    Summary {
        unit,
        n,
        median: med,
        p25: quantile_sorted(&v, 0.25),
        p75: quantile_sorted(&v, 0.75),
        p99: quantile_sorted(&v, 0.99),
        min: v.first().copied().unwrap_or(f64::NAN),
        max: v.last().copied().unwrap_or(f64::NAN),
        mean: if n == 0 {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / n as f64
        },
        mad,
        outliers,
        rounds: Vec::new(),
    }
}

/// Summarises samples taken in independent rounds.
///
/// The percentiles describe every sample pooled; `rounds` keeps each round's
/// median for judging.
pub fn summarize_rounds(rounds: &[Vec<f64>], unit: Unit) -> Summary {
    let all: Vec<f64> = rounds.iter().flatten().copied().collect();
    let mut s = summarize(&all, unit);
    s.rounds = rounds.iter().map(|r| median(r)).collect();
    s
}

/// Counts positive `samples` in `bins_per_decade` logarithmic bins per
/// factor of ten, from the decade-aligned edge at or below the smallest.
/// `None` when no sample is positive and finite.
pub fn log_histogram(samples: &[f64], unit: Unit, bins_per_decade: u32) -> Option<Histogram> {
    let per = f64::from(bins_per_decade.max(1));
    let ok = || {
        samples
            .iter()
            .copied()
            .filter(|x| x.is_finite() && *x > 0.0)
    };
    let min = ok().fold(f64::INFINITY, f64::min);
    let max = ok().fold(0.0, f64::max);
    if !min.is_finite() {
        return None;
    }
    let first = (min.log10() * per).floor();
    let low = 10f64.powf(first / per);
    let bin = |x: f64| ((x.log10() * per).floor() - first).max(0.0) as usize;
    let mut counts = vec![0u64; bin(max) + 1];
    for x in ok() {
        counts[bin(x)] += 1;
    }
    Some(Histogram {
        unit,
        bins_per_decade: bins_per_decade.max(1),
        low,
        counts,
    })
}

/// Summarises one value per round (such as a rate or a slope).
pub fn summarize_per_round(values: &[f64], unit: Unit) -> Summary {
    let mut s = summarize(values, unit);
    s.rounds = values.to_vec();
    s
}

/// The least-squares slope of `y` over `x`. NaN with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return f64::NAN;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    if sxx == 0.0 { f64::NAN } else { sxy / sxx }
}

/// A small deterministic generator (SplitMix64) for resampling.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The percentile-bootstrap interval of the median of `xs` at `confidence`.
///
/// With one value the interval is that value; with none it is (NaN, NaN).
pub fn bootstrap_median_ci(xs: &[f64], confidence: f64) -> (f64, f64) {
    match xs.len() {
        0 => return (f64::NAN, f64::NAN),
        1 => return (xs[0], xs[0]),
        _ => {}
    }
    const RESAMPLES: usize = 4000;
    let mut rng = SplitMix64(0x5173_B055);
    let mut medians = Vec::with_capacity(RESAMPLES);
    let mut resample = vec![0.0; xs.len()];
    for _ in 0..RESAMPLES {
        for slot in resample.iter_mut() {
            *slot = xs[(rng.next() % xs.len() as u64) as usize];
        }
        medians.push(median(&resample));
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    (
        quantile_sorted(&medians, tail),
        quantile_sorted(&medians, 1.0 - tail),
    )
}

/// The percentile-bootstrap interval of the median of `xs` at `confidence`,
/// where `xs[i]` came from the pair of processes `who[i]` = (base child,
/// head child), children numbered from 0 on each side.
///
/// Each resample first draws the children, as many as there are on each
/// side, with replacement, then draws `xs.len()` values among those the
/// drawn children measured (a value weighted by how often its two children
/// were drawn). A child's own pace is then uncertainty, not signal: with
/// three children per side and one of them slow, about a quarter of the
/// resamples are mostly that child, and the interval spreads over both paces
/// instead of settling between them. With one child per side it is
/// [`bootstrap_median_ci`]'s interval (a different seed aside).
///
/// With one value the interval is that value; with none, or `who` of
/// another length, it is (NaN, NaN).
pub fn bootstrap_median_ci_by_child(
    xs: &[f64],
    who: &[(usize, usize)],
    confidence: f64,
) -> (f64, f64) {
    if xs.len() != who.len() {
        return (f64::NAN, f64::NAN);
    }
    match xs.len() {
        0 => return (f64::NAN, f64::NAN),
        1 => return (xs[0], xs[0]),
        _ => {}
    }
    const RESAMPLES: usize = 4000;
    // The values of each pair of children that met, in a fixed order.
    let mut by_cell: std::collections::BTreeMap<(usize, usize), Vec<f64>> =
        std::collections::BTreeMap::new();
    for (&x, &w) in xs.iter().zip(who) {
        by_cell.entry(w).or_default().push(x);
    }
    let cells: Vec<((usize, usize), Vec<f64>)> = by_cell.into_iter().collect();
    let sides = (
        who.iter().map(|w| w.0).max().unwrap_or(0) + 1,
        who.iter().map(|w| w.1).max().unwrap_or(0) + 1,
    );
    let mut rng = SplitMix64(0xC41D_5EED);
    let mut medians = Vec::with_capacity(RESAMPLES);
    let mut resample = vec![0.0; xs.len()];
    let (mut wb, mut wh) = (vec![0u64; sides.0], vec![0u64; sides.1]);
    let mut cumulative = vec![0u64; cells.len()];
    for _ in 0..RESAMPLES {
        // Draw children until some drawn base child met some drawn head
        // child (early in a run not every combination has met yet); after
        // 1,000 tries, fall back to every child once.
        let mut total = 0;
        for attempt in 0.. {
            wb.iter_mut().for_each(|w| *w = 0);
            wh.iter_mut().for_each(|w| *w = 0);
            if attempt < 1000 {
                for _ in 0..sides.0 {
                    wb[(rng.next() % sides.0 as u64) as usize] += 1;
                }
                for _ in 0..sides.1 {
                    wh[(rng.next() % sides.1 as u64) as usize] += 1;
                }
            } else {
                wb.iter_mut().for_each(|w| *w = 1);
                wh.iter_mut().for_each(|w| *w = 1);
            }
            // A cell weighs its drawn children times its pairs: each pair of
            // a drawn child is as likely as any other.
            total = 0;
            for (c, ((b, h), values)) in cumulative.iter_mut().zip(&cells) {
                total += wb[*b] * wh[*h] * values.len() as u64;
                *c = total;
            }
            if total > 0 {
                break;
            }
        }
        for slot in resample.iter_mut() {
            // A cell by weight (the first whose cumulative weight exceeds
            // r), then one of its pairs uniformly.
            let r = rng.next() % total;
            let values = &cells[cumulative.partition_point(|&c| c <= r)].1;
            *slot = values[(rng.next() % values.len() as u64) as usize];
        }
        medians.push(median_in_place(&mut resample));
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    (
        quantile_sorted(&medians, tail),
        quantile_sorted(&medians, 1.0 - tail),
    )
}

/// The percentile-bootstrap interval of `median(head) / median(base)`, each
/// resampled independently, at `confidence`.
///
/// (NaN, NaN) when either side is empty.
pub fn bootstrap_ratio_ci(base: &[f64], head: &[f64], confidence: f64) -> (f64, f64) {
    if base.is_empty() || head.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    const RESAMPLES: usize = 4000;
    let mut rng = SplitMix64(0x0c0f_fee5);
    let mut draw = |xs: &[f64], buf: &mut Vec<f64>| {
        buf.clear();
        buf.extend((0..xs.len()).map(|_| xs[(rng.next() % xs.len() as u64) as usize]));
        median(buf)
    };
    let (mut b, mut h) = (Vec::new(), Vec::new());
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| draw(head, &mut h) / draw(base, &mut b))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    (
        quantile_sorted(&ratios, tail),
        quantile_sorted(&ratios, 1.0 - tail),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_histogram_counts_every_sample_in_its_bin() {
        let xs = [
            1000.0,
            1100.0,
            2000.0,
            9999.0,
            10_000.0,
            250_000.0,
            -1.0,
            f64::NAN,
        ];
        let h = log_histogram(&xs, Unit::Nanoseconds, 10).expect("positive samples");
        assert_eq!(h.total(), 6, "non-positive and NaN samples are not counted");
        assert!((h.low - 1000.0).abs() < 1e-6, "{}", h.low);
        // 1000 and 1100 share the first bin [1000, 1259); 10,000 opens decade 2.
        assert_eq!(h.counts[0], 2);
        assert_eq!(h.counts[10], 1);
        for (i, c) in h.counts.iter().enumerate() {
            let inside = xs
                .iter()
                .filter(|x| **x >= h.edge(i) * (1.0 - 1e-9) && **x < h.edge(i + 1) * (1.0 - 1e-9))
                .count() as u64;
            assert_eq!(*c, inside, "bin {i} [{}, {})", h.edge(i), h.edge(i + 1));
        }
        assert!(log_histogram(&[0.0, -3.0], Unit::Nanoseconds, 10).is_none());
    }

    #[test]
    fn median_and_quantiles_of_known_samples() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0], Unit::Nanoseconds);
        assert_eq!(s.n, 5);
        assert_eq!(s.median, 3.0);
        assert_eq!(s.p25, 2.0);
        assert_eq!(s.p75, 4.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 5.0);
        assert_eq!(s.mean, 3.0);
        assert_eq!(s.mad, 1.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }

    #[test]
    fn one_far_sample_is_counted_as_an_outlier_but_kept() {
        let mut xs: Vec<f64> = (0..54).map(|i| 10.0 + f64::from(i % 5) * 0.1).collect();
        xs.push(1000.0);
        let s = summarize(&xs, Unit::Nanoseconds);
        assert_eq!(s.outliers, 1);
        assert_eq!(s.max, 1000.0);
        assert_eq!(s.n, 55);
    }

    #[test]
    fn empty_samples_summarise_to_nan_not_a_panic() {
        let s = summarize(&[], Unit::Bytes);
        assert_eq!(s.n, 0);
        assert!(s.median.is_nan());
    }

    #[test]
    fn rounds_keep_each_rounds_median() {
        let s = summarize_rounds(
            &[vec![1.0, 2.0, 3.0], vec![10.0, 20.0, 30.0]],
            Unit::Nanoseconds,
        );
        assert_eq!(s.rounds, vec![2.0, 20.0]);
        assert_eq!(s.n, 6);
    }

    #[test]
    fn slope_of_a_line_is_exact() {
        let pts: Vec<(f64, f64)> = [1.0, 10.0, 100.0, 1000.0]
            .iter()
            .map(|&n| (n, 20e6 + 12_288.0 * n))
            .collect();
        assert!((slope(&pts) - 12_288.0).abs() < 1e-6);
        assert!(slope(&[(1.0, 2.0)]).is_nan());
        assert!(slope(&[(1.0, 2.0), (1.0, 3.0)]).is_nan());
    }

    #[test]
    fn ratio_interval_brackets_the_ratio_of_medians() {
        let base = [100.0, 101.0, 99.0, 100.5, 99.5];
        let head = [130.0, 131.0, 129.0, 130.5, 129.5];
        let (lo, hi) = bootstrap_ratio_ci(&base, &head, 0.95);
        assert!(lo <= 1.30 && 1.30 <= hi, "({lo}, {hi})");
        assert!(lo > 1.25 && hi < 1.35, "({lo}, {hi})");
        assert!(bootstrap_ratio_ci(&[], &head, 0.95).0.is_nan());
    }

    #[test]
    fn bootstrap_interval_contains_the_median_and_is_deterministic() {
        let xs = [9.8, 10.1, 10.0, 10.3, 9.9, 10.2, 10.0];
        let (lo, hi) = bootstrap_median_ci(&xs, 0.95);
        assert!(lo <= 10.0 && 10.0 <= hi, "({lo}, {hi})");
        assert!(lo >= 9.8 && hi <= 10.3);
        assert_eq!((lo, hi), bootstrap_median_ci(&xs, 0.95));
        assert_eq!(bootstrap_median_ci(&[4.0], 0.95), (4.0, 4.0));
        assert!(bootstrap_median_ci(&[], 0.95).0.is_nan());
        assert_eq!(bootstrap_median_ci(&[3.0, 3.0, 3.0], 0.95), (3.0, 3.0));
    }

    /// `n` pairs rotated through 3 base and 3 head children as `siteboss ab`
    /// does, each ratio `pace(head child) * (1 + tiny jitter)`.
    fn rotated(n: usize, pace: impl Fn(usize, usize) -> f64) -> (Vec<f64>, Vec<(usize, usize)>) {
        let k = 3;
        (0..n)
            .map(|p| {
                let who = (p % k, (p + p / k) % k);
                let jitter = 1.0 + ((p * 7919) % 11) as f64 * 1e-4;
                (pace(who.0, who.1) * jitter, who)
            })
            .unzip()
    }

    #[test]
    fn one_slow_child_widens_the_interval_by_child_instead_of_moving_it() {
        // The same build on both sides; head child 2 runs at 0.75 of the
        // others' pace (where its memory landed), as one CI runner's 2-thread
        // throughput did: two thirds of the pairs read 1.0, one third 0.75.
        let (xs, who) = rotated(60, |_, h| if h == 2 { 0.75 } else { 1.0 });
        // Pairs alone call it settled: whichever pace holds most pairs
        // decides the verdict.
        let (plo, phi) = bootstrap_median_ci(&xs, 0.95);
        assert!(phi - plo < 0.01, "({plo}, {phi})");
        // By child, the interval spans both paces.
        let (lo, hi) = bootstrap_median_ci_by_child(&xs, &who, 0.95);
        assert!(lo <= 0.76 && hi >= 1.0, "({lo}, {hi})");
        assert_eq!((lo, hi), bootstrap_median_ci_by_child(&xs, &who, 0.95));
    }

    #[test]
    fn two_children_with_a_pace_of_their_own_do_not_read_as_a_change() {
        // The same build on both sides; base children 0 and 1 run 20%
        // faster than base child 2 (2-thread throughput, where a ratio
        // below 1 is worse): 6 of the 9 combinations read 0.83, so the
        // median pair does, as on the CI runner (0.83, CI 0.68-0.91).
        let (xs, who) = rotated(90, |b, _| if b < 2 { 1.0 / 1.2 } else { 1.0 });
        let (_, phi) = bootstrap_median_ci(&xs, 0.95);
        assert!(phi < 0.95, "pairs alone: a regression at 5% ({phi})");
        let (lo, hi) = bootstrap_median_ci_by_child(&xs, &who, 0.95);
        assert!(lo < 0.84 && hi >= 0.95, "by child: undecided ({lo}, {hi})");
    }

    #[test]
    fn the_median_is_the_sorted_middle() {
        for xs in [
            vec![3.0],
            vec![2.0, 1.0],
            vec![5.0, 1.0, 4.0, 2.0, 3.0],
            vec![9.0, 1.0, 8.0, 2.0, 7.0, 3.0],
            vec![1.0, 1.0, 2.0, 2.0],
        ] {
            // Against the sorted middle, as `quantile_sorted` reads it.
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            assert_eq!(median(&xs), quantile_sorted(&sorted, 0.5), "{xs:?}");
        }
        assert!(median_in_place(&mut []).is_nan());
    }

    #[test]
    fn a_change_every_child_shows_stays_settled_by_child() {
        // A real 10% change: every pair reads 1.10 with +-5% noise of its
        // own, and the children's paces differ by up to 1%.
        let (xs, who) = rotated(90, |b, h| 1.10 * (1.0 + (b + 2 * h) as f64 * 0.002));
        let xs: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| x * (1.0 + (((i * 37) % 21) as f64 - 10.0) * 0.005))
            .collect();
        let (lo, hi) = bootstrap_median_ci_by_child(&xs, &who, 0.95);
        let (plo, phi) = bootstrap_median_ci(&xs, 0.95);
        assert!(lo > 1.05 && hi < 1.15, "({lo}, {hi})");
        // Children that agree cost little width: at most 2.5x the pairs'.
        assert!(
            hi - lo <= 2.5 * (phi - plo),
            "({lo}, {hi}) against ({plo}, {phi})"
        );
        // One child per side is the plain pair bootstrap's case.
        let one: Vec<_> = xs.iter().map(|_| (0, 0)).collect();
        let (lo1, hi1) = bootstrap_median_ci_by_child(&xs, &one, 0.95);
        let width = phi - plo;
        assert!(
            (lo1 - plo).abs() < 0.2 * width && (hi1 - phi).abs() < 0.2 * width,
            "({lo1}, {hi1}) against ({plo}, {phi})"
        );
        // Early in a run (fewer pairs than combinations) it still answers.
        let (lo2, hi2) = bootstrap_median_ci_by_child(&xs[..4], &who[..4], 0.95);
        assert!(lo2.is_finite() && lo2 <= hi2);
        assert_eq!(
            bootstrap_median_ci_by_child(&[2.0], &[(0, 0)], 0.95),
            (2.0, 2.0)
        );
        assert!(bootstrap_median_ci_by_child(&[], &[], 0.95).0.is_nan());
        assert!(
            bootstrap_median_ci_by_child(&[1.0, 2.0], &[(0, 0)], 0.95)
                .0
                .is_nan()
        );
    }
}
