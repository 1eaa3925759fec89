//! Baselines: insta snapshots whose body is JSON and whose `info` metadata
//! records the fingerprint of the machine they were recorded on.
//!
//! Two kinds, filed differently (see [`Kind`]):
//! - timed figures in `baselines/<runner>.snap`, per runner id, because a
//!   clock reading belongs to one kind of machine;
//! - counted figures in `baselines/counts-<key>.snap`, where the key names
//!   the architecture, OS and the CPU level the counted code saw
//!   (`measure::count::counts_key`), so one recording judges every runner of
//!   that kind.
//!
//! Each value keeps the rounds it is the median of, so a timed verdict can
//! account for the baseline's own spread.

use crate::model::{Allocator, Fingerprint, Kind, Metric};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `schema` field of a baseline body.
pub const BASELINE_SCHEMA: &str = "siteboss-baseline";
/// The baseline schema version this build writes. Version 1 (one component,
/// medians only, timed and memory figures per runner) is still read.
pub const BASELINE_VERSION: u32 = 2;

/// The JSON body of a baseline snapshot (version 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineBody {
    /// Always `siteboss-baseline`.
    pub schema: String,
    /// Always [`BASELINE_VERSION`].
    pub schema_version: u32,
    /// Timed (filed per runner) or counted (filed per counts key).
    pub kind: Kind,
    /// The runner id or counts key it was recorded for.
    pub key: String,
    /// Independent rounds each value is the median of.
    pub rounds: usize,
    /// component → profile → metric → value, in the metric's unit.
    pub components: BTreeMap<String, BTreeMap<String, BTreeMap<String, Recorded>>>,
}

/// One recorded figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The median over rounds (3 significant figures).
    pub median: f64,
    /// Each round's value (3 significant figures), in the order measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<f64>,
}

/// The body of a version-1 baseline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineBodyV1 {
    schema: String,
    schema_version: u32,
    runner: String,
    component: String,
    rounds: usize,
    metrics: BTreeMap<String, BTreeMap<String, f64>>,
}

/// A baseline read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The file.
    pub path: PathBuf,
    /// The body (a version-1 file is converted).
    pub body: BaselineBody,
    /// The recording machine's fingerprint fields, from the snapshot metadata.
    pub fingerprint: BTreeMap<String, String>,
    values: BTreeMap<(String, Allocator, Metric), Recorded>,
}

/// Why a baseline cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// There is no baseline file for this runner or key.
    #[error(
        "{path}: no {what} baseline for `{key}`{known}; record one with \
         `SITEBOSS_RECORD=1 cargo test --release --test gate`, then `cargo insta review`"
    )]
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// "timed" or "counted".
        what: &'static str,
        /// The runner id or counts key.
        key: String,
        /// The keys that do have baselines, as a sentence fragment.
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

/// The prefix of counted baselines' file names.
pub const COUNTS_PREFIX: &str = "counts-";

impl Baseline {
    /// The recorded value of `metric` for `component` and `allocator`.
    pub fn value(
        &self,
        component: &str,
        allocator: Allocator,
        metric: Metric,
    ) -> Option<&Recorded> {
        self.values.get(&(component.to_owned(), allocator, metric))
    }

