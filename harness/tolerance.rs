//! The tolerance file: how far each gate metric may move before the gate fails.
//!
//! `baselines/tolerances.toml` has one table per metric:
//!
//! ```toml
//! [warm-start]
//! direction = "lower-is-better"   # must match the metric's direction
//! relative = 0.15                 # 15% worse is allowed
//! paired_relative = 0.03          # in lock step (`siteboss ab`); optional
//! absolute_floor = 250.0          # optional, in the metric's unit
//! enforce = true                  # false: reported, never fails
//! ```

use crate::model::{Direction, Metric, Tolerance};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a tolerance file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ToleranceError {
    /// The file could not be read.
    #[error("{path}: cannot be read: {cause}; the gate needs it (see README.md, \"Tolerances\")")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason. Not a `source`: the message already
        /// says it, and `{:#}` would print it twice.
        cause: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is wrong.
    #[error("{path}: {key}: {problem}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The table and key, such as `warm-start.relative`.
        key: String,
        /// What is wrong and what is expected.
        problem: String,
    },
}

/// Every metric's tolerance.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances {
    /// The file they were read from.
    pub path: PathBuf,
    by_metric: BTreeMap<Metric, Tolerance>,
}

impl Tolerances {
    /// The tolerance of `metric`, if the file sets one.
    pub fn get(&self, metric: Metric) -> Option<&Tolerance> {
        self.by_metric.get(&metric)
    }

    /// These tolerances, each passed through `change` (per-component
    /// overrides).
    pub fn with(&self, change: impl Fn(Metric, Tolerance) -> Tolerance) -> Self {
        Tolerances {
            path: self.path.clone(),
            by_metric: self
                .by_metric
                .iter()
                .map(|(&m, &t)| (m, change(m, t)))
                .collect(),
        }
    }

