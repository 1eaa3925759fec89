//! `siteboss ab BASE HEAD`: two builds measured in lock step.
//!
//! Both binaries are started as long-lived children ([`lockstep`]), each with
//! its engines built and its component loaded once. The parent then asks them
//! for short blocks of operations in turn, base and head back to back, in an
//! ABBA order (base first in even pairs, head first in odd ones), so that a
//! slow episode of the machine, which lasts seconds, falls on both halves of
//! a pair. Each pair gives one head/base ratio per metric; the verdict is on
//! the median ratio, with a bootstrap interval, the tolerance file's
//! `paired_relative` and the same `judge::decide` as the gate and `compare`.
//!
//! The run stops at its time budget, or earlier once every metric's interval
//! lies wholly inside or wholly beyond its tolerance.

use crate::judge::{CONFIDENCE, MIN_ROUNDS, decide};
use crate::measure::lockstep::{self, Hello, Ready, Request, Response};
use crate::model::{Allocator, Direction, Metric, Tolerance, Verdict};
use crate::report::format::value;
use crate::stats::{bootstrap_median_ci_by_child, median};
use crate::tolerance::Tolerances;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `schema` of `siteboss ab --json`.
pub const AB_SCHEMA: &str = "siteboss-ab";

/// Pairs measured first and thrown away, per child: the children's caches
/// and allocators settle in them.
pub const WARMUP_PAIRS: usize = 3;

/// What a run is given.
#[derive(Debug, Clone)]
pub struct AbOptions {
    /// The base build's `siteboss` binary.
    pub base: PathBuf,
    /// The head build's `siteboss` binary.
    pub head: PathBuf,
    /// The component, or `None` for the embedded one.
    pub component: Option<PathBuf>,
    /// Which embedded component, when `component` is `None`.
    pub embedded: Option<crate::component::Embedded>,
    /// The request an HTTP handler is served.
    pub request: crate::http::RequestSpec,
    /// The profiles to compare.
    pub allocators: Vec<Allocator>,
    /// The time budget.
    pub seconds: f64,
    /// Pairs measured (after the warm-up ones) before the run may stop early.
    pub min_pairs: usize,
    /// Operations per warm-start or lifecycle block.
    pub ops: usize,
    /// How long a throughput block runs, in milliseconds.
    pub throughput_millis: u64,
    /// How long one call may run, in milliseconds.
    pub call_timeout_ms: u64,
    /// The store memory limit, in bytes.
    pub max_memory_bytes: u64,
    /// Output kept per stream, in bytes.
    pub output_limit: usize,
    /// Children started per side; pairs rotate through them.
    pub children: usize,
    /// Keep address-space layout randomization in the children. Off by
    /// default: each child would draw its own layout, and a layout alone
    /// moved on-demand lifecycles by up to 25% between two children of the
    /// same build.
    pub aslr: bool,
}

/// Why a run could not be made. Each is one line.
#[derive(Debug, thiserror::Error)]
pub enum AbError {
    /// A binary is missing or cannot be run.
    #[error("{side}: {path}: {problem}")]
    Binary {
        /// `BASE` or `HEAD`.
        side: &'static str,
        /// The path given.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The binary has no lock-step child: it predates `siteboss ab`.
    #[error(
        "{side}: {path} has no lock-step child mode (`{sub}`): it predates `siteboss ab`; compare whole runs with `siteboss compare` instead",
        sub = lockstep::SUBCOMMAND
    )]
    NoLockstep {
        /// `BASE` or `HEAD`.
        side: &'static str,
        /// The binary.
        path: PathBuf,
    },
    /// The child refused the hello or a request, or failed.
    #[error("{side}: {message}")]
    Child {
        /// `BASE` or `HEAD`.
        side: &'static str,
        /// One line.
        message: String,
    },
    /// The two builds measured different components.
    #[error("BASE measured {base} but HEAD measured {head}; lock-step runs compare one component")]
    DifferentComponent {
        /// The base's component.
        base: String,
        /// The head's component.
        head: String,
    },
}

