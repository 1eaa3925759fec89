//! Counted metrics: instructions and system calls per operation, counted
//! under Valgrind's callgrind in a child process, and minor page faults per
//! lifecycle, counted natively with `getrusage`.
//!
//! Every count is a steady-state cost: after a warm-up, a block of N
//! operations is counted, an empty block (the same loop with nothing in it) is
//! subtracted, and the difference is divided by N. Each round counts one empty
//! block and one block of every operation; rounds are what the gate judges.
//!
//! How the child delimits what is counted:
//! - instructions: callgrind starts with collection off
//!   (`--collect-atstart=no`); the child switches collection on just before
//!   each operation and off just after it (`CALLGRIND_TOGGLE_COLLECT`, which
//!   acts on the calling thread only), zeroes the counters before a block and
//!   dumps them after it (`CALLGRIND_DUMP_STATS_AT`, one labelled part per
//!   block in one file with `--combine-dumps=yes`). Setup and teardown of each
//!   operation (creating the instance a `run` needs, dropping it) are outside.
//! - system calls: Valgrind logs every system call with the thread that made
//!   it (`--trace-syscalls=yes`). The child brackets each operation with two
//!   marker calls, `lseek` on a file descriptor that cannot exist, whose
//!   arguments carry the block and whether it starts or ends; the parent
//!   counts the calls the measuring thread made between the two.
//! - page faults: `getrusage(RUSAGE_THREAD)` around a block of lifecycles on
//!   this thread, natively, because Valgrind manages the client's memory
//!   itself and its faults are not the program's.
//!
//! Code compiled by Cranelift inside the child sees the CPU that Valgrind
//! presents, not the host's: Valgrind offers a few fixed CPU models, chosen
//! by the host's feature level. So counts depend on the architecture and that
//! level ([`counts_key`]), not on the host's CPU model.

pub use super::child::CountPlan;
use super::child::{self, CountBlock, CountProfile, CountReply, Reply, Request, Task};
use super::{Subject, os};
use crate::component::ComponentSource;
use crate::engine::{Load, Runtime, new_engine};
use crate::model::{CountsResult, Metric, Summary, Unit};
use crate::stats::summarize_per_round;
use crate::valgrind;
use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The operations the child counts, in the order each round runs them.
pub const OPS: [Op; 7] = [
    Op::WarmStart,
    Op::Run,
    Op::Drop,
    Op::Lifecycle,
    Op::Engine,
    Op::Deserialize,
    Op::FirstInstantiate,
];

/// One counted operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A fresh store and WASI context, and `InstancePre::instantiate`.
    WarmStart,
    /// `wasi:cli/run` on a fresh instance.
    Run,
    /// Dropping a store whose instance has run.
    Drop,
    /// Instantiate, run, drop.
    Lifecycle,
    /// `Engine::new` with the profile's configuration.
    Engine,
    /// Deserialize the artifact, link WASI, `instantiate_pre`.
    Deserialize,
    /// The first instantiation in a freshly loaded engine.
    FirstInstantiate,
}

impl Op {
    /// The name used in the child's reply.
    pub fn name(self) -> &'static str {
        match self {
            Op::WarmStart => "warm-start",
            Op::Run => "run",
            Op::Drop => "drop",
            Op::Lifecycle => "lifecycle",
            Op::Engine => "engine",
            Op::Deserialize => "deserialize",
            Op::FirstInstantiate => "first-instantiate",
        }
    }

    fn from_name(s: &str) -> Option<Op> {
        OPS.into_iter().find(|o| o.name() == s)
    }

    /// Engine-level operations, counted in shorter blocks.
    fn is_cold(self) -> bool {
        matches!(self, Op::Engine | Op::Deserialize | Op::FirstInstantiate)
    }

    /// Whether the operation needs the component's `run`.
    fn needs_run(self) -> bool {
        matches!(self, Op::Run | Op::Lifecycle)
    }

    /// The instruction metric it gives.
    pub fn instructions(self) -> Metric {
        match self {
            Op::WarmStart => Metric::InstructionsWarmStart,
            Op::Run => Metric::InstructionsRun,
            Op::Drop => Metric::InstructionsDrop,
            Op::Lifecycle => Metric::InstructionsLifecycle,
            Op::Engine => Metric::InstructionsEngine,
            Op::Deserialize => Metric::InstructionsDeserialize,
            Op::FirstInstantiate => Metric::InstructionsFirstInstantiate,
        }
    }

    /// The system-call metric it gives, if one is reported.
    pub fn syscalls(self) -> Option<Metric> {
        (self == Op::Lifecycle).then_some(Metric::SyscallsLifecycle)
    }
}

