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
    /// Whether each thread of a multi-thread throughput round has an engine,
    /// pool and loaded component of its own instead of sharing one.
    pub engine_per_thread: bool,
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
    /// What the whole run of one component should take, probing and
    /// compiling included; `None` for no limit. Profiles after the first
    /// get their phase budgets scaled down when the profiles before them
    /// show the run would overshoot it (see [`Plan::scaled`]).
    pub run_seconds: Option<f64>,
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
            // Three minutes, less a margin for phases that overrun their
            // budget by a last sample or a child's exit.
            run_seconds: Some(165.0),
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
            run_seconds: None,
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
            // Thirty seconds, less a margin.
            run_seconds: Some(26.0),
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
        self.start
            + self
                .total
                .mul_f64(part.min(self.parts) as f64 / self.parts as f64)
    }

    /// When round `part` (from 0) should end: its share of the budget.
    pub fn part_deadline(&self, part: usize) -> Instant {
        self.start
            + self
                .total
                .mul_f64((part + 1).min(self.parts) as f64 / self.parts as f64)
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
    /// Give each fill's process a heap region advised for transparent huge
    /// pages ([`crate::heap::huge_page_arena`]).
    #[serde(default)]
    pub huge_page_heap: bool,
}

/// A reading of the process at `n` instances; as the one-thread fill's
/// result, what that fill added: its instances, and the resident memory,
/// mappings and address space they took in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Growth {
    /// Instances made.
    pub n: u64,
    /// Resident bytes added.
    pub rss: u64,
    /// Mappings added.
    pub maps: u64,
    /// Address space added, in bytes.
    pub vsize: u64,
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
            engine_per_thread: false,
            native_samples: 50,
            density: DensityLimits {
                max_instances: 1_000_000,
                max_memory_bytes: u64::MAX,
                min_available_bytes: default_headroom(),
                // Each fill's own limit. 30 s until round 2's AMD runs: the
                // one-thread fill of a million hello instances took 21 us
                // each on the Intel runner but 27-44 us on the AMD one,
                // where first touches of guest memory the host must back
                // again cost 7-10 us a page (README, "Round 2 on the AMD
                // runner"), and stopped at 0.64-0.87M on the time limit.
                time_limit_seconds: 60.0,
                huge_page_heap: true,
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

impl Plan {
    /// This plan with every timed phase's budget multiplied by `factor` (at
    /// most 1), and the concurrency phase's time limit too unless
    /// `keep_density_limit`. Sample targets stay: a phase stops at
    /// whichever comes first. The counted phase keeps its budget: its plan
    /// must not depend on how fast the machine was.
    #[must_use]
    pub fn scaled(&self, factor: f64, keep_density_limit: bool) -> Plan {
        let f = factor.clamp(0.0, 1.0);
        let b = &self.budget;
        let density_factor = if keep_density_limit { 1.0 } else { f };
        Plan {
            budget: Budgets {
                cold_seconds: b.cold_seconds * f,
                warm_seconds: b.warm_seconds * f,
                lifecycle_seconds: b.lifecycle_seconds * f,
                throughput_seconds: b.throughput_seconds * f,
                memory_seconds: b.memory_seconds * f,
                ..*b
            },
            density: DensityLimits {
                time_limit_seconds: self.density.time_limit_seconds * density_factor,
                ..self.density
            },
            ..self.clone()
        }
    }

    /// The seconds one fill of the concurrency phase is predicted to take to
    /// reach `max_instances`, for a component whose lifecycle takes
    /// `lifecycle_seconds`, when that is within the phase's time limit.
    /// Such a fill ends on its count, so its time limit is not scaled:
    /// cutting it would only turn "reached the cap" into "time limit" (for
    /// the embedded hello, the million-instance headline). A slower
    /// component's fill ends on the time limit anyway, and scaling that
    /// limit only gives fewer instances, said in the report.
    #[must_use]
    pub fn fill_to_cap_seconds(&self, lifecycle_seconds: f64) -> Option<f64> {
        let fill = self.density.max_instances as f64 * lifecycle_seconds * FILL_PER_LIFECYCLE;
        (fill <= self.density.time_limit_seconds).then_some(fill)
    }
}

/// A pooled fill's time per instance over a warm lifecycle's, measured on
/// the embedded hello on the Intel runner: 16.5-20.2 s for a million
/// against 7.4-11.2 us lifecycles, 1.8-2.2x (the fill keeps every instance,
/// so fresh slots and heap fault in). On the AMD runner it was 3.6-4.9x
/// (27-36 us against 7.4-12.0 us), as first touches cost more there; the
/// 60 s time limit leaves room for that, and a larger factor here would
/// over-predict the Intel runner's fill and cut its other phases.
pub const FILL_PER_LIFECYCLE: f64 = 2.0;

/// One lifecycle in `rt`, timed: instantiate, run or serve when the
/// component has a workload, drop.
fn timed_lifecycle(rt: &Runtime) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let mut live = rt.instantiate()?;
    if rt.has_run() {
        rt.run(&mut live)?;
    }
    drop(live);
    Ok(t0.elapsed())
}

