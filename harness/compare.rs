//! `siteboss compare`: result files of a base and a head build, judged metric
//! by metric with the gate's tolerance file and the gate's [`decide`].
//!
//! Files are given as `BASE HEAD [BASE HEAD ...]`: runs interleaved on one
//! machine, so that each head run sits next to a base run. With three or more
//! pairs every pair gives one head/base ratio and the verdict is on the median
//! of those ratios (drift over the whole session cancels within each pair).
//! With fewer pairs the per-round medians inside the files are resampled.

use crate::judge::{CONFIDENCE, MIN_ROUNDS, decide};
use crate::model::{
    Allocator, BenchmarkResult, ConfigurationResult, Kind, Metric, OLDEST_SCHEMA_VERSION,
    SCHEMA_NAME, SCHEMA_VERSION, Status, Summary, Tolerance, Verdict,
};
use crate::report::format::value;
use crate::stats::{bootstrap_median_ci, bootstrap_ratio_ci, median};
use crate::tolerance::Tolerances;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `schema` field of `siteboss compare --json`.
pub const COMPARE_SCHEMA: &str = "siteboss-compare";

/// Why the inputs cannot be compared. Each is one line naming the file.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// Not an even number of files, or fewer than two.
    #[error("give result files as BASE HEAD pairs (BASE HEAD [BASE HEAD ...]); got {0} file(s)")]
    NotPairs(usize),
    /// A file does not exist.
    #[error("{0}: no such file")]
    Missing(PathBuf),
    /// A file cannot be read.
    #[error("{path}: cannot be read: {cause}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason. Not a `source`: the message already
        /// says it, and `{:#}` would print it twice.
        cause: std::io::Error,
    },
    /// A file is not a result file.
    #[error("{path}: is not a siteboss benchmark result: {problem}")]
    NotResult {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file has another schema version.
    #[error(
        "{path}: has schema_version {found}; this siteboss reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}"
    )]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A file is partial.
    #[error("{path}: is partial ({reason}); compare complete runs only")]
    Partial {
        /// The file.
        path: PathBuf,
        /// Why it is partial.
        reason: String,
    },
    /// Two files measured different components.
    #[error(
        "{path}: measured component {found}, but {first} measured {expected}; compare runs of one component"
    )]
    DifferentComponent {
        /// The file that differs.
        path: PathBuf,
        /// The first file.
        first: PathBuf,
        /// The first file's component.
        expected: String,
        /// This file's component.
        found: String,
    },
    /// Two files used different settings or allocators.
    #[error(
        "{path}: was run with different settings from {first} ({what}); compare runs made with the same options"
    )]
    DifferentSettings {
        /// The file that differs.
        path: PathBuf,
        /// The first file.
        first: PathBuf,
        /// What differs.
        what: String,
    },
}

/// One metric of one allocator, base against head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The allocator.
    pub allocator: Allocator,
    /// The metric.
    pub metric: Metric,
    /// The base median (over pairs, or over the base files' rounds).
    pub base: f64,
    /// The head median.
    pub head: f64,
    /// head / base.
    pub ratio: f64,
    /// Its 95% confidence interval.
    pub ratio_ci: (f64, f64),
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// The verdict.
    pub verdict: Verdict,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always `siteboss-compare`.
    pub schema: String,
    /// Always 1.
    pub schema_version: u32,
    /// How many BASE HEAD pairs.
    pub pairs: usize,
    /// Whether ratios were taken pair by pair (3 or more pairs).
    pub paired: bool,
    /// The component compared.
    pub component: String,
    /// One row per allocator and metric present in every file.
    pub rows: Vec<Row>,
    /// Things a reader should know (configuration differences, metrics left out).
    pub notes: Vec<String>,
}