    /// Reads the baseline of `kind` filed under `key` in `dir`.
    ///
    /// # Errors
    ///
    /// [`BaselineError::Missing`] when there is none (listing the keys that
    /// have one), and a naming error for an unusable key, an unreadable
    /// file, or any corruption: not a snapshot, bad JSON, another schema or
    /// version, another kind, an unknown allocator or metric, or a value that
    /// is not a number (timed values must be positive, counted ones ≥ 0).
    pub fn load(dir: &Path, kind: Kind, key: &str) -> Result<Self, BaselineError> {
        let path = path_for(dir, kind, key)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let known = known_keys(dir, kind);
                return Err(BaselineError::Missing {
                    path,
                    what: kind_name(kind),
                    key: key.to_owned(),
                    known: if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (baselines exist for: {})", known.join(", "))
                    },
                });
            }
            Err(cause) => return Err(BaselineError::Unreadable { path, cause }),
        };
        let b = Baseline::parse(&path, &text)?;
        if b.body.kind != kind {
            return Err(BaselineError::Corrupt {
                path,
                problem: format!(
                    "it holds {} figures where {} ones belong",
                    kind_name(b.body.kind),
                    kind_name(kind)
                ),
            });
        }
        Ok(b)
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
        let raw: serde_json::Value =
            serde_json::from_str(body).map_err(|e| corrupt(format!("the JSON body: {e}")))?;
        let schema = raw.get("schema").and_then(|s| s.as_str()).unwrap_or("");
        if schema != BASELINE_SCHEMA {
            return Err(corrupt(format!(
                "schema is `{schema}`, expected `{BASELINE_SCHEMA}`"
            )));
        }
        let version = raw.get("schema_version").and_then(|v| v.as_u64());
        let body: BaselineBody = match version {
            Some(1) => {
                let v1: BaselineBodyV1 = serde_json::from_value(raw)
                    .map_err(|e| corrupt(format!("the JSON body: {e}")))?;
                upgrade_v1(v1)
            }
            Some(2) => {
                serde_json::from_value(raw).map_err(|e| corrupt(format!("the JSON body: {e}")))?
            }
            other => {
                return Err(corrupt(format!(
                    "schema_version {} is not a version this build reads (1 or {BASELINE_VERSION})",
                    other.map_or("missing".to_owned(), |v| v.to_string())
                )));
            }
        };
        let mut values = BTreeMap::new();
        for (component, profiles) in &body.components {
            for (alloc_name, metrics) in profiles {
                let allocator: Allocator = alloc_name
                    .parse()
                    .map_err(|e: crate::model::ParseError| corrupt(e.to_string()))?;
                for (metric_name, rec) in metrics {
                    let metric: Metric =
                        metric_name.parse().map_err(|e: crate::model::ParseError| {
                            corrupt(format!("{e} (a metric unknown to this version)"))
                        })?;
                    let ok = |v: f64| match metric.kind() {
                        Kind::Timed => v.is_finite() && v > 0.0,
                        Kind::Counted => v.is_finite() && v >= 0.0,
                    };
                    if let Some(bad) = std::iter::once(&rec.median)
                        .chain(&rec.rounds)
                        .find(|v| !ok(**v))
                    {
                        return Err(corrupt(format!(
                            "{component}.{alloc_name}.{metric_name} is {bad}, not a {} number",
                            if metric.kind() == Kind::Timed {
                                "positive"
                            } else {
                                "non-negative"
                            }
                        )));
                    }
                    values.insert((component.clone(), allocator, metric), rec.clone());
                }
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
            "heap_allocator",
        ]
        .iter()
        .filter_map(|k| {
            let b = now.get(*k)?;
            let a = match self.fingerprint.get(*k) {
                Some(a) => a.as_str(),
                // Baselines older than the heap's field were measured with
                // glibc's malloc; say so rather than stay silent.
                None if *k == "heap_allocator" => "not recorded (glibc's malloc)",
                None => return None,
            };
            (a != b).then(|| format!("{k}: {a} → {b}"))
        })
        .collect()
    }
}

