//! The per-instance host state: a sandboxed WASI context, bounded output
//! capture and resource limits.

use crate::capture::Capture;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreContextMut, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{HostMonotonicClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The limits and sandbox every instance gets.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// `argv[0]`, the component's name. No other argument is passed.
    pub program_name: String,
    /// The most linear memory one instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// The most bytes of stdout, and separately of stderr, that are kept.
    pub output_limit: usize,
    /// The longest one clock subscription may wait: the call timeout.
    pub max_wait: Duration,
}

/// `wasi:random` (both the secure and the insecure interface) read from the
/// kernel at each call with `getrandom(2)`. wasmtime-wasi's defaults keep a
/// seeded generator per store (a 320-byte `StdRng` and a 32-byte `SmallRng`,
/// each boxed): 352 bytes of heap in every live instance, for randomness a
/// hello world never asks for. The cost moves to the call: one system call
/// per request for random bytes instead of a user-space generator.
pub struct KernelRandom;

impl KernelRandom {
    fn fill(dst: &mut [u8]) {
        let mut done = 0;
        while done < dst.len() {
            let rest = &mut dst[done..];
            // SAFETY: writes at most `rest.len()` bytes into `rest`.
            let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let err = std::io::Error::last_os_error();
            // Blocking getrandom(2) fails only when interrupted (retry) or
            // on a kernel without it (before Linux 3.17), where no honest
            // randomness can be given.
            assert!(
                err.kind() == std::io::ErrorKind::Interrupted,
                "getrandom(2) failed: {err}"
            );
        }
    }
}

impl rand_core::TryRng for KernelRandom {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        Self::fill(dst);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for KernelRandom {}

/// What one store holds besides the instance: its WASI context, its captured
/// output and its limits.
pub struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: crate::http::Hooks,
    table: ResourceTable,
    limiter: Limiter,
    max_wait: Duration,
    wait_cut_short: bool,
    /// What an HTTP handler answered, once it has been served a request.
    pub served: Option<crate::http::Served>,
    /// Everything the instance wrote to stdout (bounded).
    pub stdout: Capture,
    /// Everything the instance wrote to stderr (bounded).
    pub stderr: Capture,
}

impl Host {
    /// A fresh host state with the sandbox's WASI context: no preopened
    /// directories, no environment, no arguments beyond the name, no network,
    /// an empty stdin, and bounded stdout and stderr.
    pub fn new(sandbox: &Sandbox) -> Self {
        let stdout = Capture::new(sandbox.output_limit);
        let stderr = Capture::new(sandbox.output_limit);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg(&sandbox.program_name)
            .monotonic_clock(Clock)
            .secure_random(KernelRandom)
            .insecure_random(KernelRandom)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Host {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: crate::http::Hooks,
            table: ResourceTable::new(),
            limiter: Limiter::new(sandbox.max_memory_bytes),
            max_wait: sandbox.max_wait,
            wait_cut_short: false,
            served: None,
            stdout,
            stderr,
        }
    }

    /// The limiter to install with `Store::limiter`.
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.limiter
    }

    /// The largest linear memory and table this store asked for, in bytes and elements.
    pub fn peaks(&self) -> (usize, usize) {
        (self.limiter.peak_memory, self.limiter.peak_table)
    }

    /// Whether a clock wait was cut short at the call timeout.
    pub fn wait_cut_short(&self) -> bool {
        self.wait_cut_short
    }

    /// Whether a memory growth was refused by the store limit.
    pub fn memory_limit_hit(&self) -> bool {
        self.limiter.memory_refused
    }

    /// A pollable that is ready after `wait`, or after `max_wait` if sooner.
    fn wait(&mut self, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
        self.wait_cut_short |= wait > self.max_wait;
        let until = tokio::time::Instant::now() + wait.min(self.max_wait);
        let timer = self.table.push(Timer(until))?;
        subscribe(&mut self.table, timer)
    }
}

