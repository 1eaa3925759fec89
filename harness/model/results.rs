//! The result file `siteboss benchmark --json` writes, schema version 1.
//!
//! The schema is documented field by field in README.md ("JSON schema").
//! Every time is in nanoseconds, every size in bytes and every rate per second,
//! as each `Summary` also says in its `unit`.

use super::{Allocator, Fingerprint, Metric, Summary, Unit};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `schema` field every result file carries.
pub const SCHEMA_NAME: &str = "siteboss-benchmark";
/// The version of the result-file schema this build writes. Version 2 added
/// counted figures (`counts`, `memory.page_faults_per_instance`); version 1
/// files are still read.
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest result-file schema version this build reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// One run of `siteboss benchmark`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkResult {
    /// Always `siteboss-benchmark`.
    pub schema: String,
    /// Always [`SCHEMA_VERSION`] for files this build writes.
    pub schema_version: u32,
    /// `complete`, or `partial` when the run was interrupted or a phase failed.
    pub status: Status,
    /// Why the run is partial, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// The machine and toolchain.
    pub runner: Fingerprint,
    /// The runner id baselines are filed under.
    pub runner_id: String,
    /// The component every figure was measured on.
    pub component: ComponentInfo,
    /// The sample counts and limits the run used.
    pub settings: Settings,
    /// The native-process floor measured in the same run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<NativeResult>,
    /// Wall-clock seconds spent probing the component and compiling it for
    /// every profile, before the first phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepare_seconds: Option<f64>,
    /// One entry per allocator measured, production profile first.
    pub configurations: Vec<ConfigurationResult>,
}

/// Whether a result file holds everything the run set out to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every phase finished.
    Complete,
    /// Some phases are missing; `status_reason` says why.
    Partial,
}

/// The component measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// `embedded hello` or the file name given with `--component`.
    pub name: String,
    /// The path given with `--component`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Size of the `.wasm` in bytes.
    pub bytes: u64,
    /// A 64-bit FNV-1a hash of the bytes, in hex, to tell components apart.
    pub fnv1a64: String,
    /// Whether it exports `wasi:cli/run`, so the run and lifecycle phases apply.
    pub has_run: bool,
    /// The size of its precompiled artifact for the production profile.
    pub artifact_bytes: u64,
    /// What each lifecycle exercises: `cli` (`wasi:cli/run`), `http` (one
    /// request served to `wasi:http/incoming-handler`) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// HTTP handlers: the request each instance is served, as `GET /`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// HTTP handlers: what a freshly started instance answered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseInfo>,
}

/// An HTTP handler's answer to the measured request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseInfo {
    /// The status code.
    pub status: u16,
    /// Response headers.
    pub headers: usize,
    /// Bytes of response body.
    pub body_bytes: u64,
}

/// The knobs that decide how long a run takes and where it stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Whether `--quick` was given.
    pub quick: bool,
    /// Independent rounds per in-process phase.
    pub rounds: usize,
    /// Timed samples per round for warm start and lifecycle.
    pub samples_per_round: usize,
    /// Fresh child processes per cold-start variant.
    pub cold_processes: usize,
    /// Fresh child processes of the memory phase.
    pub memory_rounds: usize,
    /// Live-instance counts at which resident memory is read.
    pub memory_points: Vec<usize>,
    /// Seconds each throughput round runs for.
    pub throughput_seconds: f64,
    /// Thread counts throughput is measured with.
    pub threads: Vec<usize>,
    /// Whether each throughput thread had an engine of its own
    /// (`--engine-per-thread`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub engine_per_thread: bool,
    /// The `--max-instances` cap of the concurrency phase.
    pub max_instances: u64,
    /// The resident-memory cap of the concurrency phase, in bytes.
    pub max_memory_bytes: u64,
    /// The concurrency phase stops when available RAM falls below this.
    pub min_available_bytes: u64,
    /// The concurrency phase's time cap, in seconds.
    pub time_limit_seconds: f64,
    /// Each phase's time budget per profile, in seconds (absent in files
    /// written before phases had budgets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_seconds: Option<BTreeMap<String, f64>>,
}

