//! The per-instance host state: a sandboxed WASI context, bounded output
//! capture and resource limits.

use crate::capture::Capture;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The limits and sandbox every instance gets.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// `argv[0]`, the component's name. No other argument is passed.
    pub program_name: String,
    /// The most linear memory one instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// The most bytes of stdout, and separately of stderr, that are kept.
    pub output_limit: usize,
}

/// What one store holds besides the instance: its WASI context, its captured
/// output and its limits.
pub struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: Limiter,
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
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Host {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(sandbox.max_memory_bytes),
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

    /// Whether a memory growth was refused by the store limit.
    pub fn memory_limit_hit(&self) -> bool {
        self.limiter.memory_refused
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
