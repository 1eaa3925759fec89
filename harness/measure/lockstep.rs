//! The lock-step child of `siteboss ab`: a long-lived process that has its
//! engines built and its component loaded once, and runs one short block of
//! operations per request, so that a parent can alternate two builds block by
//! block and a slow episode of the machine hits both alike.
//!
//! The protocol is JSON lines over the child's stdin and stdout, versioned by
//! [`PROTOCOL`]:
//!
//! 1. the parent sends a [`Hello`]; the child prepares every profile and
//!    answers [`Ready`] (or [`Response::Error`]);
//! 2. the parent sends [`Request::Block`]s, one at a time; the child runs the
//!    block and answers [`Response::Block`] with the block's figure;
//! 3. the parent sends [`Request::Quit`] or closes stdin.
//!
//! A binary older than this protocol has no [`SUBCOMMAND`]: it exits at once
//! with a usage error, which the parent reports as such.

use super::os;
use super::throughput::{Work, rate};
use super::{LATENCY_POOL_CAPACITY, Subject};
use crate::component::ComponentSource;
use crate::engine::{Runtime, RuntimeOptions};
use crate::model::{Allocator, Metric};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The hidden subcommand that runs [`serve`].
pub const SUBCOMMAND: &str = "__lockstep";

/// The protocol version. A parent and a child of different versions refuse
/// each other with one line.
pub const PROTOCOL: u32 = 1;

/// The parent's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL`] of the parent.
    pub protocol: u32,
    /// The component's file, or `None` for the embedded one.
    pub component: Option<PathBuf>,
    /// Which embedded component, when `component` is `None` (older children
    /// ignore it, and then differ in the component they report).
    #[serde(default)]
    pub embedded: Option<crate::component::Embedded>,
    /// The request an HTTP handler is served.
    #[serde(default)]
    pub request: crate::http::RequestSpec,
    /// The profiles to prepare.
    pub allocators: Vec<Allocator>,
    /// How long one call may run, in milliseconds.
    pub call_timeout_ms: u64,
    /// The store memory limit, in bytes.
    pub max_memory_bytes: u64,
    /// Output kept per stream, in bytes.
    pub output_limit: usize,
    /// A directory for the child's artifacts that the parent owns and
    /// removes, so a child killed on an error path leaves nothing behind.
    /// Without one (an older parent) the child makes and removes its own.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// What the child prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ready {
    /// [`PROTOCOL`] of the child.
    pub protocol: u32,
    /// The child's siteboss version.
    pub siteboss_version: String,
    /// The Wasmtime it was built with.
    pub wasmtime_version: String,
    /// The heap it allocates from (`heap::describe`); empty from a child
    /// built before it was reported.
    #[serde(default)]
    pub heap_allocator: String,
    /// The component's name, size and hash.
    pub component: String,
    /// 64-bit FNV-1a of the component's bytes, in hex.
    pub component_fnv1a64: String,
    /// One entry per profile, in the order asked.
    pub profiles: Vec<ReadyProfile>,
}

/// One prepared profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadyProfile {
    /// The profile.
    pub allocator: Allocator,
    /// Whether lifecycles (instantiate, run, drop) can be measured.
    pub has_run: bool,
    /// The Wasmtime configuration, as `name = value` lines.
    pub config: Vec<String>,
}

/// A request after the hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "request")]
pub enum Request {
    /// Run one block.
    Block {
        /// The profile.
        allocator: Allocator,
        /// `warm-start`, `lifecycle` or `throughput`.
        metric: Metric,
        /// Operations timed (warm start, lifecycle).
        ops: usize,
        /// How long a throughput block runs, in milliseconds.
        millis: u64,
    },
    /// End the child.
    Quit,
}

/// A child's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "response")]
pub enum Response {
    /// The answer to the hello.
    Ready(Ready),
    /// The figure of one block: the median nanoseconds per operation, or
    /// operations per second for throughput.
    Block {
        /// The figure, in the metric's unit.
        value: f64,
    },
    /// The request could not be done; one line.
    Error {
        /// Why.
        error: String,
    },
}

/// Untimed operations before each timed block: the other build ran in
/// between and took the caches.
const BLOCK_WARMUP: usize = 20;

