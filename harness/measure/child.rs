//! Child processes: the phases whose figure belongs to a fresh process.
//!
//! This module is the protocol and the parent's side only: what a child is
//! asked ([`Request`], [`Task`]), what it answers ([`Reply`]), and
//! [`spawn`]. The child's side, which dispatches a task to its phase, is
//! [`super::serve`]; phases import this module, and this module imports no
//! phase.
//!
//! The parent spawns the `siteboss` binary as `siteboss __child REQUEST_FILE`.
//! The request is JSON; the child writes its JSON reply to the file the request
//! names and exits. Replies go through files, not pipes, so that the parent
//! does no reading while a cold start is being timed and a child can never
//! block on a full pipe.

use super::os::{ChildExit, wait_child};
use super::{DensityLimits, Growth};
use crate::engine::{Footprint, RuntimeOptions};
use crate::model::{AllCoresFill, DensityResult};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The subcommand name the binary dispatches to [`super::serve::serve`].
pub const SUBCOMMAND: &str = "__child";

/// What a child is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The component's file, or `None` for the embedded one.
    pub component: Option<PathBuf>,
    /// Which embedded component, when `component` is `None`.
    #[serde(default)]
    pub embedded: Option<crate::component::Embedded>,
    /// The runtime options, including the pool capacity.
    pub options: RuntimeOptions,
    /// The footprint the engine is sized for.
    pub footprint: Footprint,
    /// Where to write the reply.
    pub reply: PathBuf,
    /// The phase.
    pub task: Task,
}

/// A child's phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "task")]
pub enum Task {
    /// One cold start: engine, load, first instantiation, first run.
    Cold {
        /// The artifact to deserialize, or `None` to compile the `.wasm`.
        artifact: Option<PathBuf>,
    },
    /// Resident memory at each of `points` live instances.
    Memory {
        /// The artifact to load.
        artifact: PathBuf,
        /// Ascending live-instance counts.
        points: Vec<usize>,
    },
    /// Live instances until a limit, with one thread.
    Density {
        /// The artifact to load.
        artifact: PathBuf,
        /// Where to stop.
        limits: DensityLimits,
    },
    /// The one-thread fill's count again, with every core, in a process of
    /// its own.
    AllCores {
        /// The artifact to load.
        artifact: PathBuf,
        /// Where to stop.
        limits: DensityLimits,
        /// What the one-thread fill made and added to its process.
        growth: Growth,
    },
    /// Counted blocks of operations, run under Valgrind's callgrind.
    Count {
        /// The profiles to count, each with its options and footprint.
        profiles: Vec<CountProfile>,
        /// Block sizes and rounds.
        plan: CountPlan,
    },
}

/// One profile the counting child measures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountProfile {
    /// The runtime options, including the pool capacity.
    pub options: RuntimeOptions,
    /// The footprint the engine is sized for.
    pub footprint: Footprint,
}

/// How many operations the counting child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountPlan {
    /// Uncounted lifecycles first, per profile.
    pub warmup: usize,
    /// Operations per counted block of instance operations.
    pub ops: usize,
    /// Operations per counted block of engine-level operations (engine
    /// creation, deserialize, first instantiation), which are far costlier.
    pub cold_ops: usize,
    /// Rounds: each is one empty block and one block of every operation.
    pub rounds: usize,
}

/// One resident-memory and page-fault reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryReading {
    /// Live instances.
    pub instances: usize,
    /// Resident bytes of the process.
    pub rss: u64,
    /// Minor page faults of the process so far.
    pub minor_faults: u64,
}

/// A memory child's readings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryReply {
    /// The reading with the runtime loaded and no instance alive.
    pub runtime: MemoryReading,
    /// One reading per requested N, ascending.
    pub points: Vec<MemoryReading>,
}

/// What the counting child ran, for the parent to match with Valgrind's
/// output: the blocks in order, each named as its callgrind dump is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountReply {
    /// Whether the child found itself under Valgrind (if not, it counted nothing).
    pub on_valgrind: bool,
    /// The CPU as the child saw it (under Valgrind, Valgrind's synthetic one).
    pub cpu_seen: String,
    /// The blocks, in the order they ran.
    pub blocks: Vec<CountBlock>,
}

