//! The regression gate: one trial per component, profile and metric, each
//! measuring independent rounds and judging them against a committed baseline.
//!
//! Timed metrics (warm start, lifecycle, throughput, cold start) are judged
//! against this runner's baseline, `baselines/<runner>.snap`, accounting for
//! the baseline's own spread. Counted metrics (instructions, system calls and
//! page faults per operation, bytes per live instance) are judged against
//! `baselines/counts-<key>.snap`, shared by every runner whose counted code
//! sees the same CPU level (see `measure::count`), with tight tolerances.
//!
//! A trial that cannot judge (no baseline, no Valgrind, a metric missing from
//! the baseline, no tolerance) is reported as *ignored* with its reason, never
//! as passed; `SITEBOSS_REQUIRE_BASELINE=1` makes it fail instead. A metric
//! that does not apply to a component (a lifecycle without `wasi:cli/run`) is
//! ignored as not applicable.
//!
//! The test target `harness/tests/gate.rs` turns these trials into
//! libtest-mimic trials; everything it judges with lives here so the proof
//! tests can drive the same code.

use crate::baseline::{
    BASELINE_SCHEMA, BASELINE_VERSION, Baseline, BaselineBody, BaselineError, Recorded, file_stem,
    kind_name, round_sig, round3,
};
use crate::component::{ComponentSource, EMBEDDED_GATE_NAME};
use crate::engine::RuntimeOptions;
use crate::judge::{MIN_ROUNDS, compare, compare_samples};
use crate::measure::count::{self, CountPlan, Valgrind};
use crate::measure::throughput::{Work, rate};
use crate::measure::{self, Plan, Subject};
use crate::model::{
    Allocator, Comparison, CountsResult, Direction, Fingerprint, Kind, MemoryResult, Metric,
    Verdict,
};
use crate::report::format::value;
use crate::tolerance::Tolerances;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The timed metrics the gate measures, in trial order.
pub const TIMED_METRICS: [Metric; 4] = [
    Metric::WarmStart,
    Metric::Lifecycle,
    Metric::Throughput,
    Metric::ColdStart,
];

/// The counted metrics the gate measures, in trial order.
pub const COUNTED_METRICS: [Metric; 11] = [
    Metric::InstructionsWarmStart,
    Metric::InstructionsLifecycle,
    Metric::InstructionsRun,
    Metric::InstructionsDrop,
    Metric::InstructionsEngine,
    Metric::InstructionsDeserialize,
    Metric::InstructionsFirstInstantiate,
    Metric::SyscallsLifecycle,
    Metric::PageFaultsLifecycle,
    Metric::PageFaultsPerInstance,
    Metric::MemoryPerInstance,
];

/// Every gate metric, in trial order: counted first (cheap and decisive),
/// then timed.
pub fn gate_metrics() -> impl Iterator<Item = Metric> {
    COUNTED_METRICS.into_iter().chain(TIMED_METRICS)
}

/// Blocks of each in-process metric per round; a round is their best.
pub const BLOCKS_PER_ROUND: usize = 3;
/// How long one throughput block runs.
const THROUGHPUT_BLOCK: Duration = Duration::from_millis(100);
/// The pace of the session: one cycle through every allocator and metric.
const CYCLE: Duration = Duration::from_millis(350);

/// The command that records pending baselines for this runner.
pub const RECORD_COMMAND: &str =
    "SITEBOSS_RECORD=1 cargo test --release --test gate && cargo insta review";

/// Where the gate reads its inputs and how hard it measures, from the environment.
#[derive(Debug, Clone)]
pub struct GateSettings {
    /// The `siteboss` binary, for child-process phases.
    pub exe: PathBuf,
    /// Directory of baselines (`SITEBOSS_BASELINE_DIR`).
    pub baseline_dir: PathBuf,
    /// The tolerance file (`SITEBOSS_TOLERANCES`).
    pub tolerances: PathBuf,
    /// The runner id timed baselines are filed under (`SITEBOSS_RUNNER`, or derived).
    pub runner: String,
    /// The key counted baselines are filed under (`SITEBOSS_COUNTS_KEY`, or derived).
    pub counts_key: String,
    /// This machine's fingerprint.
    pub fingerprint: Fingerprint,
    /// Whether a trial that cannot judge fails (`SITEBOSS_REQUIRE_BASELINE=1`).
    pub require_baseline: bool,
    /// Independent rounds per timed metric (`SITEBOSS_GATE_ROUNDS`).
    pub rounds: usize,
    /// Valgrind, or why it cannot be used.
    pub valgrind: Result<Valgrind, String>,
}

