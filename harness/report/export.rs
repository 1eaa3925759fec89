//! Exports to the history tools users already keep: Bencher (its Bencher
//! Metric Format, BMF) and github-action-benchmark (its `customSmallerIsBetter`
//! and `customBiggerIsBetter` formats, one file per direction).
//!
//! Every metric the gate can judge is exported for every profile measured,
//! named `siteboss/<component>/<profile>/<metric>` (for example
//! `siteboss/hello/pooling/warm-start`; the component is `hello` or
//! `http-hello` for the embedded ones, else the file's stem), plus the native process measured in the
//! same run as `siteboss/native/spawn-exit` and
//! `siteboss/native/private-dirty`. The value is the median; the lower and
//! upper values (BMF) and the range (github-action-benchmark) come from the
//! 25th and 75th percentiles of the same summary.

use crate::model::{BenchmarkResult, Direction, Metric, Summary, Unit};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// One exported figure.
struct Figure {
    name: String,
    unit: Unit,
    direction: Direction,
    summary: Summary,
}

/// The component's part of a name: `hello`, `http-hello`, or the file stem.
pub fn component_slug(r: &BenchmarkResult) -> String {
    let name = r.component.name.as_str();
    let name = name.strip_prefix("embedded ").unwrap_or(name);
    let name = name.strip_suffix(".wasm").unwrap_or(name);
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn figures(r: &BenchmarkResult) -> Vec<Figure> {
    let mut out = Vec::new();
    let component = component_slug(r);
    for c in &r.configurations {
        for m in Metric::ALL {
            if let Some(s) = c.summary(m)
                && s.median.is_finite()
            {
                // A throughput measured with an engine per thread is another
                // series than the shared engine's.
                let shape = if r.settings.engine_per_thread
                    && matches!(m, Metric::Throughput | Metric::InstantiationThroughput)
                {
                    "-engine-per-thread"
                } else {
                    ""
                };
                out.push(Figure {
                    name: format!("siteboss/{component}/{}/{}{shape}", c.allocator, m.name()),
                    unit: m.unit(),
                    direction: m.direction(),
                    summary: s.clone(),
                });
            }
        }
    }
    if let Some(n) = &r.native {
        out.push(Figure {
            name: "siteboss/native/spawn-exit".into(),
            unit: Unit::Nanoseconds,
            direction: Direction::LowerIsBetter,
            summary: n.spawn.clone(),
        });
        if let Some(d) = &n.private_dirty {
            out.push(Figure {
                name: "siteboss/native/private-dirty".into(),
                unit: Unit::Bytes,
                direction: Direction::LowerIsBetter,
                summary: d.clone(),
            });
        }
    }
    out
}

/// The Bencher measure slug for a unit. `latency` (nanoseconds) and
/// `throughput` (operations per second) are the measures every Bencher
/// project has; Bencher creates the others on first use.
pub fn measure_slug(unit: Unit) -> &'static str {
    match unit {
        Unit::Nanoseconds => "latency",
        Unit::PerSecond => "throughput",
        Unit::Bytes => "memory-bytes",
        Unit::Count => "count",
        Unit::Instructions => "instructions",
        Unit::PageFaults => "page-faults",
        Unit::Syscalls => "syscalls",
    }
}

/// The unit as github-action-benchmark shows it beside a value.
pub fn unit_label(unit: Unit) -> &'static str {
    match unit {
        Unit::Nanoseconds => "ns",
        Unit::PerSecond => "ops/s",
        Unit::Bytes => "bytes",
        Unit::Count => "count",
        Unit::Instructions => "instructions/op",
        Unit::PageFaults => "page faults/op",
        Unit::Syscalls => "syscalls/op",
    }
}

/// The result in Bencher Metric Format:
/// `{benchmark: {measure: {value, lower_value, upper_value}}}`.
pub fn bmf(r: &BenchmarkResult) -> Value {
    let mut out = Map::new();
    for f in figures(r) {
        let mut metric = Map::new();
        metric.insert("value".into(), json!(f.summary.median));
        if f.summary.p25.is_finite() && f.summary.p75.is_finite() {
            metric.insert("lower_value".into(), json!(f.summary.p25));
            metric.insert("upper_value".into(), json!(f.summary.p75));
        }
        let bench = out
            .entry(f.name)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(b) = bench {
            b.insert(measure_slug(f.unit).into(), Value::Object(metric));
        }
    }
    Value::Object(out)
}

/// One entry of github-action-benchmark's custom formats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GabEntry {
    /// The benchmark's name.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// The median.
    pub value: f64,
    /// Half the interquartile range, as `± x`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The quartiles, the sample count and the runner, shown in the tooltip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// The result as github-action-benchmark's two custom formats:
/// (`customSmallerIsBetter` entries, `customBiggerIsBetter` entries).
pub fn github_action_benchmark(r: &BenchmarkResult) -> (Vec<GabEntry>, Vec<GabEntry>) {
    let (mut smaller, mut bigger) = (Vec::new(), Vec::new());
    for f in figures(r) {
        let s = &f.summary;
        let half = (s.p75 - s.p25) / 2.0;
        let entry = GabEntry {
            name: f.name,
            unit: unit_label(f.unit).into(),
            value: s.median,
            range: half.is_finite().then(|| format!("± {}", sig(half))),
            extra: Some(format!(
                "p25 {} / p75 {} {}; n={}; runner {}; component {} ({} bytes)",
                sig(s.p25),
                sig(s.p75),
                unit_label(f.unit),
                s.n,
                r.runner_id,
                r.component.name,
                r.component.bytes
            )),
        };
        match f.direction {
            Direction::LowerIsBetter => smaller.push(entry),
            Direction::HigherIsBetter => bigger.push(entry),
        }
    }
    (smaller, bigger)
}

fn sig(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// The two files `--github-action-benchmark PATH` writes: PATH with
/// `.smaller-is-better` and `.bigger-is-better` put before its extension
/// (`.json` when it has none). `out/gab.json` gives
/// `out/gab.smaller-is-better.json` and `out/gab.bigger-is-better.json`.
pub fn github_action_benchmark_paths(path: &Path) -> (PathBuf, PathBuf) {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "json".into());
    let stem = path.with_extension("");
    let with = |dir: &str| {
        let mut s = stem.clone().into_os_string();
        s.push(format!(".{dir}.{ext}"));
        PathBuf::from(s)
    };
    (with("smaller-is-better"), with("bigger-is-better"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_files_are_named_from_the_path() {
        let (s, b) = github_action_benchmark_paths(Path::new("out/gab.json"));
        assert_eq!(s, PathBuf::from("out/gab.smaller-is-better.json"));
        assert_eq!(b, PathBuf::from("out/gab.bigger-is-better.json"));
        let (s, _) = github_action_benchmark_paths(Path::new("history"));
        assert_eq!(s, PathBuf::from("history.smaller-is-better.json"));
    }

    #[test]
    fn every_unit_has_a_distinct_slug() {
        let units = [
            Unit::Nanoseconds,
            Unit::PerSecond,
            Unit::Bytes,
            Unit::Count,
            Unit::Instructions,
            Unit::PageFaults,
            Unit::Syscalls,
        ];
        let mut slugs: Vec<&str> = units.iter().map(|u| measure_slug(*u)).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), units.len());
        for s in slugs {
            assert!(
                s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{s}"
            );
        }
    }
}