/// The factor profile `done.len()` of `profiles` scales its budgets by, so
/// the run ends within `run_seconds` of its start. `done` holds, for each
/// profile already run, its wall-clock seconds, the part of them no budget
/// can shorten (a cold start from `.wasm` compiles the component however
/// short its budget), and the factor its own budgets were scaled by. The
/// rest of its time, divided by that factor, is what it would have taken
/// unscaled (an overestimate for phases that ended on their sample targets,
/// so the run errs short). The time left, less the profiles to come's fixed
/// parts, is spread over their unscaled time at the mean of the profiles
/// already run ([`scale_for_room`] decides what happens when the fixed parts
/// alone fill the time left). With `done` empty it gives 1: the first profile's scale is
/// predicted instead, from the component's compile and lifecycle times
/// (`benchmark::first_profile_scale`). Never below `MIN_BUDGET_SCALE`, so
/// every phase still takes its minimum rounds.
pub fn budget_scale(
    run_seconds: Option<f64>,
    elapsed: f64,
    done: &[(f64, f64, f64)],
    profiles: usize,
) -> f64 {
    let (Some(target), false) = (run_seconds, done.is_empty()) else {
        return 1.0;
    };
    let left = profiles.saturating_sub(done.len()).max(1) as f64;
    let n = done.len() as f64;
    let fixed = done.iter().map(|d| d.1.min(d.0)).sum::<f64>() / n;
    let unscaled = done
        .iter()
        .map(|d| (d.0 - d.1.min(d.0)) / d.2.max(MIN_BUDGET_SCALE))
        .sum::<f64>()
        / n;
    if unscaled <= 0.0 {
        return 1.0;
    }
    scale_for_room(target - elapsed - left * fixed, left * unscaled, target)
}

/// A profile's concurrency phase whose time limit was kept (it was predicted
/// to fill to its cap): its seconds, counted as fixed in [`budget_scale`]'s
/// `done`, and the live instances it reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeptFill {
    /// The phase's wall-clock seconds: both fills and both teardowns.
    pub seconds: f64,
    /// Live instances the one-thread fill reached.
    pub instances: u64,
}

/// `done` as [`budget_scale`] should see it before the profiles still to
/// run, whose fills can reach at most `caps` instances (this profile's
/// first): each kept fill's seconds (part of both the profile's seconds and
/// its fixed part) become the mean over `caps` of what that many instances
/// would take at its pace, each at most `most_seconds` (the two fills' time
/// limits); `budget_scale` counts the profiles to come as alike, so it
/// counts their predicted fills in sum. Without this, the pooling profile's
/// million-instance fill (a 68-80 s concurrency phase on the AMD runner) was
/// predicted for the copy-on-write pool, which holds at most 16,131
/// instances on x86-64 and fills them in a second, and cut that profile's budgets to
/// their 10% floor.
pub fn with_fills_predicted(
    done: &[(f64, f64, f64)],
    fills: &[Option<KeptFill>],
    caps: &[u64],
    most_seconds: f64,
) -> Vec<(f64, f64, f64)> {
    done.iter()
        .zip(fills.iter().chain(std::iter::repeat(&None)))
        .map(|(&(all, fixed, scale), fill)| match fill {
            Some(f)
                if f.instances > 0
                    && f.seconds <= fixed
                    && f.seconds <= all
                    && !caps.is_empty() =>
            {
                let predicted = caps
                    .iter()
                    .map(|&cap| {
                        (f.seconds * (cap as f64 / f.instances as f64))
                            .min(most_seconds.max(f.seconds))
                    })
                    .sum::<f64>()
                    / caps.len() as f64;
                (
                    all - f.seconds + predicted,
                    fixed - f.seconds + predicted,
                    scale,
                )
            }
            _ => (all, fixed, scale),
        })
        .collect()
}