/// Adds to `linker` the WASI 0.2 interfaces (synchronous, as
/// `wasmtime_wasi::p2::add_to_linker_sync` defines them) that `imported`
/// names, by name without version (`wasi:cli/stdout`).
///
/// A fresh process pays for every function it links: all of WASI was
/// about 56% of an in-process cold start's instructions for the CLI hello,
/// which imports three of these interfaces. An interface a component does
/// not import cannot be called, so leaving it out changes nothing the
/// component sees; an import WASI does not have still fails to link, as
/// before.
///
/// # Errors
///
/// Fails when an interface cannot be defined.
pub fn add_imported_wasi(
    linker: &mut Linker<Host>,
    imported: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sockets, sync};
    use wasmtime_wasi::random::WasiRandom;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
    use wasmtime_wasi_io::bindings::wasi::io;

    type Add = fn(&mut Linker<Host>) -> wasmtime::Result<()>;
    let interfaces: &[(&str, Add)] = &[
        ("wasi:io/error", |l| {
            io::error::add_to_linker::<Host, HasTable>(l, |t| t.ctx().table)
        }),
        ("wasi:io/poll", |l| {
            sync::io::poll::add_to_linker::<Host, HasTable>(l, |t| t.ctx().table)
        }),
        ("wasi:io/streams", |l| {
            sync::io::streams::add_to_linker::<Host, HasTable>(l, |t| t.ctx().table)
        }),
        ("wasi:clocks/wall-clock", |l| {
            clocks::wall_clock::add_to_linker::<Host, WasiClocks>(l, Host::clocks)
        }),
        ("wasi:clocks/monotonic-clock", |l| {
            clocks::monotonic_clock::add_to_linker::<Host, WasiClocks>(l, Host::clocks)
        }),
        ("wasi:filesystem/preopens", |l| {
            filesystem::preopens::add_to_linker::<Host, WasiFilesystem>(l, Host::filesystem)
        }),
        ("wasi:filesystem/types", |l| {
            sync::filesystem::types::add_to_linker::<Host, WasiFilesystem>(l, Host::filesystem)
        }),
        ("wasi:random/random", |l| {
            random::random::add_to_linker::<Host, WasiRandom>(l, |t| t.ctx().ctx.random())
        }),
        ("wasi:random/insecure", |l| {
            random::insecure::add_to_linker::<Host, WasiRandom>(l, |t| t.ctx().ctx.random())
        }),
        ("wasi:random/insecure-seed", |l| {
            random::insecure_seed::add_to_linker::<Host, WasiRandom>(l, |t| t.ctx().ctx.random())
        }),
        ("wasi:cli/exit", |l| {
            cli::exit::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/environment", |l| {
            cli::environment::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/stdin", |l| {
            cli::stdin::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/stdout", |l| {
            cli::stdout::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/stderr", |l| {
            cli::stderr::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/terminal-input", |l| {
            cli::terminal_input::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/terminal-output", |l| {
            cli::terminal_output::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/terminal-stdin", |l| {
            cli::terminal_stdin::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/terminal-stdout", |l| {
            cli::terminal_stdout::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:cli/terminal-stderr", |l| {
            cli::terminal_stderr::add_to_linker::<Host, WasiCli>(l, Host::cli)
        }),
        ("wasi:sockets/tcp-create-socket", |l| {
            sockets::tcp_create_socket::add_to_linker::<Host, WasiSockets>(l, Host::sockets)
        }),
        ("wasi:sockets/instance-network", |l| {
            sockets::instance_network::add_to_linker::<Host, WasiSockets>(l, Host::sockets)
        }),
        ("wasi:sockets/network", |l| {
            let options = sockets::network::LinkOptions::default();
            sockets::network::add_to_linker::<Host, WasiSockets>(l, &options, Host::sockets)
        }),
        ("wasi:sockets/ip-name-lookup", |l| {
            sockets::ip_name_lookup::add_to_linker::<Host, WasiSockets>(l, Host::sockets)
        }),
        ("wasi:sockets/tcp", |l| {
            sync::sockets::tcp::add_to_linker::<Host, WasiSockets>(l, Host::sockets)
        }),
        ("wasi:sockets/udp", |l| {
            sync::sockets::udp::add_to_linker::<Host, WasiSockets>(l, Host::sockets)
        }),
        ("wasi:sockets/udp-create-socket", |l| {
            sync::sockets::udp_create_socket::add_to_linker::<Host, WasiSockets>(l, Host::sockets)
        }),
    ];
    for (name, add) in interfaces {
        if imported(name) {
            add(linker)?;
        }
    }
    if imported("wasi:clocks/monotonic-clock") {
        bound_clock_waits(linker)?;
    }
    Ok(())
}

/// The resource table, for the `wasi:io` interfaces.
struct HasTable;

