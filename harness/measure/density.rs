//! Maximum concurrent live instances: keep creating instances until a limit
//! is near, name the limit, then tear everything down.
//!
//! The phase runs in a child process and stops itself *before* the kernel,
//! the allocator or the OOM killer would stop it: at map exhaustion even
//! malloc fails, so the margins below leave room for the reply to be written.

use super::child::{self, Reply, Request, Task};
use super::{DensityLimits, Growth, Subject, os};
use crate::component::ComponentSource;
use crate::engine::{InstanceError, Live, Runtime};
use crate::model::{AllCoresFill, DensityResult, FillPoint, Limit};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Mappings kept free below `vm.max_map_count` for the allocator and the reply.
const MAP_MARGIN: u64 = 2048;
/// Address space kept free below `RLIMIT_AS`.
const ADDRESS_MARGIN: u64 = 256 << 20;
/// Resident memory kept free below `--max-memory`: the heap grows in steps
/// (mimalloc faults in a fresh page of blocks at a time), so one instance can
/// add several times the average growth; a cap was passed by 20 KiB with a
/// margin of two instances' average alone.
const RSS_MARGIN: u64 = 256 << 10;
/// Instances between two readings of the limits, at most.
const MAX_STRIDE: u64 = 1024;
/// How often the all-cores fill reads the limits.
const MONITOR_EVERY: Duration = Duration::from_millis(10);

/// Loads the runtime from `artifact` for a fill.
///
/// Under `RLIMIT_AS` a pool with a slot for every instance up to
/// `--max-instances` may not fit in the address space, or fit without
/// leaving the margin the phase stops at. The pool is then halved until it
/// does; the second value says whether it was.
fn load_fitting(
    source: &ComponentSource,
    request: &Request,
    artifact: &[u8],
) -> anyhow::Result<(Runtime, bool)> {
    let mut options = request.options.clone();
    let as_limit = os::address_space_limit();
    let mut shrunk = false;
    loop {
        let can_shrink =
            as_limit.is_some() && options.allocator.is_pooling() && options.pool_capacity > 1;
        match Runtime::deserialize(artifact, source, &options, request.footprint) {
            Ok(rt)
                if !can_shrink || {
                    warm_up(&rt);
                    // Twice the margin the filling stops at, so that filling
                    // has room to start.
                    as_limit.is_some_and(|a| os::virtual_bytes() + 2 * ADDRESS_MARGIN < a)
                } =>
            {
                return Ok((rt, shrunk));
            }
            // Loaded, but the pool leaves no margin: drop it and halve.
            Ok(_) => {}
            Err(e) if !can_shrink => return Err(e),
            Err(_) => {}
        }
        shrunk = true;
        options.pool_capacity /= 2;
    }
}

/// The child's side of the one-thread fill: loads the runtime from
/// `artifact` (see [`load_fitting`]), fills until a limit, then tears down.
/// When a pool sized down under `RLIMIT_AS` fills, the phase names the
/// address-space limit.
///
/// # Errors
///
/// Fails when the artifact does not load into any pool that fits.
pub fn serve(
    source: &ComponentSource,
    request: &Request,
    artifact: &[u8],
    limits: &DensityLimits,
) -> anyhow::Result<(DensityResult, Growth)> {
    let (rt, shrunk) = load_fitting(source, request, artifact)?;
    let heap_pages = prepare_heap(limits);
    let (mut result, growth) = fill(&rt, limits);
    result.heap_pages = heap_pages;
    if shrunk && result.limit == Limit::PoolCapacity {
        result.limit = Limit::AddressSpace;
        result.lift = lift(Limit::AddressSpace, None, &rt);
        result.detail = shrunk_pool_full(&rt);
    }
    Ok((result, growth))
}

/// Why a fill stopped when every slot of a pool [`load_fitting`] sized down
/// was in use: the address space, not the pool.
fn shrunk_pool_full(rt: &Runtime) -> String {
    format!(
        "the pool was sized down to {} slots, the most that fit in RLIMIT_AS = {} MiB with its margin, and every slot was in use",
        rt.options().pool_capacity,
        os::address_space_limit().unwrap_or(0) >> 20
    )
}