impl CountPlan {
    /// The default: 5 rounds of 100 instance operations and 10 engine-level
    /// ones, after 200 lifecycles of warm-up.
    pub fn standard() -> Self {
        CountPlan {
            warmup: 200,
            ops: 100,
            cold_ops: 10,
            rounds: 5,
        }
    }
}

/// How many times slower code runs under callgrind than natively, about.
const VALGRIND_SLOWDOWN: f64 = 60.0;
/// Valgrind's start-up with the `siteboss` binary, about, in seconds.
const VALGRIND_START_SECONDS: f64 = 3.0;
/// Lifecycles one round costs per operation of its blocks, about: warm
/// start, run, drop and lifecycle blocks, with the set-up they need.
const LIFECYCLES_PER_OP: f64 = 4.0;

/// About how long the counts phase takes with `plan`: the counting child
/// under Valgrind (compiling the component, the warm-up and every block),
/// then the native page-fault loop.
pub fn plan_seconds(plan: &CountPlan, compile: Duration, lifecycle: Duration) -> f64 {
    let l = lifecycle.as_secs_f64();
    let c = compile.as_secs_f64();
    let instance_ops =
        (plan.warmup as f64 + plan.rounds as f64 * plan.ops as f64 * LIFECYCLES_PER_OP) * l;
    // Engine creation and deserializing are cheap next to compiling; count
    // each engine-level operation as a hundredth of a compile plus a lifecycle.
    let cold_ops = (plan.rounds * plan.cold_ops * 3) as f64 * (c / 100.0 + l);
    let under_valgrind = VALGRIND_START_SECONDS + VALGRIND_SLOWDOWN * (c + instance_ops + cold_ops);
    let page_faults = (plan.warmup + plan.rounds * plan.ops) as f64 * l;
    under_valgrind + page_faults
}

/// A nominal compile time for a component of `bytes`: about 1.5 MB/s
/// (a 1.5 MB component compiled in 0.68–1.03 s on the development machine),
/// at least 10 ms. Deterministic, unlike a measured time.
pub fn nominal_compile(bytes: usize) -> Duration {
    Duration::from_secs_f64((bytes as f64 / 1.5e6).max(0.01))
}

/// `lifecycle` rounded to the nearest power of ten (in log space), so that a
/// loaded machine rarely moves it to another plan.
pub fn nominal_lifecycle(lifecycle: Duration) -> Duration {
    let s = lifecycle.as_secs_f64().max(1e-7);
    Duration::from_secs_f64(10f64.powf(s.log10().round()))
}

/// The smallest plan the counts phase runs: a few operations per block,
/// three rounds.
pub const LEAST_PLAN: CountPlan = CountPlan {
    warmup: 2,
    ops: 5,
    cold_ops: 2,
    rounds: 3,
};

/// About how long the counts phase takes at the least ([`LEAST_PLAN`]).
pub fn least_seconds(compile: Duration, lifecycle: Duration) -> f64 {
    plan_seconds(&LEAST_PLAN, compile, lifecycle)
}

/// `plan`, or the largest scaled-down version of it that fits in `budget`
/// seconds (see [`plan_seconds`]), or `None` when even [`LEAST_PLAN`] does not.
pub fn fit_plan(
    plan: CountPlan,
    compile: Duration,
    lifecycle: Duration,
    budget: f64,
) -> Option<CountPlan> {
    let scaled = |f: f64| {
        let at_least = |n: usize, least: usize| ((n as f64 * f) as usize).max(least).min(n);
        CountPlan {
            warmup: at_least(plan.warmup, LEAST_PLAN.warmup),
            ops: at_least(plan.ops, LEAST_PLAN.ops),
            cold_ops: at_least(plan.cold_ops, LEAST_PLAN.cold_ops),
            rounds: if f >= 0.1 {
                plan.rounds
            } else {
                LEAST_PLAN.rounds.min(plan.rounds)
            },
        }
    };
    [1.0, 0.5, 0.25, 0.1, 0.05, 0.02, 0.0]
        .into_iter()
        .map(scaled)
        .find(|p| plan_seconds(p, compile, lifecycle) <= budget)
}