/// The child: reads the hello and requests from stdin, answers on stdout.
/// Returns the exit code.
pub fn serve() -> i32 {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout().lock();
    let mut send = |r: &Response| -> bool {
        serde_json::to_string(r)
            .map(|s| writeln!(out, "{s}").and_then(|_| out.flush()).is_ok())
            .unwrap_or(false)
    };
    let hello: Hello = match lines.next() {
        Some(Ok(line)) => match serde_json::from_str(&line) {
            Ok(h) => h,
            Err(e) => {
                send(&Response::Error {
                    error: format!(
                        "a hello this child (protocol {PROTOCOL}) does not understand: {e}"
                    ),
                });
                return 2;
            }
        },
        _ => return 2,
    };
    if hello.protocol != PROTOCOL {
        send(&Response::Error {
            error: format!(
                "lock-step protocol mismatch: the parent speaks version {}, this child version {PROTOCOL}",
                hello.protocol
            ),
        });
        return 2;
    }
    let prepared = match prepare(&hello) {
        Ok(p) => p,
        Err(e) => {
            send(&Response::Error {
                error: format!("{e:#}").replace('\n', " "),
            });
            return 2;
        }
    };
    if !send(&Response::Ready(prepared.ready.clone())) {
        return 2;
    }
    for line in lines {
        let Ok(line) = line else { return 2 };
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                send(&Response::Error {
                    error: format!("a request this child does not understand: {e}"),
                });
                return 2;
            }
        };
        let response = match request {
            Request::Quit => return 0,
            Request::Block {
                allocator,
                metric,
                ops,
                millis,
            } => match prepared.runtime(allocator) {
                Some(rt) => match block(rt, metric, ops, millis) {
                    Ok(value) => Response::Block { value },
                    Err(e) => Response::Error {
                        error: format!("{allocator} {metric}: {e:#}"),
                    },
                },
                None => Response::Error {
                    error: format!("{allocator} was not prepared"),
                },
            },
        };
        if !send(&response) {
            return 2;
        }
    }
    0
}

struct Prepared {
    ready: Ready,
    runtimes: Vec<(Allocator, Runtime)>,
    /// The child's own directory, when the parent gave none.
    _dir: Option<tempfile::TempDir>,
}

impl Prepared {
    fn runtime(&self, allocator: Allocator) -> Option<&Runtime> {
        self.runtimes
            .iter()
            .find(|(a, _)| *a == allocator)
            .map(|(_, rt)| rt)
    }
}

fn prepare(hello: &Hello) -> anyhow::Result<Prepared> {
    let source = ComponentSource::resolve(hello.component.as_deref(), hello.embedded)?;
    let (dir, own) = match &hello.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("siteboss-lockstep-")
                .tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let base = RuntimeOptions {
        call_timeout_ms: hello.call_timeout_ms,
        max_memory_bytes: hello.max_memory_bytes,
        output_limit: hello.output_limit,
        request: hello.request.clone(),
        ..RuntimeOptions::new(Allocator::Pooling)
    };
    let mut runtimes = Vec::new();
    let mut profiles = Vec::new();
    for subject in Subject::prepare_all(&source, &hello.allocators, &base, &dir)? {
        let allocator = subject.options.allocator;
        let rt = subject.runtime(u64::from(LATENCY_POOL_CAPACITY))?;
        profiles.push(ReadyProfile {
            allocator,
            has_run: rt.has_run(),
            config: rt.describe(),
        });
        runtimes.push((allocator, rt));
    }
    Ok(Prepared {
        ready: Ready {
            protocol: PROTOCOL,
            siteboss_version: env!("CARGO_PKG_VERSION").into(),
            wasmtime_version: crate::fingerprint::WASMTIME_VERSION.into(),
            heap_allocator: crate::heap::describe(),
            component: format!("{} ({} bytes)", source.name, source.bytes.len()),
            component_fnv1a64: source.fnv1a64(),
            profiles,
        },
        runtimes,
        _dir: own,
    })
}

/// One block's figure.
fn block(rt: &Runtime, metric: Metric, ops: usize, millis: u64) -> anyhow::Result<f64> {
    match metric {
        Metric::WarmStart | Metric::Lifecycle => {
            let _pinned = os::pin_to_last_cpu();
            let once = |timed: bool| -> anyhow::Result<f64> {
                let t0 = Instant::now();
                let elapsed;
                if metric == Metric::WarmStart {
                    let live = rt.instantiate()?;
                    elapsed = t0.elapsed();
                    drop(live);
                } else {
                    rt.lifecycle()?;
                    elapsed = t0.elapsed();
                }
                Ok(if timed {
                    elapsed.as_nanos() as f64
                } else {
                    0.0
                })
            };
            for _ in 0..BLOCK_WARMUP {
                once(false)?;
            }
            let mut samples = (0..ops.max(1))
                .map(|_| once(true))
                .collect::<anyhow::Result<Vec<f64>>>()?;
            samples.sort_by(f64::total_cmp);
            Ok(crate::stats::quantile_sorted(&samples, 0.5))
        }
        Metric::Throughput => {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            Ok(rate(
                std::slice::from_ref(rt),
                threads,
                Duration::from_millis(millis.max(1)),
                Work::Lifecycle,
            )?)
        }
        other => anyhow::bail!("{other} is not measured in lock-step blocks"),
    }
}
