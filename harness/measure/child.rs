//! Child processes: the phases whose figure belongs to a fresh process.
//!
//! The parent spawns the `siteboss` binary as `siteboss __child REQUEST_FILE`.
//! The request is JSON; the child writes its JSON reply to the file the request
//! names and exits. Replies go through files, not pipes, so that the parent
//! does no reading while a cold start is being timed and a child can never
//! block on a full pipe.

use super::DensityLimits;
use super::density::DensityReply;
use super::memory::MemoryReply;
use super::os::{ChildExit, wait_child};
use crate::component::ComponentSource;
use crate::engine::{Footprint, RuntimeOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The subcommand name the binary dispatches to [`serve`].
pub const SUBCOMMAND: &str = "__child";

/// What a child is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The component's file, or `None` for the embedded one.
    pub component: Option<PathBuf>,
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
    /// Live instances until a limit.
    Density {
        /// The artifact to load.
        artifact: PathBuf,
        /// Where to stop.
        limits: DensityLimits,
    },
}

/// A child's reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reply")]
pub enum Reply {
    /// Cold-start timings, in nanoseconds.
    Cold(ColdReply),
    /// Memory readings.
    Memory(MemoryReply),
    /// Where the concurrency phase stopped.
    Density(DensityReply),
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
    let req_path = request.reply.with_extension("request.json");
    let err_path = request.reply.with_extension("stderr");
    std::fs::write(&req_path, serde_json::to_vec(request)?).map_err(|e| {
        anyhow::anyhow!("{}: cannot write a child request: {e}", req_path.display())
    })?;
    let _ = std::fs::remove_file(&request.reply);
    let stderr = std::fs::File::create(&err_path)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", err_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg(SUBCOMMAND)
        .arg(&req_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // A child near the mapping limit must not capture a backtrace: at map
        // exhaustion that allocation fails and the process deadlocked.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0");
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: cannot start a child process: {e}", exe.display()))?;
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
        (_, code, None) => anyhow::bail!(
            "child process exited with {code:?} and no reply{}",
            last_err.map(|l| format!(": {l}")).unwrap_or_default()
        ),
    }
}

/// The child's side: reads the request at `path`, does the task, writes the
/// reply. Returns the process exit code.
pub fn serve(path: &Path) -> i32 {
    let request: Request = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{}: cannot read the child request: {e}", path.display());
            return 2;
        }
    };
    let reply = match run_task(&request) {
        Ok(r) => r,
        Err(e) => Reply::Failed {
            error: format!("{e:#}").replace('\n', " "),
        },
    };
    match serde_json::to_vec(&reply).map(|b| std::fs::write(&request.reply, b)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("{}: cannot write the reply: {e}", request.reply.display());
            2
        }
        Err(e) => {
            eprintln!("cannot encode the reply: {e}");
            2
        }
    }
}

fn run_task(request: &Request) -> anyhow::Result<Reply> {
    let source = match &request.component {
        Some(p) => ComponentSource::from_path(p)?,
        None => ComponentSource::embedded(),
    };
    Ok(match &request.task {
        Task::Cold { artifact } => Reply::Cold(super::cold::once(
            &source,
            &request.options,
            request.footprint,
            artifact.as_deref(),
        )?),
        Task::Memory { artifact, points } => {
            let rt = load(&source, request, artifact)?;
            Reply::Memory(super::memory::measure_in_child(&rt, points)?)
        }
        Task::Density { artifact, limits } => Reply::Density(super::density::serve(
            &source,
            request,
            &read_artifact(artifact)?,
            limits,
        )?),
    })
}

fn load(
    source: &ComponentSource,
    request: &Request,
    artifact: &Path,
) -> anyhow::Result<crate::engine::Runtime> {
    crate::engine::Runtime::deserialize(
        &read_artifact(artifact)?,
        source,
        &request.options,
        request.footprint,
    )
}

fn read_artifact(artifact: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(artifact).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", artifact.display()))
}