/// The child's side of the all-cores fill, in a process of its own: loads
/// the runtime as [`serve`] does and fills `growth.n` instances with one
/// thread per core (see [`fill_all_cores`]).
///
/// # Errors
///
/// Fails when the artifact does not load into any pool that fits.
pub fn serve_all_cores(
    source: &ComponentSource,
    request: &Request,
    artifact: &[u8],
    limits: &DensityLimits,
    growth: &Growth,
) -> anyhow::Result<AllCoresFill> {
    let (rt, shrunk) = load_fitting(source, request, artifact)?;
    // As the first fill's process did, so the two fills stay like for like.
    prepare_heap(limits);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut all = fill_all_cores(&rt, threads, limits, growth, true);
    if shrunk && all.limit == Some(Limit::PoolCapacity) {
        all.limit = Some(Limit::AddressSpace);
        all.detail = shrunk_pool_full(&rt);
    }
    Ok(all)
}

/// The most address space a fill's huge-page heap region takes.
const HUGE_PAGE_HEAP_MOST: u64 = 64 << 30;

/// Before a fill, when `limits` ask for it: gives this process's heap a
/// region advised for transparent huge pages, as large as the RAM available
/// (whole GiB, at most [`HUGE_PAGE_HEAP_MOST`]), so each store, instance and
/// WASI context of the fill lands on 2 MiB pages, faulted in 512 times less
/// often. Says which pages the heap is on and why. Measured on the AMD
/// runner side by side (README, "The production configuration"): a million
/// instances filled in x0.67 the time on one thread and x0.82 on two, for
/// 0.1% more resident memory per instance.
fn prepare_heap(limits: &DensityLimits) -> String {
    let mode = thp_mode();
    // What the rest of the process's heap is on, whatever this does.
    let others = match mode.as_deref() {
        Some("always") => "with THP `always` the kernel may back any of the heap with huge pages",
        Some("never") => "THP is `never` on this host",
        Some("madvise") => {
            "the rest of the heap, and the other phases', on 4 KiB pages (THP `madvise`)"
        }
        _ => "the host's THP mode could not be read",
    };
    let none = |why: String| format!("no huge-page region: {why}; {others}");
    if !limits.huge_page_heap {
        return none("--no-huge-page-heap".into());
    }
    if let Some(limit) = os::address_space_limit() {
        return none(format!(
            "RLIMIT_AS is set ({} MiB), and the region would take the address space the fill is limited by",
            limit >> 20
        ));
    }
    if !matches!(mode.as_deref(), Some("always" | "madvise")) {
        return none("huge pages are not available".into());
    }
    // Under strict overcommit MAP_NORESERVE is ignored and the region would
    // be charged in full against the commit limit the fill may meet.
    if crate::fingerprint::read_proc_u64("/proc/sys/vm/overcommit_memory") == Some(2) {
        return none("vm.overcommit_memory is 2, which would charge the whole region".into());
    }
    let Some(available) = os::available_bytes() else {
        return none("MemAvailable cannot be read".into());
    };
    let bytes = (available & !((1 << 30) - 1)).min(HUGE_PAGE_HEAP_MOST);
    if bytes == 0 {
        return none("less than 1 GiB of RAM available".into());
    }
    match usize::try_from(bytes)
        .map_err(|e| e.to_string())
        .and_then(crate::heap::huge_page_arena)
    {
        Ok(()) => format!(
            "a {} GiB region advised MADV_HUGEPAGE (transparent huge pages); {others}",
            bytes >> 30
        ),
        Err(e) => none(e),
    }
}

/// The host's transparent huge page mode: the bracketed word of
/// `/sys/kernel/mm/transparent_hugepage/enabled` (`always`, `madvise` or
/// `never`).
fn thp_mode() -> Option<String> {
    let s = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok()?;
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(s[start..end].to_owned())
}

/// Creates, runs and drops one instance, so that state the runtime sets up
/// once (WASI's runtime and its threads) is in the first reading rather
/// than projected as growth per instance. A failure is left for the caller
/// to meet again.
fn warm_up(rt: &Runtime) {
    let _ = rt.instantiate().and_then(|mut live| {
        if rt.has_run() {
            rt.run(&mut live)?;
        }
        Ok(())
    });
}

