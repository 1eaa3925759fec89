//! The one place Wasmtime engines, linkers and instances are set up.
//!
//! The CLI, the criterion benches and the gate all build a [`Runtime`] here,
//! so no caller writes its own engine configuration.

use crate::component::ComponentSource;
use crate::host::{Host, Sandbox};
use crate::http::RequestSpec;
use crate::model::Allocator;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

/// How often the epoch ticker advances every engine's epoch.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The settings a runtime is built from. Together with a [`Footprint`] they
/// decide the Wasmtime configuration exactly, so a child process given the same
/// two values builds the same engine and can load the parent's artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeOptions {
    /// Which instance allocator.
    pub allocator: Allocator,
    /// Live instances the pooling allocator has slots for.
    pub pool_capacity: u32,
    /// Override for the pooling allocator's linear-memory slot, in bytes.
    /// `None` sizes the slot from the component's footprint.
    pub memory_slot: Option<u64>,
    /// The most linear memory one instance may grow to (a store limit).
    pub max_memory_bytes: u64,
    /// How long one call into the component may run before it is interrupted.
    pub call_timeout_ms: u64,
    /// The most bytes of each of stdout and stderr kept per instance.
    pub output_limit: usize,
    /// Whether the phases exercise the component's workload (call
    /// `wasi:cli/run`, or serve one HTTP request) when it has one.
    pub run: bool,
    /// The request an HTTP component is served.
    #[serde(default)]
    pub request: RequestSpec,
    /// Whether imports this host does not provide are linked as functions that
    /// trap when called, so that a component needing them can still be
    /// instantiated (an instantiate-only measurement).
    pub stub_missing_imports: bool,
}

impl RuntimeOptions {
    /// The defaults for `allocator`.
    pub fn new(allocator: Allocator) -> Self {
        RuntimeOptions {
            allocator,
            pool_capacity: 1000,
            memory_slot: None,
            max_memory_bytes: 64 << 20,
            call_timeout_ms: 1000,
            output_limit: 64 << 10,
            run: true,
            request: RequestSpec::default(),
            stub_missing_imports: false,
        }
    }
}

/// What one instance of a component needs, learnt by instantiating and running
/// it once. The pooling allocator's slots are sized from it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Footprint {
    /// Linear memories per component instance.
    pub memories: u32,
    /// The largest linear memory any of them reached, in bytes.
    pub memory_bytes: u64,
    /// Tables per component instance.
    pub tables: u32,
    /// The most elements any of them reached.
    pub table_elements: u64,
    /// Whether the component has a workload: it exports `wasi:cli/run`, or
    /// `wasi:http/incoming-handler`.
    pub has_run: bool,
    /// Whether that workload is an HTTP handler.
    #[serde(default)]
    pub http: bool,
    /// Core instances per component instance (the pooling allocator's
    /// `total_core_instances` is this times the pool capacity).
    #[serde(default = "default_core_instances")]
    pub core_instances: u32,
    /// The largest maximum its linear memories declare, in bytes, when every
    /// one declares a maximum; `None` when any may grow without one.
    #[serde(default)]
    pub declared_max_bytes: Option<u64>,
    /// The largest initial size of its linear memories, in bytes (static).
    #[serde(default)]
    pub initial_memory_bytes: u64,
    /// Whether an instance may write one of its tables (static; see
    /// [`writes_tables`]): the pooling profiles then keep a freed table's
    /// first page resident. Absent reads as `true`, as unreadable bytes do.
    #[serde(default = "default_writes_tables")]
    pub writes_tables: bool,
}

fn default_core_instances() -> u32 {
    64
}

fn default_writes_tables() -> bool {
    true
}

/// Why instantiating or running an instance failed.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// Every slot of the pooling allocator is in use.
    #[error("the pooling allocator is full: {0}")]
    PoolFull(String),
    /// The component's imports are not all provided by this host.
    #[error("{0}")]
    Link(String),
    /// The call ran past its epoch deadline.
    #[error("stopped after the {0} ms call timeout (epoch deadline): the component did not return")]
    Timeout(u64),
    /// The instance asked for more memory than the store limit allows.
    #[error(
        "stopped by the store's memory limit of {0} bytes: the component kept growing its memory"
    )]
    MemoryLimit(u64),
    /// The operating system refused memory or address space (`ENOMEM`).
    #[error("the system refused memory: {0}")]
    OutOfMemory(String),
    /// The component trapped or returned an error.
    #[error("{0}")]
    Trap(String),
    /// An HTTP handler gave no successful response.
    #[error("{0}")]
    Http(String),
}

/// A live instance and the store that owns it.
pub struct Live {
    /// The store, with the instance's host state.
    pub store: Store<Host>,
    /// The instance.
    pub instance: Instance,
}

/// What the phases call on an instance: the one place a CLI run and an HTTP
/// request differ.
enum Entry {
    /// `wasi:cli/run`, called synchronously.
    Cli(ComponentExportIndex),
    /// `wasi:http/incoming-handler.handle`, called asynchronously on this
    /// thread's runtime with one synthetic request.
    Http(Box<wasmtime_wasi_http::p2::bindings::sync::ProxyIndices>),
    /// Nothing to call: the phases only instantiate.
    None,
}