/// The file descriptor of the marker calls: far above any descriptor the
/// child opens, so the call fails at once with `EBADF`.
const MARKER_FD: libc::c_long = 1_000_003;
const MARK_START: libc::c_long = 0;
const MARK_END: libc::c_long = 1;

fn mark(id: u32, which: libc::c_long) {
    // SAFETY: lseek on a descriptor that does not exist only returns EBADF.
    unsafe {
        libc::syscall(libc::SYS_lseek, MARKER_FD, libc::c_long::from(id), which);
    }
}

fn label(id: u32) -> CString {
    CString::new(format!("siteboss-block-{id}")).expect("no NUL in a label")
}

/// Runs `n` operations as one counted block: `setup` and `teardown` of each
/// are outside what is counted, `op` inside.
fn block<S, T>(
    id: u32,
    n: usize,
    mut setup: impl FnMut() -> anyhow::Result<S>,
    mut op: impl FnMut(S) -> anyhow::Result<T>,
    mut teardown: impl FnMut(T),
) -> anyhow::Result<()> {
    valgrind::zero_stats();
    for _ in 0..n {
        let s = setup()?;
        mark(id, MARK_START);
        valgrind::toggle_collect();
        let t = op(s);
        valgrind::toggle_collect();
        mark(id, MARK_END);
        teardown(t?);
    }
    valgrind::dump_stats_at(&label(id));
    Ok(())
}

