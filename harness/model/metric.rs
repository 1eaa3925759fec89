//! What is measured: metrics with their units and directions, and allocators.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A name that did not parse as one of a fixed set of names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{given}`; expected one of: {expected}")]
pub struct ParseError {
    /// What was being parsed, such as "metric".
    pub kind: &'static str,
    /// The text that did not parse.
    pub given: String,
    /// The accepted names, comma separated.
    pub expected: String,
}

/// The unit a metric's values are recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Nanoseconds of wall-clock time.
    Nanoseconds,
    /// Bytes of resident memory.
    Bytes,
    /// Operations completed per second of wall-clock time.
    PerSecond,
    /// A plain count.
    Count,
}

/// Which way is better for a metric. A tolerance applies in this direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Smaller values are better (times, memory).
    LowerIsBetter,
    /// Larger values are better (throughput, capacity).
    HigherIsBetter,
}

/// The Wasmtime instance allocator a configuration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// The production profile: a pooling allocator with exactly sized slots.
    Pooling,
    /// Wasmtime's default on-demand allocator with its default settings.
    OnDemand,
}

impl Allocator {
    /// Every allocator, production profile first.
    pub const ALL: [Allocator; 2] = [Allocator::Pooling, Allocator::OnDemand];

    /// The short name used on the command line, in JSON and in trial names.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::Pooling => "pooling",
            Allocator::OnDemand => "on-demand",
        }
    }
}

impl fmt::Display for Allocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Allocator {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Allocator::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ParseError {
                kind: "allocator",
                given: s.to_owned(),
                expected: "pooling, on-demand".to_owned(),
            })
    }
}

/// A figure the gate and `siteboss compare` can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Median time to instantiate a precompiled component with a fresh store.
    WarmStart,
    /// Median time of a request's whole lifecycle: instantiate, run, drop.
    Lifecycle,
    /// Full lifecycles per second with every available core busy.
    Throughput,
    /// Resident memory added by each live instance that has run (a slope).
    MemoryPerInstance,
    /// Cold start in a fresh process: engine, compile, instantiate, run.
    ColdStart,
    /// Cold start in-process from a precompiled artifact.
    ColdStartPrecompiled,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 6] = [
        Metric::WarmStart,
        Metric::Lifecycle,
        Metric::Throughput,
        Metric::MemoryPerInstance,
        Metric::ColdStart,
        Metric::ColdStartPrecompiled,
    ];

    /// The short name used in trial names, tolerance files and baselines.
    pub fn name(self) -> &'static str {
        match self {
            Metric::WarmStart => "warm-start",
            Metric::Lifecycle => "lifecycle",
            Metric::Throughput => "throughput",
            Metric::MemoryPerInstance => "memory-per-instance",
            Metric::ColdStart => "cold-start",
            Metric::ColdStartPrecompiled => "cold-start-precompiled",
        }
    }

    /// The unit the metric is recorded in.
    pub fn unit(self) -> Unit {
        match self {
            Metric::WarmStart
            | Metric::Lifecycle
            | Metric::ColdStart
            | Metric::ColdStartPrecompiled => Unit::Nanoseconds,
            Metric::Throughput => Unit::PerSecond,
            Metric::MemoryPerInstance => Unit::Bytes,
        }
    }

    /// Which way is better.
    pub fn direction(self) -> Direction {
        match self {
            Metric::Throughput => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| ParseError {
                kind: "metric",
                given: s.to_owned(),
                expected: Metric::ALL.map(Metric::name).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str() {
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>().unwrap(), m);
        }
        for a in Allocator::ALL {
            assert_eq!(a.to_string().parse::<Allocator>().unwrap(), a);
        }
    }

    #[test]
    fn unknown_metric_names_the_accepted_ones() {
        let err = "warm".parse::<Metric>().unwrap_err().to_string();
        assert!(err.contains("unknown metric `warm`"), "{err}");
        assert!(err.contains("warm-start"), "{err}");
    }

    #[test]
    fn serde_names_match_display_names() {
        for m in Metric::ALL {
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
    }
}