impl Report {
    /// Rows whose enforced regression should fail a check.
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression && r.tolerance.enforce)
    }

    /// Rows that could not be judged (a metric missing on one side, a value
    /// that is not a number, too few rounds): they fail a check too.
    pub fn unjudged(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Invalid { .. }))
    }

    /// Whether every row was judged and none regressed.
    pub fn passed(&self) -> bool {
        self.regressions().next().is_none() && self.unjudged().next().is_none()
    }

    /// The one-line conclusion, from the judged rows only.
    pub fn summary(&self) -> String {
        let regressions = self.regressions().count();
        let unjudged = self.unjudged().count();
        match (regressions, unjudged, self.rows.len()) {
            (_, _, 0) => "Nothing to compare: no metric was measured in both runs.".to_owned(),
            (0, 0, n) => format!("No regression in {n} judged metric(s)."),
            (0, u, n) => format!(
                "{u} of {n} metric(s) could not be judged (see their rows); the rest show no regression."
            ),
            (r, 0, _) => format!("{r} regression(s) beyond tolerance."),
            (r, u, _) => {
                format!("{r} regression(s) beyond tolerance; {u} metric(s) could not be judged.")
            }
        }
    }
}

/// Reads the files and checks that they can be compared.
///
/// # Errors
///
/// A [`CompareError`] naming the file for an odd count, a missing, unreadable,
/// non-result, other-version or partial file, or files of different
/// components, settings or allocators.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Vec<BenchmarkResult>>, CompareError> {
    if paths.len() < 2 || !paths.len().is_multiple_of(2) {
        return Err(CompareError::NotPairs(paths.len()));
    }
    let files = paths
        .iter()
        .map(|p| parse_file(p))
        .collect::<Result<Vec<_>, _>>()?;
    // One group per component of the first file, in its order; every other
    // file must hold the same components.
    let mut groups = Vec::new();
    for i in 0..files[0].len() {
        let mut group: Vec<BenchmarkResult> = Vec::with_capacity(files.len());
        for (path, results) in paths.iter().zip(&files) {
            let r = if results.len() == files[0].len() {
                results[i].clone()
            } else {
                return Err(CompareError::NotResult {
                    path: path.clone(),
                    problem: format!(
                        "it holds {} component result(s) where {} holds {}; measure both with the same components",
                        results.len(),
                        paths[0].display(),
                        files[0].len()
                    ),
                });
            };
            check_same(&group, &r, path, &paths[0])?;
            group.push(r);
        }
        groups.push(group);
    }
    Ok(groups)
}

/// The results in one file: one object, or an array of them (one per
/// component, as `siteboss benchmark` writes for several components).
fn parse_file(path: &Path) -> Result<Vec<BenchmarkResult>, CompareError> {
    let bytes = std::fs::read(path).map_err(|cause| match cause.kind() {
        std::io::ErrorKind::NotFound => CompareError::Missing(path.to_path_buf()),
        _ => CompareError::Unreadable {
            path: path.to_path_buf(),
            cause,
        },
    })?;
    let raw: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CompareError::NotResult {
            path: path.to_path_buf(),
            problem: format!("not JSON ({e})"),
        })?;
    let items = match raw {
        serde_json::Value::Array(items) if !items.is_empty() => items,
        serde_json::Value::Array(_) => {
            return Err(CompareError::NotResult {
                path: path.to_path_buf(),
                problem: "an empty array".into(),
            });
        }
        one => vec![one],
    };
    items
        .into_iter()
        .map(|raw| parse_result(path, raw))
        .collect()
}

fn parse_result(path: &Path, raw: serde_json::Value) -> Result<BenchmarkResult, CompareError> {
    let path = path.to_path_buf();
    if raw.get("schema").and_then(|s| s.as_str()) != Some(SCHEMA_NAME) {
        return Err(CompareError::NotResult {
            path,
            problem: format!("its \"schema\" is not \"{SCHEMA_NAME}\""),
        });
    }
    let version = raw
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if !(u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version) {
        return Err(CompareError::SchemaVersion {
            path,
            found: version as u32,
        });
    }
    let r: BenchmarkResult = serde_json::from_value(raw).map_err(|e| CompareError::NotResult {
        path: path.clone(),
        problem: e.to_string(),
    })?;
    if r.status == Status::Partial {
        return Err(CompareError::Partial {
            path,
            reason: r
                .status_reason
                .clone()
                .unwrap_or_else(|| "not finished".into()),
        });
    }
    Ok(r)
}

