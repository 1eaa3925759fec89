//! The native floor: spawn-and-wait of a trivial native process, measured in
//! the same run as the WASM figures so their ratio is honest.

use super::os::{kib_field, wait_child};
use crate::model::{NativeResult, Unit};
use crate::stats::summarize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The programs: coreutils' `echo`, a small C binary that prints the same
/// `Hello, world!` the component does, is timed; coreutils' `cat`, waiting on
/// its stdin, is the live process whose memory is read: `VmRSS`, and `Pss`
/// and `Private_Dirty` from `/proc/PID/smaps_rollup`, the latter being what
/// one more such process adds (shared libc pages are not counted again).
#[derive(Debug, Clone)]
pub struct NativePrograms {
    /// Spawned and waited for.
    pub echo: PathBuf,
    /// Kept alive while its memory is read.
    pub cat: PathBuf,
}

/// The native programs, when this machine has them.
pub fn default_programs() -> Option<NativePrograms> {
    let find = |names: [&str; 2]| names.iter().map(PathBuf::from).find(|p| p.is_file());
    Some(NativePrograms {
        echo: find(["/bin/echo", "/usr/bin/echo"])?,
        cat: find(["/bin/cat", "/usr/bin/cat"])?,
    })
}

/// Spawns `echo Hello, world!` `samples` times (after 3 untimed), with stdout
/// discarded, and summarises the wall time; then reads the resident memory of
/// live `cat` processes.
///
/// A child's `ru_maxrss` cannot be used for the memory: a child spawned with
/// vfork shares this process's memory until it execs, so the kernel reports
/// this (much larger) process's peak as the child's.
///
/// # Errors
///
/// Fails when a program cannot be spawned or exits unsuccessfully.
pub fn native(
    programs: &NativePrograms,
    samples: usize,
    tick: &dyn Fn(),
) -> anyhow::Result<NativeResult> {
    let program = programs.echo.as_path();
    let mut walls = Vec::with_capacity(samples);
    for i in 0..samples + 3 {
        let started = Instant::now();
        let child = Command::new(program)
            .arg("Hello, world!")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("{}: cannot spawn: {e}", program.display()))?;
        let exit = wait_child(&child, started, Duration::from_secs(10))?;
        if exit.code != Some(0) {
            anyhow::bail!("{}: ended with {}", program.display(), exit.status());
        }
        if i >= 3 {
            walls.push(exit.wall.as_nanos() as f64);
        }
        if i % 8 == 0 {
            tick();
        }
        if crate::interrupt::requested() {
            anyhow::bail!("interrupted");
        }
    }
    let (mut rss, mut pss, mut dirty) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let m = live_memory(&programs.cat)?;
        rss.push(m.rss as f64);
        pss.extend(m.pss.map(|v| v as f64));
        dirty.extend(m.private_dirty.map(|v| v as f64));
    }
    let full = |v: &[f64]| (v.len() == rss.len()).then(|| summarize(v, Unit::Bytes));
    Ok(NativeResult {
        command: format!("{} 'Hello, world!'", program.display()),
        spawn: summarize(&walls, Unit::Nanoseconds),
        rss_command: format!("{} (waiting on stdin)", programs.cat.display()),
        rss: summarize(&rss, Unit::Bytes),
        pss: full(&pss),
        private_dirty: full(&dirty),
    })
}

/// What one live native process holds.
struct LiveMemory {
    /// `VmRSS` from `/proc/PID/status`.
    rss: u64,
    /// `Pss` from `/proc/PID/smaps_rollup` (absent on kernels before 4.14).
    pss: Option<u64>,
    /// `Private_Dirty` from `/proc/PID/smaps_rollup`.
    private_dirty: Option<u64>,
}

/// Memory of a live `cat`, read once it has echoed a byte back (so it has
/// finished starting and is blocked reading its stdin).
fn live_memory(cat: &Path) -> anyhow::Result<LiveMemory> {
    use std::io::{Read, Write};
    let mut child = Command::new(cat)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: cannot spawn: {e}", cat.display()))?;
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut byte = [0u8; 1];
    let echoed = stdin
        .write_all(b"x")
        .and_then(|_| stdin.flush())
        .and_then(|_| stdout.read_exact(&mut byte));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    drop(stdin);
    let _ = child.wait();
    echoed.map_err(|e| anyhow::anyhow!("{}: did not echo its input: {e}", cat.display()))?;
    Ok(LiveMemory {
        rss: kib_field(&status, "VmRSS:")
            .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status: no VmRSS line"))?,
        pss: kib_field(&rollup, "Pss:"),
        private_dirty: kib_field(&rollup, "Private_Dirty:"),
    })
}