/// The component's workload, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// A `wasi:cli/run` command.
    Cli,
    /// A `wasi:http/incoming-handler`.
    Http,
    /// Neither: instantiation only.
    None,
}

/// An engine, a linker with WASI, and a component ready to instantiate.
pub struct Runtime {
    engine: Engine,
    pre: InstancePre<Host>,
    entry: Entry,
    sandbox: Sandbox,
    options: RuntimeOptions,
    footprint: Footprint,
    epoch_deadline: u64,
}

impl Runtime {
    /// Learns a component's footprint: compiles it with a default on-demand
    /// engine, instantiates it and runs it once.
    ///
    /// # Errors
    ///
    /// Fails when the bytes are not a valid component, when its imports are not
    /// all provided, or when instantiating it fails. A trap in `run` is not an
    /// error here: the footprint still says how much memory it reached.
    pub fn probe(
        source: &ComponentSource,
        options: &RuntimeOptions,
    ) -> anyhow::Result<(Footprint, Option<InstanceError>)> {
        let probe_options = RuntimeOptions {
            allocator: Allocator::OnDemand,
            ..options.clone()
        };
        let unknown = Footprint {
            memories: 0,
            memory_bytes: 0,
            tables: 0,
            table_elements: 0,
            has_run: false,
            http: false,
            core_instances: 0,
            declared_max_bytes: None,
            initial_memory_bytes: 0,
            writes_tables: false,
        };
        let engine = new_engine(&probe_options, &unknown)?;
        let component = compile(&engine, source)?;
        let resources = component.resources_required();
        let rt = Runtime::from_component(engine, component, source, &probe_options, unknown)?;
        let mut live = rt
            .instantiate()
            .map_err(|e| anyhow::anyhow!("{}: cannot be instantiated: {e}", source.label()))?;
        let has_run = !matches!(rt.entry, Entry::None);
        let http = matches!(rt.entry, Entry::Http(_));
        // A failing run is returned for the caller to report; the footprint
        // still records the sizes it reached.
        let run_error = if has_run {
            rt.run(&mut live).err()
        } else {
            None
        };
        let (peak_memory, peak_table) = live.store.data().peaks();
        let (memories, initial_pages, tables, initial_elements) = match resources {
            Some(r) => (
                r.num_memories,
                r.max_initial_memory_size.unwrap_or(0),
                r.num_tables,
                r.max_initial_table_size.unwrap_or(0),
            ),
            // A component that instantiates imported modules cannot be sized
            // statically; assume a small fixed shape and let the peaks decide.
            None => (4, 1, 4, 1),
        };
        let footprint = Footprint {
            memories,
            memory_bytes: (initial_pages * 65536).max(peak_memory as u64),
            tables,
            table_elements: initial_elements.max(peak_table as u64),
            has_run,
            http,
            core_instances: crate::component::core_instances(&source.bytes).max(1),
            declared_max_bytes: declared_memory_max(&source.bytes),
            initial_memory_bytes: initial_pages * 65536,
            writes_tables: writes_tables(&source.bytes),
        };
        Ok((footprint, run_error))
    }

    /// Builds a runtime by compiling the component's `.wasm`.
    ///
    /// # Errors
    ///
    /// Fails when the configuration is rejected, the component is invalid, or
    /// its imports are not all provided.
    pub fn compile(
        source: &ComponentSource,
        options: &RuntimeOptions,
        footprint: Footprint,
    ) -> anyhow::Result<Self> {
        Runtime::load(
            new_engine(options, &footprint)?,
            Load::Compile,
            source,
            options,
            footprint,
        )
    }

    /// Builds a runtime from an artifact made by [`Runtime::precompile`] with
    /// the same options and footprint.
    ///
    /// # Errors
    ///
    /// Fails when the artifact was made by another Wasmtime version or
    /// configuration.
    pub fn deserialize(
        artifact: &[u8],
        source: &ComponentSource,
        options: &RuntimeOptions,
        footprint: Footprint,
    ) -> anyhow::Result<Self> {
        Runtime::load(
            new_engine(options, &footprint)?,
            Load::Artifact(artifact),
            source,
            options,
            footprint,
        )
    }

    /// Loads the component into `engine` (made by [`new_engine`] with the same
    /// options and footprint), links WASI and prepares `InstancePre`.
    ///
    /// # Errors
    ///
    /// Fails when the component is invalid, the artifact does not fit this
    /// engine, or the component's imports are not all provided.
    pub fn load(
        engine: Engine,
        load: Load<'_>,
        source: &ComponentSource,
        options: &RuntimeOptions,
        footprint: Footprint,
    ) -> anyhow::Result<Self> {
        let component = match load {
            Load::Compile => compile(&engine, source)?,
            // SAFETY: the artifact is one this tool wrote with `precompile`;
            // Wasmtime still checks its version and settings against the engine.
            Load::Artifact(bytes) => {
                unsafe { Component::deserialize(&engine, bytes) }.map_err(|e| {
                    anyhow::anyhow!(
                        "the precompiled artifact does not load into this Wasmtime {} engine \
                     (it was made by another version or configuration): {}",
                        crate::fingerprint::WASMTIME_VERSION,
                        one_line(&e)
                    )
                })?
            }
        };
        Runtime::from_component(engine, component, source, options, footprint)
    }