/// The child's side, run under `valgrind --tool=callgrind`: compiles each
/// profile (uninstrumented), then counts every operation in rounds.
///
/// # Errors
///
/// Fails when the component cannot be compiled or an operation fails.
pub fn count_in_child(
    source: &ComponentSource,
    profiles: &[CountProfile],
    plan: &CountPlan,
) -> anyhow::Result<CountReply> {
    let on_valgrind = valgrind::running_on_valgrind();
    // Compiled here, not by the parent: Cranelift compiles for the CPU it
    // sees, and under Valgrind that is Valgrind's, not the host's.
    let prepared = profiles
        .iter()
        .map(|p| {
            let artifact = Runtime::precompile(source, &p.options, p.footprint)?;
            let rt = Runtime::deserialize(&artifact, source, &p.options, p.footprint)?;
            Ok((p, artifact, rt))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    valgrind::start_instrumentation();
    let mut blocks = Vec::new();
    let mut next_id = 0u32;
    for (index, (profile, artifact, rt)) in prepared.iter().enumerate() {
        let has_run = rt.has_run();
        let cycle = || -> anyhow::Result<()> {
            let mut live = rt.instantiate()?;
            if has_run {
                rt.run(&mut live)?;
            }
            Ok(())
        };
        for _ in 0..plan.warmup {
            cycle()?;
        }
        let load = || -> anyhow::Result<Runtime> {
            Runtime::load(
                new_engine(&profile.options, &profile.footprint)?,
                Load::Artifact(artifact),
                source,
                &profile.options,
                profile.footprint,
            )
        };
        // Engine-level operations once, uncounted, so that one-time
        // initialisation (globals, code-memory registration) is not in round 0.
        drop(load()?.instantiate()?);
        for round in 0..plan.rounds {
            let mut record = |op: Option<Op>, ops: usize| {
                let id = next_id;
                next_id += 1;
                blocks.push(CountBlock {
                    profile: index,
                    op: op.map(|o| o.name().to_owned()),
                    round,
                    ops,
                    id,
                });
                id
            };
            let id = record(None, plan.ops);
            block(id, plan.ops, || Ok(()), |()| Ok(()), |()| {})?;
            for op in OPS {
                if op.needs_run() && !has_run {
                    continue;
                }
                let n = if op.is_cold() {
                    plan.cold_ops
                } else {
                    plan.ops
                };
                let id = record(Some(op), n);
                match op {
                    Op::WarmStart => block(id, n, || Ok(()), |()| Ok(rt.instantiate()?), drop)?,
                    Op::Run => block(
                        id,
                        n,
                        || Ok(rt.instantiate()?),
                        |mut live| Ok(rt.run(&mut live).map(|()| live)?),
                        drop,
                    )?,
                    Op::Drop => block(
                        id,
                        n,
                        || {
                            let mut live = rt.instantiate()?;
                            if has_run {
                                rt.run(&mut live)?;
                            }
                            Ok(live)
                        },
                        |live| {
                            drop(live);
                            Ok(())
                        },
                        |()| {},
                    )?,
                    Op::Lifecycle => block(id, n, || Ok(()), |()| Ok(rt.lifecycle()?), |()| {})?,
                    Op::Engine => block(
                        id,
                        n,
                        || Ok(()),
                        |()| new_engine(&profile.options, &profile.footprint),
                        drop,
                    )?,
                    Op::Deserialize => block(
                        id,
                        n,
                        || new_engine(&profile.options, &profile.footprint),
                        |engine| {
                            Runtime::load(
                                engine,
                                Load::Artifact(artifact),
                                source,
                                &profile.options,
                                profile.footprint,
                            )
                        },
                        drop,
                    )?,
                    Op::FirstInstantiate => block(
                        id,
                        n,
                        load,
                        |fresh| Ok(fresh.instantiate().map(|live| (live, fresh))?),
                        drop,
                    )?,
                }
            }
        }
    }
    Ok(CountReply {
        on_valgrind,
        cpu_seen: cpu_seen(),
        blocks,
    })
}

/// The CPU as this process sees it: the brand string and the x86-64
/// feature level (or the architecture elsewhere).
pub fn cpu_seen() -> String {
    format!("{} ({})", cpu_brand(), feature_level())
}

#[cfg(target_arch = "x86_64")]
fn cpu_brand() -> String {
    use std::arch::x86_64::__cpuid;
    let max = __cpuid(0x8000_0000).eax;
    if max < 0x8000_0004 {
        return "unknown x86_64 CPU".into();
    }
    let mut bytes = Vec::with_capacity(48);
    for leaf in 0x8000_0002u32..=0x8000_0004 {
        let r = __cpuid(leaf);
        for reg in [r.eax, r.ebx, r.ecx, r.edx] {
            bytes.extend_from_slice(&reg.to_le_bytes());
        }
    }
    String::from_utf8_lossy(&bytes)
        .trim_matches(char::from(0))
        .trim()
        .to_owned()
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_brand() -> String {
    std::env::consts::ARCH.to_owned()
}

/// The x86-64 micro-architecture level (psABI v1–v4) this process sees, or
/// the architecture's name elsewhere.
pub fn feature_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let v2 = has!("cmpxchg16b")
            && has!("popcnt")
            && has!("sse3")
            && has!("ssse3")
            && has!("sse4.1")
            && has!("sse4.2");
        let v3 = v2
            && has!("avx")
            && has!("avx2")
            && has!("bmi1")
            && has!("bmi2")
            && has!("f16c")
            && has!("fma")
            && has!("lzcnt")
            && has!("movbe")
            && has!("xsave");
        let v4 = v3
            && has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl");
        if v4 {
            "x86-64-v4"
        } else if v3 {
            "x86-64-v3"
        } else if v2 {
            "x86-64-v2"
        } else {
            "x86-64-v1"
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}

/// The key counted baselines are filed under, from the CPU the counted code
/// saw: `<arch>-<os>-<level>`, such as `x86_64-linux-x86-64-v3`.
pub fn counts_key_for(cpu_seen: &str) -> String {
    let level = cpu_seen
        .rsplit_once('(')
        .and_then(|(_, l)| l.strip_suffix(')'))
        .unwrap_or(std::env::consts::ARCH);
    let level = if level == std::env::consts::ARCH {
        String::new()
    } else {
        format!("-{level}")
    };
    format!("{}-{}{level}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The key this machine's counts are expected under, before any counting:
/// Valgrind 3.x presents at most an AVX2 (x86-64-v3) CPU, so a v4 host counts
/// as v3.
pub fn counts_key() -> String {
    let level = match feature_level() {
        "x86-64-v4" => "x86-64-v3",
        other => other,
    };
    counts_key_for(&format!("host ({level})"))
}

/// The counting child's environment. glibc's malloc serves an allocation
/// from its per-thread cache when it can, and otherwise from bins whose state
/// drifts as the heap ages, at a cost that varies by hundreds of instructions.
/// A cache that never fills (the largest count glibc accepts, instead of 7
/// chunks per size) serves every steady-state allocation the same way: on the
/// embedded hello, rounds of one run then agree to 0.1–0.3% instead of
/// 0.4–1.2% (and first instantiations to 1% instead of 50%). Other C
/// libraries ignore the variable. It matters only with
/// `SITEBOSS_MALLOC=system`: the default heap, mimalloc (`heap.rs`), does not
/// read it; in its re-recorded baseline the five rounds of every counted
/// figure agree to within 0.8% (most within 0.3%) without it.
pub const COUNT_ENV: [(&str, &str); 1] = [("GLIBC_TUNABLES", "glibc.malloc.tcache_count=65535")];

/// A Valgrind that can count.
#[derive(Debug, Clone)]
pub struct Valgrind {
    /// The program.
    pub program: PathBuf,
    /// What `valgrind --version` printed, such as `valgrind-3.19.0`.
    pub version: String,
}

/// The way to install Valgrind, for messages.
pub const INSTALL_VALGRIND: &str = "install it (Debian/Ubuntu: `sudo apt-get install -y valgrind`) or set SITEBOSS_VALGRIND to its path";

/// Finds Valgrind: `SITEBOSS_VALGRIND`, or `valgrind` on `PATH`.
///
/// # Errors
///
/// One line saying it is missing and how to install it, or that this
/// architecture cannot issue client requests.
pub fn find_valgrind() -> Result<Valgrind, String> {
    if !valgrind::SUPPORTED {
        return Err(format!(
            "counting instructions needs Valgrind client requests, which siteboss issues on x86_64 and aarch64 only (this is {})",
            std::env::consts::ARCH
        ));
    }
    let program = std::env::var_os("SITEBOSS_VALGRIND")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("valgrind"), PathBuf::from);
    match std::process::Command::new(&program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(Valgrind {
            program,
            version: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        }),
        Ok(out) => Err(format!(
            "`{} --version` failed ({}); {INSTALL_VALGRIND}",
            program.display(),
            out.status
        )),
        Err(e) => Err(format!(
            "valgrind not found (`{}`: {e}); {INSTALL_VALGRIND}",
            program.display()
        )),
    }
}

/// Counts every operation of every subject in one child under callgrind,
/// and returns one [`CountsResult`] per subject (instructions and system
/// calls; page faults are added by [`page_faults_lifecycle`]).
///
/// # Errors
///
/// Fails when Valgrind fails, the child fails, or a dump is missing.
pub fn count(
    vg: &Valgrind,
    exe: &Path,
    subjects: &[&Subject],
    plan: &CountPlan,
    capacity: u32,
    dir: &Path,
) -> anyhow::Result<Vec<CountsResult>> {
    let first = subjects
        .first()
        .ok_or_else(|| anyhow::anyhow!("nothing to count"))?;
    let out = dir.join("count.callgrind.out");
    let log = dir.join("count.valgrind.log");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&log);
    let request = Request {
        component: first.source.path.clone(),
        embedded: first.source.embedded,
        options: first.options_with_capacity(u64::from(capacity)),
        footprint: first.footprint,
        reply: dir.join("count.reply.json"),
        task: Task::Count {
            profiles: subjects
                .iter()
                .map(|s| CountProfile {
                    options: s.options_with_capacity(u64::from(capacity)),
                    footprint: s.footprint,
                })
                .collect(),
            plan: *plan,
        },
    };
    let arg = |a: &str| OsString::from(a);
    let path_arg = |flag: &str, p: &Path| {
        let mut s = OsString::from(flag);
        s.push(p.as_os_str());
        s
    };
    let wrapper = vec![
        vg.program.clone().into_os_string(),
        arg("--tool=callgrind"),
        arg("--instr-atstart=no"),
        arg("--collect-atstart=no"),
        arg("--combine-dumps=yes"),
        arg("--dump-instr=no"),
        arg("--dump-line=no"),
        arg("--compress-strings=no"),
        arg("--compress-pos=no"),
        arg("--trace-syscalls=yes"),
        path_arg("--callgrind-out-file=", &out),
        path_arg("--log-file=", &log),
    ];
    let timeout = Duration::from_secs(900);
    let (reply, _) = child::spawn_wrapped(&wrapper, &COUNT_ENV, exe, &request, dir, timeout)
        .map_err(|e| {
            anyhow::anyhow!(
                "the counting child under Valgrind failed: {e:#} (log: {})",
                log.display()
            )
        })?;
    let Reply::Count(reply) = reply else {
        anyhow::bail!("a counting child gave the wrong kind of reply");
    };
    if !reply.on_valgrind {
        anyhow::bail!(
            "the counting child did not find itself under Valgrind (is `{}` Valgrind?)",
            vg.program.display()
        );
    }
    let dumps = std::fs::read_to_string(&out)
        .map_err(|e| anyhow::anyhow!("{}: cannot read callgrind's output: {e}", out.display()))?;
    let instructions = parse_callgrind(&dumps);
    let log_text = std::fs::read_to_string(&log)
        .map_err(|e| anyhow::anyhow!("{}: cannot read Valgrind's log: {e}", log.display()))?;
    let syscalls = parse_syscalls(&log_text);
    if !dir_keep() {
        // Megabytes each; what was needed has been read.
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&log);
    }
    let key = counts_key_for(&reply.cpu_seen);
    (0..subjects.len())
        .map(|i| {
            let figures = per_op(&reply.blocks, i, &instructions, &syscalls)?;
            Ok(CountsResult {
                instrument: Some(format!("{} --tool=callgrind", vg.version)),
                cpu_seen: Some(reply.cpu_seen.clone()),
                key: key.clone(),
                ops_per_block: plan.ops,
                figures,
            })
        })
        .collect()
}

fn dir_keep() -> bool {
    std::env::var_os("SITEBOSS_KEEP_TEMP").is_some_and(|v| v != "0")
}

/// Per-operation figures of one profile from the blocks' totals.
fn per_op(
    blocks: &[CountBlock],
    profile: usize,
    instructions: &BTreeMap<u32, u64>,
    syscalls: &BTreeMap<u32, u64>,
) -> anyhow::Result<BTreeMap<Metric, Summary>> {
    let mut rounds: BTreeMap<Metric, Vec<f64>> = BTreeMap::new();
    let mine: Vec<&CountBlock> = blocks.iter().filter(|b| b.profile == profile).collect();
    let empties: BTreeMap<usize, &CountBlock> = mine
        .iter()
        .filter(|b| b.op.is_none())
        .map(|b| (b.round, *b))
        .collect();
    let total = |map: &BTreeMap<u32, u64>, id: u32, what: &str| {
        map.get(&id)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("no {what} recorded for block {id}"))
    };
    for b in mine.iter().filter(|b| b.op.is_some()) {
        let name = b.op.as_deref().unwrap_or_default();
        let op = Op::from_name(name).ok_or_else(|| anyhow::anyhow!("unknown operation {name}"))?;
        let empty = empties
            .get(&b.round)
            .ok_or_else(|| anyhow::anyhow!("round {} has no empty block", b.round))?;
        let per = |map: &BTreeMap<u32, u64>, what: &str| -> anyhow::Result<f64> {
            let ops = total(map, b.id, what)? as f64 / b.ops as f64;
            let overhead = total(map, empty.id, what)? as f64 / empty.ops as f64;
            Ok(ops - overhead)
        };
        rounds
            .entry(op.instructions())
            .or_default()
            .push(per(instructions, "instruction count")?);
        if let Some(m) = op.syscalls() {
            rounds
                .entry(m)
                .or_default()
                .push(per(syscalls, "system calls")?);
        }
    }
    Ok(rounds
        .into_iter()
        .map(|(m, v)| (m, summarize_per_round(&v, m.unit())))
        .collect())
}

/// Instructions (`Ir`) of each labelled part of a callgrind output file
/// written with `--combine-dumps=yes`, by block id.
pub fn parse_callgrind(text: &str) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let mut current: Option<u32> = None;
    for line in text.lines() {
        if let Some(trigger) = line.strip_prefix("desc: Trigger: ") {
            // Every part names its trigger; only ours carry a block id (the
            // last part, "Program termination", must not be read as one).
            current = trigger
                .strip_prefix("Client Request: ")
                .and_then(|r| r.trim().strip_prefix("siteboss-block-"))
                .and_then(|n| n.parse().ok());
        } else if let Some(rest) = line
            .strip_prefix("totals:")
            .or_else(|| line.strip_prefix("summary:"))
            && let Some(id) = current
            && let Some(ir) = rest.split_whitespace().next().and_then(|v| v.parse().ok())
        {
            out.insert(id, ir);
        }
    }
    out
}