/// Spawn-and-wait of a trivial native process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NativeResult {
    /// The command spawned.
    pub command: String,
    /// Wall time from spawn to reaped exit.
    pub spawn: Summary,
    /// The live process whose memory is read.
    pub rss_command: String,
    /// Resident memory (`VmRSS`) of that live native process, shared libc
    /// pages included: not comparable with a per-instance slope.
    pub rss: Summary,
    /// `Pss` of the live process from `/proc/PID/smaps_rollup`: shared pages
    /// divided among the processes that map them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pss: Option<Summary>,
    /// `Private_Dirty` of the live process from `/proc/PID/smaps_rollup`:
    /// the pages only it wrote, which another such process would add again.
    /// The figure set beside a WASM instance's per-instance slope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_dirty: Option<Summary>,
}

/// Every phase measured with one allocator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationResult {
    /// Which allocator.
    pub allocator: Allocator,
    /// The Wasmtime settings, as `name = value` lines, so a reader can rebuild it.
    pub config: Vec<String>,
    /// Phases that could not be measured, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Phases whose time budget stopped them before their sample target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgeted: Vec<Budgeted>,
    /// Cold start from the `.wasm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<ColdStartResult>,
    /// Cold start from a precompiled artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_precompiled: Option<ColdStartResult>,
    /// Instantiation through `InstancePre` with a fresh store and WASI context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<Summary>,
    /// Every warm-start sample, counted in logarithmic bins (for charts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start_histogram: Option<Histogram>,
    /// Instantiate, call `wasi:cli/run`, drop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleResult>,
    /// Resident memory with N live instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResult>,
    /// The most live instances before a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<DensityResult>,
    /// Instantiations and lifecycles per second, per thread count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throughput: Vec<ThroughputResult>,
    /// Instructions, system calls and page faults per operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountsResult>,
    /// Wall-clock seconds each phase took with this profile, by phase name:
    /// where a run's time went.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phase_seconds: BTreeMap<String, f64>,
    /// The share of the machine's CPU time (all CPUs) the hypervisor stole
    /// during each phase, by phase name, from `/proc/stat`: a virtual
    /// machine's slow spells, which read as slower timed figures.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub phase_steal: BTreeMap<String, f64>,
    /// The factor this profile's phase budgets were scaled by so that the
    /// run fits its time target (`None`: unscaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_scale: Option<f64>,
}

impl ConfigurationResult {
    /// The summary of `metric` in this configuration, if it was measured.
    ///
    /// Each metric maps to exactly one figure: `throughput` is lifecycles per
    /// second and `instantiation-throughput` instantiations per second, so
    /// two results never compare one with the other.
    pub fn summary(&self, metric: Metric) -> Option<&Summary> {
        let all_cores = || self.throughput.iter().max_by_key(|t| t.threads);
        match metric {
            Metric::WarmStart => self.warm_start.as_ref(),
            Metric::Lifecycle => self.lifecycle.as_ref().map(|l| &l.total),
            Metric::Throughput => all_cores().and_then(|t| t.lifecycles.as_ref()),
            Metric::InstantiationThroughput => all_cores().map(|t| &t.instantiations),
            Metric::MemoryPerInstance => self.memory.as_ref().map(|m| &m.per_instance),
            Metric::PageFaultsPerInstance => self
                .memory
                .as_ref()
                .and_then(|m| m.page_faults_per_instance.as_ref()),
            Metric::ColdStart => self.cold_start.as_ref().map(|s| &s.in_process),
            Metric::ColdStartPrecompiled => {
                self.cold_start_precompiled.as_ref().map(|s| &s.in_process)
            }
            counted => self.counts.as_ref().and_then(|c| c.figures.get(&counted)),
        }
    }
}

/// Counted figures per operation, each the steady-state cost of one
/// operation: a block of operations after a warm-up, minus an empty block,
/// divided by the block's length; one value per round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountsResult {
    /// How instructions and system calls were counted, such as
    /// `valgrind-3.19.0 --tool=callgrind`; absent when Valgrind was not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument: Option<String>,
    /// The CPU the counted code ran on as it saw it: under Valgrind, the
    /// synthetic CPU Valgrind presents (which is what Cranelift compiled for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seen: Option<String>,
    /// The key counted baselines are filed under (`counts_key`).
    pub key: String,
    /// Operations per counted block.
    pub ops_per_block: usize,
    /// Metric → per-operation count, one value per round.
    pub figures: BTreeMap<Metric, Summary>,
}