    /// Compiles the component for this configuration into an artifact that
    /// [`Runtime::deserialize`] loads.
    ///
    /// # Errors
    ///
    /// Fails when the component is invalid.
    pub fn precompile(
        source: &ComponentSource,
        options: &RuntimeOptions,
        footprint: Footprint,
    ) -> anyhow::Result<Vec<u8>> {
        let engine = new_engine(options, &footprint)?;
        let artifact = engine
            .precompile_component(&source.bytes)
            .map_err(|e| invalid(source, e))?;
        Ok(artifact)
    }

    fn from_component(
        engine: Engine,
        component: Component,
        source: &ComponentSource,
        options: &RuntimeOptions,
        footprint: Footprint,
    ) -> anyhow::Result<Self> {
        // The WASI interfaces the component imports, and wasi:http if it
        // imports any of it, synchronously: an HTTP handler's `handle` is
        // called like a command's `run` (see `crate::http`), and a command
        // that uses HTTP types instantiates too (its outgoing requests are
        // refused). Linking only what is imported is what a fresh process
        // pays least for (see `crate::host::add_imported_wasi`).
        let http_export = find_http_handler(&component);
        let mut linker = Linker::<Host>::new(&engine);
        let ty = component.component_type();
        let imports: std::collections::HashSet<&str> = ty
            .imports(&engine)
            .map(|(name, _)| name.split_once('@').map_or(name, |(n, _)| n))
            .collect();
        crate::host::add_imported_wasi(&mut linker, &|name| imports.contains(name))?;
        if imports.iter().any(|name| name.starts_with("wasi:http/")) {
            wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        }
        if options.stub_missing_imports {
            linker.define_unknown_imports_as_traps(&component)?;
        }
        let pre = linker.instantiate_pre(&component).map_err(|e| {
            InstanceError::Link(format!("{}: {}", source.label(), link_message(&e)))
        })?;
        let entry = if http_export.is_some() {
            let indices =
                wasmtime_wasi_http::p2::bindings::sync::ProxyIndices::new(&pre).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: exports wasi:http/incoming-handler with an unexpected type: {}",
                        source.label(),
                        one_line(&e)
                    )
                })?;
            Entry::Http(Box::new(indices))
        } else {
            find_run(&component).map_or(Entry::None, Entry::Cli)
        };
        let entry = if options.run { entry } else { Entry::None };
        start_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            pre,
            entry,
            sandbox: Sandbox {
                program_name: source.name.clone(),
                max_memory_bytes: usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX),
                output_limit: options.output_limit,
                max_wait: Duration::from_millis(options.call_timeout_ms),
            },
            options: options.clone(),
            footprint,
            epoch_deadline: options
                .call_timeout_ms
                .div_ceil(EPOCH_TICK.as_millis() as u64)
                .max(1),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The options it was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// The footprint it was sized for.
    pub fn footprint(&self) -> Footprint {
        self.footprint
    }

    /// Whether the component has a workload (`wasi:cli/run`, or an HTTP
    /// handler) and the options exercise it.
    pub fn has_run(&self) -> bool {
        !matches!(self.entry, Entry::None)
    }

    /// The workload [`Runtime::run`] exercises.
    pub fn workload(&self) -> Workload {
        match self.entry {
            Entry::Cli(_) => Workload::Cli,
            Entry::Http(_) => Workload::Http,
            Entry::None => Workload::None,
        }
    }

    /// A fresh store with a fresh sandboxed WASI context and limits.
    pub fn new_store(&self) -> Store<Host> {
        let mut store = Store::new(&self.engine, Host::new(&self.sandbox));
        store.limiter(|h| h.limiter());
        store.set_epoch_deadline(self.epoch_deadline);
        store
    }

    /// Instantiates the component in a fresh store: a warm start.
    ///
    /// # Errors
    ///
    /// Returns [`InstanceError::PoolFull`] when every pool slot is in use, and
    /// [`InstanceError::Trap`] or [`InstanceError::MemoryLimit`] when
    /// instantiation itself fails.
    pub fn instantiate(&self) -> Result<Live, InstanceError> {
        let mut store = self.new_store();
        match self.pre.instantiate(&mut store) {
            Ok(_) if store.data().wait_cut_short() => {
                Err(InstanceError::Timeout(self.options.call_timeout_ms))
            }
            Ok(instance) => Ok(Live { store, instance }),
            Err(e) => Err(self.classify(&store, e)),
        }
    }

    /// Calls `wasi:cli/run` on a live instance and checks what it returned.
    ///
    /// # Errors
    ///
    /// Returns [`InstanceError::Trap`] when the component traps or returns
    /// `err`, [`InstanceError::Timeout`] when it runs (or waits on a clock)
    /// past the call timeout, and
    /// [`InstanceError::MemoryLimit`] when it grows past the store limit.
    pub fn run(&self, live: &mut Live) -> Result<(), InstanceError> {
        // Why every call enters WASI's runtime, whatever the caller had
        // entered (restored on return): see `wasi_runtime`.
        let _tokio = wasi_runtime().enter();
        let index = match &self.entry {
            Entry::Cli(index) => index,
            Entry::Http(indices) => return self.serve(indices, live),
            Entry::None => {
                return Err(InstanceError::Trap(
                    "the component exports neither wasi:cli/run nor wasi:http/incoming-handler"
                        .into(),
                ));
            }
        };
        let func = live
            .instance
            .get_typed_func::<(), (Result<(), ()>,)>(&mut live.store, index)
            .map_err(|e| {
                InstanceError::Trap(format!("wasi:cli/run has an unexpected type: {e}"))
            })?;
        let outcome = func.call(&mut live.store, ());
        if live.store.data().wait_cut_short() {
            return Err(InstanceError::Timeout(self.options.call_timeout_ms));
        }
        match outcome {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(()),)) => Err(InstanceError::Trap("wasi:cli/run returned an error".into())),
            // `exit(ok)` ends a command successfully, as in any WASI host.
            Err(e) if matches!(e.downcast_ref(), Some(wasmtime_wasi::I32Exit(0))) => Ok(()),
            Err(e) => Err(self.classify(&live.store, e)),
        }
    }

    /// Serves the request of the options to an HTTP handler and reads the
    /// whole response; the status and body size are left in the host state.
    fn serve(
        &self,
        indices: &wasmtime_wasi_http::p2::bindings::sync::ProxyIndices,
        live: &mut Live,
    ) -> Result<(), InstanceError> {
        use wasmtime_wasi_http::WasiHttpView;
        let proxy = indices
            .load(&mut live.store, &live.instance)
            .map_err(|e| InstanceError::Trap(one_line(&e)))?;
        let (req, out, pending) = {
            let mut view = live.store.data_mut().http();
            crate::http::prepare(&mut view, &self.options.request, self.options.output_limit)
                .map_err(|e| InstanceError::Http(e.to_string()))?
        };
        let store = &mut live.store;
        let called = proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, req, out);
        // Whatever the handler did, tell the body's reader it has returned.
        let served = pending.finish(Duration::from_millis(self.options.call_timeout_ms));
        if store.data().wait_cut_short() {
            return Err(InstanceError::Timeout(self.options.call_timeout_ms));
        }
        match (called, served) {
            // A trap wins over a response sent before it.
            (Err(e), _) => Err(self.classify(store, e)),
            (Ok(()), Err(e)) => Err(InstanceError::Http(e.to_string())),
            (Ok(()), Ok(served)) => {
                store.data_mut().served = Some(served);
                Ok(())
            }
        }
    }

    /// Instantiates and runs once, returning what an HTTP handler answered
    /// (`None` for other workloads).
    ///
    /// # Errors
    ///
    /// As [`Runtime::instantiate`] and [`Runtime::run`].
    pub fn serve_once(&self) -> Result<Option<crate::http::Served>, InstanceError> {
        let mut live = self.instantiate()?;
        self.run(&mut live)?;
        Ok(live.store.data_mut().served.take())
    }

    /// One request's whole lifecycle: instantiate, run, drop.
    ///
    /// # Errors
    ///
    /// As [`Runtime::instantiate`] and [`Runtime::run`].
    pub fn lifecycle(&self) -> Result<(), InstanceError> {
        let mut live = self.instantiate()?;
        self.run(&mut live)
    }

    fn classify(&self, store: &Store<Host>, e: wasmtime::Error) -> InstanceError {
        if let Some(pool) = e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
            return InstanceError::PoolFull(pool.to_string());
        }
        if store.data().memory_limit_hit() {
            return InstanceError::MemoryLimit(self.options.max_memory_bytes);
        }
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return InstanceError::Timeout(self.options.call_timeout_ms);
        }
        if refused_memory(&e) {
            return InstanceError::OutOfMemory(format!("{}{}", one_line(&e), address_space_hint()));
        }
        InstanceError::Trap(one_line(&e))
    }

    /// The configuration as `name = value` lines, for the report.
    pub fn describe(&self) -> Vec<String> {
        describe(&self.options, &self.footprint)
    }
}

