//! Per-runner baselines: `baselines/<runner>.snap`, an insta snapshot whose
//! body is JSON and whose `info` metadata records the fingerprint of the
//! machine it was recorded on.

use crate::model::{Allocator, Fingerprint, Metric};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `schema` field of a baseline body.
pub const BASELINE_SCHEMA: &str = "siteboss-baseline";
/// The baseline schema version this build reads and writes.
pub const BASELINE_VERSION: u32 = 1;

/// The JSON body of a baseline snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineBody {
    /// Always `siteboss-baseline`.
    pub schema: String,
    /// Always [`BASELINE_VERSION`].
    pub schema_version: u32,
    /// The runner id it was recorded for.
    pub runner: String,
    /// The component measured.
    pub component: String,
    /// Independent rounds each value is the median of.
    pub rounds: usize,
    /// allocator → metric → value, in the metric's unit (3 significant figures).
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

/// A baseline read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The file.
    pub path: PathBuf,
    /// The body.
    pub body: BaselineBody,
    /// The recording machine's fingerprint fields, from the snapshot metadata.
    pub fingerprint: BTreeMap<String, String>,
    values: BTreeMap<(Allocator, Metric), f64>,
}

/// Why a baseline cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// There is no baseline file for this runner.
    #[error(
        "{path}: no baseline for runner `{runner}`{known}; record one with \
         `SITEBOSS_RECORD=1 cargo test --release --test gate`, then `cargo insta review`"
    )]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// The runner id.
        runner: String,
        /// The runners that do have baselines, as a sentence fragment.
        known: String,
    },
    /// The runner id cannot name a file.
    #[error(
        "runner id `{0}` is not usable as a baseline name: use letters, digits, `.`, `_` and `-` only (SITEBOSS_RUNNER)"
    )]
    BadRunner(String),
    /// The file could not be read.
    #[error("{path}: cannot be read: {cause}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason. Not a `source`: the message already
        /// says it, and `{:#}` would print it twice.
        cause: std::io::Error,
    },
    /// The file is corrupt.
    #[error(
        "{path}: corrupt baseline: {problem}; re-record it (README.md, \"Updating the baseline\")"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Baseline {
    /// The value of `metric` for `allocator`, if recorded.
    pub fn value(&self, allocator: Allocator, metric: Metric) -> Option<f64> {
        self.values.get(&(allocator, metric)).copied()
    }

    /// Reads the baseline of `runner` in `dir`.
    ///
    /// # Errors
    ///
    /// [`BaselineError::Missing`] when there is none (listing the runners that
    /// have one), and a naming error for an unusable runner id, an unreadable
    /// file, or any corruption: not a snapshot, bad JSON, another schema or
    /// version, an unknown allocator or metric, or a value that is not a
    /// positive number.
    pub fn load(dir: &Path, runner: &str) -> Result<Self, BaselineError> {
        let path = path_for(dir, runner)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let known = known_runners(dir);
                return Err(BaselineError::Missing {
                    path,
                    runner: runner.to_owned(),
                    known: if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (baselines exist for: {})", known.join(", "))
                    },
                });
            }
            Err(cause) => return Err(BaselineError::Unreadable { path, cause }),
        };
        Baseline::parse(&path, &text)
    }

    /// Parses snapshot text; `path` is only used in errors.
    ///
    /// # Errors
    ///
    /// As [`Baseline::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, BaselineError> {
        let corrupt = |problem: String| BaselineError::Corrupt {
            path: path.to_path_buf(),
            problem,
        };
        let (header, body) = split_snapshot(text).ok_or_else(|| {
            corrupt(
                "not an insta snapshot (expected a `---` metadata header, then the JSON body)"
                    .into(),
            )
        })?;
        let body: BaselineBody =
            serde_json::from_str(body).map_err(|e| corrupt(format!("the JSON body: {e}")))?;
        if body.schema != BASELINE_SCHEMA {
            return Err(corrupt(format!(
                "schema is `{}`, expected `{BASELINE_SCHEMA}`",
                body.schema
            )));
        }
        if body.schema_version != BASELINE_VERSION {
            return Err(corrupt(format!(
                "schema_version {} is not the version {BASELINE_VERSION} this build reads",
                body.schema_version
            )));
        }
        let mut values = BTreeMap::new();
        for (alloc_name, metrics) in &body.metrics {
            let allocator: Allocator = alloc_name
                .parse()
                .map_err(|e: crate::model::ParseError| corrupt(e.to_string()))?;
            for (metric_name, &v) in metrics {
                let metric: Metric =
                    metric_name.parse().map_err(|e: crate::model::ParseError| {
                        corrupt(format!("{e} (a metric unknown to this version)"))
                    })?;
                if !v.is_finite() || v <= 0.0 {
                    return Err(corrupt(format!(
                        "{alloc_name}.{metric_name} is {v}, not a positive number"
                    )));
                }
                values.insert((allocator, metric), v);
            }
        }
        Ok(Baseline {
            path: path.to_path_buf(),
            body,
            fingerprint: read_info(header),
            values,
        })
    }

    /// The fingerprint fields that differ between the recording machine and
    /// `current`, as `field: recorded → now` lines.
    pub fn fingerprint_mismatches(&self, current: &Fingerprint) -> Vec<String> {
        let now = fingerprint_fields(current);
        [
            "arch",
            "os",
            "cpu_model",
            "cores",
            "memory_bytes",
            "kernel",
            "wasmtime_version",
            "rustc_version",
        ]
        .iter()
        .filter_map(|k| {
            let (a, b) = (self.fingerprint.get(*k)?, now.get(*k)?);
            (a != b).then(|| format!("{k}: {a} → {b}"))
        })
        .collect()
    }
}