/// A phase its time budget stopped before its sample target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budgeted {
    /// The phase, such as `lifecycle`.
    pub phase: String,
    /// What was counted: `samples`, `processes`, `rounds`, `instances`.
    pub what: String,
    /// How many were taken.
    pub taken: usize,
    /// How many the plan asked for.
    pub target: usize,
    /// The phase's budget, in seconds.
    pub budget_seconds: f64,
}

/// A phase that was not measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The phase, such as `lifecycle`.
    pub phase: String,
    /// Why, in one line.
    pub reason: String,
}

/// Cold start, measured in fresh child processes and in-process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColdStartResult {
    /// Inside a fresh process: engine creation through the first run's return.
    pub in_process: Summary,
    /// Engine creation alone.
    pub engine: Summary,
    /// Compiling the `.wasm`, or deserializing the artifact.
    pub load: Summary,
    /// The first instantiation.
    pub instantiate: Summary,
    /// The first call of `wasi:cli/run` (absent for components without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Summary>,
    /// Spawn to reaped exit of the whole child process, as a host would see it.
    pub process: Summary,
    /// Peak resident memory of the child process.
    pub process_peak_rss: Summary,
    /// The same cold start repeated inside one long-lived process (warm
    /// caches, code already paged in): what re-creating an engine costs a host.
    pub repeated_in_parent: Summary,
}

/// A request's full lifecycle and its parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleResult {
    /// Instantiate + run + drop, timed as one.
    pub total: Summary,
    /// The `wasi:cli/run` call alone.
    pub run: Summary,
    /// Dropping the store, which resets or releases the instance's memory.
    pub drop: Summary,
    /// Every sample of `total`, counted in logarithmic bins (for charts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// Samples counted in logarithmically spaced bins: a distribution kept
/// compactly (tens of numbers, not thousands of samples) so a report can
/// draw it. Bin `i` holds the samples in
/// `[low·10^(i/bins_per_decade), low·10^((i+1)/bins_per_decade))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The unit of the bin edges.
    pub unit: Unit,
    /// Bins per factor of ten.
    pub bins_per_decade: u32,
    /// The lower edge of the first bin.
    pub low: f64,
    /// Samples per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// The lower edge of bin `i` (the upper edge of bin `i - 1`).
    pub fn edge(&self, i: usize) -> f64 {
        self.low * 10f64.powf(i as f64 / f64::from(self.bins_per_decade.max(1)))
    }

    /// How many samples were counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Resident memory with N live instances that have run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryResult {
    /// Resident memory of the measuring process with the engine and component
    /// loaded and no instance alive (the runtime's one-time cost).
    pub runtime_rss: Summary,
    /// One row per N.
    pub points: Vec<MemoryPoint>,
    /// The least-squares slope of resident memory over N: the memory each
    /// additional live instance costs. One value per round.
    pub per_instance: Summary,
    /// The least-squares slope of the process's minor page faults over N.
    /// One value per round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_faults_per_instance: Option<Summary>,
    /// Planned N that were not measured, each with the limit that cut it
    /// (the phase's time budget, or the memory the machine has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cut: Vec<CutPoint>,
}

/// A planned N the memory phase did not measure, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutPoint {
    /// Live instances.
    pub instances: usize,
    /// The limit that cut it.
    pub limit: CutLimit,
    /// Why, in one line.
    pub reason: String,
}

/// What kept the memory phase from a planned N.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CutLimit {
    /// A round's share of the phase's time budget: N instances, at the
    /// estimated lifecycle each, would not fit.
    TimeBudget {
        /// The lifecycle estimate the points were sized with, in seconds.
        lifecycle_seconds: f64,
        /// Seconds one round had.
        round_seconds: f64,
    },
    /// N instances of up to the component's footprint would not fit in half
    /// the memory available above the safety margin.
    Memory,
    /// A pool of N + 1 slots would pass the most the profile's pool may
    /// have (the copy-on-write profile's cap in the address space).
    PoolCapacity {
        /// The most slots the pool may have.
        slots: u64,
    },
}

/// Resident memory at one N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPoint {
    /// Live instances.
    pub instances: usize,
    /// Resident memory of the whole process with them alive.
    pub rss: Summary,
}

