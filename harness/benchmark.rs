//! `siteboss benchmark`: every phase, for every allocator asked for, into one
//! `BenchmarkResult`, handed to a sink after each phase so that an interrupted
//! or crashed run loses nothing already measured.

use crate::component::ComponentSource;
use crate::engine::RuntimeOptions;
use crate::measure::{self, Plan, Subject};
use crate::model::{
    Allocator, BenchmarkResult, Budgeted, ComponentInfo, ConfigurationResult, SCHEMA_NAME,
    SCHEMA_VERSION, Settings, Skipped, Status,
};
use crate::progress::Progress;
use std::path::{Path, PathBuf};

/// Everything a benchmark run is given.
#[derive(Debug, Clone)]
pub struct BenchmarkOptions {
    /// Sample counts and limits.
    pub plan: Plan,
    /// Whether the plan is the `--quick` preset (recorded in the result).
    pub quick: bool,
    /// Allocators to measure, in order.
    pub allocators: Vec<Allocator>,
    /// The user's component, or `None` for the embedded one.
    pub component: Option<PathBuf>,
    /// Which embedded component, when `component` is `None`.
    pub embedded: Option<crate::component::Embedded>,
    /// Runtime options shared by every allocator.
    pub runtime: RuntimeOptions,
    /// The native programs to spawn, or `None` to skip the native phase.
    pub native: Option<measure::native::NativePrograms>,
    /// The phases to measure per allocator (in [`Phase::ALL`] order whatever
    /// the order here); the others are recorded as skipped.
    pub phases: Vec<Phase>,
}

/// A phase measured per allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Cold start from the `.wasm`.
    ColdStart,
    /// Cold start from a precompiled artifact.
    ColdStartPrecompiled,
    /// Warm start.
    WarmStart,
    /// Instantiate, run, drop.
    Lifecycle,
    /// Instantiations and lifecycles per second.
    Throughput,
    /// Total memory for N and memory per instance.
    Memory,
    /// Maximum concurrent instances.
    Concurrency,
    /// Instructions, system calls and page faults per operation.
    Counts,
}

impl Phase {
    /// Every phase, in the order a run measures them.
    pub const ALL: [Phase; 8] = [
        Phase::ColdStart,
        Phase::ColdStartPrecompiled,
        Phase::WarmStart,
        Phase::Lifecycle,
        Phase::Throughput,
        Phase::Memory,
        Phase::Concurrency,
        Phase::Counts,
    ];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Phase::ColdStart => "cold start",
            Phase::ColdStartPrecompiled => "cold start (precompiled)",
            Phase::WarmStart => "warm start",
            Phase::Lifecycle => "lifecycle",
            Phase::Throughput => "throughput",
            Phase::Memory => "memory",
            Phase::Concurrency => "concurrency",
            Phase::Counts => "counts",
        }
    }

    fn progress_steps(self, p: &Plan) -> usize {
        match self {
            Phase::ColdStart | Phase::ColdStartPrecompiled => p.cold_processes + 1,
            Phase::WarmStart | Phase::Lifecycle => p.rounds,
            Phase::Throughput => p.threads.len() * p.rounds,
            Phase::Memory => p.memory_rounds,
            Phase::Concurrency | Phase::Counts => 1,
        }
    }
}

/// How many progress steps a run takes.
pub fn progress_steps(o: &BenchmarkOptions) -> u64 {
    let p = &o.plan;
    let per_alloc: usize = o.phases.iter().map(|ph| ph.progress_steps(p)).sum();
    (per_alloc * o.allocators.len()
        + if o.native.is_some() {
            p.native_samples.div_ceil(8) + 1
        } else {
            0
        }) as u64
}

/// `cli`, `http` or `none`.
fn workload_name(f: crate::engine::Footprint) -> String {
    match (f.has_run, f.http) {
        (true, true) => "http",
        (true, false) => "cli",
        (false, _) => "none",
    }
    .into()
}