/// One metric of one profile, base against head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbRow {
    /// The profile.
    pub allocator: Allocator,
    /// The metric.
    pub metric: Metric,
    /// The median of the base's blocks.
    pub base: f64,
    /// The median of the head's blocks.
    pub head: f64,
    /// The median of the per-pair head/base ratios.
    pub ratio: f64,
    /// Its 95% bootstrap interval.
    pub ratio_ci: (f64, f64),
    /// Pairs judged.
    pub pairs: usize,
    /// The tolerance applied (`paired_relative`).
    pub tolerance: Tolerance,
    /// The verdict.
    pub verdict: Verdict,
    /// The median of each base child's blocks, child 0 first: a child with
    /// a pace of its own shows here (and widens the interval).
    #[serde(default)]
    pub base_by_child: Vec<f64>,
    /// The median of each head child's blocks.
    #[serde(default)]
    pub head_by_child: Vec<f64>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbReport {
    /// Always `siteboss-ab`.
    pub schema: String,
    /// Always 1.
    pub schema_version: u32,
    /// The base binary.
    pub base: String,
    /// The head binary.
    pub head: String,
    /// The component compared.
    pub component: String,
    /// Pairs judged (after the warm-up pairs).
    pub pairs: usize,
    /// Seconds the measuring took.
    pub seconds: f64,
    /// Why the run stopped.
    pub stopped: String,
    /// One row per profile and metric.
    pub rows: Vec<AbRow>,
    /// Things a reader should know.
    pub notes: Vec<String>,
}

impl AbReport {
    /// Rows with an enforced regression.
    pub fn regressions(&self) -> impl Iterator<Item = &AbRow> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression && r.tolerance.enforce)
    }

    /// Rows that could not be judged.
    pub fn unjudged(&self) -> impl Iterator<Item = &AbRow> {
        self.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Invalid { .. }))
    }

    /// Whether every row was judged and none regressed.
    pub fn passed(&self) -> bool {
        !self.rows.is_empty()
            && self.regressions().next().is_none()
            && self.unjudged().next().is_none()
    }

    /// The one-line conclusion, from the judged rows only.
    pub fn summary(&self) -> String {
        let (r, u, n) = (
            self.regressions().count(),
            self.unjudged().count(),
            self.rows.len(),
        );
        match (r, u) {
            _ if n == 0 => "Nothing was judged.".to_owned(),
            (0, 0) => format!("No regression in {n} judged metric(s)."),
            (0, u) => format!("{u} of {n} metric(s) could not be judged (see their rows)."),
            (r, 0) => format!("{r} regression(s) beyond tolerance."),
            (r, u) => {
                format!("{r} regression(s) beyond tolerance; {u} metric(s) could not be judged.")
            }
        }
    }
}

/// One child, with a thread reading its stdout into a channel so that every
/// wait has a timeout.
struct LockstepChild {
    side: &'static str,
    path: PathBuf,
    child: Child,
    /// `None` once closed by [`LockstepChild::quit`].
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
    /// The child's working directory for its artifacts, owned here and
    /// removed after the child is reaped: a child killed on an error path
    /// cannot remove its own.
    dir: tempfile::TempDir,
}