/// How a runtime gets its compiled component.
#[derive(Debug, Clone, Copy)]
pub enum Load<'a> {
    /// Compile the `.wasm` with Cranelift.
    Compile,
    /// Deserialize an artifact made by [`Runtime::precompile`].
    Artifact(&'a [u8]),
}

/// A key equal for two profiles exactly when an artifact precompiled by one
/// loads in the other: Wasmtime's own compatibility hash of the engine
/// (compiler settings, tunables such as guard sizes and copy-on-write
/// images, and enabled features), the one its compilation cache keys on.
/// The allocator itself is not part of it.
///
/// # Errors
///
/// Fails when the engine cannot be created.
pub fn artifact_key(options: &RuntimeOptions, footprint: Footprint) -> anyhow::Result<u64> {
    use std::hash::{Hash, Hasher};
    // A small pool: the key does not depend on its size, and a large one
    // would reserve address space for nothing.
    let small = RuntimeOptions {
        pool_capacity: options.pool_capacity.min(2),
        ..options.clone()
    };
    let engine = new_engine(&small, &footprint)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    Ok(h.finish())
}

/// A fresh engine for `options`, sized for `footprint`.
///
/// # Errors
///
/// Fails when Wasmtime rejects the configuration (for example a pool too
/// large for the address space).
pub fn new_engine(options: &RuntimeOptions, footprint: &Footprint) -> anyhow::Result<Engine> {
    Engine::new(&config(options, footprint)?).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the {} engine: {}{}",
            options.allocator,
            one_line(&e),
            if refused_memory(&e) {
                address_space_hint()
            } else {
                String::new()
            }
        )
    })
}

