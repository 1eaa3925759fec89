//! Charts as data: what each chart of a report shows, built from a result or
//! a comparison. Renderers decide how to draw them: `svg` draws every kind
//! with plotters for the HTML page; [`mermaid`] writes the kinds a job
//! summary can show (memory against N, ratios) as Mermaid `xychart-beta`.

use super::cited::{self, TOTAL_MEMORY};
use crate::model::{
    Allocator, BenchmarkResult, ColdStartResult, ConfigurationResult, Direction, FillPoint,
    Histogram, Limit, Metric, Tolerance, Verdict,
};

/// One chart: a title, a caption saying how to read it, and its data.
#[derive(Debug, Clone)]
pub struct Chart {
    /// The heading drawn above it.
    pub title: String,
    /// One or two sentences under it: what is plotted and where it comes from.
    pub caption: String,
    /// The data.
    pub kind: ChartKind,
}

/// The kinds of chart a report draws.
#[derive(Debug, Clone)]
pub enum ChartKind {
    /// Latency distributions as empirical CDFs (log time axis), with the
    /// median and p99 of each series marked.
    Latency(Vec<LatencySeries>),
    /// Total resident memory against live instances, log–log; `cited` points
    /// are the page's, drawn apart and labelled as cited.
    MemoryVsN {
        /// Measured series: (label, [(N, bytes)]).
        measured: Vec<Series>,
        /// Cited series: (label, [(N, bytes)]).
        cited: Vec<Series>,
    },
    /// Live instances and resident memory against time while the
    /// concurrency phase filled, up to its stop.
    Fill(Vec<FillSeries>),
    /// Cold start's parts as stacked horizontal bars (nanoseconds).
    Stacked(Vec<StackedBar>),
    /// Operations per second against thread count.
    Throughput(Vec<Series>),
    /// Head/base ratios with their intervals against the tolerance band.
    Ratios(Vec<RatioBar>),
}

/// A named line of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend entry.
    pub label: String,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// One latency distribution.
#[derive(Debug, Clone)]
pub struct LatencySeries {
    /// The legend entry.
    pub label: String,
    /// Every sample, binned.
    pub histogram: Histogram,
    /// The median of the samples (from the summary, not the bins).
    pub median: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// One profile's fill of the concurrency phase.
#[derive(Debug, Clone)]
pub struct FillSeries {
    /// The profile.
    pub label: String,
    /// The readings, the stop last.
    pub points: Vec<FillPoint>,
    /// The limit that ended it.
    pub limit: Limit,
}

/// One stacked bar.
#[derive(Debug, Clone)]
pub struct StackedBar {
    /// The bar's label.
    pub label: String,
    /// Its parts, in order: (part name, value).
    pub parts: Vec<(String, f64)>,
}

/// One metric's head/base ratio.
#[derive(Debug, Clone)]
pub struct RatioBar {
    /// Profile and metric.
    pub label: String,
    /// head / base.
    pub ratio: f64,
    /// Its 95% interval.
    pub ci: (f64, f64),
    /// The ratios within tolerance: (1 - relative, 1 + relative).
    pub band: (f64, f64),
    /// Which side of the band is a regression.
    pub direction: Direction,
    /// The verdict, in a word.
    pub verdict: String,
}

impl RatioBar {
    /// A bar for one judged row.
    pub fn new(
        allocator: Allocator,
        metric: Metric,
        ratio: f64,
        ci: (f64, f64),
        tolerance: &Tolerance,
        verdict: &Verdict,
    ) -> Self {
        RatioBar {
            label: format!("{allocator} {metric}"),
            ratio,
            ci,
            band: (1.0 - tolerance.relative, 1.0 + tolerance.relative),
            direction: metric.direction(),
            verdict: match verdict {
                Verdict::Pass => "pass",
                Verdict::Regression => "regression",
                Verdict::Improvement => "improvement",
                Verdict::Invalid { .. } => "cannot judge",
            }
            .into(),
        }
    }

