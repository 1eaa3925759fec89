//! The command line: `siteboss benchmark`, `siteboss compare`, and the hidden
//! child-process entry point.

use crate::benchmark::Phase;
use crate::engine::RuntimeOptions;
use crate::measure::{Plan, default_headroom};
use crate::model::Allocator;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// How fast and how densely WebAssembly components start on Wasmtime.
#[derive(Debug, Parser)]
#[command(name = "siteboss", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure every figure of the benchmarks page on this machine.
    ///
    /// Cold start, warm start, a request's full lifecycle, memory per instance,
    /// total memory for N live instances, the most concurrent live instances and
    /// the limit that stopped it, and instantiations per second, for the
    /// production pooling configuration and Wasmtime's default on-demand one,
    /// beside a native process measured in the same run and the page's cited
    /// Docker, Firecracker and smolvm figures. Runs locally; no network.
    ///
    /// The process's heap is mimalloc; `SITEBOSS_MALLOC=system` measures with
    /// the C library's malloc instead (the report's Runner section names it).
    ///
    /// Exit codes: 0 measured; 2 could not run; 130 or 143 interrupted by
    /// SIGINT or SIGTERM (what was measured is still written, marked partial).
    Benchmark(BenchmarkArgs),
    /// Compare result files of a base and a head build, metric by metric.
    ///
    /// Give the files written by `siteboss benchmark --json` as BASE HEAD
    /// pairs, in the order they were measured: `compare base.json head.json`,
    /// or interleaved rounds `compare b1.json h1.json b2.json h2.json ...`.
    /// With three or more pairs each pair gives one head/base ratio (drift
    /// cancels within a pair); with fewer, the rounds inside the files are
    /// resampled. Each metric gets its ratio, a 95% confidence interval and a
    /// verdict from the gate's tolerance file and judging code.
    ///
    /// Timed and counted metrics are judged alike; a metric measured on one
    /// side only is a row that cannot be judged, never left out.
    ///
    /// Exit codes: 0 every metric judged, no regression; 1 a regression
    /// beyond tolerance, or a metric that could not be judged; 2 bad input
    /// (missing file, another schema version, files of different components
    /// or settings, nothing measured in both), with a one-line reason.
    Compare(CompareArgs),
    /// Compare two builds of siteboss in lock step: wall-clock figures of a
    /// base and a head binary measured block by block, so a slow minute of
    /// the machine hits both.
    ///
    /// Both binaries run as long-lived children with their engines and the
    /// component loaded once; the parent asks each in turn for short blocks
    /// (warm start, lifecycle, all-core throughput) in ABBA order. Each
    /// base/head pair of blocks gives one ratio; the verdict is on the median
    /// ratio with a 95% bootstrap interval, the tolerance file's
    /// `paired_relative` and the gate's judging code. The run stops at
    /// --seconds, or earlier once every verdict is clear.
    ///
    /// Exit codes: 0 every metric judged, no regression; 1 a regression, or a
    /// metric that could not be judged; 2 could not run (a missing binary, one
    /// older than this feature, another protocol version, a child that dies,
    /// or builds that measure different components), with a one-line reason.
    Ab(AbArgs),
    /// Internal: the lock-step child of `siteboss ab`. Not for direct use.
    #[command(name = "__lockstep", hide = true)]
    Lockstep,
    /// Internal: runs one child-process phase. Not for direct use.
    #[command(name = "__child", hide = true)]
    Child {
        /// The request file.
        request: PathBuf,
    },
}

/// Options of `siteboss compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Result files as BASE HEAD [BASE HEAD ...].
    #[arg(value_name = "FILE", required = true, num_args = 2..)]
    pub files: Vec<PathBuf>,

    /// Write Markdown instead of a terminal table.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,

    /// Write the comparison as JSON.
    #[arg(long)]
    pub json: bool,

    /// Also write one self-contained HTML page to PATH: the table and a
    /// chart of each metric's head/base ratio with its interval against the
    /// tolerance band. It loads nothing from the network.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// The tolerance file. [default: the copy of baselines/tolerances.toml built into siteboss]
    #[arg(long, value_name = "PATH")]
    pub tolerances: Option<PathBuf>,
}

/// Options of `siteboss ab`.
#[derive(Debug, clap::Args)]
pub struct AbArgs {
    /// The base build's `siteboss` binary.
    #[arg(value_name = "BASE_BINARY")]
    pub base: PathBuf,

    /// The head build's `siteboss` binary.
    #[arg(value_name = "HEAD_BINARY")]
    pub head: PathBuf,