/// One counted block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountBlock {
    /// Index of the profile in the request.
    pub profile: usize,
    /// The operation, or `None` for the empty block of its round.
    pub op: Option<String>,
    /// The round.
    pub round: usize,
    /// Operations in the block.
    pub ops: usize,
    /// The label of its callgrind dump, and the number in its system-call markers.
    pub id: u32,
}

/// A child's reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reply")]
pub enum Reply {
    /// Cold-start timings, in nanoseconds.
    Cold(ColdReply),
    /// Memory readings.
    Memory(MemoryReply),
    /// Where the one-thread fill stopped, and what it added to its process.
    Density {
        /// The result, without the all-cores fill.
        result: DensityResult,
        /// What the fill added.
        growth: Growth,
    },
    /// The all-cores fill.
    AllCores(AllCoresFill),
    /// What the counting child ran.
    Count(CountReply),
    /// The child could not do its task.
    Failed {
        /// One line.
        error: String,
    },
}

/// One cold start's parts, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ColdReply {
    /// `Engine::new`.
    pub engine: u64,
    /// Compile or deserialize, plus linking and `instantiate_pre`.
    pub load: u64,
    /// The first instantiation.
    pub instantiate: u64,
    /// The first `run`, when the component has one.
    pub run: Option<u64>,
    /// All of the above.
    pub total: u64,
}

/// Runs `request` in a fresh child process of `exe` and returns its reply and
/// how the process ended.
///
/// # Errors
///
/// Fails when the child cannot be spawned, is killed (by the timeout or a
/// signal, such as the OOM killer), exits without a reply, or replies
/// `Failed`. The error says which, with the child's last stderr line.
pub fn spawn(
    exe: &Path,
    request: &Request,
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<(Reply, ChildExit)> {
    spawn_wrapped(&[], &[], exe, request, dir, timeout)
}

/// As [`spawn`], with the child started through `wrapper` (a program and
/// its arguments, such as `valgrind --tool=callgrind`), which is given the
/// `siteboss` command line to run, and with `env` added to its environment.
///
/// # Errors
///
/// As [`spawn`].
pub fn spawn_wrapped(
    wrapper: &[OsString],
    env: &[(&str, &str)],
    exe: &Path,
    request: &Request,
    dir: &Path,
    timeout: Duration,
) -> anyhow::Result<(Reply, ChildExit)> {
    let req_path = request.reply.with_extension("request.json");
    let err_path = request.reply.with_extension("stderr");
    std::fs::write(&req_path, serde_json::to_vec(request)?).map_err(|e| {
        anyhow::anyhow!("{}: cannot write a child request: {e}", req_path.display())
    })?;
    let _ = std::fs::remove_file(&request.reply);
    let stderr = std::fs::File::create(&err_path)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", err_path.display()))?;
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.arg(SUBCOMMAND)
        .arg(&req_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // A child near the mapping limit must not capture a backtrace: at map
        // exhaustion that allocation fails and the process deadlocked.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .envs(env.iter().copied());
    let started = Instant::now();
    let child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot start a child process: {e}",
            wrapper.first().map_or(exe.display().to_string(), |w| w
                .to_string_lossy()
                .into_owned())
        )
    })?;
    let exit = wait_child(&child, started, timeout)?;
    let last_err = std::fs::read_to_string(&err_path).ok().and_then(|s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_owned)
    });
    let reply: Option<Reply> = std::fs::read(&request.reply)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    match (reply, exit.code, exit.signal) {
        (Some(Reply::Failed { error }), _, _) => anyhow::bail!("{error}"),
        (Some(reply), Some(0), _) => Ok((reply, exit)),
        (_, _, Some(sig)) if crate::interrupt::requested() => {
            anyhow::bail!("child process stopped by the interrupt (signal {sig})")
        }
        (_, _, Some(libc::SIGKILL)) if exit.wall >= timeout => {
            anyhow::bail!(
                "child process killed after its {} s timeout",
                timeout.as_secs()
            )
        }
        (_, _, Some(sig)) => anyhow::bail!(
            "child process killed by signal {sig}{}",
            last_err.map(|l| format!(": {l}")).unwrap_or_default()
        ),
        (_, _, None) => anyhow::bail!(
            "child process ended with {} and no reply{}",
            exit.status(),
            last_err.map(|l| format!(": {l}")).unwrap_or_default()
        ),
    }
}