/// A version-1 body as version 2: one component, medians only, every figure
/// filed as timed (version 1 had no counted figures but memory per instance,
/// which the gate now reads from the counted baseline instead).
fn upgrade_v1(v1: BaselineBodyV1) -> BaselineBody {
    let _ = (&v1.schema, v1.schema_version, &v1.component);
    let profiles = v1
        .metrics
        .into_iter()
        .map(|(alloc, metrics)| {
            (
                alloc,
                metrics
                    .into_iter()
                    .map(|(m, v)| {
                        (
                            m,
                            Recorded {
                                median: v,
                                rounds: Vec::new(),
                            },
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    BaselineBody {
        schema: BASELINE_SCHEMA.into(),
        schema_version: 1,
        kind: Kind::Timed,
        key: v1.runner,
        rounds: v1.rounds,
        components: BTreeMap::from([(crate::component::EMBEDDED_GATE_NAME.to_owned(), profiles)]),
    }
}

/// "timed" or "counted".
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Timed => "timed",
        Kind::Counted => "counted",
    }
}

/// `dir/<runner>.snap` for timed figures, `dir/counts-<key>.snap` for
/// counted ones, after checking the key can name a file.
///
/// # Errors
///
/// [`BaselineError::BadRunner`] for an empty key or one with other characters.
pub fn path_for(dir: &Path, kind: Kind, key: &str) -> Result<PathBuf, BaselineError> {
    let ok = !key.is_empty()
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok || (kind == Kind::Timed && key.starts_with(COUNTS_PREFIX)) {
        return Err(BaselineError::BadRunner(key.to_owned()));
    }
    Ok(dir.join(format!("{}.snap", file_stem(kind, key))))
}

/// The snapshot name (file name without `.snap`) of a baseline.
pub fn file_stem(kind: Kind, key: &str) -> String {
    match kind {
        Kind::Timed => key.to_owned(),
        Kind::Counted => format!("{COUNTS_PREFIX}{key}"),
    }
}

/// The keys with a baseline of `kind` in `dir`.
pub fn known_keys(dir: &Path, kind: Kind) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let stem = e.file_name().to_str()?.strip_suffix(".snap")?.to_owned();
            match (kind, stem.strip_prefix(COUNTS_PREFIX)) {
                (Kind::Counted, Some(key)) => Some(key.to_owned()),
                (Kind::Timed, None) => Some(stem),
                _ => None,
            }
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
    round_sig(v, 3)
}

/// Rounds to `sig` significant figures.
pub fn round_sig(v: f64, sig: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = sig - 1 - v.abs().log10().floor() as i32;
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

    const V1: &str = "---\nsource: harness/tests/gate.rs\ninfo:\n  arch: x86_64\n  cores: \"2\"\n  cpu_model: AMD EPYC\n---\n{\n  \"schema\": \"siteboss-baseline\",\n  \"schema_version\": 1,\n  \"runner\": \"r1\",\n  \"component\": \"embedded hello\",\n  \"rounds\": 9,\n  \"metrics\": {\"pooling\": {\"warm-start\": 3770.0, \"throughput\": 222000.0}}\n}\n";

    const GOOD: &str = "---\nsource: harness/tests/gate.rs\ninfo:\n  arch: x86_64\n---\n{\n  \"schema\": \"siteboss-baseline\",\n  \"schema_version\": 2,\n  \"kind\": \"counted\",\n  \"key\": \"x86_64-linux-x86-64-v3\",\n  \"rounds\": 5,\n  \"components\": {\"hello\": {\"pooling\": {\"instructions-lifecycle\": {\"median\": 48100.0, \"rounds\": [48000.0, 48100.0, 48200.0]}, \"page-faults-lifecycle\": {\"median\": 0.0}}}}\n}\n";

    fn parse(text: &str) -> Result<Baseline, String> {
        Baseline::parse(Path::new("baselines/r1.snap"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_snapshot_parses_with_its_rounds() {
        let b = parse(GOOD).unwrap();
        let r = b
            .value("hello", Allocator::Pooling, Metric::InstructionsLifecycle)
            .unwrap();
        assert_eq!(r.median, 48100.0);
        assert_eq!(r.rounds, vec![48000.0, 48100.0, 48200.0]);
        // A counted figure may be zero.
        assert_eq!(
            b.value("hello", Allocator::Pooling, Metric::PageFaultsLifecycle)
                .map(|r| r.median),
            Some(0.0)
        );
        assert!(
            b.value("other", Allocator::Pooling, Metric::InstructionsLifecycle)
                .is_none()
        );
        assert_eq!(b.body.kind, Kind::Counted);
    }

    #[test]
    fn a_version_1_snapshot_reads_as_the_embedded_components_timed_figures() {
        let b = parse(V1).unwrap();
        assert_eq!(b.body.kind, Kind::Timed);
        assert_eq!(
            b.value("hello", Allocator::Pooling, Metric::WarmStart)
                .map(|r| r.median),
            Some(3770.0)
        );
        assert!(
            b.value("hello", Allocator::Pooling, Metric::WarmStart)
                .unwrap()
                .rounds
                .is_empty()
        );
        assert_eq!(
            b.value("hello", Allocator::OnDemand, Metric::WarmStart),
            None
        );
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
                &GOOD.replace("\"schema_version\": 2", "\"schema_version\": 7"),
                "schema_version 7",
            ),
            (
                &GOOD.replace("instructions-lifecycle", "instructions-lifecycles"),
                "unknown metric `instructions-lifecycles`",
            ),
            (&GOOD.replace("pooling", "mmap"), "unknown allocator `mmap`"),
            (
                &GOOD.replace("48200.0", "-1.0"),
                "not a non-negative number",
            ),
            (&V1.replace("3770.0", "0.0"), "not a positive number"),
            (
                &GOOD.replace("\"rounds\": 5,", "\"rounds\": 5, \"extra\": 1,"),
                "unknown field `extra`",
            ),
            (
                &V1.replace("\"rounds\": 9,", "\"rounds\": 9, \"extra\": 1,"),
                "unknown field `extra`",
            ),
            (
                &GOOD.replace("\"counted\"", "\"guessed\""),
                "unknown variant `guessed`",
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
    fn a_missing_baseline_lists_the_keys_that_have_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("other-runner.snap"), V1).unwrap();
        std::fs::write(dir.path().join("counts-x86_64-linux-x86-64-v3.snap"), GOOD).unwrap();
        let err = Baseline::load(dir.path(), Kind::Timed, "no-such-runner")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no timed baseline for `no-such-runner`"),
            "{err}"
        );
        assert!(err.contains("other-runner"), "{err}");
        assert!(!err.contains("counts-"), "{err}");
        assert!(err.contains("SITEBOSS_RECORD=1"), "{err}");
        let err = Baseline::load(dir.path(), Kind::Counted, "aarch64-linux")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no counted baseline for `aarch64-linux`"),
            "{err}"
        );
        assert!(
            err.contains("(baselines exist for: x86_64-linux-x86-64-v3)"),
            "{err}"
        );
        assert!(Baseline::load(dir.path(), Kind::Counted, "x86_64-linux-x86-64-v3").is_ok());
    }

    #[test]
    fn a_baseline_of_the_other_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("counts-r1.snap"), V1).unwrap();
        let err = Baseline::load(dir.path(), Kind::Counted, "r1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds timed figures where counted ones belong"),
            "{err}"
        );
    }

    #[test]
    fn keys_that_cannot_name_a_file_are_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            ".hidden",
            "with space",
            "counts-x",
        ] {
            assert!(
                path_for(Path::new("baselines"), Kind::Timed, bad).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            path_for(
                Path::new("baselines"),
                Kind::Timed,
                "x86_64-linux-amd-epyc-2c-24g"
            )
            .unwrap(),
            Path::new("baselines/x86_64-linux-amd-epyc-2c-24g.snap")
        );
        assert_eq!(
            path_for(
                Path::new("baselines"),
                Kind::Counted,
                "x86_64-linux-x86-64-v3"
            )
            .unwrap(),
            Path::new("baselines/counts-x86_64-linux-x86-64-v3.snap")
        );
    }

    #[test]
    fn rounding_keeps_three_significant_figures() {
        assert_eq!(round3(3771.4), 3770.0);
        assert_eq!(round3(222_417.0), 222_000.0);
        assert_eq!(round3(16_984.9), 17_000.0);
        assert_eq!(round3(0.012345), 0.0123);
        assert_eq!(round3(0.0), 0.0);
    }
}