    /// The component, and the request an HTTP handler is served.
    #[command(flatten)]
    pub subject: ComponentArgs,

    /// Compare on every component of a manifest (default
    /// assets/components.toml), one after another, each with its own
    /// request, profiles, tolerance overrides and time budget. --json then
    /// writes an array, one report per component.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = crate::manifest::DEFAULT_MANIFEST, conflicts_with_all = ["component", "embedded", "request", "headers", "body"])]
    pub manifest: Option<PathBuf>,

    /// Which allocator configurations to compare. [default: all; with
    /// --manifest, each component's `profiles`]
    #[arg(long, value_enum)]
    pub allocator: Option<AllocatorChoice>,

    /// The time budget in seconds, per component; the run stops earlier once
    /// every verdict is clear.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub seconds: f64,

    /// Pairs judged before the run may stop early.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub min_pairs: usize,

    /// Operations per warm-start or lifecycle block.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub ops: usize,

    /// How long one throughput block runs, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 20)]
    pub throughput_millis: u64,

    /// Write Markdown instead of a terminal table.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,

    /// Write the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// Also write the report as JSON to PATH (whatever stdout gets).
    #[arg(long, value_name = "PATH")]
    pub json_file: Option<PathBuf>,

    /// Also write one self-contained HTML page to PATH: the table and a
    /// chart of each metric's head/base ratio with its interval against the
    /// tolerance band. It loads nothing from the network.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// The tolerance file. [default: the copy of baselines/tolerances.toml built into siteboss]
    #[arg(long, value_name = "PATH")]
    pub tolerances: Option<PathBuf>,

    /// Children started per side. Pairs rotate through every base/head
    /// combination, so one child's own pace (where its memory landed in
    /// physical memory, say) is averaged out instead of read as a change:
    /// with one child per side, the same build read 4% slower than itself
    /// for a whole 30 s run, in 1 run of 20.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub children: u16,

    /// Keep address-space layout randomization in the children. By
    /// default both start with it off (as under `setarch -R`), so that they
    /// share one layout: with it on, each draws its own, and the same build
    /// measured against itself read up to 25% apart on on-demand lifecycles.
    #[arg(long)]
    pub aslr: bool,

    /// Hide the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl AbArgs {
    /// The allocators these arguments select, production profile first.
    pub fn allocators(&self) -> Vec<Allocator> {
        self.allocator.unwrap_or(AllocatorChoice::All).allocators()
    }
}

/// Which component is measured, and what an HTTP handler is asked.
#[derive(Debug, Clone, clap::Args)]
pub struct ComponentArgs {
    /// Measure this .wasm component: a `wasi:cli/run` command, a
    /// `wasi:http/incoming-handler` (served one request per instance), or a
    /// component with neither (instantiation only).
    #[arg(long, value_name = "PATH", conflicts_with = "embedded")]
    pub component: Option<PathBuf>,

    /// Measure an embedded hello world: `cli` (prints through WASI) or `http`
    /// (answers 200 through wasi:http). [default: both, for `benchmark`; cli
    /// for `ab`]
    #[arg(long, value_enum, value_name = "WHICH")]
    pub embedded: Option<crate::component::Embedded>,

    /// HTTP handlers: the request each instance is served, as METHOD PATH.
    /// [default: GET /]
    #[arg(long, num_args = 2, value_names = ["METHOD", "PATH"])]
    pub request: Option<Vec<String>>,

    /// HTTP handlers: a request header, as `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,

    /// HTTP handlers: send this file's bytes as the request body.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
}

impl ComponentArgs {
    /// The request these arguments describe, checked, with the body read.
    ///
    /// # Errors
    ///
    /// One line naming a bad method, path, header or unreadable body file.
    pub fn request(&self) -> anyhow::Result<crate::http::RequestSpec> {
        let mut spec = crate::http::RequestSpec::default();
        if let Some(r) = &self.request {
            spec.method = r[0].clone();
            spec.path = r[1].clone();
        }
        for h in &self.headers {
            spec.headers
                .push(parse_header(h).map_err(|e| anyhow::anyhow!("--header: {e}"))?);
        }
        if let Some(path) = &self.body {
            spec.body = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--body {}: cannot be read: {e}", path.display()))?;
        }
        spec.validate()
            .map_err(|e| anyhow::anyhow!("--request: {e}"))?;
        Ok(spec)
    }

    /// Whether any request option was given.
    pub fn has_request(&self) -> bool {
        self.request.is_some() || !self.headers.is_empty() || self.body.is_some()
    }
}