/// `dir/<runner>.snap`, after checking the runner id can name a file.
///
/// # Errors
///
/// [`BaselineError::BadRunner`] for an empty id or one with other characters.
pub fn path_for(dir: &Path, runner: &str) -> Result<PathBuf, BaselineError> {
    let ok = !runner.is_empty()
        && !runner.starts_with('.')
        && runner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(BaselineError::BadRunner(runner.to_owned()));
    }
    Ok(dir.join(format!("{runner}.snap")))
}

/// The runners with a baseline in `dir`.
pub fn known_runners(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".snap")
                .map(str::to_owned)
        })
        .collect();
    v.sort();
    v
}

/// The fingerprint as the flat string map recorded in snapshot metadata.
pub fn fingerprint_fields(f: &Fingerprint) -> BTreeMap<String, String> {
    let value = serde_json::to_value(f).expect("a fingerprint serialises");
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect()
}

/// Rounds to 3 significant figures, so a re-recorded baseline diffs readably.
pub fn round3(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 3 - 1 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

/// Splits a snapshot into its metadata header and its body.
fn split_snapshot(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let end = rest.find("\n---\n").or_else(|| rest.find("\n---\r\n"))?;
    let header = &rest[..end];
    let body = rest[end + 1..].split_once('\n').map(|x| x.1)?;
    Some((header, body))
}

/// Reads the `info:` mapping of a snapshot header (flat `key: value` lines).
fn read_info(header: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in header.lines() {
        if line.starts_with("info:") {
            inside = true;
            continue;
        }
        if inside {
            let Some(entry) = line.strip_prefix("  ") else {
                break;
            };
            if let Some((k, v)) = entry.split_once(':') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|x| x.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                    .unwrap_or(v);
                out.insert(k.trim().to_owned(), v.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nsource: harness/tests/gate.rs\ninfo:\n  arch: x86_64\n  cores: \"2\"\n  cpu_model: AMD EPYC\n---\n{\n  \"schema\": \"siteboss-baseline\",\n  \"schema_version\": 1,\n  \"runner\": \"r1\",\n  \"component\": \"embedded hello\",\n  \"rounds\": 9,\n  \"metrics\": {\"pooling\": {\"warm-start\": 3770.0, \"throughput\": 222000.0}}\n}\n";

    fn parse(text: &str) -> Result<Baseline, String> {
        Baseline::parse(Path::new("baselines/r1.snap"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_snapshot_parses_with_its_fingerprint() {
        let b = parse(GOOD).unwrap();
        assert_eq!(b.value(Allocator::Pooling, Metric::WarmStart), Some(3770.0));
        assert_eq!(b.value(Allocator::OnDemand, Metric::WarmStart), None);
        assert_eq!(b.fingerprint.get("cores").map(String::as_str), Some("2"));
        assert_eq!(
            b.fingerprint.get("cpu_model").map(String::as_str),
            Some("AMD EPYC")
        );
    }

    #[test]
    fn each_corruption_names_the_file_and_the_problem() {
        let cases = [
            ("{}", "not an insta snapshot"),
            ("---\ninfo: {}\n---\n{not json", "the JSON body"),
            (
                &GOOD.replace("siteboss-baseline", "something-else"),
                "schema is `something-else`",
            ),
            (
                &GOOD.replace("\"schema_version\": 1", "\"schema_version\": 7"),
                "schema_version 7",
            ),
            (
                &GOOD.replace("warm-start", "warm-starts"),
                "unknown metric `warm-starts`",
            ),
            (&GOOD.replace("pooling", "mmap"), "unknown allocator `mmap`"),
            (&GOOD.replace("3770.0", "-1.0"), "not a positive number"),
            (
                &GOOD.replace("\"rounds\": 9,", "\"rounds\": 9, \"extra\": 1,"),
                "unknown field `extra`",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(
                err.starts_with("baselines/r1.snap: corrupt baseline"),
                "{err}"
            );
            assert!(err.contains(expected), "expected {expected:?} in {err}");
        }
    }

    #[test]
    fn a_missing_baseline_lists_the_runners_that_have_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("other-runner.snap"), GOOD).unwrap();
        let err = Baseline::load(dir.path(), "no-such-runner")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no baseline for runner `no-such-runner`"),
            "{err}"
        );
        assert!(err.contains("other-runner"), "{err}");
        assert!(err.contains("SITEBOSS_RECORD=1"), "{err}");
    }

    #[test]
    fn runner_ids_that_cannot_name_a_file_are_refused() {
        for bad in ["", "../etc/passwd", "a/b", ".hidden", "with space"] {
            assert!(path_for(Path::new("baselines"), bad).is_err(), "{bad:?}");
        }
        assert!(path_for(Path::new("baselines"), "x86_64-linux-amd-epyc-2c-24g").is_ok());
    }

    #[test]
    fn rounding_keeps_three_significant_figures() {
        assert_eq!(round3(3771.4), 3770.0);
        assert_eq!(round3(222_417.0), 222_000.0);
        assert_eq!(round3(16_984.9), 17_000.0);
        assert_eq!(round3(0.012345), 0.0123);
    }
}