    /// The ratio past which this metric regresses.
    pub fn limit(&self) -> f64 {
        match self.direction {
            Direction::LowerIsBetter => self.band.1,
            Direction::HigherIsBetter => self.band.0,
        }
    }
}

fn columns(r: &BenchmarkResult) -> Vec<&ConfigurationResult> {
    Allocator::ALL
        .iter()
        .filter_map(|a| r.configurations.iter().find(|c| c.allocator == *a))
        .collect()
}

/// The latency chart of warm start (`lifecycle = false`) or of the whole
/// lifecycle, one series per profile; `None` when neither was measured.
pub fn latency(r: &BenchmarkResult, lifecycle: bool) -> Option<Chart> {
    let series: Vec<LatencySeries> = columns(r)
        .into_iter()
        .filter_map(|c| {
            let (h, s) = if lifecycle {
                let l = c.lifecycle.as_ref()?;
                (l.histogram.clone()?, &l.total)
            } else {
                (c.warm_start_histogram.clone()?, c.warm_start.as_ref()?)
            };
            Some(LatencySeries {
                label: c.allocator.to_string(),
                histogram: h,
                median: s.median,
                p99: s.p99,
            })
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let (title, what) = if lifecycle {
        (
            "Request lifecycle latency (instantiate + run + drop)",
            "lifecycle",
        )
    } else {
        ("Warm start latency (instantiate only)", "warm-start")
    };
    Some(Chart {
        title: title.into(),
        caption: format!(
            "Share of {what} samples at or below each time (every sample of every round, binned {} per decade); ○ marks the median, × the 99th percentile. Log time axis.",
            crate::measure::warm::HISTOGRAM_BINS_PER_DECADE
        ),
        kind: ChartKind::Latency(series),
    })
}

/// Reads a cited size such as `~22 MB` or `~3.1 GB` as bytes (binary
/// multiples, as this report prints sizes). `None` for anything else.
pub fn cited_bytes(text: &str) -> Option<f64> {
    let t = text.trim().trim_start_matches('~').trim();
    let (num, unit) = t.split_once(' ')?;
    let v: f64 = num.replace(',', "").parse().ok()?;
    let mult = match unit.trim() {
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(v * mult)
}

/// Total memory against N, measured per profile, with the page's cited
/// WASM and Docker totals; `None` when the memory phase did not run.
pub fn memory_vs_n(r: &BenchmarkResult) -> Option<Chart> {
    let measured: Vec<Series> = columns(r)
        .into_iter()
        .filter_map(|c| {
            let m = c.memory.as_ref()?;
            Some(Series {
                label: format!("{} (measured)", c.allocator),
                points: m
                    .points
                    .iter()
                    .map(|p| (p.instances as f64, p.rss.median))
                    .filter(|(n, b)| *n > 0.0 && b.is_finite() && *b > 0.0)
                    .collect(),
            })
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if measured.is_empty() {
        return None;
    }
    let cited_series =
        |label: &str, pick: fn(&(usize, cited::Cited, cited::Cited)) -> cited::Cited| Series {
            label: label.to_owned(),
            points: TOTAL_MEMORY
                .iter()
                .filter_map(|row| Some((row.0 as f64, cited_bytes(pick(row).text)?)))
                .collect(),
        };
    Some(Chart {
        title: "Total memory for N live instances".into(),
        caption: format!(
            "Resident memory of a fresh process holding N live instances that have run (median over processes), log–log. Hollow triangles are the page's figures, cited, not measured here [1][2]; the page measured a {} component, this run a {}-byte one. Cited \"MB\" read as MiB.",
            cited::PAGE_COMPONENT_BYTES.text,
            super::format::count(r.component.bytes)
        ),
        kind: ChartKind::MemoryVsN {
            measured,
            cited: vec![
                cited_series("page's WASM (cited)", |r| r.1),
                cited_series("Docker (cited)", |r| r.2),
            ],
        },
    })
}

/// The concurrency phase's fill, per profile; `None` without a trace.
pub fn fill(r: &BenchmarkResult) -> Option<Chart> {
    let series: Vec<FillSeries> = columns(r)
        .into_iter()
        .filter_map(|c| {
            let d = c.density.as_ref()?;
            (!d.trace.is_empty()).then(|| FillSeries {
                label: c.allocator.to_string(),
                points: d.trace.clone(),
                limit: d.limit,
            })
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let stops = series
        .iter()
        .map(|s| {
            format!(
                "{} stopped at {} instances by the {}",
                s.label,
                super::format::count(s.points.last().map_or(0, |p| p.instances)),
                s.limit.name()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(Chart {
        title: "Concurrency phase: filling up to the limit".into(),
        caption: format!(
            "Live instances (solid, left axis) and the process's resident memory (dashed, right axis) against time while instances were created; the last point is the stop. {stops}."
        ),
        kind: ChartKind::Fill(series),
    })
}

fn cold_bar(label: String, s: &ColdStartResult, load: &str) -> StackedBar {
    let mut parts = vec![
        ("engine".to_owned(), s.engine.median),
        (load.to_owned(), s.load.median),
        ("first instantiate".to_owned(), s.instantiate.median),
    ];
    if let Some(run) = &s.run {
        parts.push(("first run".into(), run.median));
    }
    // What the whole process adds around the in-process part: exec, dynamic
    // loading, runtime start-up and exit.
    parts.push((
        "process spawn + exit".into(),
        (s.process.median - s.in_process.median).max(0.0),
    ));
    StackedBar { label, parts }
}

/// Cold start's parts per profile and source; `None` when not measured.
pub fn cold_start(r: &BenchmarkResult) -> Option<Chart> {
    let mut bars = Vec::new();
    for c in columns(r) {
        if let Some(s) = &c.cold_start {
            bars.push(cold_bar(
                format!("{} from .wasm", c.allocator),
                s,
                "compile + link",
            ));
        }
        if let Some(s) = &c.cold_start_precompiled {
            bars.push(cold_bar(
                format!("{} from artifact", c.allocator),
                s,
                "deserialize + link",
            ));
        }
    }
    if bars.is_empty() {
        return None;
    }
    Some(Chart {
        title: "Where cold start's time goes".into(),
        caption: "Median of each part over fresh processes, stacked; \"process spawn + exit\" is the whole process's wall time less the in-process part. Medians of parts need not add up to the median of the whole.".into(),
        kind: ChartKind::Stacked(bars),
    })
}

/// Throughput against thread count; `None` when not measured.
pub fn throughput(r: &BenchmarkResult) -> Option<Chart> {
    let mut series = Vec::new();
    for c in columns(r) {
        if c.throughput.is_empty() {
            continue;
        }
        let lifecycles: Vec<(f64, f64)> = c
            .throughput
            .iter()
            .filter_map(|t| Some((t.threads as f64, t.lifecycles.as_ref()?.median)))
            .collect();
        if !lifecycles.is_empty() {
            series.push(Series {
                label: format!("{} lifecycles/s", c.allocator),
                points: lifecycles,
            });
        }
        series.push(Series {
            label: format!("{} instantiations/s", c.allocator),
            points: c
                .throughput
                .iter()
                .map(|t| (t.threads as f64, t.instantiations.median))
                .collect(),
        });
    }
    if series.is_empty() {
        return None;
    }
    Some(Chart {
        title: "Throughput against threads".into(),
        caption: format!(
            "Completed operations per second, all threads together (median over rounds), on {} cores. The page cites {} on its 20-core host [1].",
            r.runner.cores,
            cited::HEADLINE[3].page_wasm.text
        ),
        kind: ChartKind::Throughput(series),
    })
}

/// Every chart of a benchmark page, in report order.
pub fn benchmark_charts(r: &BenchmarkResult) -> Vec<Chart> {
    [
        latency(r, false),
        latency(r, true),
        memory_vs_n(r),
        fill(r),
        cold_start(r),
        throughput(r),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The ratio chart of a comparison.
pub fn ratios(title: &str, bars: Vec<RatioBar>) -> Chart {
    Chart {
        title: title.into(),
        caption: "Each metric's head/base ratio (dot) with its 95% interval (bar). The shaded band is the tolerance; the red line is the side past which the metric regresses (above 1 for times and memory, below 1 for rates).".into(),
        kind: ChartKind::Ratios(bars),
    }
}

/// `chart` as a Mermaid `xychart-beta` block for a GitHub job summary, for
/// the kinds that read well without a legend (memory against N, ratios);
/// `None` for the others.
pub fn mermaid(chart: &Chart) -> Option<String> {
    let num = |v: f64| format!("{v:.3}");
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "'"));
    match &chart.kind {
        ChartKind::MemoryVsN { measured, cited } => {
            let mut ns: Vec<u64> = measured
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.0 as u64))
                .collect();
            ns.sort_unstable();
            ns.dedup();
            let lines: Vec<(&str, Vec<f64>)> = measured
                .iter()
                .chain(cited.iter().take(1))
                .map(|s| {
                    let ys = ns
                        .iter()
                        .map(|n| {
                            s.points
                                .iter()
                                .find(|p| p.0 as u64 == *n)
                                .map_or(0.0, |p| p.1 / (1024.0 * 1024.0))
                        })
                        .collect();
                    (s.label.as_str(), ys)
                })
                .collect();
            let top = lines
                .iter()
                .flat_map(|l| l.1.iter().copied())
                .fold(0.0, f64::max);
            let mut out = format!(
                "```mermaid\nxychart-beta\n    title {}\n    x-axis \"live instances (N)\" [{}]\n    y-axis \"total resident memory (MiB)\" 0 --> {}\n",
                quote(&chart.title),
                ns.iter()
                    .map(|n| quote(&n.to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                num((top * 1.1).max(1.0))
            );
            for (_, ys) in &lines {
                out.push_str(&format!(
                    "    line [{}]\n",
                    ys.iter().map(|v| num(*v)).collect::<Vec<_>>().join(", ")
                ));
            }
            out.push_str("```\n\n");
            out.push_str(&format!(
                "Lines, in drawing order: {}. A 0 is a point not measured or not cited.\n",
                lines.iter().map(|l| l.0).collect::<Vec<_>>().join(", ")
            ));
            Some(out)
        }
        ChartKind::Ratios(bars) => {
            let bars: Vec<&RatioBar> = bars.iter().filter(|b| b.ratio.is_finite()).collect();
            if bars.is_empty() {
                return None;
            }
            let top = bars
                .iter()
                .flat_map(|b| [b.ratio, b.limit(), 1.0])
                .fold(0.0, f64::max);
            let mut out = format!(
                "```mermaid\nxychart-beta\n    title {}\n    x-axis [{}]\n    y-axis \"head / base\" 0 --> {}\n    bar [{}]\n    line [{}]\n```\n\n",
                quote(&chart.title),
                bars.iter()
                    .map(|b| quote(&b.label))
                    .collect::<Vec<_>>()
                    .join(", "),
                num(top * 1.1),
                bars.iter()
                    .map(|b| num(b.ratio))
                    .collect::<Vec<_>>()
                    .join(", "),
                bars.iter()
                    .map(|b| num(b.limit()))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            out.push_str("Bars: head/base ratio of each metric; line: the ratio past which it regresses (above it for times and memory, below it for rates). Rows that could not be judged are left out here and shown in the table.\n");
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cited_total_reads_as_bytes() {
        for row in TOTAL_MEMORY {
            for c in [row.1, row.2] {
                let b = cited_bytes(c.text).unwrap_or_else(|| panic!("{}", c.text));
                assert!(b > 1e6, "{} -> {b}", c.text);
            }
        }
        assert_eq!(cited_bytes("~22 MB"), Some(22.0 * 1024.0 * 1024.0));
        assert_eq!(cited_bytes("elastic"), None);
    }

    #[test]
    fn mermaid_ratio_chart_leaves_out_what_cannot_be_judged() {
        let tol = Tolerance {
            metric: Metric::WarmStart,
            direction: Direction::LowerIsBetter,
            relative: 0.1,
            absolute_floor: None,
            paired_relative: None,
            enforce: true,
        };
        let bars = vec![
            RatioBar::new(
                Allocator::Pooling,
                Metric::WarmStart,
                1.02,
                (0.99, 1.05),
                &tol,
                &Verdict::Pass,
            ),
            RatioBar::new(
                Allocator::Pooling,
                Metric::Throughput,
                f64::NAN,
                (f64::NAN, f64::NAN),
                &tol,
                &Verdict::Invalid { reason: "x".into() },
            ),
        ];
        let md = mermaid(&ratios("r", bars)).expect("one finite ratio");
        assert!(md.starts_with("```mermaid\nxychart-beta\n"), "{md}");
        assert!(md.contains("bar [1.020]"), "{md}");
        assert!(!md.contains("NaN"), "{md}");
        // Throughput regresses below 1: its limit is 1 - relative.
        let t = RatioBar::new(
            Allocator::Pooling,
            Metric::Throughput,
            1.0,
            (1.0, 1.0),
            &tol,
            &Verdict::Pass,
        );
        assert!((t.limit() - 0.9).abs() < 1e-12);
    }
}