    /// Reads and checks `path`.
    ///
    /// # Errors
    ///
    /// Fails, naming the file and key, when the file is unreadable, not TOML,
    /// names an unknown metric, or has a negative, non-numeric or misdirected
    /// value.
    pub fn load(path: &Path) -> Result<Self, ToleranceError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ToleranceError::Unreadable {
            path: path.to_path_buf(),
            cause,
        })?;
        Tolerances::parse(path, &text)
    }

    /// Parses tolerance-file text; `path` is only used in errors.
    ///
    /// # Errors
    ///
    /// As [`Tolerances::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, ToleranceError> {
        let p = || path.to_path_buf();
        let value: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ToleranceError::Syntax {
                    path: p(),
                    message: e.message().to_owned(),
                })?;
        let bad = |key: String, problem: String| ToleranceError::Value {
            path: p(),
            key,
            problem,
        };
        let mut by_metric = BTreeMap::new();
        for (name, entry) in &value {
            if name == "schema_version" {
                match entry.as_integer() {
                    Some(1) => continue,
                    _ => return Err(bad(name.clone(), format!("must be 1, found {entry}"))),
                }
            }
            let metric: Metric = name
                .parse()
                .map_err(|e: crate::model::ParseError| bad(name.clone(), e.to_string()))?;
            let table = entry.as_table().ok_or_else(|| {
                bad(
                    name.clone(),
                    "must be a table of direction, relative, absolute_floor, enforce".into(),
                )
            })?;
            for key in table.keys() {
                if ![
                    "direction",
                    "relative",
                    "paired_relative",
                    "absolute_floor",
                    "enforce",
                ]
                .contains(&key.as_str())
                {
                    return Err(bad(
                        format!("{name}.{key}"),
                        "unknown key; expected direction, relative, paired_relative, absolute_floor or enforce"
                            .into(),
                    ));
                }
            }
            let number = |key: &str| -> Result<Option<f64>, ToleranceError> {
                match table.get(key) {
                    None => Ok(None),
                    Some(v) => {
                        let n = v
                            .as_float()
                            .or_else(|| v.as_integer().map(|i| i as f64))
                            .ok_or_else(|| {
                                bad(
                                    format!("{name}.{key}"),
                                    format!("must be a number, found {v}"),
                                )
                            })?;
                        if !n.is_finite() || n < 0.0 {
                            return Err(bad(
                                format!("{name}.{key}"),
                                format!("must be a number ≥ 0, found {n}"),
                            ));
                        }
                        Ok(Some(n))
                    }
                }
            };
            let relative = number("relative")?
                .ok_or_else(|| bad(format!("{name}.relative"), "is missing".into()))?;
            let paired_relative = number("paired_relative")?;
            for (key, v) in [
                ("relative", Some(relative)),
                ("paired_relative", paired_relative),
            ] {
                if let Some(v) = v
                    && v >= 1.0
                    && metric.direction() == Direction::HigherIsBetter
                {
                    return Err(bad(
                        format!("{name}.{key}"),
                        format!("{v} would allow a drop of 100% or more; use a fraction below 1"),
                    ));
                }
            }
            let direction = match table.get("direction").map(|v| v.as_str()) {
                None => metric.direction(),
                Some(Some("lower-is-better")) => Direction::LowerIsBetter,
                Some(Some("higher-is-better")) => Direction::HigherIsBetter,
                Some(_) => {
                    return Err(bad(
                        format!("{name}.direction"),
                        "must be \"lower-is-better\" or \"higher-is-better\"".into(),
                    ));
                }
            };
            if direction != metric.direction() {
                return Err(bad(
                    format!("{name}.direction"),
                    format!(
                        "{name} is {:?}; the file says otherwise",
                        metric.direction()
                    )
                    .to_lowercase(),
                ));
            }
            let enforce = match table.get("enforce") {
                None => true,
                Some(v) => v.as_bool().ok_or_else(|| {
                    bad(
                        format!("{name}.enforce"),
                        format!("must be true or false, found {v}"),
                    )
                })?,
            };
            by_metric.insert(
                metric,
                Tolerance {
                    metric,
                    direction,
                    relative,
                    absolute_floor: number("absolute_floor")?,
                    paired_relative,
                    enforce,
                },
            );
        }
        Ok(Tolerances {
            path: p(),
            by_metric,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tolerances, String> {
        Tolerances::parse(Path::new("baselines/tolerances.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_file_parses_with_defaults() {
        let t = parse("schema_version = 1\n[warm-start]\nrelative = 0.15\nabsolute_floor = 250\n[throughput]\nrelative = 0.2\ndirection = \"higher-is-better\"\n[cold-start]\nrelative = 0.5\nenforce = false\n").unwrap();
        let w = t.get(Metric::WarmStart).unwrap();
        assert_eq!(
            (w.relative, w.absolute_floor, w.enforce),
            (0.15, Some(250.0), true)
        );
        assert_eq!(
            t.get(Metric::Throughput).unwrap().direction,
            Direction::HigherIsBetter
        );
        assert!(!t.get(Metric::ColdStart).unwrap().enforce);
        assert!(t.get(Metric::Lifecycle).is_none());
    }

    #[test]
    fn every_mistake_names_the_file_and_key() {
        let cases = [
            (
                "[warm-start]\nrelative = -0.1\n",
                "warm-start.relative: must be a number ≥ 0",
            ),
            (
                "[warm-start]\nrelative = \"ten\"\n",
                "warm-start.relative: must be a number",
            ),
            ("[warm]\nrelative = 0.1\n", "warm: unknown metric `warm`"),
            ("[warm-start]\n", "warm-start.relative: is missing"),
            (
                "[warm-start]\nrelative = 0.1\ndirection = \"higher-is-better\"\n",
                "warm-start.direction",
            ),
            (
                "[warm-start]\nrelative = 0.1\ntolerance = 3\n",
                "warm-start.tolerance: unknown key",
            ),
            ("[throughput]\nrelative = 1.5\n", "throughput.relative"),
            ("[warm-start\nrelative = 0.1\n", "is not valid TOML"),
            ("schema_version = 2\n", "schema_version: must be 1"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with("baselines/tolerances.toml: "), "{err}");
            assert!(err.contains(expected), "{text:?} gave {err}");
        }
    }

    #[test]
    fn the_committed_file_is_valid_and_covers_the_gate_metrics() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/tolerances.toml");
        let t = Tolerances::load(&path).unwrap();
        for m in [
            Metric::WarmStart,
            Metric::Lifecycle,
            Metric::Throughput,
            Metric::MemoryPerInstance,
        ] {
            assert!(t.get(m).is_some_and(|t| t.enforce), "{m} must be enforced");
        }
    }
}