/// The child's side: fills with one thread until a limit, then tears down.
/// Returns the result (without the all-cores fill) and what the fill added
/// to the process, for [`fill_all_cores`].
pub fn fill(rt: &Runtime, limits: &DensityLimits) -> (DensityResult, Growth) {
    warm_up(rt);
    let started = Instant::now();
    let available_start = os::available_bytes().unwrap_or(0);
    let max_maps = super::super::fingerprint::read_proc_u64("/proc/sys/vm/max_map_count");
    let as_limit = os::address_space_limit();
    let rss_start = os::rss_bytes();
    let maps_start = os::mapping_count();
    let vsize_start = os::virtual_bytes();
    let mut live: Vec<Live> = Vec::new();
    let _ = live.try_reserve(usize::try_from(limits.max_instances.min(4 << 20)).unwrap_or(0));

    let mut trace = Trace::default();
    let mut next_check = 0u64;
    let mut last = Growth {
        n: 0,
        rss: rss_start,
        maps: maps_start,
        vsize: vsize_start,
    };
    let (limit, detail) = loop {
        let n = live.len() as u64;
        // Read at every instance: a stride of /proc readings can outlast the
        // time limit when instances get slow.
        if started.elapsed().as_secs_f64() >= limits.time_limit_seconds {
            break (Limit::TimeLimit, time_limit_detail(limits));
        }
        if n >= limits.max_instances {
            break (
                Limit::MaxInstances,
                format!(
                    "reached the --max-instances cap of {}",
                    limits.max_instances
                ),
            );
        }
        if n >= next_check {
            let now = Growth {
                n,
                rss: os::rss_bytes(),
                maps: os::mapping_count(),
                vsize: os::virtual_bytes(),
            };
            trace.record(started, n, now.rss);
            let available = os::available_bytes().unwrap_or(u64::MAX);
            // Growth per instance since the last reading, to project the next stride.
            let per = |a: u64, b: u64| {
                if now.n > last.n {
                    b.saturating_sub(a) as f64 / (now.n - last.n) as f64
                } else {
                    0.0
                }
            };
            // Resident growth is lumpy over a short stride (freed heap is
            // reused, then a fresh page is faulted in): never project less
            // than the fill's average so far.
            let average = if n > 0 {
                now.rss.saturating_sub(rss_start) as f64 / n as f64
            } else {
                0.0
            };
            let (rss_per, maps_per, vsize_per) = (
                per(last.rss, now.rss).max(average),
                per(last.maps, now.maps),
                per(last.vsize, now.vsize),
            );
            // Never more instances than exist already: the first readings
            // come after 1, 2, 4, … instances, so the growth per instance is
            // known before a large stride is projected from it.
            let mut stride = MAX_STRIDE.min(n.max(1));
            let mut room = |left: u64, per: f64| {
                if per > 0.0 {
                    stride = stride.min(((left as f64 / per) / 2.0) as u64);
                }
            };
            let checks: [(bool, Limit, String); 4] = [
                (
                    now.rss
                        .saturating_add((2.0 * rss_per) as u64)
                        .saturating_add(RSS_MARGIN)
                        >= limits.max_memory_bytes,
                    Limit::MaxMemory,
                    format!(
                        "resident memory {} MiB came within two instances and 256 KiB of the --max-memory cap of {} MiB",
                        now.rss >> 20,
                        limits.max_memory_bytes >> 20
                    ),
                ),
                (
                    available
                        <= limits
                            .min_available_bytes
                            .saturating_add((2.0 * rss_per) as u64),
                    Limit::MemoryHeadroom,
                    format!(
                        "available RAM fell to {} MiB, the safety margin of {} MiB",
                        available >> 20,
                        limits.min_available_bytes >> 20
                    ),
                ),
                (
                    max_maps.is_some_and(|m| {
                        now.maps.saturating_add((2.0 * maps_per) as u64) + MAP_MARGIN >= m
                    }),
                    Limit::MapCount,
                    format!(
                        "{} memory mappings, within {MAP_MARGIN} of vm.max_map_count = {}",
                        now.maps,
                        max_maps.unwrap_or(0)
                    ),
                ),
                (
                    as_limit.is_some_and(|a| {
                        now.vsize.saturating_add((2.0 * vsize_per) as u64) + ADDRESS_MARGIN >= a
                    }),
                    Limit::AddressSpace,
                    format!(
                        "{} MiB of address space and {} MiB more per instance, near RLIMIT_AS = {} MiB",
                        now.vsize >> 20,
                        (vsize_per as u64) >> 20,
                        as_limit.unwrap_or(0) >> 20
                    ),
                ),
            ];
            if let Some((_, limit, detail)) = checks.into_iter().find(|c| c.0) {
                break (limit, detail);
            }
            room(
                limits
                    .max_memory_bytes
                    .saturating_sub(now.rss.saturating_add(RSS_MARGIN)),
                rss_per,
            );
            room(
                available.saturating_sub(limits.min_available_bytes),
                rss_per,
            );
            if let Some(m) = max_maps {
                room(m.saturating_sub(now.maps + MAP_MARGIN), maps_per);
            }
            if let Some(a) = as_limit {
                room(a.saturating_sub(now.vsize + ADDRESS_MARGIN), vsize_per);
            }
            next_check = n + stride.max(1);
            last = now;
        }
        match make(rt) {
            Ok(l) => live.push(l),
            Err(InstanceError::PoolFull(msg)) => break (Limit::PoolCapacity, msg),
            // The kernel refused memory before a reading predicted it (an
            // instance can need more than the margins): name the limit that
            // the process is at, if it is at one.
            Err(e @ InstanceError::OutOfMemory(_)) => {
                let maps = os::mapping_count();
                let vsize = os::virtual_bytes();
                break if max_maps.is_some_and(|m| maps + MAP_MARGIN >= m) {
                    (
                        Limit::MapCount,
                        format!(
                            "{maps} memory mappings, near vm.max_map_count = {}: {e}",
                            max_maps.unwrap_or(0)
                        ),
                    )
                } else if let Some(a) = as_limit {
                    (
                        Limit::AddressSpace,
                        format!(
                            "{} MiB of address space, near RLIMIT_AS = {} MiB: {e}",
                            vsize >> 20,
                            a >> 20
                        ),
                    )
                } else {
                    (Limit::InstantiationError, e.to_string())
                };
            }
            Err(e) => break (Limit::InstantiationError, e.to_string()),
        }
    };
    let fill_seconds = started.elapsed().as_secs_f64();
    let instances = live.len() as u64;
    let rss = os::rss_bytes();
    trace.stop(fill_seconds, instances, rss);
    let maps = os::mapping_count();
    let vsize = os::virtual_bytes();
    let t = Instant::now();
    drop(live);
    let teardown_seconds = t.elapsed().as_secs_f64();
    let bytes_per_instance = if instances > 0 {
        rss.saturating_sub(rss_start) as f64 / instances as f64
    } else {
        0.0
    };
    let growth = Growth {
        n: instances,
        rss: rss.saturating_sub(rss_start),
        maps: maps.saturating_sub(maps_start),
        vsize: vsize.saturating_sub(vsize_start),
    };
    let result = DensityResult {
        instances,
        limit,
        lift: lift(limit, max_maps, rt),
        detail,
        rss_bytes: rss,
        mappings: maps,
        bytes_per_instance,
        available_bytes: available_start,
        machine_estimate: if bytes_per_instance > 0.0 {
            (available_start as f64 / bytes_per_instance) as u64
        } else {
            0
        },
        fill_seconds,
        teardown_seconds,
        all_cores: None,
        heap_pages: String::new(),
        trace: trace.points,
    };
    (result, growth)
}