/// The scale that fits `scalable` seconds (unscaled) into `room`; when the
/// fixed costs leave no room, the floor if cutting would save a tenth of
/// the target or more, and no cut when it would save less (a quick run's
/// counted phase fills the time, say: its few other seconds cut to their
/// minimums would cost their figures for almost nothing).
pub fn scale_for_room(room: f64, scalable: f64, target: f64) -> f64 {
    if scalable <= 0.0 {
        return 1.0;
    }
    if room <= 0.0 && scalable * (1.0 - MIN_BUDGET_SCALE) < 0.1 * target {
        return 1.0;
    }
    (room / scalable).clamp(MIN_BUDGET_SCALE, 1.0)
}

/// The least [`budget_scale`] gives.
pub const MIN_BUDGET_SCALE: f64 = 0.1;

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
        Ok(Self::prepare_all(&source, &[allocator], base, dir)?.remove(0))
    }

    /// Prepares one subject per allocator, probing the component once (the
    /// probe runs it on-demand whatever the profile, so its answer is the
    /// same for all) and compiling it once per distinct code generation:
    /// profiles whose engines would load each other's artifacts
    /// ([`crate::engine::artifact_key`]) share one. For a megabyte-sized
    /// component each compile saved is about a second.
    ///
    /// # Errors
    ///
    /// Fails when the component is invalid or cannot be linked.
    pub fn prepare_all(
        source: &ComponentSource,
        allocators: &[Allocator],
        base: &RuntimeOptions,
        dir: &Path,
    ) -> anyhow::Result<Vec<Self>> {
        let (footprint, run_error) = Runtime::probe(source, base)?;
        // A component whose run fails is still measured: every phase then
        // instantiates without running, and the report says why.
        let run_error = run_error.map(|e| e.to_string());
        let mut compiled: Vec<(u64, PathBuf, Duration)> = Vec::new();
        let mut subjects = Vec::with_capacity(allocators.len());
        for &allocator in allocators {
            let mut options = RuntimeOptions {
                allocator,
                ..base.clone()
            };
            if run_error.is_some() {
                options.run = false;
            }
            let key = crate::engine::artifact_key(&options, footprint)?;
            let artifact = dir.join(format!("{}.cwasm", allocator.name()));
            let compile_time = match compiled.iter().find(|(k, _, _)| *k == key) {
                Some((_, path, took)) => {
                    std::fs::copy(path, &artifact).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: cannot write the precompiled artifact: {e}",
                            artifact.display()
                        )
                    })?;
                    *took
                }
                None => {
                    let t1 = Instant::now();
                    let artifact_bytes = Runtime::precompile(source, &options, footprint)?;
                    let took = t1.elapsed();
                    std::fs::write(&artifact, &artifact_bytes).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: cannot write the precompiled artifact: {e}",
                            artifact.display()
                        )
                    })?;
                    compiled.push((key, artifact.clone(), took));
                    took
                }
            };
            subjects.push(Subject {
                source: source.clone(),
                options,
                footprint,
                artifact,
                run_error: run_error.clone(),
                compile_time,
            });
        }
        Ok(subjects)
    }

    /// The fastest of at least two and up to `samples` lifecycles in one
    /// runtime, stopping after `max_seconds`: the steady pace, for predicting how long phases
    /// of many lifecycles take (a fresh runtime's first few are several times
    /// slower).
    ///
    /// # Errors
    ///
    /// As [`Subject::lifecycle_estimate`].
    pub fn steady_lifecycle_estimate(
        &self,
        samples: usize,
        max_seconds: f64,
    ) -> anyhow::Result<Duration> {
        let rt = self.runtime(2)?;
        let started = Instant::now();
        let mut best = Duration::MAX;
        for i in 0..samples.max(2) {
            best = best.min(timed_lifecycle(&rt)?);
            // Never the first alone: a fresh runtime's first lifecycle is
            // the slow one.
            if i >= 1 && started.elapsed().as_secs_f64() >= max_seconds {
                break;
            }
        }
        Ok(best)
    }

    /// How long one lifecycle (or instantiation, without `run`) takes: the
    /// fastest of up to five, within 50 ms, timed in a runtime with a small
    /// pool. An estimate the phases size their work to their budgets with;
    /// the fastest, because one sample that a busy machine preempted read
    /// milliseconds and cut a memory phase's planned N.
    ///
    /// # Errors
    ///
    /// Fails when the artifact does not load or the instance fails.
    pub fn lifecycle_estimate(&self) -> anyhow::Result<Duration> {
        self.steady_lifecycle_estimate(5, 0.05)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One profile's (total, fixed, share) seconds, and its kept fill.
    type DoneAndFill = ([(f64, f64, f64); 1], [Option<KeptFill>; 1]);

    /// pooling: 110 s in all, 80 of them fixed, 75 of those the fill of a
    /// million kept to its cap.
    fn a_kept_million() -> DoneAndFill {
        let fill = KeptFill {
            seconds: 75.0,
            instances: 1_000_000,
        };
        ([(110.0, 80.0, 0.6)], [Some(fill)])
    }

    #[test]
    fn kept_fills_are_predicted_at_each_cap_to_come_in_sum() {
        let (done, fill) = a_kept_million();
        // Copy-on-write (cap 20,000) then on-demand with a raised map count
        // (cap 1,000,000): 1.5 s and 75 s, so 38.25 s each on average.
        let p = with_fills_predicted(&done, &fill, &[20_000, 1_000_000], 120.0);
        assert!((p[0].1 - (5.0 + 38.25)).abs() < 1e-9, "{p:?}");
        assert!(((p[0].0 - p[0].1) - 30.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p[0].2, 0.6);
        // No profile to come: unchanged.
        assert_eq!(
            with_fills_predicted(&done, &fill, &[], 120.0),
            done.to_vec()
        );
    }

    #[test]
    fn a_kept_fill_is_predicted_at_the_cap_of_the_profile_to_come() {
        let (done, fill) = a_kept_million();
        // A pool of 16,131 slots: the fill is predicted at 1.2 s, and the
        // scalable part (30 s at a scale of 0.6) stays what it was.
        let p = with_fills_predicted(&done, &fill, &[16_131], 120.0);
        let (all, fixed, scale) = p[0];
        assert!((fixed - (5.0 + 75.0 * 0.016_131)).abs() < 1e-9, "{p:?}");
        assert!(((all - fixed) - 30.0).abs() < 1e-9, "{p:?}");
        assert_eq!(scale, 0.6);
        // The next profile is then not cut to the floor.
        let cut = budget_scale(Some(165.0), 115.0, &done, 3);
        let predicted = budget_scale(Some(165.0), 115.0, &p, 3);
        assert_eq!(cut, MIN_BUDGET_SCALE);
        assert!(predicted > 0.3, "{predicted}");
        // A cap at or above the instances reached keeps the fill's seconds,
        // and more instances are predicted at its pace up to the time limits.
        assert_eq!(
            with_fills_predicted(&done, &fill, &[1_000_000], 120.0),
            done.to_vec()
        );
        let small = [(20.0, 10.0, 1.0)];
        let ten_k = [Some(KeptFill {
            seconds: 5.0,
            instances: 10_000,
        })];
        let more = with_fills_predicted(&small, &ten_k, &[40_000], 120.0);
        assert_eq!(more, vec![(35.0, 25.0, 1.0)]);
        let capped = with_fills_predicted(&small, &ten_k, &[1_000_000], 120.0);
        assert_eq!(capped, vec![(135.0, 125.0, 1.0)]);
        // No kept fill, no fill reached, or seconds that are not part of the
        // fixed part: unchanged.
        assert_eq!(
            with_fills_predicted(&done, &[None], &[10], 120.0),
            done.to_vec()
        );
        assert_eq!(
            with_fills_predicted(&done, &[], &[10], 120.0),
            done.to_vec()
        );
        let none = [Some(KeptFill {
            seconds: 75.0,
            instances: 0,
        })];
        assert_eq!(
            with_fills_predicted(&done, &none, &[10], 120.0),
            done.to_vec()
        );
        let odd = [Some(KeptFill {
            seconds: 90.0,
            instances: 1_000,
        })];
        assert_eq!(
            with_fills_predicted(&done, &odd, &[10], 120.0),
            done.to_vec()
        );
    }

    #[test]
    fn with_nothing_run_yet_or_no_target_the_factor_is_one() {
        assert_eq!(budget_scale(Some(27.0), 20.0, &[], 3), 1.0);
        assert_eq!(budget_scale(None, 500.0, &[(200.0, 0.0, 1.0)], 3), 1.0);
    }

    #[test]
    fn later_profiles_share_the_time_left_by_what_the_earlier_ones_took() {
        // 10 s spent, the first profile took 8 s: two more at 8 s fit in 17 s.
        assert_eq!(budget_scale(Some(27.0), 10.0, &[(8.0, 0.0, 1.0)], 3), 1.0);
        // A slow component: 13 s spent, the first took 10.6 s, two to go in 14 s.
        let f = budget_scale(Some(27.0), 13.0, &[(10.6, 0.0, 1.0)], 3);
        assert!((f - 14.0 / 21.2).abs() < 1e-9, "{f}");
        // 2.6 s of each profile cannot be cut: only the rest is scaled.
        let f = budget_scale(Some(27.0), 13.0, &[(10.6, 2.6, 1.0)], 3);
        assert!((f - (14.0 - 5.2) / 16.0).abs() < 1e-9, "{f}");
        // A profile that ran at half its budgets would have taken twice as
        // long unscaled: the next is not handed its full budgets.
        let f = budget_scale(Some(165.0), 56.0, &[(51.0, 8.0, 0.5)], 3);
        assert!((f - (109.0 - 16.0) / 172.0).abs() < 1e-9, "{f}");
        // The last profile gets what is left of the target.
        let f = budget_scale(Some(27.0), 22.0, &[(10.0, 0.0, 1.0), (8.0, 0.0, 1.0)], 3);
        assert!((f - 5.0 / 9.0).abs() < 1e-9, "{f}");
        // Nearly out of time: the floor, never zero or negative.
        assert_eq!(
            budget_scale(Some(27.0), 26.0, &[(20.0, 0.0, 1.0)], 3),
            MIN_BUDGET_SCALE
        );
        assert_eq!(
            budget_scale(Some(27.0), 40.0, &[(20.0, 0.0, 1.0)], 3),
            MIN_BUDGET_SCALE
        );
        // The fixed costs to come fill the time left: a cut saving little
        // is not made, one saving much is.
        assert_eq!(budget_scale(Some(27.0), 12.0, &[(12.0, 11.0, 1.0)], 3), 1.0);
        assert_eq!(
            budget_scale(Some(26.0), 15.6, &[(9.2, 5.5, 0.16)], 3),
            MIN_BUDGET_SCALE
        );
        assert_eq!(
            budget_scale(Some(27.0), 20.0, &[(9.0, 9.0, 1.0)], 3),
            1.0,
            "nothing to scale"
        );
    }

    #[test]
    fn a_fill_is_predicted_to_reach_the_cap_only_within_the_limit() {
        let p = Plan::full();
        let limit = p.density.time_limit_seconds;
        let n = p.density.max_instances as f64;
        let fast = limit / n / FILL_PER_LIFECYCLE / 2.0;
        assert_eq!(p.fill_to_cap_seconds(fast), Some(limit / 2.0));
        assert_eq!(p.fill_to_cap_seconds(fast * 4.0), None);
    }

    #[test]
    fn scaling_shrinks_timed_budgets_but_not_sample_targets_or_the_counted_plan() {
        let p = Plan::quick();
        let s = p.scaled(0.5, false);
        assert_eq!(s.budget.warm_seconds, p.budget.warm_seconds * 0.5);
        assert_eq!(s.budget.cold_seconds, p.budget.cold_seconds * 0.5);
        assert_eq!(
            s.density.time_limit_seconds,
            p.density.time_limit_seconds * 0.5
        );
        assert_eq!(s.budget.counts_seconds, p.budget.counts_seconds);
        assert_eq!(
            (s.rounds, s.samples_per_round, s.cold_processes),
            (p.rounds, p.samples_per_round, p.cold_processes)
        );
        assert_eq!(p.scaled(3.0, false), p, "never scaled up");
        let kept = p.scaled(0.5, true);
        assert_eq!(
            kept.density.time_limit_seconds,
            p.density.time_limit_seconds
        );
        assert_eq!(kept.budget.warm_seconds, s.budget.warm_seconds);
    }
}