/// What an HTTP handler answers a fresh instance, from one more served
/// request (none when it fails: the probe's error is reported instead).
fn response_of(subject: &Subject) -> Option<crate::model::ResponseInfo> {
    if !subject.footprint.http || subject.run_error.is_some() {
        return None;
    }
    let rt = subject.runtime(1).ok()?;
    let served = rt.serve_once().ok()??;
    Some(crate::model::ResponseInfo {
        status: served.status,
        headers: served.headers,
        body_bytes: served.body_bytes,
    })
}

/// Runs the benchmark.
///
/// `exe` is the `siteboss` binary, spawned for the child-process phases.
/// `sink` receives the result after every phase, marked partial until the end.
///
/// # Errors
///
/// Fails when the component cannot be read, compiled or linked: nothing can be
/// measured then. A phase that fails later is recorded as not measured.
pub fn run(
    o: &BenchmarkOptions,
    exe: &Path,
    progress: &Progress,
    sink: &mut dyn FnMut(&BenchmarkResult),
) -> anyhow::Result<BenchmarkResult> {
    let source = ComponentSource::resolve(o.component.as_deref(), o.embedded)?;
    let mut dir = tempfile::Builder::new()
        .prefix("siteboss-")
        .tempdir()
        .map_err(|e| anyhow::anyhow!("cannot create a temporary directory: {e}"))?;
    // SITEBOSS_KEEP_TEMP=1 keeps child requests, replies, artifacts and
    // Valgrind's output for inspection.
    if std::env::var_os("SITEBOSS_KEEP_TEMP").is_some_and(|v| v != "0") {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    let fingerprint = crate::fingerprint::current();
    progress.phase("probing and compiling");
    let prepare_started = std::time::Instant::now();
    let subjects = Subject::prepare_all(&source, &o.allocators, &o.runtime, dir.path())?;
    let prepare_seconds = prepare_started.elapsed().as_secs_f64();
    let p = &o.plan;
    let first = &subjects[0];
    let mut result = BenchmarkResult {
        schema: SCHEMA_NAME.into(),
        schema_version: SCHEMA_VERSION,
        status: Status::Partial,
        status_reason: Some("the run has not finished".into()),
        started_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        runner_id: crate::fingerprint::runner_id(&fingerprint),
        runner: fingerprint,
        component: ComponentInfo {
            name: source.name.clone(),
            path: source.path.as_ref().map(|p| p.display().to_string()),
            bytes: source.bytes.len() as u64,
            fnv1a64: source.fnv1a64(),
            has_run: first.footprint.has_run,
            artifact_bytes: std::fs::metadata(&first.artifact)
                .map(|m| m.len())
                .unwrap_or(0),
            workload: Some(workload_name(first.footprint)),
            request: first.footprint.http.then(|| o.runtime.request.describe()),
            response: response_of(first),
        },
        settings: Settings {
            quick: o.quick,
            rounds: p.rounds,
            samples_per_round: p.samples_per_round,
            cold_processes: p.cold_processes,
            memory_rounds: p.memory_rounds,
            memory_points: p.memory_points.clone(),
            throughput_seconds: p.throughput_seconds,
            threads: p.threads.clone(),
            engine_per_thread: p.engine_per_thread,
            max_instances: p.density.max_instances,
            max_memory_bytes: p.density.max_memory_bytes,
            min_available_bytes: p.density.min_available_bytes,
            time_limit_seconds: p.density.time_limit_seconds,
            budget_seconds: Some(budget_table(p)),
        },
        native: None,
        prepare_seconds: Some(prepare_seconds),
        configurations: Vec::new(),
    };
    sink(&result);

    if let Some(programs) = &o.native {
        progress.phase("native process");
        match measure::native::native(programs, p.native_samples, &|| progress.tick()) {
            Ok(n) => result.native = Some(n),
            Err(_) if crate::interrupt::requested() => return Ok(interrupted(result, sink)),
            Err(e) => eprintln!("warning: native phase not measured: {e:#}"),
        }
        progress.tick();
        sink(&result);
    }

    // Each profile's wall-clock seconds, for scaling the budgets of the
    // profiles after it to the run's time target.
    let mut profile_seconds: Vec<(f64, f64, f64)> = Vec::new();
    // Each profile's concurrency phase, when its time limit was kept: later
    // profiles' fills are predicted from it at their own caps.
    let mut kept_fills: Vec<Option<measure::KeptFill>> = Vec::new();
    // Whether the concurrency phase is predicted to reach its cap within its
    // time limit (decided on the first profile, kept for the rest).
    let mut keep_density_limit = false;
    for subject in &subjects {
        let a = subject.options.allocator;
        let profile_started = std::time::Instant::now();
        let scale = if profile_seconds.is_empty() {
            let (scale, keep) = first_profile_scale(
                o,
                subject,
                subjects.len(),
                prepare_started.elapsed().as_secs_f64(),
            );
            keep_density_limit = keep;
            scale
        } else {
            // This profile and the ones after it, each at its own cap.
            let caps: Vec<u64> = subjects[profile_seconds.len()..]
                .iter()
                .map(|s| fill_cap(s, &o.plan))
                .collect();
            let done = measure::with_fills_predicted(
                &profile_seconds,
                &kept_fills,
                &caps,
                2.0 * o.plan.density.time_limit_seconds,
            );
            measure::budget_scale(
                o.plan.budget.run_seconds,
                prepare_started.elapsed().as_secs_f64(),
                &done,
                subjects.len(),
            )
        };
        // Within 1% of the budgets is noise in the prediction, not a cut.
        let scale = if scale >= 0.99 { 1.0 } else { scale };
        let scaled = BenchmarkOptions {
            plan: o.plan.scaled(scale, keep_density_limit),
            ..o.clone()
        };
        let o = &scaled;
        let p = &o.plan;
        let mut cfg = ConfigurationResult {
            allocator: a,
            config: describe(subject, p),
            skipped: Vec::new(),
            budgeted: Vec::new(),
            cold_start: None,
            cold_start_precompiled: None,
            warm_start: None,
            warm_start_histogram: None,
            lifecycle: None,
            memory: None,
            density: None,
            throughput: Vec::new(),
            counts: None,
            phase_seconds: Default::default(),
            phase_steal: Default::default(),
            budget_scale: (scale < 1.0).then_some(scale),
        };
        if let Some(err) = &subject.run_error {
            cfg.skipped.push(Skipped {
                phase: "run".into(),
                reason: format!(
                    "the {} failed when probed ({err}); every phase instantiates without running, and the lifecycle phase is skipped",
                    if subject.footprint.http { "request" } else { "wasi:cli/run" }
                ),
            });
        }
        if !subject.footprint.has_run {
            cfg.skipped.push(Skipped {
                phase: "run".into(),
                reason: "the component exports neither wasi:cli/run nor wasi:http/incoming-handler; only the instantiation phases apply".into(),
            });
        }
        for phase in Phase::ALL.iter().filter(|ph| !o.phases.contains(ph)) {
            cfg.skipped.push(Skipped {
                phase: phase.name().into(),
                reason: if o.quick && *phase == Phase::Counts && o.phases.len() + 1 == Phase::ALL.len() {
                    "not in --quick (counting under Valgrind takes seconds per profile); add it with --phases"
                        .into()
                } else {
                    "not selected (--phases)".into()
                },
            });
        }
        result.configurations.push(cfg);
        let idx = result.configurations.len() - 1;
        for phase in Phase::ALL.into_iter().filter(|ph| o.phases.contains(ph)) {
            progress.phase(&format!("{a}: {}", phase.name()));
            let phase_started = std::time::Instant::now();
            let ticks_before = crate::measure::os::cpu_ticks();
            let outcome = run_phase(
                phase,
                subject,
                o,
                exe,
                dir.path(),
                progress,
                &mut result.configurations[idx],
            );
            result.configurations[idx]
                .phase_seconds
                .insert(phase.name().into(), phase_started.elapsed().as_secs_f64());
            if let Some(steal) = ticks_before
                .zip(crate::measure::os::cpu_ticks())
                .and_then(|(b, a)| crate::measure::os::steal_share(b, a))
            {
                result.configurations[idx]
                    .phase_steal
                    .insert(phase.name().into(), steal);
            }
            if crate::interrupt::requested() {
                return Ok(interrupted(result, sink));
            }
            if let Err(e) = outcome {
                result.configurations[idx].skipped.push(Skipped {
                    phase: phase.name().into(),
                    reason: format!("{e:#}"),
                });
            }
            let cut = budget_cuts(phase, p, &result.configurations[idx]);
            result.configurations[idx].budgeted.extend(cut);
            sink(&result);
        }
        // What no budget shortens: a cold start from .wasm compiles however
        // short its budget, the counted phase is never scaled, and nor is a
        // concurrency phase whose time limit was kept (dividing its seconds
        // by the scale would count time never spent).
        let fixed: f64 = [Phase::ColdStart, Phase::Counts, Phase::Concurrency]
            .iter()
            .filter(|ph| keep_density_limit || **ph != Phase::Concurrency)
            .filter_map(|ph| result.configurations[idx].phase_seconds.get(ph.name()))
            .sum();
        profile_seconds.push((profile_started.elapsed().as_secs_f64(), fixed, scale));
        let cfg = &result.configurations[idx];
        kept_fills.push(
            keep_density_limit
                .then(|| {
                    cfg.phase_seconds
                        .get(Phase::Concurrency.name())
                        .zip(cfg.density.as_ref())
                })
                .flatten()
                .map(|(&seconds, d)| measure::KeptFill {
                    seconds,
                    instances: d.instances,
                }),
        );
    }
    result.status = Status::Complete;
    result.status_reason = None;
    sink(&result);
    Ok(result)
}

/// The budget scale of the first profile, before any profile has run: each
/// selected phase's time is predicted from the component's lifecycle and
/// compile times, as the least of its budget and what its sample target
/// would take, and the budgets are scaled when `profiles` profiles at that
/// pace would overrun the run's target. Compiling for a cold start from
/// `.wasm` (twice: a fresh process and a repeat in this one) and the counted
/// phase cannot be shortened and count as fixed. The second value says
/// whether the concurrency phase is predicted to reach its cap within its
/// time limit ([`measure::Plan::fill_to_cap_seconds`]), so that limit is
/// kept when the other budgets are scaled. A fast component predicts far under its
/// budgets and is not scaled; a slow one is, from the start, instead of
/// leaving the profiles after it only their minimums.
fn first_profile_scale(
    o: &BenchmarkOptions,
    subject: &Subject,
    profiles: usize,
    elapsed: f64,
) -> (f64, bool) {
    let p = &o.plan;
    let b = &p.budget;
    let Some(target) = b.run_seconds else {
        return (1.0, false);
    };
    // The fastest of at least two and up to 50 lifecycles in one runtime,
    // stopping after a quarter second: a single sample in a fresh runtime can
    // be several times the steady pace, and scaling a fast component's
    // budgets on it would cut its phases for nothing.
    let Ok(life) = subject.steady_lifecycle_estimate(50, 0.25) else {
        return (1.0, false);
    };
    let life = life.as_secs_f64();
    let fill_to_cap = p.fill_to_cap_seconds(life);
    let compile = subject.compile_time.as_secs_f64();
    let samples = (p.warmup + p.rounds * p.samples_per_round) as f64;
    let points: usize = p.memory_points.iter().sum();
    let (mut fixed, mut scalable) = (0.0, 0.0);
    for phase in &o.phases {
        match phase {
            Phase::ColdStart => fixed += 2.0 * compile,
            Phase::Counts => fixed += b.counts_seconds,
            Phase::ColdStartPrecompiled => {
                scalable += b.cold_seconds.min(p.cold_processes as f64 * 0.01)
            }
            Phase::WarmStart => scalable += b.warm_seconds.min(samples * life),
            Phase::Lifecycle => scalable += b.lifecycle_seconds.min(samples * life),
            Phase::Throughput => {
                scalable += b
                    .throughput_seconds
                    .min(p.rounds as f64 * p.throughput_seconds * p.threads.len() as f64)
            }
            Phase::Memory => {
                scalable += b
                    .memory_seconds
                    .min(p.memory_rounds as f64 * (0.05 + points as f64 * life))
            }
            // Two fills, one thread then every core, each up to the limit.
            // Counted as scalable even when its limit is kept: a profile
            // whose pool or map count caps it far below `max_instances`
            // (pooling-cow, on-demand) fills for seconds, and counting every
            // profile's fill to a million as fixed cut the pooling profile's
            // other budgets to their minimums.
            Phase::Concurrency => {
                scalable += (2.0 * p.density.time_limit_seconds)
                    .min(2.0 * fill_cap(subject, p) as f64 * life * measure::FILL_PER_LIFECYCLE)
            }
        }
    }
    let n = profiles.max(1) as f64;
    let keep_density_limit = fill_to_cap.is_some();
    if elapsed + n * (fixed + scalable) <= target {
        return (1.0, keep_density_limit);
    }
    let scale = measure::scale_for_room(target - elapsed - n * fixed, n * scalable, target);
    (scale, keep_density_limit)
}

/// The most live instances `subject`'s concurrency phase can reach before a
/// limit known in advance: the `--max-instances` cap, the copy-on-write
/// pool's address-space cap, and, without a pool, `vm.max_map_count` (each
/// on-demand instance maps its linear memory apart).
fn fill_cap(subject: &Subject, p: &Plan) -> u64 {
    let a = subject.options.allocator;
    let pool = u64::from(crate::engine::max_pool_capacity(a));
    let maps = if a == crate::model::Allocator::OnDemand {
        crate::fingerprint::read_proc_u64("/proc/sys/vm/max_map_count").unwrap_or(u64::MAX)
    } else {
        u64::MAX
    };
    p.density.max_instances.min(pool).min(maps)
}

/// Marks `result` as interrupted and hands it to `sink` once more, so the
/// files on disk say why the run is partial.
fn interrupted(
    mut result: BenchmarkResult,
    sink: &mut dyn FnMut(&BenchmarkResult),
) -> BenchmarkResult {
    let sig = crate::interrupt::signal().unwrap_or(libc::SIGINT);
    result.status = Status::Partial;
    result.status_reason = Some(format!(
        "interrupted by {}; phases measured before it are kept",
        if sig == libc::SIGTERM {
            "SIGTERM"
        } else {
            "SIGINT"
        }
    ));
    sink(&result);
    result
}

/// Each phase's budget per profile, for the result's settings.
fn budget_table(p: &Plan) -> std::collections::BTreeMap<String, f64> {
    let b = &p.budget;
    [
        (Phase::ColdStart, b.cold_seconds),
        (Phase::ColdStartPrecompiled, b.cold_seconds),
        (Phase::WarmStart, b.warm_seconds),
        (Phase::Lifecycle, b.lifecycle_seconds),
        (Phase::Throughput, b.throughput_seconds),
        (Phase::Memory, b.memory_seconds),
        (Phase::Concurrency, p.density.time_limit_seconds),
        (Phase::Counts, b.counts_seconds),
    ]
    .into_iter()
    .map(|(ph, s)| (ph.name().to_owned(), s))
    .chain(
        b.run_seconds
            .map(|s| (crate::report::RUN_TARGET_KEY.to_owned(), s)),
    )
    .collect()
}

/// Where `phase`'s time budget stopped it before its sample target.
fn budget_cuts(phase: Phase, p: &Plan, cfg: &ConfigurationResult) -> Vec<Budgeted> {
    let b = &p.budget;
    let cut = |what: &str, taken: usize, target: usize, seconds: f64| {
        (taken < target).then(|| Budgeted {
            phase: phase.name().into(),
            what: what.into(),
            taken,
            target,
            budget_seconds: seconds,
        })
    };
    let per_round = p.rounds * p.samples_per_round;
    match phase {
        Phase::ColdStart | Phase::ColdStartPrecompiled => if phase == Phase::ColdStart {
            &cfg.cold_start
        } else {
            &cfg.cold_start_precompiled
        }
        .as_ref()
        .and_then(|c| {
            cut(
                "fresh processes",
                c.in_process.n,
                p.cold_processes,
                b.cold_seconds,
            )
        })
        .into_iter()
        .collect(),
        Phase::WarmStart => cfg
            .warm_start
            .as_ref()
            .and_then(|w| cut("samples", w.n, per_round, b.warm_seconds))
            .into_iter()
            .collect(),
        Phase::Lifecycle => cfg
            .lifecycle
            .as_ref()
            .and_then(|l| cut("samples", l.total.n, per_round, b.lifecycle_seconds))
            .into_iter()
            .collect(),
        Phase::Throughput => cfg
            .throughput
            .iter()
            .filter_map(|t| {
                cut(
                    &format!(
                        "rounds of {} s with {} threads",
                        p.throughput_seconds, t.threads
                    ),
                    t.instantiations.rounds.len(),
                    p.rounds,
                    b.throughput_seconds,
                )
            })
            .collect(),
        Phase::Memory => cfg
            .memory
            .as_ref()
            .map(|m| {
                // The largest N the time budget cut (the memory section says
                // why for each; a cut for memory is no budget's doing).
                let most = m.points.iter().map(|pt| pt.instances).max().unwrap_or(0);
                let timed_out = m
                    .cut
                    .iter()
                    .filter(|c| matches!(c.limit, crate::model::CutLimit::TimeBudget { .. }))
                    .map(|c| c.instances)
                    .max();
                cut(
                    "child processes",
                    m.per_instance.rounds.len(),
                    p.memory_rounds,
                    b.memory_seconds,
                )
                .into_iter()
                .chain(timed_out.and_then(|planned| {
                    cut(
                        "live instances at the largest point",
                        most,
                        planned,
                        b.memory_seconds,
                    )
                }))
                .collect()
            })
            .unwrap_or_default(),
        Phase::Concurrency | Phase::Counts => Vec::new(),
    }
}

fn describe(subject: &Subject, p: &Plan) -> Vec<String> {
    let mut lines = crate::engine::describe(&subject.options, &subject.footprint);
    if subject.options.allocator.is_pooling() {
        lines.retain(|l| !l.starts_with("pool capacity"));
        lines.push(format!(
            "pool capacity = sized per phase: {} slots for cold/warm/lifecycle/throughput, largest memory point + 1 for memory, --max-instances + 1 for concurrency (each slot costs resident memory and engine start-up time up front)",
            p.latency_pool_capacity
        ));
        if p.engine_per_thread {
            lines.push(format!(
                "throughput: an engine, pool and loaded component per thread (--engine-per-thread), the {} slots split among them",
                p.latency_pool_capacity
            ));
        }
        let most = crate::engine::max_pool_capacity(subject.options.allocator);
        if most < u32::MAX {
            lines.push(format!(
                "pool capacity at most {most} slots: each reserves 4 GiB of address space plus guard regions, and the pool takes at most {}",
                match crate::engine::cow_pool_address_space() {
                    b if b >= 1 << 40 => format!("{} TiB", b >> 40),
                    b => format!("{} GiB", b >> 30),
                }
            ));
        }
    }
    lines
}

fn run_phase(
    phase: Phase,
    subject: &Subject,
    o: &BenchmarkOptions,
    exe: &Path,
    dir: &Path,
    progress: &Progress,
    cfg: &mut ConfigurationResult,
) -> anyhow::Result<()> {
    let p = &o.plan;
    let tick = || progress.tick();
    match phase {
        Phase::ColdStart => {
            cfg.cold_start = Some(measure::cold::cold_start(
                exe, subject, false, p, dir, &tick,
            )?)
        }
        Phase::ColdStartPrecompiled => {
            cfg.cold_start_precompiled = Some(measure::cold::cold_start(
                exe, subject, true, p, dir, &tick,
            )?)
        }
        Phase::WarmStart => {
            let rt = subject.runtime(u64::from(p.latency_pool_capacity))?;
            let (summary, histogram) = measure::warm::warm_start_distribution(&rt, p, &tick)?;
            cfg.warm_start = Some(summary);
            cfg.warm_start_histogram = histogram;
        }
        Phase::Lifecycle => {
            let rt = subject.runtime(u64::from(p.latency_pool_capacity))?;
            if !rt.has_run() {
                for _ in 0..p.rounds {
                    tick();
                }
                return Ok(());
            }
            cfg.lifecycle = Some(measure::warm::lifecycle(&rt, p, &tick)?);
        }
        Phase::Throughput => {
            // One runtime the threads share, or one per thread of the
            // largest round, each loaded from the artifact like the first
            // and given its share of the slots.
            let runtimes = if p.engine_per_thread {
                p.threads.iter().copied().max().unwrap_or(1).max(1)
            } else {
                1
            };
            // The profile's cap (the copy-on-write pool's address space)
            // holds for the engines together, not for each.
            let most = u64::from(crate::engine::max_pool_capacity(subject.options.allocator));
            let slots = u64::from(p.latency_pool_capacity)
                .min(most)
                .div_ceil(runtimes as u64);
            let rts = (0..runtimes)
                .map(|_| subject.runtime(slots))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let share = p.budget.throughput_seconds / p.threads.len().max(1) as f64;
            for &threads in &p.threads {
                cfg.throughput.push(measure::throughput::throughput(
                    &rts, p, threads, share, &tick,
                )?);
            }
        }
        Phase::Memory => cfg.memory = Some(measure::memory::memory(exe, subject, p, dir, &tick)?),
        Phase::Concurrency => {
            cfg.density = Some(measure::density::density(exe, subject, &p.density, dir)?);
            tick();
        }
        Phase::Counts => {
            if let Some(why) = subject.options.allocator.not_countable() {
                tick();
                anyhow::bail!("{why}");
            }
            // The plan must not depend on the machine's mood: base and head
            // counted with different block sizes would differ by the plan,
            // not the code. So it is fitted to nominal inputs: compile time
            // from the component's size (about 1.5 MB/s here), and the
            // lifecycle rounded to its nearest power of ten.
            let estimate = measure::count::nominal_lifecycle(subject.lifecycle_estimate()?);
            let compile = measure::count::nominal_compile(subject.source.bytes.len());
            let Some(plan) = measure::count::fit_plan(
                measure::count::CountPlan::standard(),
                compile,
                estimate,
                p.budget.counts_seconds,
            ) else {
                tick();
                anyhow::bail!(
                    "time budget: counting would take about {:.0} s under Valgrind at the least (compiling alone took {:.2} s natively, a lifecycle {:.2} ms), more than this phase's {} s; `--phases counts` with a full run, or the gate, counts it",
                    measure::count::least_seconds(compile, estimate),
                    subject.compile_time.as_secs_f64(),
                    estimate.as_secs_f64() * 1e3,
                    p.budget.counts_seconds
                );
            };
            let standard = measure::count::CountPlan::standard();
            if plan != standard {
                cfg.budgeted.push(Budgeted {
                    phase: phase.name().into(),
                    what: "operations per block".into(),
                    taken: plan.ops,
                    target: standard.ops,
                    budget_seconds: p.budget.counts_seconds,
                });
            }
            let mut counts = match measure::count::find_valgrind() {
                Ok(vg) => measure::count::count(
                    &vg,
                    exe,
                    &[subject],
                    &plan,
                    p.latency_pool_capacity,
                    dir,
                )?
                .remove(0),
                Err(reason) => {
                    cfg.skipped.push(Skipped {
                        phase: "counts: instructions and system calls".into(),
                        reason,
                    });
                    crate::model::CountsResult {
                        instrument: None,
                        cpu_seen: None,
                        key: measure::count::counts_key(),
                        ops_per_block: plan.ops,
                        figures: Default::default(),
                    }
                }
            };
            let rt = subject.runtime(u64::from(p.latency_pool_capacity))?;
            counts.figures.insert(
                crate::model::Metric::PageFaultsLifecycle,
                measure::count::page_faults_lifecycle(&rt, &plan)?,
            );
            cfg.counts = Some(counts);
            tick();
        }
    }
    Ok(())
}