/// Checks that `r` (from `path`) measured what the group's first result did.
fn check_same(
    group: &[BenchmarkResult],
    r: &BenchmarkResult,
    path: &Path,
    first_path: &Path,
) -> Result<(), CompareError> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    if r.component.fnv1a64 != first.component.fnv1a64 {
        return Err(CompareError::DifferentComponent {
            path: path.to_path_buf(),
            first: first_path.to_path_buf(),
            expected: format!("{} ({})", first.component.name, first.component.fnv1a64),
            found: format!("{} ({})", r.component.name, r.component.fnv1a64),
        });
    }
    // The whole-run time target is not a sample count, and a result from
    // before budgets were recorded has none: neither makes two runs
    // incomparable.
    let comparable = |a: &crate::model::Settings, other: &crate::model::Settings| {
        let mut a = a.clone();
        match (a.budget_seconds.as_mut(), &other.budget_seconds) {
            (Some(b), Some(_)) => {
                b.remove(crate::report::RUN_TARGET_KEY);
            }
            _ => a.budget_seconds = None,
        }
        a
    };
    let what =
        if comparable(&r.settings, &first.settings) != comparable(&first.settings, &r.settings) {
            Some(
                if r.settings.engine_per_thread != first.settings.engine_per_thread {
                    "--engine-per-thread in one and not the other"
                } else {
                    "sample counts or limits, such as --quick"
                }
                .to_owned(),
            )
        } else if allocators(r) != allocators(first) {
            Some(format!(
                "allocators {:?} vs {:?}",
                allocators(r),
                allocators(first)
            ))
        } else {
            None
        };
    match what {
        Some(what) => Err(CompareError::DifferentSettings {
            path: path.to_path_buf(),
            first: first_path.to_path_buf(),
            what,
        }),
        None => Ok(()),
    }
}

fn allocators(r: &BenchmarkResult) -> Vec<Allocator> {
    r.configurations.iter().map(|c| c.allocator).collect()
}

/// The summary of `metric` in one configuration, if measured.
pub fn metric_summary(c: &ConfigurationResult, metric: Metric) -> Option<&Summary> {
    c.summary(metric)
}

/// Compares loaded results (`BASE HEAD` pairs, in order). Pure.
pub fn compare(results: &[BenchmarkResult], tolerances: &Tolerances) -> Report {
    let pairs = results.len() / 2;
    let paired = pairs >= MIN_ROUNDS;
    let (bases, heads): (Vec<_>, Vec<_>) = results.chunks(2).map(|p| (&p[0], &p[1])).unzip();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for allocator in Allocator::ALL {
        let config = |r: &BenchmarkResult| {
            r.configurations
                .iter()
                .find(|c| c.allocator == allocator)
                .cloned()
        };
        let (Some(b0), Some(h0)) = (config(bases[0]), config(heads[0])) else {
            continue;
        };
        if b0.config != h0.config {
            notes.push(format!(
                "{allocator}: the head's Wasmtime configuration differs from the base's"
            ));
        }
        for metric in Metric::ALL {
            let Some(tolerance) = tolerances.get(metric).copied() else {
                continue;
            };
            let take = |rs: &[&BenchmarkResult]| -> Option<Vec<Summary>> {
                rs.iter()
                    .map(|r| config(r).and_then(|c| metric_summary(&c, metric).cloned()))
                    .collect()
            };
            let count = |rs: &[&BenchmarkResult]| {
                rs.iter()
                    .filter(|r| config(r).is_some_and(|c| metric_summary(&c, metric).is_some()))
                    .count()
            };
            match (take(&bases), take(&heads)) {
                (Some(b), Some(h)) => rows.push(row(allocator, metric, &b, &h, paired, tolerance)),
                // Measured nowhere: not part of this comparison.
                _ if count(&bases) + count(&heads) == 0 => {}
                // Measured on one side, or in some files only: a metric that
                // cannot be judged is a row that says so, never left out.
                _ => rows.push(Row {
                    allocator,
                    metric,
                    base: f64::NAN,
                    head: f64::NAN,
                    ratio: f64::NAN,
                    ratio_ci: (f64::NAN, f64::NAN),
                    tolerance,
                    verdict: Verdict::Invalid {
                        reason: format!(
                            "measured in {} of {} base file(s) and {} of {} head file(s)",
                            count(&bases),
                            bases.len(),
                            count(&heads),
                            heads.len()
                        ),
                    },
                }),
            }
        }
    }
    Report {
        schema: COMPARE_SCHEMA.into(),
        schema_version: 1,
        pairs,
        paired,
        component: results
            .first()
            .map(|r| r.component.name.clone())
            .unwrap_or_default(),
        rows,
        notes,
    }
}