/// System calls that the kernel's vDSO answers without entering the kernel
/// when a program runs natively. Under Valgrind they are real system calls,
/// so they are left out of the count.
const VDSO_CALLS: [&str; 5] = [
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "getcpu",
];

/// System calls the main thread (Valgrind thread 1) made between each
/// block's start and end markers, summed per block id. Calls the vDSO serves
/// natively ([`VDSO_CALLS`]) are not counted, and a blocking call that
/// Valgrind logs twice (`--> [async] ...`, then `... [async] --> result`)
/// counts once.
pub fn parse_syscalls(log: &str) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let mut open: Option<u32> = None;
    let marker = format!("sys_lseek ( {MARKER_FD}, ");
    for line in log.lines() {
        // `SYSCALL[pid,tid](nr) sys_name ( args ) --> result`, possibly after
        // Valgrind's `==pid== ` prefix.
        let Some(at) = line.find("SYSCALL[") else {
            continue;
        };
        let rest = &line[at + "SYSCALL[".len()..];
        let Some((ids, call)) = rest.split_once(']') else {
            continue;
        };
        let tid = ids
            .split(',')
            .nth(1)
            .and_then(|t| t.trim().parse::<u32>().ok());
        if tid != Some(1) {
            continue;
        }
        // Skip `(nr) `.
        let call = call.split_once(')').map_or(call, |(_, c)| c).trim_start();
        if call.starts_with("...") {
            continue;
        }
        if let Some(args) = call.strip_prefix(&marker) {
            let mut parts = args
                .split(',')
                .map(|p| p.trim().trim_end_matches(')').trim());
            let id = parts.next().and_then(|p| p.parse::<u32>().ok());
            let which = parts
                .next()
                .and_then(|p| p.split_whitespace().next()?.parse::<i64>().ok());
            match (id, which) {
                (Some(id), Some(0)) => {
                    out.entry(id).or_insert(0);
                    open = Some(id);
                }
                (Some(_), Some(1)) => open = None,
                _ => {}
            }
            continue;
        }
        let name = call
            .strip_prefix("sys_")
            .unwrap_or(call)
            .split(|c: char| c == '(' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        if VDSO_CALLS.contains(&name) {
            continue;
        }
        if let Some(id) = open {
            *out.entry(id).or_insert(0) += 1;
        }
    }
    out
}