impl LockstepChild {
    /// Starts the child; `fixed_layout` turns address-space layout
    /// randomization off in it (as `setarch -R` does), so that base and head
    /// run with the same layout rather than each with a random one. Returns
    /// whether the layout really is fixed: a kernel that refuses the
    /// personality change gets a randomized child and a note.
    fn spawn(side: &'static str, path: &Path, fixed_layout: bool) -> Result<(Self, bool), AbError> {
        let bad = |problem: String| AbError::Binary {
            side,
            path: path.to_path_buf(),
            problem,
        };
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(
                    "no such file; pass the path of a built `siteboss` binary".into(),
                ));
            }
            Err(e) => return Err(bad(format!("cannot be read: {e}"))),
            Ok(m) if m.is_dir() => {
                return Err(bad("is a directory, not a `siteboss` binary".into()));
            }
            Ok(_) => {}
        }
        let stderr = tempfile::NamedTempFile::new()
            .map_err(|e| bad(format!("cannot create a temporary file: {e}")))?;
        let dir = tempfile::Builder::new()
            .prefix("siteboss-lockstep-")
            .tempdir()
            .map_err(|e| bad(format!("cannot create a temporary directory: {e}")))?;
        let err_file = stderr
            .reopen()
            .map_err(|e| bad(format!("cannot create a temporary file: {e}")))?;
        let command = |fixed: bool| -> std::io::Result<Child> {
            let mut c = Command::new(path);
            c.arg(lockstep::SUBCOMMAND)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(err_file.try_clone()?)
                .env("RUST_BACKTRACE", "0")
                .env("RUST_LIB_BACKTRACE", "0");
            if fixed {
                fix_layout(&mut c);
            }
            c.spawn()
        };
        let (mut child, fixed) = match command(fixed_layout) {
            Ok(c) => (c, fixed_layout && cfg!(target_os = "linux")),
            // The personality call failed (a seccomp filter, say): measure
            // with the kernel's randomized layout and say so.
            Err(e) if fixed_layout && e.kind() != std::io::ErrorKind::NotFound => (
                command(false).map_err(|e| bad(format!("cannot be started: {e}")))?,
                false,
            ),
            Err(e) => return Err(bad(format!("cannot be started: {e}"))),
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok((
            LockstepChild {
                side,
                path: path.to_path_buf(),
                child,
                stdin: Some(stdin),
                lines: rx,
                stderr,
                dir,
            },
            fixed,
        ))
    }

    fn last_stderr_line(&self) -> String {
        std::fs::read_to_string(self.stderr.path())
            .ok()
            .and_then(|s| {
                s.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    }

    fn send(&mut self, line: &str) -> Result<(), AbError> {
        let written = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|_| stdin.flush()),
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        };
        written.map_err(|e| self.died(&format!("cannot be written to ({e})")))
    }

    fn died(&mut self, what: &str) -> AbError {
        let status = self.child.try_wait().ok().flatten();
        let stderr = self.last_stderr_line();
        if stderr.contains("unrecognized subcommand") {
            return AbError::NoLockstep {
                side: self.side,
                path: self.path.clone(),
            };
        }
        AbError::Child {
            side: self.side,
            message: format!(
                "the child {what}{}{}",
                status
                    .map(|s| format!("; it exited ({s})"))
                    .unwrap_or_default(),
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr}")
                }
            ),
        }
    }

    fn receive(&mut self, timeout: Duration) -> Result<Response, AbError> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => serde_json::from_str(&line).map_err(|e| AbError::Child {
                side: self.side,
                message: format!(
                    "answered something this siteboss does not understand ({e}): {line}"
                ),
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                Err(AbError::Child {
                    side: self.side,
                    message: format!(
                        "the child did not answer within {} s and was killed",
                        timeout.as_secs()
                    ),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Let it finish exiting, so its status and stderr are complete.
                let _ = self.child.wait();
                Err(self.died("ended without an answer"))
            }
        }
    }

    fn send_hello(&mut self, hello: &Hello) -> Result<(), AbError> {
        let hello = Hello {
            dir: Some(self.dir.path().to_path_buf()),
            ..hello.clone()
        };
        self.send(&serde_json::to_string(&hello).expect("a hello serialises"))
    }

    fn ready(&mut self) -> Result<Ready, AbError> {
        match self.receive(Duration::from_secs(300))? {
            Response::Ready(r) if r.protocol == lockstep::PROTOCOL => Ok(r),
            Response::Ready(r) => Err(AbError::Child {
                side: self.side,
                message: format!(
                    "lock-step protocol mismatch: this siteboss speaks version {}, the child version {}",
                    lockstep::PROTOCOL,
                    r.protocol
                ),
            }),
            Response::Error { error } => Err(AbError::Child {
                side: self.side,
                message: error,
            }),
            Response::Block { .. } => Err(AbError::Child {
                side: self.side,
                message: "answered the hello with a block".into(),
            }),
        }
    }

    fn block(
        &mut self,
        allocator: Allocator,
        metric: Metric,
        o: &AbOptions,
    ) -> Result<f64, AbError> {
        let req = Request::Block {
            allocator,
            metric,
            ops: o.ops,
            millis: o.throughput_millis,
        };
        self.send(&serde_json::to_string(&req).expect("a request serialises"))?;
        match self.receive(Duration::from_secs(60))? {
            Response::Block { value } => Ok(value),
            Response::Error { error } => Err(AbError::Child {
                side: self.side,
                message: error,
            }),
            Response::Ready(_) => Err(AbError::Child {
                side: self.side,
                message: "answered a block with a hello".into(),
            }),
        }
    }

    fn quit(mut self) {
        let _ = self.send(&serde_json::to_string(&Request::Quit).expect("serialises"));
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Drop kills and reaps it.
    }
}