fn row(
    allocator: Allocator,
    metric: Metric,
    base: &[Summary],
    head: &[Summary],
    paired: bool,
    tolerance: Tolerance,
) -> Row {
    let medians = |s: &[Summary]| s.iter().map(|x| x.median).collect::<Vec<_>>();
    let (base_m, head_m) = (median(&medians(base)), median(&medians(head)));
    let (ratio, ratio_ci, n) = if paired {
        let ratios: Vec<f64> = base
            .iter()
            .zip(head)
            .map(|(b, h)| h.median / b.median)
            .collect();
        (
            median(&ratios),
            bootstrap_median_ci(&ratios, CONFIDENCE),
            ratios.len(),
        )
    } else {
        let rounds = |s: &[Summary]| {
            s.iter()
                .flat_map(|x| x.rounds.iter().copied())
                .collect::<Vec<_>>()
        };
        let (b, h) = (rounds(base), rounds(head));
        (
            head_m / base_m,
            bootstrap_ratio_ci(&b, &h, CONFIDENCE),
            b.len().min(h.len()),
        )
    };
    // A counted figure may be zero on both sides (no page faults, no system
    // calls): then the difference, not the ratio, is judged.
    let zero_base = metric.kind() == Kind::Counted && base_m == 0.0;
    let (ratio, ratio_ci, units_ci) = if zero_base {
        let heads: Vec<f64> = if paired {
            head.iter().map(|h| h.median).collect()
        } else {
            head.iter().flat_map(|x| x.rounds.iter().copied()).collect()
        };
        let ci = bootstrap_median_ci(&heads, CONFIDENCE);
        (f64::NAN, (f64::NAN, f64::NAN), ci)
    } else {
        (ratio, ratio_ci, (ratio_ci.0 * base_m, ratio_ci.1 * base_m))
    };
    let positive = if metric.kind() == Kind::Counted {
        base_m >= 0.0
    } else {
        base_m > 0.0
    };
    let verdict = if !(base_m.is_finite()
        && positive
        && units_ci.0.is_finite()
        && units_ci.1.is_finite())
        || !(zero_base || (ratio.is_finite() && ratio_ci.0.is_finite() && ratio_ci.1.is_finite()))
    {
        Verdict::Invalid {
            reason: "a value is missing or not a number".into(),
        }
    } else if n < MIN_ROUNDS {
        Verdict::Invalid {
            reason: format!("{n} round(s) or pair(s); at least {MIN_ROUNDS} are needed to judge"),
        }
    } else {
        decide(base_m, units_ci, &tolerance)
    };
    Row {
        allocator,
        metric,
        base: base_m,
        head: head_m,
        ratio,
        ratio_ci,
        tolerance,
        verdict,
    }
}