/// Parses `Name: value` or `Name:value`.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not a header; write it as `Name: value`"))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(format!(
            "`{s}` has no header name; write it as `Name: value`"
        ));
    }
    Ok((k.to_owned(), v.trim().to_owned()))
}

/// Which allocators to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllocatorChoice {
    /// The density profile: pooling allocator with slots sized to the
    /// component, no guard pages, no copy-on-write image.
    Pooling,
    /// The latency profile: pooling allocator with copy-on-write images and
    /// guard pages (roughly what `wasmtime serve` runs).
    PoolingCow,
    /// Wasmtime's default on-demand allocator.
    OnDemand,
    /// All three, side by side (the default; `both` is an old name for it).
    #[value(alias = "both")]
    All,
}

impl AllocatorChoice {
    /// The allocators this choice selects, pooling profiles first.
    pub fn allocators(self) -> Vec<Allocator> {
        match self {
            AllocatorChoice::Pooling => vec![Allocator::Pooling],
            AllocatorChoice::PoolingCow => vec![Allocator::PoolingCow],
            AllocatorChoice::OnDemand => vec![Allocator::OnDemand],
            AllocatorChoice::All => Allocator::ALL.to_vec(),
        }
    }
}

/// Options of `siteboss benchmark`.
#[derive(Debug, clap::Args)]
pub struct BenchmarkArgs {
    /// The component, and the request an HTTP handler is served.
    #[command(flatten)]
    pub subject: ComponentArgs,

    /// Which allocator configurations to measure. [default: all; with
    /// --manifest, each component's `profiles`]
    #[arg(long, value_enum)]
    pub allocator: Option<AllocatorChoice>,

    /// Measure every component of a manifest (default
    /// assets/components.toml), one after another; JSON output is then an
    /// array with one result per component. Without --component, --embedded
    /// or --manifest, both embedded hello worlds are measured.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = crate::manifest::DEFAULT_MANIFEST, conflicts_with_all = ["component", "embedded"])]
    pub manifest: Option<PathBuf>,

    /// A short run for CI: fewer samples, shorter time budgets (about 30 s
    /// for three profiles), and the concurrency phase capped at 20,000
    /// instances and 3 s.
    #[arg(long)]
    pub quick: bool,

    /// Write the result as versioned JSON to PATH, or to stdout when PATH is
    /// omitted or `-`. A file is rewritten after every phase, marked partial
    /// until the run completes.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,

    /// Write Markdown tables (for a CI job summary) to PATH, or to stdout when
    /// PATH is omitted or `-`.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "-")]
    pub markdown: Option<PathBuf>,

    /// Write one self-contained HTML page to PATH: every table of the
    /// report and its charts as inline SVG (latency distributions, memory
    /// against N, the concurrency fill, cold start's parts, throughput
    /// against threads). It loads nothing from the network. Rewritten after
    /// every phase, like --json.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// Write the result in Bencher Metric Format (BMF) JSON to PATH, for
    /// `bencher run --adapter json --file PATH`: one benchmark per profile
    /// and metric, named `siteboss/<profile>/<metric>`, with the median as
    /// value and the 25th/75th percentiles as lower_value/upper_value.
    /// Written when the run completes.
    #[arg(long, value_name = "PATH")]
    pub bmf: Option<PathBuf>,

    /// Write the result for github-action-benchmark, one file per
    /// direction, named from PATH by putting `.smaller-is-better` and
    /// `.bigger-is-better` before its extension (`.json` if it has none):
    /// `--github-action-benchmark out/gab.json` writes
    /// out/gab.smaller-is-better.json (tool: customSmallerIsBetter) and
    /// out/gab.bigger-is-better.json (tool: customBiggerIsBetter). Written
    /// when the run completes.
    #[arg(long, value_name = "PATH")]
    pub github_action_benchmark: Option<PathBuf>,

    /// Concurrency phase: stop at this many live instances.
    /// [default: 1000000, or 20000 with --quick]
    #[arg(long, value_name = "N")]
    pub max_instances: Option<u64>,

    /// Concurrency phase: stop before the process's resident memory passes
    /// this many bytes (suffixes K, M, G, KiB, MiB, GiB). [default: no cap]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,

    /// Concurrency phase: stop while the machine still has this much RAM
    /// available. [default: 10% of RAM, at least 1 GiB]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub min_available: Option<u64>,

    /// Concurrency phase: stop after this many seconds. [default: 60, or 3 with --quick; each of the one-thread and all-core fills gets it]
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<f64>,