impl wasmtime::component::HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Replaces `wasi:clocks/monotonic-clock`'s `subscribe-duration` and
/// `subscribe-instant` in `linker` (which has WASI) with versions whose wait
/// is cut short at the sandbox's `max_wait`.
///
/// The epoch deadline interrupts wasm code only: a component blocked in a
/// host call, such as sleeping on a clock, would hold its thread (and ignore
/// SIGINT) for as long as it asked. With every wait bounded by the call
/// timeout the call comes back, and [`Host::wait_cut_short`] tells the
/// caller it ran into the timeout.
///
/// # Errors
///
/// Fails when the functions cannot be defined.
pub fn bound_clock_waits(linker: &mut Linker<Host>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut cx: StoreContextMut<'_, Host>, (nanos,): (u64,)| {
            Ok((cx.data_mut().wait(Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut cx: StoreContextMut<'_, Host>, (when,): (u64,)| {
            let left = when.saturating_sub(Clock.now());
            Ok((cx.data_mut().wait(Duration::from_nanos(left))?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic-clock interface as Wasmtime's WASI 0.2 defines it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

struct Timer(tokio::time::Instant);

#[async_trait::async_trait]
impl Pollable for Timer {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.0).await
    }
}

/// The monotonic clock instances read: nanoseconds since this process first
/// read it, so `subscribe-instant` can turn an instant into a wait.
struct Clock;

impl HostMonotonicClock for Clock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// `StoreLimits` that also remembers the largest sizes asked for, so the
/// pooling allocator's slots can be sized from what a component really uses.
struct Limiter {
    limits: StoreLimits,
    max_memory: usize,
    peak_memory: usize,
    peak_table: usize,
    memory_refused: bool,
}

impl Limiter {
    fn new(max_memory: usize) -> Self {
        Limiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory)
                .trap_on_grow_failure(true)
                .build(),
            max_memory,
            peak_memory: 0,
            peak_table: 0,
            memory_refused: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.memory_refused = true;
        } else {
            self.peak_memory = self.peak_memory.max(desired);
        }
        self.limits.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.peak_table = self.peak_table.max(desired);
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }
    fn tables(&self) -> usize {
        self.limits.tables()
    }
    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every interface of the table, linked together, defines each function
    /// once (a second definition of a name is an error) — what a component
    /// importing all of WASI 0.2 gets.
    #[test]
    fn every_wasi_interface_links_together() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<Host>::new(&engine);
        add_imported_wasi(&mut linker, &|_| true).expect("all of WASI links");
    }

    /// The interfaces a component does not import are not linked, so its
    /// cold start does not pay for them; one it does import is.
    #[test]
    fn only_the_imported_interfaces_are_linked() {
        let engine = wasmtime::Engine::default();
        let mut linker = Linker::<Host>::new(&engine);
        let mut asked = Vec::new();
        let seen = std::cell::RefCell::new(&mut asked);
        add_imported_wasi(&mut linker, &|name| {
            seen.borrow_mut().push(name.to_owned());
            name == "wasi:cli/stdout"
        })
        .expect("links");
        // The 27 interfaces of `wasmtime_wasi::p2::add_to_linker_sync` are
        // each offered (monotonic-clock twice: once more for the bounded
        // waits).
        let mut unique = asked.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 27, "{unique:?}");
        for package in [
            "wasi:io/",
            "wasi:clocks/",
            "wasi:filesystem/",
            "wasi:random/",
            "wasi:cli/",
            "wasi:sockets/",
        ] {
            assert!(
                asked.iter().any(|n| n.starts_with(package)),
                "{package} missing from {asked:?}"
            );
        }
        // stdout was linked: defining it again is refused; stderr was not.
        let define = |linker: &mut Linker<Host>, interface: &str, func: &str| {
            linker
                .instance(&format!("{interface}@0.2.12"))
                .and_then(|mut i| {
                    i.func_wrap(func, |_cx: wasmtime::StoreContextMut<'_, Host>, (): ()| {
                        Ok((0u32,))
                    })
                })
                .is_ok()
        };
        assert!(
            !define(&mut linker, "wasi:cli/stdout", "get-stdout"),
            "wasi:cli/stdout was not linked"
        );
        assert!(
            define(&mut linker, "wasi:cli/stderr", "get-stderr"),
            "wasi:cli/stderr was linked"
        );
    }
}