impl GateSettings {
    /// Reads the settings from the environment, with `root` as the project root.
    pub fn from_env(exe: PathBuf, root: &Path) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let baseline_dir = var("SITEBOSS_BASELINE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("baselines"));
        let tolerances = var("SITEBOSS_TOLERANCES")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("baselines").join("tolerances.toml"));
        let fingerprint = crate::fingerprint::current();
        GateSettings {
            exe,
            baseline_dir,
            tolerances,
            runner: crate::fingerprint::runner_id(&fingerprint),
            counts_key: var("SITEBOSS_COUNTS_KEY").unwrap_or_else(count::counts_key),
            fingerprint,
            require_baseline: var("SITEBOSS_REQUIRE_BASELINE").is_some_and(|v| v != "0"),
            rounds: var("SITEBOSS_GATE_ROUNDS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(9),
            valgrind: count::find_valgrind(),
        }
    }

    /// The key a baseline of `kind` is filed under.
    pub fn key(&self, kind: Kind) -> &str {
        match kind {
            Kind::Timed => &self.runner,
            Kind::Counted => &self.counts_key,
        }
    }
}

/// A component the gate guards.
#[derive(Debug, Clone)]
pub struct GateComponent {
    /// Its name in trial names and baselines: `gate::<name>::…`.
    pub name: String,
    /// Its bytes.
    pub source: ComponentSource,
    /// The request an HTTP handler is served.
    pub request: crate::http::RequestSpec,
    /// The profiles it is gated with.
    pub profiles: Vec<Allocator>,
    /// Its tolerance overrides.
    pub tolerances: BTreeMap<Metric, crate::manifest::Override>,
}

impl GateComponent {
    /// The embedded hello world, named `hello`.
    pub fn embedded() -> Self {
        GateComponent {
            name: EMBEDDED_GATE_NAME.into(),
            source: ComponentSource::embedded(),
            request: crate::http::RequestSpec::default(),
            profiles: Allocator::ALL.to_vec(),
            tolerances: BTreeMap::new(),
        }
    }
}

impl From<crate::manifest::Entry> for GateComponent {
    fn from(e: crate::manifest::Entry) -> Self {
        GateComponent {
            name: e.name,
            source: e.source,
            request: e.request,
            profiles: e.profiles,
            tolerances: e.tolerances,
        }
    }
}

/// What a trial concluded when it did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    /// It judged and passed (or improved, or regressed on a report-only metric).
    Passed,
    /// It did not judge; the reason says why and how to make it judge.
    Ignored(String),
}

/// One gate trial: a name and the check it runs.
pub struct GateTrial {
    /// `gate::<component>::<allocator>::<metric>`.
    pub name: String,
    /// The check: `Err` carries the whole failure message.
    pub run: Box<dyn FnOnce() -> Result<Judged, String> + Send>,
}

type SessionRounds = BTreeMap<(Allocator, Metric), Vec<f64>>;

/// The gate: settings, components, and what has been measured so far.
pub struct Gate {
    /// Its settings.
    pub settings: GateSettings,
    /// The components it guards.
    pub components: Vec<GateComponent>,
    subjects: Mutex<BTreeMap<(String, Allocator), Arc<Subject>>>,
    session: Mutex<BTreeMap<String, SessionRounds>>,
    memory: Mutex<BTreeMap<(String, Allocator), MemoryResult>>,
    counts: Mutex<BTreeMap<String, BTreeMap<Allocator, CountsResult>>>,
    dir: tempfile::TempDir,
    warned: Mutex<Vec<PathBuf>>,
}

