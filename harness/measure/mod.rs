//! Measuring: every phase of the benchmark, as functions from a prepared
//! subject and a plan to typed results.
//!
//! In-process phases (warm start, lifecycle, throughput) time a [`Runtime`]
//! directly. Phases whose figure is a fresh process's (cold start, memory,
//! density) run in child processes of the `siteboss` binary: see [`child`].

pub mod child;
pub mod cold;
pub mod count;
pub mod density;
pub mod lockstep;
pub mod memory;
pub mod native;
pub mod os;
pub mod serve;
pub mod throughput;
pub mod warm;

use crate::component::ComponentSource;
use crate::engine::{Footprint, Runtime, RuntimeOptions};
use crate::model::Allocator;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Live instances the pool has slots for in the latency phases (cold start,
/// warm start, lifecycle, throughput): enough for every thread, small enough
/// that the pool costs little to create: every slot costs resident memory
/// and engine-creation time up front (README, "The production configuration").
pub const LATENCY_POOL_CAPACITY: u32 = 1000;

/// How many samples each phase takes and where the concurrency phase stops.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Independent rounds of each in-process phase.
    pub rounds: usize,
    /// Untimed iterations before each round.
    pub warmup: usize,
    /// Timed samples per round (warm start, lifecycle).
    pub samples_per_round: usize,
    /// Fresh child processes per cold-start variant (after one untimed one).
    pub cold_processes: usize,
    /// Cold starts repeated inside this process per variant.
    pub cold_repeats: usize,
    /// Live-instance counts at which resident memory is read.
    pub memory_points: Vec<usize>,
    /// Child processes (rounds) of the memory phase.
    pub memory_rounds: usize,
    /// Seconds each throughput round runs.
    pub throughput_seconds: f64,
    /// Thread counts for throughput.
    pub threads: Vec<usize>,
    /// Native-process spawns (after a few untimed ones).
    pub native_samples: usize,
    /// Where the concurrency phase stops.
    pub density: DensityLimits,
    /// Live instances the pool has slots for in the latency phases.
    pub latency_pool_capacity: u32,
    /// How long each phase may take per profile, whatever its sample target.
    pub budget: Budgets,
}

/// The time each phase may take for one profile. A phase takes its sample
/// target or stops at its budget, whichever comes first, after a minimum that
/// keeps its figure meaningful; the report says when a budget cut a phase
/// short. Like criterion's measurement time or hyperfine's min/max runs.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Budgets {
    /// Each cold-start variant: its fresh processes and in-parent repeats.
    pub cold_seconds: f64,
    /// Warm start, every round with its warm-up.
    pub warm_seconds: f64,
    /// Lifecycle, every round with its warm-up and parts.
    pub lifecycle_seconds: f64,
    /// Throughput, every thread count and round.
    pub throughput_seconds: f64,
    /// The memory phase's child processes.
    pub memory_seconds: f64,
    /// The counted phase's Valgrind and page-fault children.
    pub counts_seconds: f64,
}

impl Budgets {
    /// The budgets of a full run: with three profiles, a component whose
    /// lifecycle is 50 ms or less finishes in about three minutes.
    pub fn full() -> Self {
        Budgets {
            cold_seconds: 8.0,
            warm_seconds: 3.0,
            lifecycle_seconds: 6.0,
            throughput_seconds: 8.0,
            memory_seconds: 8.0,
            counts_seconds: 15.0,
        }
    }

    /// No budget: every phase takes its sample target (the gate, which sets
    /// its own sample counts).
    pub fn unlimited() -> Self {
        let day = 86_400.0;
        Budgets {
            cold_seconds: day,
            warm_seconds: day,
            lifecycle_seconds: day,
            throughput_seconds: day,
            memory_seconds: day,
            counts_seconds: day,
        }
    }

    /// The budgets of `--quick`: with three profiles, about 30 seconds.
    pub fn quick() -> Self {
        Budgets {
            cold_seconds: 1.0,
            warm_seconds: 0.5,
            lifecycle_seconds: 1.0,
            throughput_seconds: 1.5,
            memory_seconds: 1.5,
            counts_seconds: 15.0,
        }
    }
}

/// A running time budget, split evenly between `parts` (rounds).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    start: Instant,
    total: Duration,
    parts: usize,
}

impl Budget {
    /// Starts a budget of `seconds`, to be shared by `parts` rounds.
    pub fn start(seconds: f64, parts: usize) -> Self {
        Budget {
            start: Instant::now(),
            total: Duration::from_secs_f64(seconds.max(0.0)),
            parts: parts.max(1),
        }
    }

    /// When round `part` (from 0) should start if every round kept to its share.
    pub fn part_start(&self, part: usize) -> Instant {
        self.start + self.total.mul_f64(part.min(self.parts) as f64 / self.parts as f64)
    }

    /// When round `part` (from 0) should end: its share of the budget.
    pub fn part_deadline(&self, part: usize) -> Instant {
        self.start + self.total.mul_f64((part + 1).min(self.parts) as f64 / self.parts as f64)
    }

    /// Whether the whole budget is spent.
    pub fn spent(&self) -> bool {
        self.start.elapsed() >= self.total
    }

    /// The time left.
    pub fn left(&self) -> Duration {
        self.total.saturating_sub(self.start.elapsed())
    }