/// The Wasmtime configuration for `options`, sized for `footprint`.
///
/// # Errors
///
/// Fails when the sizes overflow what the pooling allocator accepts.
pub fn config(options: &RuntimeOptions, footprint: &Footprint) -> anyhow::Result<Config> {
    let mut config = Config::new();
    // Every configuration can interrupt a component that never returns.
    config.epoch_interruption(true);
    if options.allocator.is_pooling() {
        let slot = memory_slot(options, footprint);
        let cap = pool_capacity(options);
        let per = |n: u32| cap.saturating_mul(n.max(1));
        if options.allocator == Allocator::Pooling {
            // Density: exactly sized slots with no guard pages and no
            // copy-on-write image: every slot is one read/write region of the
            // pool's single mapping, so live instances add no memory
            // mappings. Bounds are checked explicitly, and data segments are
            // copied in at every instantiation.
            config.memory_reservation(slot);
            config.memory_guard_size(0);
            config.memory_reservation_for_growth(0);
            config.guard_before_linear_memory(false);
            config.memory_init_cow(false);
        } else {
            // Latency: Wasmtime's default 4 GiB reservation and 32 MiB guard
            // regions (so compiled code needs no explicit bounds checks) and
            // copy-on-write images (data segments are mapped, not copied).
            config.memory_init_cow(true);
        }
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(cap)
            .total_core_instances(per(footprint.core_instances.max(1)))
            .total_memories(per(footprint.memories))
            .total_tables(per(footprint.tables))
            // Every call is synchronous, on the host's own stack.
            .total_stacks(0)
            .max_memories_per_module(footprint.memories.max(1))
            .max_tables_per_module(footprint.tables.max(1))
            .max_memory_size(usize::try_from(slot)?)
            .table_elements(usize::try_from(footprint.table_elements.max(1))?)
            // Reset a freed memory slot with memset instead of madvise:
            // releasing pages sends TLB-shootdown interrupts to every core,
            // which made two threads slower than one. PAGEMAP_SCAN limits the
            // reset to the pages the instance actually dirtied, where the
            // kernel has it.
            .linear_memory_keep_resident(usize::try_from(slot)?)
            // A freed table's first page: see `table_keep_resident`.
            .table_keep_resident(table_keep_resident(footprint))
            // One madvise for every DECOMMIT_BATCH freed tables.
            .decommit_batch_size(DECOMMIT_BATCH)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    Ok(config)
}

/// How a pooling slot's size was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotBasis {
    /// `--memory-slot`.
    Given,
    /// The maximum the component's memories declare.
    DeclaredMaximum,
    /// Twice what the probe run reached (headroom), capped at the store limit.
    Headroom,
    /// Exactly the initial size, which the probe never grew past.
    Initial,
}

/// The pooling allocator's linear-memory slot size for `footprint`, and why.
///
/// One probe run is not trusted to show the most an instance will use: a
/// component that declares a maximum gets a slot of that maximum (when it is
/// within the store limit); one whose memory grew in the probe gets twice
/// the probe's peak, never more than the store limit. A component whose
/// memory never grew past its initial size (declared statically, not learnt)
/// gets exactly that: a slot larger than the memory's accessible part keeps
/// its tail `PROT_NONE`, which splits the pool's mapping and costs a
/// memory mapping per live instance (the pooling profile then stopped at
/// `vm.max_map_count` after 31,707 instances instead of reaching 1,000,000).
/// An instance that grows past its slot fails its `memory.grow`, as it would
/// at the store limit, and the report names the rule that sized the slot.
pub fn slot_sizing(options: &RuntimeOptions, footprint: &Footprint) -> (u64, SlotBasis) {
    let (bytes, basis) = match (options.memory_slot, footprint.declared_max_bytes) {
        (Some(given), _) => (given, SlotBasis::Given),
        (None, Some(max)) if max <= options.max_memory_bytes => (max, SlotBasis::DeclaredMaximum),
        (None, _)
            if footprint.initial_memory_bytes > 0
                && footprint.memory_bytes <= footprint.initial_memory_bytes =>
        {
            (footprint.initial_memory_bytes, SlotBasis::Initial)
        }
        (None, _) => (
            footprint
                .memory_bytes
                .saturating_mul(2)
                .min(options.max_memory_bytes)
                .max(footprint.memory_bytes),
            SlotBasis::Headroom,
        ),
    };
    (bytes.max(65536).next_multiple_of(65536), basis)
}

/// The pooling allocator's linear-memory slot size for `footprint`.
pub fn memory_slot(options: &RuntimeOptions, footprint: &Footprint) -> u64 {
    slot_sizing(options, footprint).0
}