impl Drop for LockstepChild {
    /// A child still running (an error ended the run, or it ignored `quit`)
    /// is killed and reaped, never left behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes `command`'s process start with address-space layout randomization
/// off: `personality(ADDR_NO_RANDOMIZE)` between fork and exec.
#[cfg(target_os = "linux")]
fn fix_layout(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: personality(2) is async-signal-safe and touches no memory of
    // the parent; it is the only call made between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let current = libc::personality(0xffff_ffff);
            if current == -1
                || libc::personality((current | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong) == -1
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn fix_layout(_command: &mut Command) {}

/// The blocks collected for one profile and metric.
#[derive(Debug, Default, Clone)]
struct Series {
    base: Vec<f64>,
    head: Vec<f64>,
    /// Which base and head child measured each pair.
    who: Vec<(usize, usize)>,
}

impl Series {
    /// The median of each child's blocks on one side (`head` false: base);
    /// empty until every child of that side has measured a block.
    fn by_child(&self, head: bool) -> Vec<f64> {
        let side = |w: &(usize, usize)| if head { w.1 } else { w.0 };
        let values = if head { &self.head } else { &self.base };
        let children = self.who.iter().map(side).max().map_or(0, |m| m + 1);
        let mut medians = Vec::with_capacity(children);
        for c in 0..children {
            let mine: Vec<f64> = values
                .iter()
                .zip(&self.who)
                .filter(|(_, w)| side(w) == c)
                .map(|(v, _)| *v)
                .collect();
            if mine.is_empty() {
                return Vec::new();
            }
            medians.push(median(&mine));
        }
        medians
    }

    fn ratios(&self) -> Vec<f64> {
        self.base
            .iter()
            .zip(&self.head)
            .map(|(b, h)| h / b)
            .collect()
    }
}

/// Judges one series. Pure.
fn judge(allocator: Allocator, metric: Metric, s: &Series, tolerance: &Tolerance) -> AbRow {
    let tolerance = tolerance.paired();
    let ratios = s.ratios();
    let invalid = |reason: String| AbRow {
        allocator,
        metric,
        base: median(&s.base),
        head: median(&s.head),
        ratio: f64::NAN,
        ratio_ci: (f64::NAN, f64::NAN),
        pairs: ratios.len(),
        tolerance,
        verdict: Verdict::Invalid { reason },
        base_by_child: s.by_child(false),
        head_by_child: s.by_child(true),
    };
    if let Some(bad) = ratios.iter().find(|r| !r.is_finite() || **r <= 0.0) {
        return invalid(format!("a pair's ratio is {bad}, not a positive number"));
    }
    if ratios.len() < MIN_ROUNDS {
        return invalid(format!(
            "{} pair(s) measured; at least {MIN_ROUNDS} are needed to judge",
            ratios.len()
        ));
    }
    let ci = bootstrap_median_ci_by_child(&ratios, &s.who, CONFIDENCE);
    if !(ci.0.is_finite() && ci.1.is_finite()) {
        return invalid("the interval is not a number".into());
    }
    AbRow {
        allocator,
        metric,
        base: median(&s.base),
        head: median(&s.head),
        ratio: median(&ratios),
        ratio_ci: ci,
        pairs: ratios.len(),
        tolerance,
        verdict: decide(1.0, ci, &tolerance),
        base_by_child: s.by_child(false),
        head_by_child: s.by_child(true),
    }
}

/// A note when the children of one build disagree among themselves by more
/// than the tolerance: a pace of the process (where its memory landed), not
/// of the build. With every child of one side slow and every child of the
/// other fast, lock step cannot tell that from a change; the note names the
/// medians so a reader can see which it was.
fn child_spread(row: &AbRow) -> Option<String> {
    if matches!(row.verdict, Verdict::Invalid { .. }) {
        return None;
    }
    // How far the worst child is from the best, in the metric's own sense
    // (a slower time, a lower rate), as a fraction comparable with the
    // tolerance; a child whose median is not a positive number is noted
    // whatever the others read.
    let spread = |v: &[f64]| -> Option<f64> {
        if v.len() < 2 {
            return None;
        }
        if v.iter().any(|x| !x.is_finite() || *x <= 0.0) {
            return Some(f64::INFINITY);
        }
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        Some(match row.metric.direction() {
            Direction::LowerIsBetter => hi / lo - 1.0,
            Direction::HigherIsBetter => 1.0 - lo / hi,
        })
    };
    let unit = row.metric.unit();
    let sign = match row.metric.direction() {
        Direction::LowerIsBetter => "+",
        Direction::HigherIsBetter => "−",
    };
    let list = |v: &[f64]| {
        v.iter()
            .map(|&x| value(x, unit))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sides = [("base", &row.base_by_child), ("head", &row.head_by_child)];
    let wide: Vec<String> = sides
        .iter()
        .filter_map(|(side, v)| {
            let s = spread(v)?;
            (s > row.tolerance.relative).then(|| {
                format!(
                    "{side} children {} ({sign}{:.1}% from the best)",
                    list(v),
                    s * 100.0
                )
            })
        })
        .collect();
    (!wide.is_empty()).then(|| {
        format!(
            "{} {}: children of one build differ by more than the tolerance ({}): a pace of the process, which the interval counts as uncertainty",
            row.allocator,
            row.metric,
            wide.join("; ")
        )
    })
}

/// Whether more pairs could still change `row`'s verdict: its interval
/// straddles the tolerance.
fn undecided(row: &AbRow) -> bool {
    let t = row.tolerance.relative;
    let (lo, hi) = row.ratio_ci;
    match row.verdict {
        Verdict::Invalid { .. } => true,
        _ => match row.tolerance.direction {
            Direction::LowerIsBetter => lo <= 1.0 + t && hi >= 1.0 + t,
            Direction::HigherIsBetter => lo <= 1.0 - t && hi >= 1.0 - t,
        },
    }
}

/// Runs BASE and HEAD in lock step and judges them.
///
/// `progress` is called after every pair with (pairs judged, seconds elapsed).
///
/// # Errors
///
/// An [`AbError`] when a binary is missing, predates the lock-step child,
/// speaks another protocol version, dies, or measures another component.
pub fn run(
    o: &AbOptions,
    tolerances: &Tolerances,
    progress: &dyn Fn(usize, f64),
) -> Result<AbReport, AbError> {
    let hello = Hello {
        protocol: lockstep::PROTOCOL,
        component: o.component.clone(),
        embedded: o.embedded,
        request: o.request.clone(),
        allocators: o.allocators.clone(),
        call_timeout_ms: o.call_timeout_ms,
        max_memory_bytes: o.max_memory_bytes,
        output_limit: o.output_limit,
        dir: None,
    };
    // Several children per side, started together and prepared in
    // parallel; pairs rotate through them (see the loop below).
    let k = o.children.max(1);
    let mut bases = Vec::with_capacity(k);
    let mut heads = Vec::with_capacity(k);
    let mut fixed = true;
    for _ in 0..k {
        let (b, bf) = LockstepChild::spawn("BASE", &o.base, !o.aslr)?;
        let (h, hf) = LockstepChild::spawn("HEAD", &o.head, !o.aslr)?;
        fixed &= bf && hf;
        bases.push(b);
        heads.push(h);
    }
    for c in bases.iter_mut().chain(heads.iter_mut()) {
        c.send_hello(&hello)?;
    }
    let mut base_readies = Vec::with_capacity(k);
    for c in &mut bases {
        base_readies.push(c.ready()?);
    }
    let mut head_readies = Vec::with_capacity(k);
    for c in &mut heads {
        head_readies.push(c.ready()?);
    }
    let base_ready = base_readies.swap_remove(0);
    let head_ready = head_readies.swap_remove(0);
    // Every child of either build must measure the same component; a
    // disagreement within one build is reported against the other side's
    // first child all the same (it cannot happen with one binary and file).
    if let Some(other) = head_readies
        .iter()
        .chain(std::iter::once(&head_ready))
        .find(|r| r.component_fnv1a64 != base_ready.component_fnv1a64)
    {
        return Err(AbError::DifferentComponent {
            base: format!(
                "{} [{}]",
                base_ready.component, base_ready.component_fnv1a64
            ),
            head: format!("{} [{}]", other.component, other.component_fnv1a64),
        });
    }
    if let Some(other) = base_readies
        .iter()
        .find(|r| r.component_fnv1a64 != head_ready.component_fnv1a64)
    {
        return Err(AbError::DifferentComponent {
            base: format!("{} [{}]", other.component, other.component_fnv1a64),
            head: format!(
                "{} [{}]",
                head_ready.component, head_ready.component_fnv1a64
            ),
        });
    }
    let mut notes = Vec::new();
    notes.push(format!(
        "children: {k} per side, rotated pair by pair through the base/head combinations ({} of them, all met after {} pairs), so that one child's own pace (where its memory landed) is spread over the pairs; the interval resamples children as well as pairs, so such a pace widens it rather than reading as a change", k * k, k * k
    ));
    notes.push(match (o.aslr, fixed) {
        (true, _) => "layout: each child has its own randomized address-space layout (--aslr); a layout alone can move a figure by several percent".to_owned(),
        (false, true) => "layout: address-space layout randomization off in every child, so all run with the same layout (--aslr keeps it)".to_owned(),
        (false, false) => "layout: the kernel refused to turn address-space layout randomization off, so each child has its own layout; a layout alone can move a figure by several percent".to_owned(),
    });
    // A profile is run only when every child of both builds can run it (a
    // child whose probe run timed out on a busy machine cannot).
    let can_run = |allocator: Allocator| {
        std::iter::once(&base_ready)
            .chain(&base_readies)
            .chain(std::iter::once(&head_ready))
            .chain(&head_readies)
            .all(|r| {
                r.profiles
                    .iter()
                    .any(|p| p.allocator == allocator && p.has_run)
            })
    };
    let mut tasks = Vec::new();
    for (b, h) in base_ready.profiles.iter().zip(&head_ready.profiles) {
        if b.config != h.config {
            notes.push(format!(
                "{}: the head's Wasmtime configuration differs from the base's",
                b.allocator
            ));
        }
        tasks.push((b.allocator, Metric::WarmStart));
        if can_run(b.allocator) {
            tasks.push((b.allocator, Metric::Lifecycle));
            tasks.push((b.allocator, Metric::Throughput));
        } else {
            notes.push(format!(
                "{}: no lifecycle or throughput: the component has no wasi:cli/run, or its run failed when some child probed it",
                b.allocator
            ));
        }
    }
    if base_ready.siteboss_version != head_ready.siteboss_version
        || base_ready.wasmtime_version != head_ready.wasmtime_version
    {
        notes.push(format!(
            "versions: base siteboss {} / Wasmtime {}, head siteboss {} / Wasmtime {}",
            base_ready.siteboss_version,
            base_ready.wasmtime_version,
            head_ready.siteboss_version,
            head_ready.wasmtime_version
        ));
    }
    if base_ready.heap_allocator != head_ready.heap_allocator {
        let name = |h: &str| {
            if h.is_empty() {
                "not reported (built before siteboss named its heap: glibc's malloc)".to_owned()
            } else {
                h.to_owned()
            }
        };
        notes.push(format!(
            "heaps differ, and their difference is part of every ratio: base {}, head {}",
            name(&base_ready.heap_allocator),
            name(&head_ready.heap_allocator)
        ));
    }
    let judge_all =
        |series: &std::collections::BTreeMap<(Allocator, Metric), Series>| -> Vec<AbRow> {
            tasks
                .iter()
                .filter_map(|&(a, m)| {
                    let tol = tolerances.get(m)?;
                    Some(judge(
                        a,
                        m,
                        series
                            .get(&(a, m))
                            .cloned()
                            .as_ref()
                            .unwrap_or(&Series::default()),
                        tol,
                    ))
                })
                .collect()
        };
    for &(a, m) in &tasks {
        if tolerances.get(m).is_none() {
            notes.push(format!(
                "{a} {m}: no tolerance in {}; measured but not judged",
                tolerances.path.display()
            ));
        }
    }
    let mut series: std::collections::BTreeMap<(Allocator, Metric), Series> =
        std::collections::BTreeMap::new();
    let started = Instant::now();
    let budget = Duration::from_secs_f64(o.seconds.max(0.0));
    let mut pair = 0usize;
    let mut last_check = Instant::now();
    let stopped;
    // Each child warms up as the first children did when there was one.
    let warmup = WARMUP_PAIRS * k;
    loop {
        // Base child i with head child i + round (mod k): over k² pairs
        // every combination meets. Who goes first alternates from pair to
        // pair and, for each child, from round to round (with k even, pair
        // parity alone would always put a child first or always second).
        let base_first = (pair % k + pair / k).is_multiple_of(2);
        let who = (pair % k, (pair + pair / k) % k);
        let base = &mut bases[who.0];
        let head = &mut heads[who.1];
        for &(a, m) in &tasks {
            let (bv, hv) = if base_first {
                let bv = base.block(a, m, o)?;
                (bv, head.block(a, m, o)?)
            } else {
                let hv = head.block(a, m, o)?;
                (base.block(a, m, o)?, hv)
            };
            if pair >= warmup {
                let s = series.entry((a, m)).or_default();
                s.base.push(bv);
                s.head.push(hv);
                s.who.push(who);
            }
        }
        pair += 1;
        let judged = pair.saturating_sub(warmup);
        let elapsed = started.elapsed();
        progress(judged, elapsed.as_secs_f64());
        if crate::interrupt::requested() {
            stopped = "interrupted".to_owned();
            break;
        }
        if elapsed >= budget {
            stopped = format!("time budget of {} s", o.seconds);
            break;
        }
        // Checking costs a bootstrap per metric: at most twice a second.
        // The half second counts from the end of the last check, so a slow
        // check (many pairs, many rows) never starves the measuring.
        if judged >= o.min_pairs && last_check.elapsed() >= Duration::from_millis(500) {
            let settled = !judge_all(&series).iter().any(undecided);
            last_check = Instant::now();
            if settled {
                stopped = format!("every verdict clear after {judged} pairs");
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    for c in bases.into_iter().chain(heads) {
        c.quit();
    }
    let rows = judge_all(&series);
    notes.extend(rows.iter().filter_map(child_spread));
    Ok(AbReport {
        schema: AB_SCHEMA.into(),
        schema_version: 1,
        base: o.base.display().to_string(),
        head: o.head.display().to_string(),
        component: base_ready.component,
        pairs: pair.saturating_sub(warmup),
        seconds,
        stopped,
        rows,
        notes,
    })
}

/// The report's table: one row per profile and metric.
pub fn table(report: &AbReport) -> crate::report::Table {
    let header = [
        "Profile",
        "Metric",
        "Base",
        "Head",
        "Ratio",
        "95% CI",
        "Tolerance",
        "Verdict",
    ];
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|r| {
            let unit = r.metric.unit();
            let sign = match r.metric.direction() {
                Direction::LowerIsBetter => "+",
                Direction::HigherIsBetter => "−",
            };
            let num = |v: f64| {
                if v.is_finite() {
                    format!("{v:.3}")
                } else {
                    "—".into()
                }
            };
            vec![
                r.allocator.to_string(),
                r.metric.to_string(),
                value(r.base, unit),
                value(r.head, unit),
                num(r.ratio),
                if r.ratio_ci.0.is_finite() {
                    format!("{}–{}", num(r.ratio_ci.0), num(r.ratio_ci.1))
                } else {
                    "—".into()
                },
                format!("{sign}{}%", r.tolerance.relative * 100.0),
                match &r.verdict {
                    Verdict::Pass => "pass".into(),
                    Verdict::Regression => "REGRESSION".into(),
                    Verdict::Improvement => "improvement".into(),
                    Verdict::Invalid { reason } => format!("cannot judge: {reason}"),
                },
            ]
        })
        .collect();
    crate::report::Table {
        header: header.map(String::from).to_vec(),
        rows,
    }
}

/// The ratio chart: each metric's head/base ratio and interval against its tolerance band.
pub fn chart(report: &AbReport) -> crate::report::chart::Chart {
    crate::report::chart::ratios(
        &format!("siteboss ab: head / base per metric ({})", report.component),
        report
            .rows
            .iter()
            .map(|r| {
                crate::report::chart::RatioBar::new(
                    r.allocator,
                    r.metric,
                    r.ratio,
                    r.ratio_ci,
                    &r.tolerance,
                    &r.verdict,
                )
            })
            .collect(),
    )
}

/// The report as aligned text (`markdown = false`) or Markdown.
pub fn render(report: &AbReport, markdown: bool) -> String {
    let table = table(report);
    let how = how(report);
    let mut out = String::new();
    if markdown {
        out.push_str(&format!(
            "### siteboss ab: {}\n\nbase `{}`, head `{}`; {how}.\n\n",
            report.component, report.base, report.head
        ));
        out.push_str(&crate::report::markdown_table(&table));
        for n in &report.notes {
            out.push_str(&format!("- {n}\n"));
        }
        out.push_str(&format!("\n**{}**\n", report.summary()));
        if let Some(m) = crate::report::chart::mermaid(&chart(report)) {
            out.push('\n');
            out.push_str(&m);
        }
    } else {
        out.push_str(&format!(
            "siteboss ab: {} (base {}, head {}; {how})\n\n",
            report.component, report.base, report.head
        ));
        out.push_str(&crate::report::text_table(&table));
        for n in &report.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        out.push_str(&format!("{}\n", report.summary()));
    }
    out
}

fn how(report: &AbReport) -> String {
    format!(
        "{} pairs in lock step (ABBA), {:.1} s, stopped at: {}; ratio = median of per-pair head/base ratios",
        report.pairs, report.seconds, report.stopped
    )
}

/// The report as one self-contained HTML page: the table, the notes and
/// the ratio chart.
pub fn html(report: &AbReport) -> String {
    let section = crate::report::Section {
        title: "Head / base, metric by metric".into(),
        tables: vec![table(report)],
        lines: report.notes.clone(),
        charts: vec![chart(report)],
    };
    crate::report::html::page(
        &format!("siteboss ab: {}", report.component),
        &[
            format!(
                "base {}, head {}; {}.",
                report.base,
                report.head,
                how(report)
            ),
            report.summary(),
        ],
        &[section],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tol(metric: Metric, paired: f64) -> Tolerance {
        Tolerance {
            metric,
            direction: metric.direction(),
            relative: 0.15,
            absolute_floor: Some(250.0),
            paired_relative: Some(paired),
            enforce: true,
        }
    }

    /// Pairs measured by 3 children per side, rotated as [`run`] rotates them.
    fn series(pairs: &[(f64, f64)]) -> Series {
        Series {
            base: pairs.iter().map(|p| p.0).collect(),
            head: pairs.iter().map(|p| p.1).collect(),
            who: (0..pairs.len()).map(|p| (p % 3, (p + p / 3) % 3)).collect(),
        }
    }

    /// `pairs` of `metric` (3 children per side), judged at `relative`.
    fn judged(metric: Metric, pairs: &[(f64, f64)], relative: f64) -> AbRow {
        judge(
            Allocator::Pooling,
            metric,
            &series(pairs),
            &tol(metric, relative),
        )
    }

    #[test]
    fn one_slow_child_is_not_read_as_a_change() {
        // The same build on both sides; head child 1's 2-thread throughput
        // runs at 0.8 of the others' (one CI runner read 0.83, CI 0.68-0.91,
        // against itself when pairs alone were resampled).
        let pairs: Vec<(f64, f64)> = (0..60)
            .map(|p| {
                let slow = (p + p / 3) % 3 == 1;
                (90_000.0, if slow { 72_000.0 } else { 90_000.0 })
            })
            .collect();
        let row = judged(Metric::Throughput, &pairs, 0.05);
        assert_eq!(row.verdict, Verdict::Pass, "{row:?}");
        // Undecided: more pairs from the same children cannot settle it.
        assert!(undecided(&row), "{row:?}");
        assert_eq!(row.head_by_child, [90_000.0, 72_000.0, 90_000.0]);
        assert_eq!(row.base_by_child, [90_000.0; 3]);
        let note = child_spread(&row).expect("a note");
        assert!(
            note.contains("head children") && note.contains("−20.0% from the best"),
            "{note}"
        );
        assert!(!note.contains("base children"), "{note}");
        // Every child 20% slower is a regression.
        let pairs: Vec<(f64, f64)> = (0..60).map(|_| (90_000.0, 72_000.0)).collect();
        let row = judged(Metric::Throughput, &pairs, 0.05);
        assert_eq!(row.verdict, Verdict::Regression, "{row:?}");
        assert_eq!(child_spread(&row), None);
    }

    #[test]
    fn ratios_per_pair_cancel_a_drifting_machine() {
        // Head 5% slower in every pair while the machine swings 1x-1.6x.
        let pairs: Vec<(f64, f64)> = (0..40)
            .map(|i| {
                let speed = if (i / 5) % 2 == 0 { 1.0 } else { 1.6 };
                (1000.0 * speed, 1050.0 * speed)
            })
            .collect();
        let row = judged(Metric::Lifecycle, &pairs, 0.03);
        assert!((row.ratio - 1.05).abs() < 1e-9, "{}", row.ratio);
        assert_eq!(row.verdict, Verdict::Regression);
        assert!(!undecided(&row));
        // The paired tolerance is used, without the absolute floor.
        assert_eq!(row.tolerance.relative, 0.03);
        assert_eq!(row.tolerance.absolute_floor, None);
    }

    #[test]
    fn throughput_regresses_downward_and_an_even_split_is_undecided() {
        let pairs: Vec<(f64, f64)> = (0..30).map(|_| (200_000.0, 180_000.0)).collect();
        let row = judged(Metric::Throughput, &pairs, 0.05);
        assert_eq!(row.verdict, Verdict::Regression);
        // Ratios 0.9 and 1.1 in equal numbers: the interval spans the limit.
        let pairs: Vec<(f64, f64)> = (0..30)
            .map(|i| (100.0, if i % 2 == 0 { 90.0 } else { 110.0 }))
            .collect();
        let row = judged(Metric::Throughput, &pairs, 0.05);
        assert_eq!(row.verdict, Verdict::Pass);
        assert!(undecided(&row));
    }

    #[test]
    fn too_few_pairs_or_a_bad_ratio_cannot_be_judged() {
        let row = judged(Metric::WarmStart, &[(1.0, 1.0), (1.0, 1.0)], 0.03);
        assert!(matches!(row.verdict, Verdict::Invalid { .. }));
        let row = judged(
            Metric::WarmStart,
            &[(1.0, 1.0), (0.0, 1.0), (1.0, 1.0), (1.0, 1.0)],
            0.03,
        );
        assert!(matches!(row.verdict, Verdict::Invalid { ref reason } if reason.contains("inf")));
        let report = AbReport {
            schema: AB_SCHEMA.into(),
            schema_version: 1,
            base: "b".into(),
            head: "h".into(),
            component: "c".into(),
            pairs: 2,
            seconds: 1.0,
            stopped: "x".into(),
            rows: vec![row],
            notes: vec![],
        };
        assert!(!report.passed());
        assert!(!render(&report, false).contains("No regression"));
    }
}