/// The fill's readings, kept small: each reading at a power-of-two count of
/// instances, and otherwise at most one per [`Trace::EVERY`] seconds (a
/// minute's phase keeps about 600 points).
#[derive(Default)]
struct Trace {
    points: Vec<FillPoint>,
}

impl Trace {
    const EVERY: f64 = 0.1;

    fn record(&mut self, started: Instant, n: u64, rss: u64) {
        let seconds = started.elapsed().as_secs_f64();
        let due = self
            .points
            .last()
            .is_none_or(|p| n.is_power_of_two() || seconds - p.seconds >= Self::EVERY);
        if due {
            self.points.push(FillPoint {
                seconds,
                instances: n,
                rss_bytes: rss,
            });
        }
    }

    /// The stop, always the last point.
    fn stop(&mut self, seconds: f64, n: u64, rss: u64) {
        self.points.push(FillPoint {
            seconds,
            instances: n,
            rss_bytes: rss,
        });
    }
}

/// Creates an instance and runs it, as a live instance of a host would be.
fn make(rt: &Runtime) -> Result<Live, InstanceError> {
    rt.instantiate().and_then(|mut l| {
        if rt.has_run() {
            rt.run(&mut l)?;
        }
        Ok(l)
    })
}

fn time_limit_detail(limits: &DensityLimits) -> String {
    format!("reached the {} s time limit", limits.time_limit_seconds)
}