/// Address space the copy-on-write profile's pool may reserve: half of what
/// this process may address, the machine's user address space or a lower
/// `RLIMIT_AS` (64 TiB on x86-64; 256 GiB on a 39-bit arm64 kernel, or under
/// `ulimit -v` of 512 GiB, where a 1,000-slot pool of 4 GiB reservations
/// would not fit and every phase of the profile failed).
pub fn cow_pool_address_space() -> u64 {
    let os = crate::measure::os::user_address_space();
    os.min(crate::measure::os::address_space_limit().unwrap_or(u64::MAX)) / 2
}

/// Address space one slot of the copy-on-write profile reserves: Wasmtime's
/// default 4 GiB reservation plus its 32 MiB guard region after the memory
/// and 32 MiB before it.
const COW_SLOT_STRIDE: u64 = (4 << 30) + (64 << 20);

/// The most slots the pool of `allocator` is given: the copy-on-write
/// profile reserves 4 GiB of address space per slot, so its pool is capped
/// at what fits in [`cow_pool_address_space`] (16,131 slots on x86-64).
pub fn max_pool_capacity(allocator: Allocator) -> u32 {
    match allocator {
        Allocator::PoolingCow => u32::try_from(cow_pool_address_space() / COW_SLOT_STRIDE)
            .unwrap_or(u32::MAX)
            .max(1),
        _ => u32::MAX,
    }
}

fn pool_capacity(options: &RuntimeOptions) -> u32 {
    options
        .pool_capacity
        .min(max_pool_capacity(options.allocator))
}

