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
    /// Instructions executed (counted by callgrind), per operation.
    Instructions,
    /// Minor page faults, per operation.
    PageFaults,
    /// System calls, per operation.
    Syscalls,
}

/// How a metric is obtained, which decides where its baseline lives and how
/// much it may move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Read from a clock: noisy on a shared machine, and specific to the
    /// machine it was measured on. Baselines are per runner.
    Timed,
    /// Counted: instructions, system calls, page faults and resident bytes per
    /// operation, repeatable to well under 1% on one build. Baselines are
    /// shared by every runner of one architecture (see `counts_key`).
    Counted,
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
    /// The density profile: a pooling allocator with slots sized to the
    /// component, no guard pages and no copy-on-write image.
    Pooling,
    /// The latency profile: a pooling allocator with copy-on-write memory
    /// images, Wasmtime's default 4 GiB reservation and guard pages (roughly
    /// what `wasmtime serve` runs).
    PoolingCow,
    /// Wasmtime's default on-demand allocator with its default settings.
    OnDemand,
}

impl Allocator {
    /// Every allocator, pooling profiles first.
    pub const ALL: [Allocator; 3] = [
        Allocator::Pooling,
        Allocator::PoolingCow,
        Allocator::OnDemand,
    ];

    /// Why this profile's instructions and system calls cannot be counted
    /// under Valgrind, if they cannot: `pooling-cow` reserves over 4 GiB of
    /// address space per slot, and its pool does not fit the address space
    /// Valgrind manages.
    pub fn not_countable(self) -> Option<&'static str> {
        match self {
            Allocator::PoolingCow => Some(
                "pooling-cow reserves over 4 GiB of address space per pool slot, more than Valgrind can map, so it is not counted under Valgrind; its wall-clock trials and the other profiles' counts guard it",
            ),
            _ => None,
        }
    }

    /// The short name used on the command line, in JSON and in trial names.
    pub fn name(self) -> &'static str {
        match self {
            Allocator::Pooling => "pooling",
            Allocator::PoolingCow => "pooling-cow",
            Allocator::OnDemand => "on-demand",
        }
    }

    /// Whether it is one of the pooling allocator's profiles.
    pub fn is_pooling(self) -> bool {
        matches!(self, Allocator::Pooling | Allocator::PoolingCow)
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
                expected: "pooling, pooling-cow, on-demand".to_owned(),
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
    /// Instantiate-and-drop cycles per second with every core busy (for
    /// components without a `run`, where lifecycles cannot be measured).
    InstantiationThroughput,
    /// Resident memory added by each live instance that has run (a slope).
    MemoryPerInstance,
    /// Cold start in a fresh process: engine, compile, instantiate, run.
    ColdStart,
    /// Cold start in-process from a precompiled artifact.
    ColdStartPrecompiled,
    /// Instructions per warm start (fresh store, WASI context, instantiate).
    InstructionsWarmStart,
    /// Instructions per lifecycle (instantiate, run, drop).
    InstructionsLifecycle,
    /// Instructions per call of the component's `run` on a fresh instance.
    InstructionsRun,
    /// Instructions per drop of a store that has run.
    InstructionsDrop,
    /// Instructions to create an engine with this profile's configuration.
    InstructionsEngine,
    /// Instructions to deserialize the artifact, link WASI and prepare
    /// `InstancePre` in a fresh engine.
    InstructionsDeserialize,
    /// Instructions of the first instantiation in a freshly loaded engine.
    InstructionsFirstInstantiate,
    /// Minor page faults per lifecycle, in steady state.
    PageFaultsLifecycle,
    /// Minor page faults per live instance that has run (a slope).
    PageFaultsPerInstance,
    /// System calls per lifecycle, in steady state.
    SyscallsLifecycle,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 17] = [
        Metric::WarmStart,
        Metric::Lifecycle,
        Metric::Throughput,
        Metric::InstantiationThroughput,
        Metric::MemoryPerInstance,
        Metric::ColdStart,
        Metric::ColdStartPrecompiled,
        Metric::InstructionsWarmStart,
        Metric::InstructionsLifecycle,
        Metric::InstructionsRun,
        Metric::InstructionsDrop,
        Metric::InstructionsEngine,
        Metric::InstructionsDeserialize,
        Metric::InstructionsFirstInstantiate,
        Metric::PageFaultsLifecycle,
        Metric::PageFaultsPerInstance,
        Metric::SyscallsLifecycle,
    ];

    /// The counted metrics, in report order.
    pub fn counted() -> impl Iterator<Item = Metric> {
        Metric::ALL
            .into_iter()
            .filter(|m| m.kind() == Kind::Counted)
    }

    /// The short name used in trial names, tolerance files and baselines.
    pub fn name(self) -> &'static str {
        match self {
            Metric::WarmStart => "warm-start",
            Metric::Lifecycle => "lifecycle",
            Metric::Throughput => "throughput",
            Metric::InstantiationThroughput => "instantiation-throughput",
            Metric::MemoryPerInstance => "memory-per-instance",
            Metric::ColdStart => "cold-start",
            Metric::ColdStartPrecompiled => "cold-start-precompiled",
            Metric::InstructionsWarmStart => "instructions-warm-start",
            Metric::InstructionsLifecycle => "instructions-lifecycle",
            Metric::InstructionsRun => "instructions-run",
            Metric::InstructionsDrop => "instructions-drop",
            Metric::InstructionsEngine => "instructions-engine",
            Metric::InstructionsDeserialize => "instructions-deserialize",
            Metric::InstructionsFirstInstantiate => "instructions-first-instantiate",
            Metric::PageFaultsLifecycle => "page-faults-lifecycle",
            Metric::PageFaultsPerInstance => "page-faults-per-instance",
            Metric::SyscallsLifecycle => "syscalls-lifecycle",
        }
    }

    /// The unit the metric is recorded in.
    pub fn unit(self) -> Unit {
        match self {
            Metric::WarmStart
            | Metric::Lifecycle
            | Metric::ColdStart
            | Metric::ColdStartPrecompiled => Unit::Nanoseconds,
            Metric::Throughput | Metric::InstantiationThroughput => Unit::PerSecond,
            Metric::MemoryPerInstance => Unit::Bytes,
            Metric::InstructionsWarmStart
            | Metric::InstructionsLifecycle
            | Metric::InstructionsRun
            | Metric::InstructionsDrop
            | Metric::InstructionsEngine
            | Metric::InstructionsDeserialize
            | Metric::InstructionsFirstInstantiate => Unit::Instructions,
            Metric::PageFaultsLifecycle | Metric::PageFaultsPerInstance => Unit::PageFaults,
            Metric::SyscallsLifecycle => Unit::Syscalls,
        }
    }

    /// Which way is better.
    pub fn direction(self) -> Direction {
        match self {
            Metric::Throughput | Metric::InstantiationThroughput => Direction::HigherIsBetter,
            _ => Direction::LowerIsBetter,
        }
    }

    /// Whether it is read from a clock or counted.
    pub fn kind(self) -> Kind {
        match self {
            Metric::WarmStart
            | Metric::Lifecycle
            | Metric::Throughput
            | Metric::InstantiationThroughput
            | Metric::ColdStart
            | Metric::ColdStartPrecompiled => Kind::Timed,
            _ => Kind::Counted,
        }
    }

    /// Whether counting it needs Valgrind.
    pub fn needs_valgrind(self) -> bool {
        self.unit() == Unit::Instructions || self == Metric::SyscallsLifecycle
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
