//! The concurrency phase (and throughput) on a machine that runs out: with
//! limits turned low, every stopping reason occurs, is named, and the phase
//! tears everything down and reports, instead of being killed.

mod common;

use common::*;
use siteboss::component::ComponentSource;
use siteboss::engine::{Runtime, RuntimeOptions};
use siteboss::measure::DensityLimits;
use siteboss::measure::density::{fill, fill_all_cores};
use siteboss::model::{Allocator, DensityResult, Limit};
use std::os::unix::process::CommandExt;
use std::path::Path;

/// `benchmark --quick --no-native --phases PHASES --allocator ALLOCATOR
/// ARGS…`, optionally under an `RLIMIT_AS` of `address_space` bytes.
fn run_phases(
    dir: &Path,
    allocator: &str,
    phases: &str,
    extra: &[&str],
    address_space: Option<u64>,
) -> (Outcome, std::path::PathBuf) {
    let json = dir.join("out.json");
    let mut cmd = siteboss_command([
        "benchmark",
        "--embedded",
        "cli",
        "--quick",
        "--no-native",
        "--no-progress",
        "--phases",
        phases,
        "--allocator",
        allocator,
    ]);
    cmd.args(extra).arg("--json").arg(&json);
    if let Some(bytes) = address_space {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between
        // fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    (run_to_end(&mut cmd), json)
}

/// Runs the concurrency phase and returns the density result of its one
/// configuration, after checking the run itself went well.
fn density(allocator: &str, extra: &[&str], address_space: Option<u64>) -> DensityResult {
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = run_phases(dir.path(), allocator, "concurrency", extra, address_space);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_no_panic(&out);
    let r = read_result(&json);
    assert_eq!(r.status, siteboss::model::Status::Complete);
    let c = &r.configurations[0];
    let d = c
        .density
        .clone()
        .unwrap_or_else(|| panic!("no density; skipped: {:?}", c.skipped));
    assert_torn_down(&d);
    assert!(
        out.stdout.contains(d.limit.name()),
        "the report names the limit {:?}:\n{}",
        d.limit.name(),
        out.stdout
    );
    d
}

/// The phase ended by tearing every instance down, and said what stopped it.
fn assert_torn_down(d: &DensityResult) {
    assert!(
        d.teardown_seconds.is_finite() && d.teardown_seconds >= 0.0,
        "{d:?}"
    );
    assert!(!d.detail.is_empty(), "{d:?}");
}

fn meminfo(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = s.lines().find(|l| l.starts_with(key)).unwrap();
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn the_max_instances_cap() {
    let d = density("pooling", &["--max-instances", "300"], None);
    assert_eq!((d.limit, d.instances), (Limit::MaxInstances, 300), "{d:?}");
    assert!(
        d.detail.contains("--max-instances cap of 300"),
        "{}",
        d.detail
    );
    assert_eq!(d.lift.as_deref(), Some("--max-instances N"));
    // The fills' heap: on huge pages unless the host rules them out, and
    // the result says which.
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let strict =
        std::fs::read_to_string("/proc/sys/vm/overcommit_memory").is_ok_and(|s| s.trim() == "2");
    if !(thp.contains("[always]") || thp.contains("[madvise]")) {
        assert!(
            d.heap_pages
                .starts_with("no huge-page region: huge pages are not available; "),
            "{}",
            d.heap_pages
        );
    } else if strict {
        assert!(
            d.heap_pages.contains("vm.overcommit_memory is 2"),
            "{}",
            d.heap_pages
        );
    } else if !d.heap_pages.contains("RLIMIT_AS") && !d.heap_pages.contains("less than 1 GiB") {
        assert!(
            d.heap_pages
                .contains(" GiB region advised MADV_HUGEPAGE (transparent huge pages); "),
            "{}",
            d.heap_pages
        );
    }
}

#[test]
fn the_fills_heap_on_4_kib_pages_when_asked() {
    let d = density(
        "pooling",
        &["--max-instances", "300", "--no-huge-page-heap"],
        None,
    );
    assert_eq!((d.limit, d.instances), (Limit::MaxInstances, 300), "{d:?}");
    assert!(
        d.heap_pages
            .starts_with("no huge-page region: --no-huge-page-heap; "),
        "{}",
        d.heap_pages
    );
}

#[test]
fn the_max_memory_cap() {
    // The child's resident memory with one instance, then a cap 16 MiB above it.
    let one = density("on-demand", &["--max-instances", "1"], None);
    let cap = one.rss_bytes + (16 << 20);
    let d = density(
        "on-demand",
        &[
            "--max-instances",
            "1000000",
            "--max-memory",
            &cap.to_string(),
        ],
        None,
    );
    assert_eq!(d.limit, Limit::MaxMemory, "{d:?}");
    assert!(d.instances > 0, "{d:?}");
    assert!(d.rss_bytes <= cap, "stopped before the cap: {d:?}");
    assert!(d.detail.contains("--max-memory cap"), "{}", d.detail);
}

#[test]
fn the_memory_headroom() {
    // Asking to keep all of RAM available: the margin is reached at once.
    let total = meminfo("MemTotal:");
    let d = density(
        "pooling",
        &[
            "--min-available",
            &total.to_string(),
            "--max-instances",
            "1000",
        ],
        None,
    );
    assert_eq!((d.limit, d.instances), (Limit::MemoryHeadroom, 0), "{d:?}");
    assert!(d.detail.contains("available RAM fell to"), "{}", d.detail);
    assert!(d.lift.as_deref().unwrap().contains("--min-available"));
}

#[test]
fn the_mapping_limit_of_the_on_demand_allocator() {
    let max: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Each on-demand instance adds two mappings; 65530 is reached in ~2 s.
    assert!(
        max <= 262_144,
        "vm.max_map_count = {max} is too high to reach in a test; lower it to run this"
    );
    let d = density(
        "on-demand",
        &["--max-instances", "1000000", "--time-limit", "60"],
        None,
    );
    assert_eq!(d.limit, Limit::MapCount, "{d:?}");
    assert!(d.mappings < max, "stopped before the limit: {d:?}");
    assert!(
        d.lift
            .as_deref()
            .unwrap()
            .contains("sudo sysctl -w vm.max_map_count="),
        "{:?}",
        d.lift
    );
}

#[test]
fn the_address_space_limit_with_on_demand_instances() {
    // Each on-demand instance reserves about 4 GiB of address space.
    let d = density("on-demand", &["--max-instances", "1000"], Some(16 << 30));
    assert_eq!(d.limit, Limit::AddressSpace, "{d:?}");
    assert!(d.instances >= 1, "{d:?}");
    assert!(
        d.detail.contains("near RLIMIT_AS = 16384 MiB"),
        "{}",
        d.detail
    );
    assert_eq!(d.lift.as_deref(), Some("ulimit -v unlimited (RLIMIT_AS)"));
    // No huge-page heap region under an address-space limit: it would take
    // the address space the fill is limited by.
    assert!(
        d.heap_pages
            .starts_with("no huge-page region: RLIMIT_AS is set (16384 MiB)"),
        "{}",
        d.heap_pages
    );
}

#[test]
fn the_address_space_limit_with_a_pool_too_large_for_it() {
    // 70,001 slots of 64 KiB do not fit in 5 GiB beside the rest; the pool is
    // halved until it does and the phase names the address space.
    let d = density("pooling", &["--max-instances", "70000"], Some(5 << 30));
    assert_eq!(d.limit, Limit::AddressSpace, "{d:?}");
    assert!(d.instances > 0 && d.instances < 70_000, "{d:?}");
    assert!(d.detail.contains("the pool was sized down"), "{}", d.detail);
    // The all-cores fill, in a process of its own, sizes its pool down
    // as the first did, and fits where the first did.
    let all = d.all_cores.as_ref().expect("an all-cores fill");
    assert!(all.own_process, "{all:?}");
    assert!(
        all.instances == d.instances || all.limit == Some(Limit::AddressSpace),
        "{all:?} against {}",
        d.instances
    );
}

#[test]
fn an_address_space_too_small_for_throughput_and_for_any_instance() {
    // 8 GiB: one on-demand instance fits, two threads' instances do not.
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = run_phases(
        dir.path(),
        "on-demand",
        "throughput,concurrency",
        &[],
        Some(8 << 30),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_no_panic(&out);
    let r = read_result(&json);
    let c = &r.configurations[0];
    let reasons: Vec<&str> = c
        .skipped
        .iter()
        .filter(|s| s.phase == "throughput")
        .map(|s| s.reason.as_str())
        .collect();
    assert_eq!(reasons.len(), 1, "{:?}", c.skipped);
    assert!(
        reasons[0].starts_with("the system refused memory: ")
            && reasons[0].contains("limited to 8192 MiB (RLIMIT_AS"),
        "{}",
        reasons[0]
    );
    assert_eq!(c.density.as_ref().unwrap().limit, Limit::AddressSpace);

    // 2 GiB: not even the probe's one instance fits; one line says why.
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = run_phases(dir.path(), "on-demand", "concurrency", &[], Some(2 << 30));
    assert_could_not_run(
        &out,
        &json,
        &[
            "embedded hello: cannot be instantiated: the system refused memory",
            "limited to 2048 MiB (RLIMIT_AS; `ulimit -v unlimited` lifts it)",
        ],
    );
}

#[test]
fn the_copy_on_write_pool_is_sized_to_the_address_space_it_may_use() {
    // 128 GiB of address space: a 1,000-slot pool of 4 GiB reservations
    // does not fit (every phase of the profile failed to build its engine),
    // 15 slots do. The memory phase keeps the points its pool can hold and
    // says why it cut the others.
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = run_phases(
        dir.path(),
        "pooling-cow",
        "warm-start,memory",
        &[],
        Some(128 << 30),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_no_panic(&out);
    let r = read_result(&json);
    let c = &r.configurations[0];
    assert!(
        c.skipped
            .iter()
            .all(|s| s.reason == "not selected (--phases)"),
        "{:?}",
        c.skipped
    );
    assert!(c.warm_start.as_ref().is_some_and(|w| w.median > 0.0));
    let m = c.memory.as_ref().expect("a memory result");
    let measured: Vec<usize> = m.points.iter().map(|p| p.instances).collect();
    assert_eq!(measured, [1, 10], "{m:?}");
    assert!(!m.cut.is_empty());
    for cut in &m.cut {
        assert_eq!(
            cut.limit,
            siteboss::model::CutLimit::PoolCapacity { slots: 15 },
            "{cut:?}"
        );
        assert!(cut.reason.starts_with("pool capacity: "), "{}", cut.reason);
    }
    assert!(
        c.config
            .iter()
            .any(|l| l.starts_with("pool capacity at most 15 slots")),
        "{:?}",
        c.config
    );
}

#[test]
fn the_time_limit() {
    let d = density(
        "pooling",
        &["--max-instances", "100000", "--time-limit", "0.05"],
        None,
    );
    assert_eq!(d.limit, Limit::TimeLimit, "{d:?}");
    assert!(d.instances < 100_000, "{d:?}");
    assert!(d.detail.contains("0.05 s time limit"), "{}", d.detail);
}

/// Limits that stop nothing before the pool does.
fn roomy(max_instances: u64) -> DensityLimits {
    DensityLimits {
        max_instances,
        max_memory_bytes: u64::MAX,
        min_available_bytes: 0,
        time_limit_seconds: 60.0,
        huge_page_heap: true,
    }
}

#[test]
fn the_pool_capacity() {
    let source = ComponentSource::embedded();
    let options = RuntimeOptions {
        pool_capacity: 5,
        ..RuntimeOptions::new(Allocator::Pooling)
    };
    let (footprint, _) = Runtime::probe(&source, &options).unwrap();
    let rt = Runtime::compile(&source, &options, footprint).unwrap();
    let (d, growth) = fill(&rt, &roomy(100));
    assert_eq!((d.limit, d.instances), (Limit::PoolCapacity, 5), "{d:?}");
    assert_eq!(growth.n, 5);
    assert_torn_down(&d);
    assert!(
        d.lift
            .as_deref()
            .unwrap()
            .contains("--max-instances above 5"),
        "{:?}",
        d.lift
    );
    // Torn down: every slot is free again.
    let (again, _) = fill(&rt, &roomy(100));
    assert_eq!(again.instances, 5, "{again:?}");
    // The all-cores fill, in a runtime of its own, makes the first fill's
    // count with two threads sharing its pool, names nothing when it gets
    // there, and records what it was told of the runtime.
    let fresh = Runtime::compile(&source, &options, footprint).unwrap();
    let all = fill_all_cores(&fresh, 2, &roomy(100), &growth, true);
    assert_eq!(
        (all.threads, all.instances, all.limit, all.own_process),
        (2, 5, None, true),
        "{all:?}"
    );
    // One instance more than the pool holds: the pool is named.
    let more = fill_all_cores(
        &fresh,
        2,
        &roomy(100),
        &siteboss::measure::Growth { n: 6, ..growth },
        false,
    );
    assert_eq!(
        (more.instances, more.limit, more.own_process),
        (5, Some(Limit::PoolCapacity), false),
        "{more:?}"
    );
}

#[test]
fn an_instantiation_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "start-traps.wasm", START_TRAPS);
    let source = ComponentSource::from_path(&path).unwrap();
    for allocator in Allocator::ALL {
        let options = RuntimeOptions::new(allocator);
        let footprint = siteboss::engine::Footprint {
            memories: 0,
            memory_bytes: 0,
            tables: 0,
            table_elements: 0,
            has_run: false,
            http: false,
            core_instances: 1,
            declared_max_bytes: None,
            initial_memory_bytes: 0,
            writes_tables: false,
        };
        let rt = Runtime::compile(&source, &options, footprint).unwrap();
        let (d, _) = fill(&rt, &roomy(100));
        assert_eq!(
            (d.limit, d.instances),
            (Limit::InstantiationError, 0),
            "{allocator}: {d:?}"
        );
        assert!(d.detail.contains("unreachable"), "{}", d.detail);
        assert_torn_down(&d);
    }
}