    /// Concurrency phase: keep the fills' heap on 4 KiB pages. By default
    /// each fill's process first gives its heap (mimalloc) a region advised
    /// for transparent huge pages (MADV_HUGEPAGE), so a million stores and
    /// WASI contexts fault in 2 MiB at a time; the other phases always use
    /// 4 KiB pages. No region is made when the heap is the C library's
    /// malloc, when RLIMIT_AS is set, under strict overcommit, or when THP is
    /// `never`; the report says which, and what the host's THP mode means
    /// for the rest of the heap.
    #[arg(long)]
    pub no_huge_page_heap: bool,

    /// Pooling: the linear-memory slot of each instance, in bytes. By default
    /// it is the maximum the component's memories declare, or else twice what
    /// it reached in a probe run (at most --instance-memory-limit).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub memory_slot: Option<u64>,

    /// The most linear memory one instance may grow to; past it the instance
    /// is stopped (a store limit).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "64MiB")]
    pub instance_memory_limit: u64,

    /// How long one call into the component may run before it is interrupted
    /// (an epoch deadline), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub call_timeout: u64,

    /// Bytes of stdout, and of stderr, kept per instance; the rest is counted
    /// and dropped.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value = "64KiB")]
    pub output_limit: u64,

    /// Link imports this host does not provide as functions that trap, so a
    /// component that needs them can still be instantiated and measured.
    #[arg(long)]
    pub stub_missing_imports: bool,

    /// Skip the native-process phase.
    #[arg(long)]
    pub no_native: bool,

    /// Throughput phase: give each thread of a multi-thread round an engine,
    /// instance pool and loaded component of its own, as a host that shards
    /// its runtime by core would. By default the threads share one engine,
    /// as `wasmtime serve` does; the shared engine's reference counts and
    /// pool counters then move between cores on every lifecycle.
    #[arg(long)]
    pub engine_per_thread: bool,

    /// Measure only these phases (comma-separated); the others are reported
    /// as not selected. [default: every phase]
    #[arg(long, value_enum, value_name = "PHASE,...", value_delimiter = ',')]
    pub phases: Vec<Phase>,

    /// Hide the progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl BenchmarkArgs {
    /// The plan these arguments select.
    pub fn plan(&self) -> Plan {
        let mut plan = if self.quick {
            Plan::quick()
        } else {
            Plan::full()
        };
        if let Some(n) = self.max_instances {
            plan.density.max_instances = n;
        }
        if let Some(b) = self.max_memory {
            plan.density.max_memory_bytes = b;
        }
        plan.density.min_available_bytes = self.min_available.unwrap_or_else(default_headroom);
        if let Some(t) = self.time_limit {
            plan.density.time_limit_seconds = t;
        }
        plan.density.huge_page_heap = !self.no_huge_page_heap;
        plan.engine_per_thread = self.engine_per_thread;
        plan
    }

    /// The allocators these arguments select, production profile first.
    pub fn allocators(&self) -> Vec<Allocator> {
        self.allocator.unwrap_or(AllocatorChoice::All).allocators()
    }

    /// Whether --allocator was given.
    pub fn allocator_given(&self) -> bool {
        self.allocator.is_some()
    }

    /// The phases these arguments select, in the order a run measures them.
    ///
    /// `--quick` leaves out the counts phase unless `--phases` names it:
    /// counting under Valgrind takes seconds per profile, and a quick run's
    /// counts would otherwise be cut to fewer operations per block.
    pub fn phases(&self) -> Vec<Phase> {
        Phase::ALL
            .into_iter()
            .filter(|p| {
                if self.phases.is_empty() {
                    !(self.quick && *p == Phase::Counts)
                } else {
                    self.phases.contains(p)
                }
            })
            .collect()
    }

    /// The runtime options these arguments select.
    pub fn runtime(&self) -> RuntimeOptions {
        RuntimeOptions {
            memory_slot: self.memory_slot,
            max_memory_bytes: self.instance_memory_limit,
            call_timeout_ms: self.call_timeout,
            output_limit: usize::try_from(self.output_limit).unwrap_or(usize::MAX),
            stub_missing_imports: self.stub_missing_imports,
            ..RuntimeOptions::new(Allocator::Pooling)
        }
    }
}

/// Parses `4096`, `64K`, `64KiB`, `1.5G` and the like into bytes (binary multiples).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("`{s}` is not a size; use a number of bytes with an optional K, M or G suffix")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("`{other}` is not a size unit; use K, M, G or T")),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(format!("`{s}` is not a size"));
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64KiB"), Ok(65536));
        assert_eq!(parse_bytes("64k"), Ok(65536));
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("12 parsecs").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