/// The largest maximum declared by the linear memories of every core module
/// in `bytes`, when each memory (defined or imported) declares one.
pub fn declared_memory_max(bytes: &[u8]) -> Option<u64> {
    use wasmparser::{Parser, Payload, TypeRef};
    let mut most = None::<u64>;
    let mut seen = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let types: Vec<wasmparser::MemoryType> = match payload.ok()? {
            Payload::MemorySection(r) => r.into_iter().collect::<Result<_, _>>().ok()?,
            Payload::ImportSection(r) => r
                .into_imports()
                .filter_map(|i| match i.map(|i| i.ty) {
                    Ok(TypeRef::Memory(m)) => Some(Ok(m)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .ok()?,
            _ => continue,
        };
        for m in types {
            seen = true;
            let page = 1u64 << m.page_size_log2.unwrap_or(16);
            most = Some(most.unwrap_or(0).max(m.maximum?.saturating_mul(page)));
        }
    }
    most.filter(|_| seen)
}

/// Bytes of each freed table slot reset with memset; the rest is released
/// with madvise.
///
/// One page when the component writes its tables: released with madvise, a
/// written page is faulted in again by the next instance in the slot (a
/// page fault per lifecycle; with more than one thread each release may
/// also interrupt the other cores to flush their TLBs). Zero when it never
/// does: Wasmtime memsets a one-page table whole (it skips PAGEMAP_SCAN
/// there), which would fault in, at the first drop in each slot, a page the
/// instance never touched.
pub fn table_keep_resident(footprint: &Footprint) -> usize {
    if footprint.writes_tables {
        TABLE_PAGE
    } else {
        0
    }
}

/// The table bytes kept resident when a component writes its tables.
const TABLE_PAGE: usize = 4096;

/// Whether an instance of the component in `bytes` may write one of its
/// core tables. Wasmtime fills a defined funcref table's active element
/// segments lazily, at first use, when the segment is function indices at a
/// constant offset within the table's initial size; every other segment
/// (into an imported table, as wit-component's fixup module does at every
/// instantiation, or at a computed offset, or of expressions), a table with
/// an initial expression, and any instruction that writes a table or
/// initializes an element lazily (`call_indirect`, `table.get`,
/// `table.set`, …) count as writes. `true` when the bytes cannot be read.
///
/// Assumes Wasmtime's default `table_lazy_init` (on). Not seen: writes by
/// proposals Wasmtime leaves off by default (`table.atomic.*`, the
/// component model's `thread.spawn-indirect`). It errs towards `true`: a
/// table whose initial expression is a lone `ref.func`, or of a concrete
/// function type, is filled lazily by Wasmtime but counted here.
pub fn writes_tables(bytes: &[u8]) -> bool {
    use wasmparser::{ElementItems, ElementKind, Operator, Parser, Payload, TableInit, TypeRef};
    // Per core module: its tables' initial sizes (`None` for an imported
    // table or one that is not a plain funcref table).
    let mut tables: Vec<Option<u64>> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(payload) = payload else { return true };
        match payload {
            Payload::Version { .. } => tables.clear(),
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import {
                        Ok(i) if matches!(i.ty, TypeRef::Table(_)) => tables.push(None),
                        Ok(_) => {}
                        Err(_) => return true,
                    }
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let Ok(table) = table else { return true };
                    if !matches!(table.init, TableInit::RefNull) {
                        return true;
                    }
                    let funcref = table.ty.element_type.is_func_ref();
                    tables.push(funcref.then_some(table.ty.initial));
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader {
                    let Ok(element) = element else { return true };
                    let ElementKind::Active {
                        table_index,
                        offset_expr,
                    } = element.kind
                    else {
                        continue;
                    };
                    let mut offset = offset_expr.get_operators_reader();
                    let start = match (offset.read(), offset.read()) {
                        (Ok(Operator::I32Const { value }), Ok(Operator::End)) => {
                            u64::from(value.cast_unsigned())
                        }
                        (Ok(Operator::I64Const { value }), Ok(Operator::End)) => {
                            value.cast_unsigned()
                        }
                        _ => return true,
                    };
                    let ElementItems::Functions(functions) = element.items else {
                        return true;
                    };
                    let initial = tables
                        .get(table_index.unwrap_or(0) as usize)
                        .copied()
                        .flatten();
                    let lazy = initial.is_some_and(|min| {
                        start
                            .checked_add(u64::from(functions.count()))
                            .is_some_and(|top| top <= min && top <= 1 << 20)
                    });
                    if !lazy {
                        return true;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let Ok(mut ops) = body.get_operators_reader() else {
                    return true;
                };
                while !ops.eof() {
                    match ops.read() {
                        Ok(
                            Operator::CallIndirect { .. }
                            | Operator::ReturnCallIndirect { .. }
                            | Operator::TableGet { .. }
                            | Operator::TableSet { .. }
                            | Operator::TableFill { .. }
                            | Operator::TableCopy { .. }
                            | Operator::TableInit { .. }
                            | Operator::TableGrow { .. },
                        )
                        | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
    false
}

/// Freed slots whose pages are released together, in one batch of system calls.
const DECOMMIT_BATCH: usize = 16;

/// The configuration as `name = value` lines.
pub fn describe(options: &RuntimeOptions, footprint: &Footprint) -> Vec<String> {
    let mut lines = vec![
        format!("allocator = {}", options.allocator),
        "precompiled = true (InstancePre, fresh Store and WASI context per instance)".to_owned(),
        "epoch_interruption = true".to_owned(),
        format!("call_timeout = {} ms", options.call_timeout_ms),
        format!("store memory limit = {} bytes", options.max_memory_bytes),
        format!(
            "output capture limit = {} bytes per stream",
            options.output_limit
        ),
    ];
    if options.allocator.is_pooling() {
        let (slot, basis) = slot_sizing(options, footprint);
        let cap = pool_capacity(options);
        lines.push(format!("pool capacity = {cap} component instances"));
        if cap < options.pool_capacity {
            lines.push(format!(
                "pool capacity capped at {cap}: each slot reserves 4 GiB + guards of address space"
            ));
        }
        lines.push(format!(
            "memory slot = {slot} bytes ({}), max_memory_size = {slot}",
            match basis {
                SlotBasis::Given => "--memory-slot".to_owned(),
                SlotBasis::DeclaredMaximum => "the component's declared memory maximum".to_owned(),
                SlotBasis::Initial => format!(
                    "exactly the {} bytes of initial memory, which the probe run never grew past; a larger slot would cost a memory mapping per live instance",
                    footprint.initial_memory_bytes
                ),
                SlotBasis::Headroom => format!(
                    "headroom: 2 x the {} bytes the probe run reached, at most the store limit",
                    footprint.memory_bytes
                ),
            }
        ));
        if options.allocator == Allocator::Pooling {
            lines.extend([
                format!("memory_reservation = {slot}"),
                "memory_guard_size = 0, guard_before_linear_memory = false, memory_reservation_for_growth = 0".to_owned(),
                "memory_init_cow = false".to_owned(),
            ]);
        } else {
            lines.extend([
                "memory_reservation, memory_guard_size, guard_before_linear_memory = Wasmtime default (4 GiB, 32 MiB, true)".to_owned(),
                "memory_init_cow = true".to_owned(),
            ]);
        }
        lines.extend([
            format!("memories per instance = {}, tables per instance = {}", footprint.memories, footprint.tables),
            format!("table_elements = {}", footprint.table_elements.max(1)),
            format!(
                "linear_memory_keep_resident = {slot}, table_keep_resident = {} ({}), decommit_batch_size = {DECOMMIT_BATCH}",
                table_keep_resident(footprint),
                if footprint.writes_tables {
                    "the component may write its tables"
                } else {
                    "no table write found in the component"
                }
            ),
            "pagemap_scan = auto".to_owned(),
        ]);
    } else {
        lines.push("every other setting = Wasmtime default".to_owned());
    }
    lines
}

fn compile(engine: &Engine, source: &ComponentSource) -> anyhow::Result<Component> {
    Component::new(engine, &source.bytes).map_err(|e| invalid(source, e))
}

fn invalid(source: &ComponentSource, e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: is not a valid component: {}",
        source.label(),
        one_line(&e)
    )
}

/// An error chain on one line. A trap's multi-line wasm backtrace is left
/// out; the function that trapped is named after the cause instead.
pub fn one_line(e: &wasmtime::Error) -> String {
    let backtrace = e.downcast_ref::<wasmtime::WasmBacktrace>();
    let backtrace_text = backtrace.map(|b| b.to_string());
    let mut s = e
        .chain()
        .map(|cause| cause.to_string())
        .filter(|text| Some(text) != backtrace_text.as_ref())
        .map(|text| text.replace('\n', " "))
        .collect::<Vec<_>>()
        .join(": ");
    if let Some(frame) = backtrace.and_then(|b| b.frames().first()) {
        let module = frame.module().name().unwrap_or("<unnamed module>");
        match frame.func_name() {
            Some(f) => s.push_str(&format!(" (in {module}!{f})")),
            None => s.push_str(&format!(
                " (in {module}!<wasm function {}>)",
                frame.func_index()
            )),
        }
    }
    s
}

/// Whether the operating system refused memory (`ENOMEM`) somewhere in the chain.
fn refused_memory(e: &wasmtime::Error) -> bool {
    let enomem = format!("(os error {})", libc::ENOMEM);
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::ENOMEM))
            // Wasmtime reports mmap failures with rustix's errno type, which
            // this crate does not depend on; it prints like io::Error.
            || cause.to_string().ends_with(&enomem)
    })
}

/// What to say after a refused allocation when `RLIMIT_AS` is set.
fn address_space_hint() -> String {
    match crate::measure::os::address_space_limit() {
        Some(limit) => format!(
            "; this process's address space is limited to {} MiB (RLIMIT_AS; `ulimit -v unlimited` lifts it)",
            limit >> 20
        ),
        None => String::new(),
    }
}

fn link_message(e: &wasmtime::Error) -> String {
    let msg = one_line(e);
    if msg.contains("matching implementation was not found in the linker") {
        format!(
            "imports something this host does not provide ({msg}); siteboss links WASI 0.2 \
             (wasi:cli, wasi:io, wasi:clocks, wasi:random, wasi:filesystem, wasi:sockets) only; \
             --stub-missing-imports links the rest as functions that trap, to measure instantiation alone"
        )
    } else {
        msg
    }
}

/// The exported `wasi:http/incoming-handler@0.2.x` instance, if any.
fn find_http_handler(component: &Component) -> Option<String> {
    let engine = component.engine();
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name)
        .find(|name| name.starts_with("wasi:http/incoming-handler@0.2"))
        .map(str::to_owned)
}

/// Finds the `run` function of an exported `wasi:cli/run@0.2.x` instance.
fn find_run(component: &Component) -> Option<ComponentExportIndex> {
    let engine = component.engine();
    let ty = component.component_type();
    let name = ty
        .exports(engine)
        .map(|(name, _)| name)
        .find(|name| name.starts_with("wasi:cli/run@0.2"))?;
    let instance = component.get_export_index(None, name)?;
    component.get_export_index(Some(&instance), "run")
}

/// WASI's tokio runtime: the multi-thread one wasmtime-wasi starts for
/// synchronous embedders, whose worker drives timers and I/O. Entered around
/// every call into a component, so each WASI host call skips the runtime
/// entry and `yield_now` that `wasmtime_wasi::runtime::in_tokio` adds on a
/// thread outside any runtime, and so a component's clock waits never land
/// on a caller's runtime (a current-thread one would not drive their timers
/// from `Handle::block_on`). The epoch ticker runs on it too.
///
/// wasmtime-wasi hands out its runtime only to a thread outside any runtime
/// (`with_ambient_tokio_runtime`); called first from inside one (never, in
/// `siteboss` itself), it is fetched once from a helper thread.
fn wasi_runtime() -> &'static tokio::runtime::Handle {
    use tokio::runtime::Handle;
    static HANDLE: std::sync::OnceLock<Handle> = std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let wasi = || wasmtime_wasi::runtime::with_ambient_tokio_runtime(Handle::current);
        if Handle::try_current().is_err() {
            wasi()
        } else {
            std::thread::scope(|s| s.spawn(wasi).join())
                .expect("cannot reach WASI's tokio runtime from a helper thread")
        }
    })
}