/// How far the concurrency phase got and what stopped it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityResult {
    /// Live instances when it stopped.
    pub instances: u64,
    /// The limit that stopped it.
    pub limit: Limit,
    /// The limit in one sentence, with the numbers that tripped it.
    pub detail: String,
    /// What lifts the limit, when the kernel or a setting is what stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lift: Option<String>,
    /// Resident memory of the process at the stop.
    pub rss_bytes: u64,
    /// Memory mappings of the process at the stop.
    pub mappings: u64,
    /// Resident memory added per live instance over the whole phase.
    pub bytes_per_instance: f64,
    /// Available RAM when the phase started.
    pub available_bytes: u64,
    /// The page's estimate: available RAM / memory per instance.
    pub machine_estimate: u64,
    /// Seconds spent creating instances.
    pub fill_seconds: f64,
    /// Seconds spent dropping every instance afterwards.
    pub teardown_seconds: f64,
    /// The same fill and teardown again with every core at once. `None` in
    /// results from before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_cores: Option<AllCoresFill>,
    /// The fills' heap: "a N GiB region advised MADV_HUGEPAGE (…); …", or
    /// "no huge-page region: why; …", with what the host's THP mode means for
    /// the rest of the heap. Empty in results from before it was chosen.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub heap_pages: String,
    /// How the phase filled: readings taken while creating instances (at
    /// 1, 2, 4, … instances and then at least every 100 ms), ending with
    /// the stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<FillPoint>,
}

/// The concurrency phase's second fill: up to the first fill's count of
/// instances, created by one thread per core at once, each thread keeping its
/// own, then dropped by the same threads at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AllCoresFill {
    /// Threads filling and dropping at once: the cores available.
    pub threads: usize,
    /// It ran in a process of its own, as cold as the first fill's (false
    /// in files written before that: those filled again in the first fill's
    /// process, whose pool slots and heap kept their pages resident).
    #[serde(default)]
    pub own_process: bool,
    /// Live instances reached.
    pub instances: u64,
    /// What stopped it short of the first fill's count, if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// That limit in one sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Seconds from the start until the last thread had created its share.
    pub fill_seconds: f64,
    /// Resident memory the process gained from the start of this fill to
    /// its end, per instance: near the first fill's in a process of its
    /// own; pages a process kept from an earlier fill are not gained again
    /// (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_instance: Option<f64>,
    /// Seconds from the start of the teardown until the last thread had
    /// dropped its share.
    pub teardown_seconds: f64,
}

/// One reading while the concurrency phase filled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FillPoint {
    /// Seconds since filling started.
    pub seconds: f64,
    /// Live instances.
    pub instances: u64,
    /// Resident memory of the process.
    pub rss_bytes: u64,
}

/// The limit that ended the concurrency phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// The `--max-instances` cap.
    MaxInstances,
    /// The `--max-memory` resident-memory cap.
    MaxMemory,
    /// Available RAM fell to the safety margin.
    MemoryHeadroom,
    /// The process's mappings neared `vm.max_map_count`.
    MapCount,
    /// Virtual address space neared `RLIMIT_AS`.
    AddressSpace,
    /// Every slot of the pooling allocator is in use.
    PoolCapacity,
    /// The phase's time cap.
    TimeLimit,
    /// Instantiation failed for another reason.
    InstantiationError,
    /// The run was interrupted.
    Interrupted,
}

impl Limit {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxInstances => "--max-instances cap",
            Limit::MaxMemory => "--max-memory cap",
            Limit::MemoryHeadroom => "memory headroom",
            Limit::MapCount => "vm.max_map_count",
            Limit::AddressSpace => "address space (RLIMIT_AS)",
            Limit::PoolCapacity => "pool capacity",
            Limit::TimeLimit => "time limit",
            Limit::InstantiationError => "instantiation error",
            Limit::Interrupted => "interrupted",
        }
    }
}

/// Throughput with one thread count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResult {
    /// Threads instantiating at once.
    pub threads: usize,
    /// Instantiate-and-drop cycles (no run) per second, all threads together.
    pub instantiations: Summary,
    /// Full lifecycles (instantiate, run, drop) per second, all threads together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycles: Option<Summary>,
    /// Engines the threads worked in: 1 when they share one, `threads` with
    /// `--engine-per-thread` (absent in files written before the option).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engines: Option<usize>,
}