/// The report's table: one row per profile and metric.
pub fn table(report: &Report) -> crate::report::Table {
    let header = [
        "Allocator",
        "Metric",
        "Base",
        "Head",
        "Ratio",
        "95% CI",
        "Tolerance",
        "Verdict",
    ];
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|r| {
            let unit = r.metric.unit();
            let sign = match r.metric.direction() {
                crate::model::Direction::LowerIsBetter => "+",
                crate::model::Direction::HigherIsBetter => "−",
            };
            vec![
                r.allocator.to_string(),
                r.metric.to_string(),
                value(r.base, unit),
                value(r.head, unit),
                if r.ratio.is_finite() {
                    format!("{:.3}", r.ratio)
                } else {
                    "—".into()
                },
                if r.ratio_ci.0.is_finite() && r.ratio_ci.1.is_finite() {
                    format!("{:.3}–{:.3}", r.ratio_ci.0, r.ratio_ci.1)
                } else {
                    "—".into()
                },
                format!(
                    "{sign}{:.0}%{}",
                    r.tolerance.relative * 100.0,
                    if r.tolerance.enforce {
                        ""
                    } else {
                        " (report only)"
                    }
                ),
                match &r.verdict {
                    Verdict::Pass => "pass".into(),
                    Verdict::Regression => "REGRESSION".into(),
                    Verdict::Improvement => "improvement".into(),
                    Verdict::Invalid { reason } => format!("cannot judge: {reason}"),
                },
            ]
        })
        .collect();
    crate::report::Table {
        header: header.map(String::from).to_vec(),
        rows,
    }
}

/// The ratio chart: each metric's head/base ratio and interval against its tolerance band.
pub fn chart(report: &Report) -> crate::report::chart::Chart {
    crate::report::chart::ratios(
        &format!(
            "siteboss compare: head / base per metric ({})",
            report.component
        ),
        report
            .rows
            .iter()
            .map(|r| {
                crate::report::chart::RatioBar::new(
                    r.allocator,
                    r.metric,
                    r.ratio,
                    r.ratio_ci,
                    &r.tolerance,
                    &r.verdict,
                )
            })
            .collect(),
    )
}

/// The report as aligned text (`markdown = false`) or a Markdown table.
pub fn render(report: &Report, markdown: bool) -> String {
    let table = table(report);
    let how = how(report);
    let summary = report.summary();
    let mut out = String::new();
    if markdown {
        out.push_str(&format!(
            "### siteboss compare: {}\n\n{how}.\n\n",
            report.component
        ));
        out.push_str(&crate::report::markdown_table(&table));
        out.push('\n');
        for n in &report.notes {
            out.push_str(&format!("- {n}\n"));
        }
        out.push_str(&format!("\n**{summary}**\n"));
        if let Some(m) = crate::report::chart::mermaid(&chart(report)) {
            out.push('\n');
            out.push_str(&m);
        }
    } else {
        out.push_str(&format!(
            "siteboss compare: {} ({how})\n\n",
            report.component
        ));
        out.push_str(&crate::report::text_table(&table));
        for n in &report.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out.push_str(&format!("{summary}\n"));
    }
    out
}

/// The report as one self-contained HTML page: the table, the notes and
/// the ratio chart.
pub fn html(report: &Report) -> String {
    let section = crate::report::Section {
        title: "Head / base, metric by metric".into(),
        tables: vec![table(report)],
        lines: report.notes.clone(),
        charts: vec![chart(report)],
    };
    crate::report::html::page(
        &format!("siteboss compare: {}", report.component),
        &[format!("{}.", how(report)), report.summary()],
        &[section],
    )
}

fn how(report: &Report) -> String {
    if report.paired {
        format!(
            "{} interleaved BASE HEAD pairs; ratio = median of the per-pair head/base ratios",
            report.pairs
        )
    } else {
        format!(
            "{} BASE HEAD pair(s); ratio = head median / base median, interval from the files' rounds",
            report.pairs
        )
    }
}

/// Loads `tolerances`, or the copy built into this binary when `None`.
///
/// # Errors
///
/// As [`Tolerances::load`].
pub fn tolerances(path: Option<&Path>) -> Result<Tolerances, crate::tolerance::ToleranceError> {
    match path {
        Some(p) => Tolerances::load(p),
        None => Tolerances::parse(
            Path::new("(built-in baselines/tolerances.toml)"),
            include_str!("../baselines/tolerances.toml"),
        ),
    }
}