/// Minor page faults per lifecycle (per instantiation for a component
/// without `run`) on this thread, natively: `rounds` blocks of `ops` after
/// `warmup`.
///
/// # Errors
///
/// Fails when an operation fails.
pub fn page_faults_lifecycle(rt: &Runtime, plan: &CountPlan) -> anyhow::Result<Summary> {
    let _pinned = os::pin_to_last_cpu();
    let cycle = || -> anyhow::Result<()> {
        let mut live = rt.instantiate()?;
        if rt.has_run() {
            rt.run(&mut live)?;
        }
        Ok(())
    };
    for _ in 0..plan.warmup {
        cycle()?;
    }
    let mut rounds = Vec::with_capacity(plan.rounds);
    for _ in 0..plan.rounds {
        let before = os::thread_minor_faults();
        for _ in 0..plan.ops {
            cycle()?;
        }
        let after = os::thread_minor_faults();
        rounds.push(after.saturating_sub(before) as f64 / plan.ops as f64);
    }
    Ok(summarize_per_round(&rounds, Unit::PageFaults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_component_is_counted_in_fewer_operations_or_not_at_all() {
        let ms = Duration::from_millis;
        let standard = CountPlan::standard();
        // A hello world: the standard plan fits a generous budget.
        assert_eq!(
            fit_plan(standard, ms(60), Duration::from_micros(10), 60.0),
            Some(standard)
        );
        // A 4 ms lifecycle: fewer operations per block.
        let cut = fit_plan(standard, ms(60), ms(4), 60.0).expect("fits scaled down");
        assert!(
            cut.ops < standard.ops && cut.ops >= LEAST_PLAN.ops,
            "{cut:?}"
        );
        assert!(plan_seconds(&cut, ms(60), ms(4)) <= 60.0);
        // Compiling for a second natively cannot fit 15 s under Valgrind.
        assert_eq!(fit_plan(standard, ms(1000), ms(4), 15.0), None);
        assert!(least_seconds(ms(1000), ms(4)) > 15.0);
    }

    #[test]
    fn callgrind_parts_are_read_by_label() {
        let text = "version: 1\ncreator: callgrind-3.19.0\ndesc: Trigger: Client Request: siteboss-block-0\nevents: Ir\nsummary: 120\nfn=(1) x\n1 120\ntotals: 120\n\
                    desc: Trigger: Client Request: siteboss-block-1\nevents: Ir\nsummary: 25600120\ntotals: 25600120\n\
                    desc: Timerange: Basic block 1 - 2\ndesc: Trigger: Program termination\nsummary: 0\ntotals: 0\n";
        let m = parse_callgrind(text);
        assert_eq!(m.get(&0), Some(&120));
        assert_eq!(m.get(&1), Some(&25_600_120));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn syscalls_are_counted_between_markers_on_the_main_thread_only() {
        let log = "\
SYSCALL[7,1](  8) sys_lseek ( 1000003, 4, 0 ) --> [pre-fail] Failure(0x9)
SYSCALL[7,1]( 11) sys_munmap ( 0x1000, 4096 ) --> Success(0x0)
SYSCALL[7,2]( 35) sys_nanosleep ( 0x..., 0x0 ) --> [async] ...
SYSCALL[7,1](228) sys_clock_gettime( 1, 0x1ffeffe510 )[sync] --> Success(0x0)
SYSCALL[7,1](16) sys_ioctl ( 4, 0xc0606610, 0x1ffeffe758 ) --> [async] ...
SYSCALL[7,1](16) ... [async] --> Success(0x1)
SYSCALL[7,1](  8) sys_lseek ( 1000003, 4, 1 ) --> [pre-fail] Failure(0x9)
SYSCALL[7,1](  9) sys_mmap ( 0x0, 4096, 3, 34, -1, 0 ) --> Success(0x5000)
SYSCALL[7,1](  8) sys_lseek ( 1000003, 4, 0 ) --> [pre-fail] Failure(0x9)
SYSCALL[7,1](  8) sys_lseek ( 1000003, 4, 1 ) --> [pre-fail] Failure(0x9)
SYSCALL[7,1](  8) sys_lseek ( 1000003, 5, 0 ) --> [pre-fail] Failure(0x9)
SYSCALL[7,1](  8) sys_lseek ( 1000003, 5, 1 ) --> [pre-fail] Failure(0x9)
";
        let m = parse_syscalls(log);
        // Block 4: munmap and the ioctl (logged twice, as it blocked) inside;
        // the thread-2 call, the vDSO clock read and the mmap outside the
        // markers are not counted.
        assert_eq!(m.get(&4), Some(&2));
        assert_eq!(m.get(&5), Some(&0));
    }

    #[test]
    fn counts_keys_name_arch_os_and_level() {
        assert_eq!(
            counts_key_for("Intel(R) Core(TM) i7-4910MQ CPU @ 2.90GHz (x86-64-v3)"),
            format!(
                "{}-{}-x86-64-v3",
                std::env::consts::ARCH,
                std::env::consts::OS
            )
        );
    }

    #[test]
    fn per_op_subtracts_the_empty_block_and_divides() {
        let blocks = vec![
            CountBlock {
                profile: 0,
                op: None,
                round: 0,
                ops: 100,
                id: 0,
            },
            CountBlock {
                profile: 0,
                op: Some("lifecycle".into()),
                round: 0,
                ops: 100,
                id: 1,
            },
            CountBlock {
                profile: 0,
                op: Some("engine".into()),
                round: 0,
                ops: 5,
                id: 2,
            },
        ];
        let instr = BTreeMap::from([(0, 1_000), (1, 6_001_000), (2, 5_000_050)]);
        let sys = BTreeMap::from([(0, 0), (1, 300), (2, 10)]);
        let f = per_op(&blocks, 0, &instr, &sys).unwrap();
        assert_eq!(f[&Metric::InstructionsLifecycle].median, 60_000.0);
        assert_eq!(f[&Metric::InstructionsEngine].median, 1_000_000.0);
        assert_eq!(f[&Metric::SyscallsLifecycle].median, 3.0);
        assert!(!f.contains_key(&Metric::InstructionsRun));
    }
}