/// The second fill: `growth.n` instances again (the first fill's count), made
/// in `rt` by `threads` threads at once, each keeping its own, then dropped
/// by the same threads at once. `growth` is what the first fill added to the
/// process in all; this fill stops early if the same growth per instance
/// would cross a limit before the next reading, or at the time limit.
/// `own_process` says whether this process was started for it (recorded
/// as is).
pub fn fill_all_cores(
    rt: &Runtime,
    threads: usize,
    limits: &DensityLimits,
    growth: &Growth,
    own_process: bool,
) -> AllCoresFill {
    warm_up(rt);
    let rss_start = os::rss_bytes();
    let threads = threads.max(1);
    let max_maps = super::super::fingerprint::read_proc_u64("/proc/sys/vm/max_map_count");
    let as_limit = os::address_space_limit();
    let target = growth.n;
    let per = |total: u64| total as f64 / target as f64;
    let (rss_per, maps_per, vsize_per) = (per(growth.rss), per(growth.maps), per(growth.vsize));
    let claimed = AtomicU64::new(0);
    let made = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let filled = AtomicUsize::new(0);
    let failure: Mutex<Option<(Limit, String)>> = Mutex::new(None);
    let teardown = Barrier::new(threads + 1);
    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    let _ =
                        mine.try_reserve(usize::try_from(target / threads as u64 + 1).unwrap_or(0));
                    while !stop.load(Ordering::Relaxed)
                        && claimed.fetch_add(1, Ordering::Relaxed) < target
                    {
                        match make(rt) {
                            Ok(l) => {
                                mine.push(l);
                                made.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                let limit = match e {
                                    InstanceError::PoolFull(_) => Limit::PoolCapacity,
                                    _ => Limit::InstantiationError,
                                };
                                let mut first = failure.lock().unwrap_or_else(|p| p.into_inner());
                                first.get_or_insert((limit, e.to_string()));
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    let filled_at = Instant::now();
                    filled.fetch_add(1, Ordering::Release);
                    teardown.wait();
                    drop(mine);
                    (filled_at, Instant::now())
                })
            })
            .collect();
        // Read the limits while the workers fill, projecting one more
        // interval of growth at the rate the instances are being made.
        let mut last_made = 0u64;
        while filled.load(Ordering::Acquire) < threads {
            std::thread::sleep(MONITOR_EVERY);
            let n = made.load(Ordering::Relaxed);
            let next = 2.0 * (n - last_made).max(1) as f64;
            last_made = n;
            let hit = if started.elapsed().as_secs_f64() >= limits.time_limit_seconds {
                Some((Limit::TimeLimit, time_limit_detail(limits)))
            } else {
                let rss = os::rss_bytes();
                let available = os::available_bytes().unwrap_or(u64::MAX);
                if rss
                    .saturating_add((next * rss_per) as u64)
                    .saturating_add(RSS_MARGIN)
                    >= limits.max_memory_bytes
                {
                    Some((
                        Limit::MaxMemory,
                        format!(
                            "resident memory {} MiB neared the --max-memory cap",
                            rss >> 20
                        ),
                    ))
                } else if available
                    <= limits
                        .min_available_bytes
                        .saturating_add((next * rss_per) as u64)
                {
                    Some((
                        Limit::MemoryHeadroom,
                        format!(
                            "available RAM fell to {} MiB, near the safety margin",
                            available >> 20
                        ),
                    ))
                } else if max_maps.is_some_and(|m| {
                    maps_per > 0.0
                        && os::mapping_count() + (next * maps_per) as u64 + MAP_MARGIN >= m
                }) {
                    Some((
                        Limit::MapCount,
                        "memory mappings neared vm.max_map_count".to_owned(),
                    ))
                } else if as_limit.is_some_and(|a| {
                    os::virtual_bytes() + (next * vsize_per) as u64 + ADDRESS_MARGIN >= a
                }) {
                    Some((
                        Limit::AddressSpace,
                        "address space neared RLIMIT_AS".to_owned(),
                    ))
                } else {
                    None
                }
            };
            if let Some(hit) = hit {
                failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(hit);
                stop.store(true, Ordering::Relaxed);
            }
        }
        let instances = made.load(Ordering::Relaxed);
        let rss_filled = os::rss_bytes();
        teardown.wait();
        let teardown_started = Instant::now();
        let ends: Vec<(Instant, Instant)> = workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        let last_filled = ends.iter().map(|e| e.0).max().unwrap_or(started);
        let last_dropped = ends.iter().map(|e| e.1).max().unwrap_or(teardown_started);
        let stopped = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        AllCoresFill {
            threads,
            own_process,
            bytes_per_instance: (instances > 0)
                .then(|| rss_filled.saturating_sub(rss_start) as f64 / instances as f64),
            instances,
            detail: stopped.as_ref().map(|s| s.1.clone()).unwrap_or_default(),
            limit: stopped.map(|s| s.0),
            fill_seconds: (last_filled - started).as_secs_f64(),
            teardown_seconds: (last_dropped - teardown_started).as_secs_f64(),
        }
    })
}