impl Gate {
    /// A gate with `settings` guarding `components`.
    ///
    /// # Errors
    ///
    /// Fails when a temporary directory cannot be created.
    pub fn new(
        settings: GateSettings,
        components: Vec<GateComponent>,
    ) -> anyhow::Result<Arc<Self>> {
        let dir = tempfile::Builder::new()
            .prefix("siteboss-gate-")
            .tempdir()?;
        Ok(Arc::new(Gate {
            settings,
            components,
            subjects: Mutex::new(BTreeMap::new()),
            session: Mutex::new(BTreeMap::new()),
            memory: Mutex::new(BTreeMap::new()),
            counts: Mutex::new(BTreeMap::new()),
            dir,
            warned: Mutex::new(Vec::new()),
        }))
    }

    fn component(&self, name: &str) -> anyhow::Result<&GateComponent> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow::anyhow!("the gate has no component `{name}`"))
    }

    /// The trials: every component × allocator × gate metric.
    pub fn trials(self: &Arc<Self>) -> Vec<GateTrial> {
        let mut out = Vec::new();
        for component in &self.components {
            for &allocator in &component.profiles {
                for metric in gate_metrics() {
                    let gate = Arc::clone(self);
                    let name = component.name.clone();
                    out.push(GateTrial {
                        name: trial_name(&name, allocator, metric),
                        run: Box::new(move || gate.check(&name, allocator, metric)),
                    });
                }
            }
        }
        out
    }

    /// The subject for `component` and `allocator`, prepared on first use.
    ///
    /// # Errors
    ///
    /// Fails when the component cannot be compiled.
    pub fn subject(&self, component: &str, allocator: Allocator) -> anyhow::Result<Arc<Subject>> {
        let key = (component.to_owned(), allocator);
        let mut subjects = self.subjects.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = subjects.get(&key) {
            return Ok(Arc::clone(s));
        }
        let dir = self.dir.path().join(component);
        std::fs::create_dir_all(&dir)?;
        let c = self.component(component)?;
        let s = Arc::new(Subject::prepare(
            c.source.clone(),
            allocator,
            &RuntimeOptions {
                request: c.request.clone(),
                ..RuntimeOptions::new(allocator)
            },
            &dir,
        )?);
        subjects.insert(key, Arc::clone(&s));
        Ok(s)
    }

    /// Measures `metric` in independent rounds.
    ///
    /// Warm start, lifecycle and throughput come from one interleaved session
    /// per component (see [`Gate::measure_session`]); memory and page faults
    /// per instance from the memory phase's child processes; instructions and
    /// system calls from one counting child under Valgrind per component;
    /// cold start from fresh processes.
    ///
    /// # Errors
    ///
    /// Fails when the measurement itself fails, or when the metric was not
    /// measured (a counted one without Valgrind).
    pub fn measure(
        &self,
        component: &str,
        allocator: Allocator,
        metric: Metric,
    ) -> anyhow::Result<Vec<f64>> {
        let rounds = self.settings.rounds;
        match metric {
            Metric::WarmStart | Metric::Lifecycle | Metric::Throughput => {
                let mut cache = self.session.lock().unwrap_or_else(|e| e.into_inner());
                if !cache.contains_key(component) {
                    let measured = self.measure_session(component)?;
                    cache.insert(component.to_owned(), measured);
                }
                cache[component]
                    .get(&(allocator, metric))
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("the session has no {allocator} {metric}"))
            }
            Metric::MemoryPerInstance | Metric::PageFaultsPerInstance => {
                let key = (component.to_owned(), allocator);
                let mut cache = self.memory.lock().unwrap_or_else(|e| e.into_inner());
                if !cache.contains_key(&key) {
                    let subject = self.subject(component, allocator)?;
                    let plan = Plan {
                        memory_points: vec![100, 500, 1000, 2000],
                        memory_rounds: rounds,
                        budget: measure::Budgets::unlimited(),
                        ..Plan::quick()
                    };
                    let m = measure::memory::memory(
                        &self.settings.exe,
                        &subject,
                        &plan,
                        self.dir.path(),
                        &|| {},
                    )?;
                    // A pool too small for the gate's points (the
                    // copy-on-write profile in a small address space) gives
                    // a slope over other points than the baseline's:
                    // cannot judge. (Points cut by the machine's memory are
                    // judged as before: the baseline's machine cut them too.)
                    if let Some(cut) = m
                        .cut
                        .iter()
                        .find(|c| matches!(c.limit, crate::model::CutLimit::PoolCapacity { .. }))
                    {
                        anyhow::bail!(
                            "memory point N = {} not measured: {}",
                            cut.instances,
                            cut.reason
                        );
                    }
                    cache.insert(key.clone(), m);
                }
                let m = &cache[&key];
                match metric {
                    Metric::MemoryPerInstance => Some(&m.per_instance),
                    _ => m.page_faults_per_instance.as_ref(),
                }
                .map(|s| s.rounds.clone())
                .ok_or_else(|| anyhow::anyhow!("the memory phase has no {metric}"))
            }
            Metric::ColdStart | Metric::ColdStartPrecompiled => {
                let subject = self.subject(component, allocator)?;
                Ok(measure::cold::in_fresh_processes(
                    &self.settings.exe,
                    &subject,
                    metric == Metric::ColdStartPrecompiled,
                    rounds,
                    measure::LATENCY_POOL_CAPACITY,
                    self.dir.path(),
                )?
                .iter()
                .map(|r| r.total as f64)
                .collect())
            }
            counted if counted.kind() == Kind::Counted => {
                let mut cache = self.counts.lock().unwrap_or_else(|e| e.into_inner());
                if !cache.contains_key(component) {
                    let measured = self.measure_counts(component)?;
                    cache.insert(component.to_owned(), measured);
                }
                cache[component]
                    .get(&allocator)
                    .and_then(|c| c.figures.get(&counted))
                    .map(|s| s.rounds.clone())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{counted} was not counted{}",
                            match &self.settings.valgrind {
                                Err(reason) if counted.needs_valgrind() => format!(": {reason}"),
                                _ => String::new(),
                            }
                        )
                    })
            }
            other => anyhow::bail!("the gate does not measure {other}"),
        }
    }

    /// Counts every counted metric of `component` for every allocator:
    /// instructions and system calls in one child under Valgrind (when there
    /// is one), page faults per lifecycle natively.
    fn measure_counts(&self, component: &str) -> anyhow::Result<BTreeMap<Allocator, CountsResult>> {
        let plan = CountPlan::standard();
        let allocators: Vec<Allocator> = Allocator::ALL
            .into_iter()
            .filter(|a| a.not_countable().is_none())
            .collect();
        let subjects = allocators
            .iter()
            .map(|&a| self.subject(component, a))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut results: Vec<CountsResult> = match &self.settings.valgrind {
            Ok(vg) => {
                let refs: Vec<&Subject> = subjects.iter().map(|s| s.as_ref()).collect();
                let dir = self.dir.path().join(component);
                let counted = count::count(
                    vg,
                    &self.settings.exe,
                    &refs,
                    &plan,
                    measure::LATENCY_POOL_CAPACITY,
                    &dir,
                )?;
                // A key given with SITEBOSS_COUNTS_KEY is the user's to choose;
                // a derived one must match what Valgrind presented.
                if let Some(c) = counted.first()
                    && c.key != self.settings.counts_key
                    && self.settings.counts_key == count::counts_key()
                {
                    anyhow::bail!(
                        "Valgrind presented {} to the counted code, which files counts under `{}`, \
                         but this machine's counted baseline is looked up under `{}` (set \
                         SITEBOSS_COUNTS_KEY={} to file them there)",
                        c.cpu_seen.as_deref().unwrap_or("an unknown CPU"),
                        c.key,
                        self.settings.counts_key,
                        c.key
                    );
                }
                counted
            }
            Err(_) => subjects
                .iter()
                .map(|_| CountsResult {
                    instrument: None,
                    cpu_seen: None,
                    key: self.settings.counts_key.clone(),
                    ops_per_block: plan.ops,
                    figures: BTreeMap::new(),
                })
                .collect(),
        };
        for (subject, result) in subjects.iter().zip(&mut results) {
            let rt = subject.runtime(u64::from(measure::LATENCY_POOL_CAPACITY))?;
            result.figures.insert(
                Metric::PageFaultsLifecycle,
                count::page_faults_lifecycle(&rt, &plan)?,
            );
        }
        Ok(allocators.into_iter().zip(results).collect())
    }

    /// Measures the in-process timed metrics of every allocator at once.
    ///
    /// A shared machine has slow episodes of a second or more in which
    /// everything runs up to 1.6 times slower (seen on the 2-vCPU development
    /// machine), and slowdowns are the only kind of such noise: nothing makes
    /// code run faster than it is. So the session cycles through every
    /// allocator and metric in short blocks, [`BLOCKS_PER_ROUND`] × rounds
    /// cycles paced about [`CYCLE`] apart, and each round is the best of its
    /// blocks, which lie `rounds` cycles (about three seconds) apart. A round
    /// is slow only when all its blocks fell in slow episodes, so the median
    /// of the rounds reflects the code; a real regression slows every block
    /// and still moves it.
    ///
    /// # Errors
    ///
    /// Fails when an instantiation or run fails.
    pub fn measure_session(&self, component: &str) -> anyhow::Result<SessionRounds> {
        let rounds = self.settings.rounds.max(1);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let block = Plan {
            rounds: 1,
            warmup: 100,
            samples_per_round: 700,
            budget: measure::Budgets::unlimited(),
            ..Plan::quick()
        };
        let none = || {};
        let runtimes = Allocator::ALL
            .iter()
            .map(|&a| {
                Ok((
                    a,
                    self.subject(component, a)?
                        .runtime(u64::from(measure::LATENCY_POOL_CAPACITY))?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut blocks: SessionRounds = BTreeMap::new();
        for _ in 0..rounds * BLOCKS_PER_ROUND {
            let t0 = std::time::Instant::now();
            for (a, rt) in &runtimes {
                let warm = measure::warm::warm_start(rt, &block, &none)?.median;
                blocks
                    .entry((*a, Metric::WarmStart))
                    .or_default()
                    .push(warm);
                if rt.has_run() {
                    let life = measure::warm::lifecycle(rt, &block, &none)?.total.median;
                    let rate = rate(
                        std::slice::from_ref(rt),
                        threads,
                        THROUGHPUT_BLOCK,
                        Work::Lifecycle,
                    )?;
                    blocks
                        .entry((*a, Metric::Lifecycle))
                        .or_default()
                        .push(life);
                    blocks
                        .entry((*a, Metric::Throughput))
                        .or_default()
                        .push(rate);
                }
            }
            std::thread::sleep(CYCLE.saturating_sub(t0.elapsed()));
        }
        Ok(blocks
            .into_iter()
            .map(|((a, m), b)| ((a, m), best_per_round(&b, rounds, m.direction())))
            .collect())
    }

    /// A trial that cannot judge: ignored with `reason`, or a failure under
    /// `SITEBOSS_REQUIRE_BASELINE=1`.
    fn unjudged(&self, reason: String) -> Result<Judged, String> {
        if self.settings.require_baseline {
            Err(format!(
                "cannot judge: {reason} (SITEBOSS_REQUIRE_BASELINE=1 makes a trial that cannot judge fail)"
            ))
        } else {
            Ok(Judged::Ignored(reason))
        }
    }

    /// Whether `metric` applies to `component`: one without `wasi:cli/run`
    /// has no lifecycle or run to measure.
    fn applies(&self, component: &str, metric: Metric) -> anyhow::Result<bool> {
        let needs_run = matches!(
            metric,
            Metric::Lifecycle
                | Metric::Throughput
                | Metric::InstructionsRun
                | Metric::InstructionsLifecycle
                | Metric::SyscallsLifecycle
        );
        let subject = self.subject(component, Allocator::Pooling)?;
        Ok(!needs_run || (subject.footprint.has_run && subject.options.run))
    }

    /// One trial: load the tolerance and baseline, measure, judge.
    fn check(
        &self,
        component: &str,
        allocator: Allocator,
        metric: Metric,
    ) -> Result<Judged, String> {
        let s = &self.settings;
        let name = trial_name(component, allocator, metric);
        let tolerances = Tolerances::load(&s.tolerances).map_err(|e| e.to_string())?;
        let Some(tolerance) = tolerances.get(metric).copied() else {
            return self.unjudged(format!(
                "no tolerance for {metric} in {}",
                s.tolerances.display()
            ));
        };
        let tolerance = match self
            .component(component)
            .map_err(|e| e.to_string())?
            .tolerances
            .get(&metric)
        {
            Some(o) => o.apply(tolerance),
            None => tolerance,
        };
        if (metric.needs_valgrind() || metric == Metric::PageFaultsLifecycle)
            && let Some(why) = allocator.not_countable()
        {
            return Ok(Judged::Ignored(format!("not applicable: {why}")));
        }
        if !self
            .applies(component, metric)
            .map_err(|e| format!("{e:#}"))?
        {
            return Ok(Judged::Ignored(format!(
                "not applicable: {component} exports neither wasi:cli/run nor wasi:http/incoming-handler (or its run failed when probed), so it has no {metric}"
            )));
        }
        let kind = metric.kind();
        let baseline = match Baseline::load(&s.baseline_dir, kind, s.key(kind)) {
            Ok(b) => b,
            Err(e @ BaselineError::Missing { .. }) => return self.unjudged(e.to_string()),
            Err(e) => return Err(e.to_string()),
        };
        if metric.needs_valgrind()
            && let Err(reason) = &s.valgrind
        {
            return self.unjudged(format!("{metric} is counted under Valgrind: {reason}"));
        }
        self.warn_fingerprint(&baseline);
        let Some(recorded) = baseline.value(component, allocator, metric) else {
            return self.unjudged(format!(
                "{} has no {component} {allocator} {metric} value; re-record with `{RECORD_COMMAND}`",
                baseline.path.display()
            ));
        };
        let rounds = self
            .measure(component, allocator, metric)
            .map_err(|e| format!("{e:#}"))?;
        let c = if kind == Kind::Timed && recorded.rounds.len() >= MIN_ROUNDS {
            compare_samples(&recorded.rounds, &rounds, &tolerance)
        } else {
            compare(recorded.median, &rounds, &tolerance)
        };
        let line = summary_line(&name, &c);
        match (&c.verdict, c.fails()) {
            (_, true) => Err(failure_block(s, &name, &baseline.path, &c)),
            (Verdict::Improvement, _) => {
                println!(
                    "{line}\n  improved beyond the tolerance: re-record the baseline so the gate protects the gain: {RECORD_COMMAND}"
                );
                Ok(Judged::Passed)
            }
            (Verdict::Regression, false) => {
                println!(
                    "{line}\n  (reported only: {metric} has enforce = false in {})",
                    s.tolerances.display()
                );
                Ok(Judged::Passed)
            }
            _ => {
                println!("{line}");
                Ok(Judged::Passed)
            }
        }
    }

    fn warn_fingerprint(&self, baseline: &Baseline) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.contains(&baseline.path) {
            return;
        }
        warned.push(baseline.path.clone());
        let diffs = match baseline.body.kind {
            Kind::Timed => baseline.fingerprint_mismatches(&self.settings.fingerprint),
            // Counted figures do not depend on the CPU model, the core count
            // or the RAM; only on the code, the toolchain and the heap.
            Kind::Counted => baseline
                .fingerprint_mismatches(&self.settings.fingerprint)
                .into_iter()
                .filter(|d| {
                    ["wasmtime_version", "rustc_version", "heap_allocator"]
                        .iter()
                        .any(|k| d.starts_with(k))
                })
                .collect(),
        };
        if !diffs.is_empty() {
            eprintln!(
                "warning: {} was recorded with a different {}; its figures may not apply here:\n  {}",
                baseline.path.display(),
                if baseline.body.kind == Kind::Timed {
                    "machine of this runner id"
                } else {
                    "toolchain"
                },
                diffs.join("\n  ")
            );
        }
    }

    /// Measures every gate metric that can be measured here (or only those in
    /// `only`), for every component and allocator, and returns the baseline
    /// bodies: timed (for this runner) and counted (for this counts key).
    /// Metrics that do not apply are left out; counted ones when Valgrind is
    /// missing are left out and listed in the second value.
    ///
    /// # Errors
    ///
    /// Fails when a measurement fails.
    pub fn record(
        &self,
        only: Option<&[Metric]>,
    ) -> anyhow::Result<(Vec<BaselineBody>, Vec<String>)> {
        let mut bodies = BTreeMap::new();
        let mut left_out = Vec::new();
        for kind in [Kind::Timed, Kind::Counted] {
            bodies.insert(
                kind_name(kind),
                BaselineBody {
                    schema: BASELINE_SCHEMA.into(),
                    schema_version: BASELINE_VERSION,
                    kind,
                    key: self.settings.key(kind).to_owned(),
                    rounds: match kind {
                        Kind::Timed => self.settings.rounds,
                        Kind::Counted => CountPlan::standard().rounds,
                    },
                    components: BTreeMap::new(),
                },
            );
        }
        for component in &self.components {
            for &allocator in &component.profiles {
                for metric in gate_metrics() {
                    if only.is_some_and(|o| !o.contains(&metric))
                        || !self.applies(&component.name, metric)?
                        || ((metric.needs_valgrind() || metric == Metric::PageFaultsLifecycle)
                            && allocator.not_countable().is_some())
                    {
                        continue;
                    }
                    if metric.needs_valgrind()
                        && let Err(reason) = &self.settings.valgrind
                    {
                        left_out.push(format!("{} {allocator} {metric}: {reason}", component.name));
                        continue;
                    }
                    let rounds = self.measure(&component.name, allocator, metric)?;
                    // Counted figures are judged to 1–2%: keep 4 significant
                    // figures (at most 0.05% off) rather than 3 (up to 0.5%).
                    let round = |v: f64| match metric.kind() {
                        Kind::Timed => round3(v),
                        Kind::Counted => round_sig(v, 4),
                    };
                    let body = bodies
                        .get_mut(kind_name(metric.kind()))
                        .expect("both kinds exist");
                    body.components
                        .entry(component.name.clone())
                        .or_default()
                        .entry(allocator.name().to_owned())
                        .or_default()
                        .insert(
                            metric.name().to_owned(),
                            Recorded {
                                median: round(crate::stats::median(&rounds)),
                                rounds: rounds.iter().map(|&r| round(r)).collect(),
                            },
                        );
                }
            }
        }
        Ok((bodies.into_values().collect(), left_out))
    }

    /// The snapshot name a baseline body is written under.
    pub fn snapshot_name(body: &BaselineBody) -> String {
        file_stem(body.kind, &body.key)
    }
}

/// Round `r` of `rounds` is the best of blocks `r`, `r + rounds`, `r + 2 rounds`, ….
pub fn best_per_round(blocks: &[f64], rounds: usize, direction: Direction) -> Vec<f64> {
    (0..rounds)
        .map(|r| {
            let mine = blocks.iter().skip(r).step_by(rounds.max(1)).copied();
            match direction {
                Direction::LowerIsBetter => mine.fold(f64::INFINITY, f64::min),
                Direction::HigherIsBetter => mine.fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect()
}

/// `gate::<component>::<allocator>::<metric>`.
pub fn trial_name(component: &str, allocator: Allocator, metric: Metric) -> String {
    format!("gate::{component}::{allocator}::{metric}")
}

/// One line per judged trial.
pub fn summary_line(name: &str, c: &Comparison) -> String {
    let unit = c.metric.unit();
    let against = if c.baseline_rounds > 0 {
        format!(", baseline's own {} rounds resampled", c.baseline_rounds)
    } else {
        String::new()
    };
    format!(
        "{name}: {} vs baseline {} ({} rounds{against}, ratio {}, 95% CI {}, {}): {}",
        value(c.median, unit),
        value(c.baseline, unit),
        c.rounds,
        ratio_text(c.ratio),
        ratio_interval(c),
        tolerance_text(c),
        verdict_text(&c.verdict)
    )
}

fn ratio_text(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.3}")
    } else {
        "—".into()
    }
}

fn ratio_interval(c: &Comparison) -> String {
    if c.ratio_ci.0.is_finite() && c.ratio_ci.1.is_finite() {
        format!("{:.3}–{:.3}", c.ratio_ci.0, c.ratio_ci.1)
    } else {
        let unit = c.metric.unit();
        format!("{} – {}", value(c.ci.0, unit), value(c.ci.1, unit))
    }
}

fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Pass => "pass".into(),
        Verdict::Regression => "REGRESSION".into(),
        Verdict::Improvement => "improvement".into(),
        Verdict::Invalid { reason } => format!("cannot judge: {reason}"),
    }
}

fn tolerance_text(c: &Comparison) -> String {
    let t = &c.tolerance;
    let sign = match t.direction {
        Direction::LowerIsBetter => "+",
        Direction::HigherIsBetter => "−",
    };
    let floor = t
        .absolute_floor
        .map(|f| format!(", absolute floor {}", value(f, c.metric.unit())))
        .unwrap_or_default();
    format!("tolerance {sign}{}%{floor}", t.relative * 100.0)
}

/// The readable block a failing trial prints.
pub fn failure_block(s: &GateSettings, name: &str, baseline_path: &Path, c: &Comparison) -> String {
    let unit = c.metric.unit();
    let direction = match c.metric.direction() {
        Direction::LowerIsBetter => "lower is better",
        Direction::HigherIsBetter => "higher is better",
    };
    let kind = c.metric.kind();
    format!(
        "{verdict}: {name}\n  {keyname:<10} {key}\n  metric:    {metric} ({direction}, {kind})\n  baseline:  {base} ({path}){brounds}\n  measured:  {median}, median of {rounds} rounds, 95% CI {lo} – {hi}\n  ratio:     {ratio} (95% CI {rci})\n  {tol} (from {tols})\n  If the change is intended, re-record the baseline:\n    {RECORD_COMMAND}",
        verdict = verdict_text(&c.verdict),
        keyname = if kind == Kind::Timed {
            "runner:"
        } else {
            "counts key:"
        },
        key = s.key(kind),
        metric = c.metric,
        kind = kind_name(kind),
        base = value(c.baseline, unit),
        path = baseline_path.display(),
        brounds = if c.baseline_rounds > 0 {
            format!(", median of its {} rounds", c.baseline_rounds)
        } else {
            String::new()
        },
        median = value(c.median, unit),
        rounds = c.rounds,
        lo = value(c.ci.0, unit),
        hi = value(c.ci.1, unit),
        ratio = ratio_text(c.ratio),
        rci = ratio_interval(c),
        tol = tolerance_text(c),
        tols = s.tolerances.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_is_the_best_of_blocks_spread_across_the_session() {
        // 3 rounds x 3 blocks: round 0 gets blocks 0, 3, 6.
        let blocks = [5.0, 9.0, 7.0, 4.0, 8.0, 9.0, 6.0, 2.0, 9.0];
        assert_eq!(
            best_per_round(&blocks, 3, Direction::LowerIsBetter),
            vec![4.0, 2.0, 7.0]
        );
        assert_eq!(
            best_per_round(&blocks, 3, Direction::HigherIsBetter),
            vec![6.0, 9.0, 9.0]
        );
    }

    #[test]
    fn every_gate_metric_has_a_committed_tolerance() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/tolerances.toml");
        let t = Tolerances::load(&path).unwrap();
        for m in gate_metrics() {
            assert!(
                t.get(m).is_some(),
                "{m} has no tolerance in {}",
                path.display()
            );
        }
    }
}