    /// The time used so far.
    pub fn used(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Samples every round takes, however short its budget: the median of a
/// round needs a few.
pub const MIN_SAMPLES_PER_ROUND: usize = 3;
/// Rounds every in-process phase takes, however short its budget: the gate
/// and `compare` judge per-round figures and need at least this many.
pub const MIN_ROUNDS: usize = 3;

/// The limits the concurrency phase stops at, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DensityLimits {
    /// Stop at this many live instances.
    pub max_instances: u64,
    /// Stop when the process's resident memory would pass this, in bytes.
    pub max_memory_bytes: u64,
    /// Stop while the machine still has this much RAM available, in bytes.
    pub min_available_bytes: u64,
    /// Stop after this many seconds.
    pub time_limit_seconds: f64,
}

impl Plan {
    /// The default run: at most about three minutes on a 2-core machine for
    /// all three profiles, for a component whose lifecycle is 50 ms or less.
    pub fn full() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Plan {
            rounds: 7,
            warmup: 500,
            samples_per_round: 3000,
            cold_processes: 20,
            cold_repeats: 20,
            memory_points: vec![1, 10, 100, 1000, 10_000],
            memory_rounds: 5,
            throughput_seconds: 1.0,
            threads: thread_counts(cores),
            native_samples: 50,
            density: DensityLimits {
                max_instances: 1_000_000,
                max_memory_bytes: u64::MAX,
                min_available_bytes: default_headroom(),
                time_limit_seconds: 30.0,
            },
            latency_pool_capacity: LATENCY_POOL_CAPACITY,
            budget: Budgets::full(),
        }
    }

    /// `--quick`: about 30 seconds with three profiles, for CI.
    pub fn quick() -> Self {
        let full = Plan::full();
        Plan {
            rounds: 5,
            warmup: 200,
            samples_per_round: 1000,
            cold_processes: 5,
            cold_repeats: 5,
            memory_points: vec![1, 10, 100, 1000],
            memory_rounds: 3,
            throughput_seconds: 0.3,
            native_samples: 15,
            density: DensityLimits {
                max_instances: 20_000,
                time_limit_seconds: 3.0,
                ..full.density
            },
            budget: Budgets::quick(),
            ..full
        }
    }
}

/// 1 thread and every core (just 1 on a single-core machine).
fn thread_counts(cores: usize) -> Vec<usize> {
    if cores > 1 { vec![1, cores] } else { vec![1] }
}

/// The RAM the concurrency phase leaves free: 10% of the machine, at least 1 GiB.
pub fn default_headroom() -> u64 {
    let total = os::total_bytes().unwrap_or(8 << 30);
    (total / 10).max(1 << 30)
}

/// The component, the options for one allocator, its footprint, and its
/// precompiled artifact on disk, shared by every phase.
pub struct Subject {
    /// The component's bytes and name.
    pub source: ComponentSource,
    /// The options for this allocator; phases set the pool capacity.
    pub options: RuntimeOptions,
    /// What one instance needs.
    pub footprint: Footprint,
    /// The precompiled artifact for these options, written once.
    pub artifact: PathBuf,
    /// Why `wasi:cli/run` is not called, when the probe's run failed.
    pub run_error: Option<String>,
    /// How long compiling the component for this profile took (an estimate
    /// the phases size their work to their budgets with).
    pub compile_time: Duration,
}

impl Subject {
    /// Probes the component and writes its precompiled artifact into `dir`.
    ///
    /// # Errors
    ///
    /// Fails when the component is invalid or cannot be linked.
    pub fn prepare(
        source: ComponentSource,
        allocator: Allocator,
        base: &RuntimeOptions,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut options = RuntimeOptions {
            allocator,
            ..base.clone()
        };
        let (footprint, run_error) = Runtime::probe(&source, &options)?;
        // A component whose run fails is still measured: every phase then
        // instantiates without running, and the report says why.
        let run_error = run_error.map(|e| e.to_string());
        if run_error.is_some() {
            options.run = false;
        }
        let t1 = Instant::now();
        let artifact_bytes = Runtime::precompile(&source, &options, footprint)?;
        let compile_time = t1.elapsed();
        let artifact = dir.join(format!("{}.cwasm", allocator.name()));
        std::fs::write(&artifact, &artifact_bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot write the precompiled artifact: {e}",
                artifact.display()
            )
        })?;
        Ok(Subject {
            source,
            options,
            footprint,
            artifact,
            run_error,
            compile_time,
        })
    }

    /// How long one lifecycle (or instantiation, without `run`) takes: the
    /// second of two, timed in a runtime with a small pool. An estimate the
    /// phases size their work to their budgets with.
    ///
    /// # Errors
    ///
    /// Fails when the artifact does not load or the instance fails.
    pub fn lifecycle_estimate(&self) -> anyhow::Result<Duration> {
        let rt = self.runtime(2)?;
        let once = || -> anyhow::Result<Duration> {
            let t0 = Instant::now();
            let mut live = rt.instantiate()?;
            if rt.has_run() {
                rt.run(&mut live)?;
            }
            drop(live);
            Ok(t0.elapsed())
        };
        once()?;
        once()
    }

    /// The options with the pool sized for `capacity` live instances.
    pub fn options_with_capacity(&self, capacity: u64) -> RuntimeOptions {
        RuntimeOptions {
            pool_capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
            ..self.options.clone()
        }
    }

    /// A runtime loaded from the artifact, with a pool of `capacity` slots.
    ///
    /// # Errors
    ///
    /// Fails when the artifact does not load.
    pub fn runtime(&self, capacity: u64) -> anyhow::Result<Runtime> {
        let bytes = std::fs::read(&self.artifact).map_err(|e| {
            anyhow::anyhow!("{}: cannot read the artifact: {e}", self.artifact.display())
        })?;
        Runtime::deserialize(
            &bytes,
            &self.source,
            &self.options_with_capacity(capacity),
            self.footprint,
        )
    }
}