/// The exact setting that lifts `limit`, when a setting is what stopped it.
fn lift(limit: Limit, max_maps: Option<u64>, rt: &Runtime) -> Option<String> {
    match limit {
        Limit::MapCount => Some(format!(
            "sudo sysctl -w vm.max_map_count={} (now {}); or use the pooling allocator, which adds no mapping per instance",
            max_maps.unwrap_or(65530).saturating_mul(16),
            max_maps.unwrap_or(65530)
        )),
        Limit::AddressSpace => Some("ulimit -v unlimited (RLIMIT_AS)".into()),
        Limit::PoolCapacity => {
            // The pool the engine got: the one asked for, within the
            // profile's cap.
            let most = crate::engine::max_pool_capacity(rt.options().allocator);
            let slots = rt.options().pool_capacity.min(most);
            Some(if slots < most {
                format!("a larger pool: --max-instances above {slots}")
            } else {
                format!(
                    "the pooling profile, whose slots reserve only their memory: this profile's pool holds at most {most} slots of 4 GiB in the address space this process may use"
                )
            })
        }
        Limit::MaxInstances => Some("--max-instances N".into()),
        Limit::MaxMemory => Some("--max-memory BYTES".into()),
        Limit::TimeLimit => Some("--time-limit SECONDS".into()),
        Limit::MemoryHeadroom => {
            Some("--min-available BYTES (lowers the safety margin; the OOM killer is next)".into())
        }
        Limit::InstantiationError | Limit::Interrupted => None,
    }
}

/// Runs the concurrency phase: the one-thread fill in a child process,
/// then the all-cores fill of as many instances in another.
///
/// Each fill has a process of its own so that both start cold: a pool's
/// freed slots keep their dirtied pages resident
/// (`linear_memory_keep_resident`), and the heap keeps the pages it freed,
/// so a second fill in the first one's process would skip most of the
/// first-touch faults the first fill paid, and the two would not be like
/// for like.
///
/// # Errors
///
/// Fails when the first child fails or is killed; a failed second child is
/// recorded as the all-cores fill's limit.
pub fn density(
    exe: &Path,
    subject: &Subject,
    limits: &DensityLimits,
    dir: &Path,
) -> anyhow::Result<DensityResult> {
    let mut request = Request {
        component: subject.source.path.clone(),
        embedded: subject.source.embedded,
        // One slot more than the cap, so the cap and not the pool is what stops.
        options: subject.options_with_capacity(
            limits
                .max_instances
                .saturating_add(1)
                .min(u64::from(u32::MAX)),
        ),
        footprint: subject.footprint,
        reply: dir.join("density.reply.json"),
        task: Task::Density {
            artifact: subject.artifact.clone(),
            limits: *limits,
        },
    };
    // Each fill is capped by the time limit; its teardown and start-up get
    // a minute more.
    let timeout = Duration::from_secs_f64(limits.time_limit_seconds + 60.0);
    let (mut result, growth) = match child::spawn(exe, &request, dir, timeout)?.0 {
        Reply::Density { result, growth } => (result, growth),
        _ => anyhow::bail!("a density child gave the wrong kind of reply"),
    };
    if growth.n == 0 {
        return Ok(result);
    }
    request.task = Task::AllCores {
        artifact: subject.artifact.clone(),
        limits: *limits,
        growth,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    result.all_cores = Some(match child::spawn(exe, &request, dir, timeout) {
        Ok((Reply::AllCores(a), _)) => a,
        Ok(_) => anyhow::bail!("an all-cores fill child gave the wrong kind of reply"),
        Err(e) => AllCoresFill {
            threads,
            own_process: true,
            instances: 0,
            limit: Some(Limit::InstantiationError),
            detail: format!("its process failed: {e:#}"),
            fill_seconds: 0.0,
            teardown_seconds: 0.0,
            bytes_per_instance: None,
        },
    });
    Ok(result)
}