/// Registers `engine` with the one epoch ticker, which advances every live
/// engine's epoch each [`EPOCH_TICK`] and forgets dropped ones. The ticker is
/// a task on WASI's tokio runtime, not a thread of its own: the runtime starts
/// its worker thread for the first WASI call anyway, so a fresh process starts
/// one thread instead of two (and a cold start pays one thread start). It is
/// spawned on [`wasi_runtime`] whatever runtime the caller is in, so it lives
/// as long as the process.
fn start_epoch_ticker(engine: &Engine) {
    use std::sync::{Mutex, OnceLock};
    static ENGINES: OnceLock<Mutex<Vec<wasmtime::EngineWeak>>> = OnceLock::new();
    let mut first = false;
    let engines = ENGINES.get_or_init(|| {
        first = true;
        Mutex::new(Vec::new())
    });
    engines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(engine.weak());
    if first {
        // Dropping the join handle detaches the task.
        drop(wasi_runtime().spawn(async move {
            let mut tick = tokio::time::interval(EPOCH_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // An interval's first tick completes at once: skip it, so that
            // the first epoch advance comes one tick after the start.
            tick.tick().await;
            loop {
                tick.tick().await;
                let mut list = engines.lock().unwrap_or_else(|e| e.into_inner());
                list.retain(|weak| match weak.upgrade() {
                    Some(engine) => {
                        engine.increment_epoch();
                        true
                    }
                    None => false,
                });
            }
        }));
    }
}
