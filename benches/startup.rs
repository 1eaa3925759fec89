//! Criterion benches of component start-up, driven by the same harness code
//! as the `siteboss` CLI: every engine, runtime and artifact comes from
//! `siteboss::engine` and `siteboss::measure`, so nothing about the Wasmtime
//! configuration is written here.
//!
//! The embedded hello component is prepared once per allocator (probe, then a
//! precompiled artifact in a temporary directory); that setup is never timed.
//! Pools have the CLI's latency-phase capacity (`measure::LATENCY_POOL_CAPACITY`).
//! The configurations come from [`Allocator::ALL`], and each allocator's name
//! is the last part of the benchmark id.
//!
//! | group | ids | what one iteration times |
//! | --- | --- | --- |
//! | `cold` | `cold/source/{alloc}`, `cold/artifact/{alloc}` | [`cold::once`]: a fresh engine, Cranelift compile of the `.wasm` (or reading and deserializing the precompiled artifact), linking WASI, `instantiate_pre`, the first instantiation and the first `run`; summed from each cold start's own `total`, so dropping the engine is not counted |
//! | `deserialize` | `deserialize/{alloc}` | [`Runtime::load`] from the artifact's bytes into an engine made beforehand, untimed. Besides `Component::deserialize` this links WASI, builds `InstancePre` and registers the engine with the epoch ticker (a task on WASI's tokio runtime, started by the first load), because that is the smallest step the library exposes |
//! | `warm` | `warm/{alloc}` | [`Runtime::instantiate`]: `Store::new`, a fresh WASI context and `InstancePre::instantiate`; the returned instance is dropped outside the timed region |
//! | `lifecycle` | `lifecycle/{alloc}` | [`Runtime::lifecycle`]: instantiate, `wasi:cli/run`, drop |
//! | `parallel` | `parallel/{alloc}/{N}-threads` | one lifecycle on the timed thread while N−1 background threads run lifecycles in a loop on the same runtime, as Wasmtime's own instantiation bench does; N is the number of cores, at least 2. The figure is latency under contention, not the CLI's all-thread throughput |
//!
//! `{alloc}` is `pooling` or `on-demand`.
//!
//! Run everything with `cargo bench` (about 70 s on a 2-core machine once
//! built), or one group with a filter such as `cargo bench -- warm/`.
//!
//! The short mode is `cargo bench -- --quick`: criterion's quick mode, with no
//! warm-up, where each bench doubles its iteration count until two successive
//! runs agree within 5% (after at least 100 ms) or its measurement time (3 s,
//! 5 s for `cold`) is used up. It takes 3 to 20 s on a 2-core machine once
//! built. Its figures rest on two runs per bench: a smoke check, not figures
//! to quote.

use criterion::{BenchmarkId, Criterion, SamplingMode};
use siteboss::component::ComponentSource;
use siteboss::engine::{Load, Runtime, RuntimeOptions, new_engine};
use siteboss::measure::{LATENCY_POOL_CAPACITY, Subject, cold, warm};
use siteboss::model::Allocator;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The same heap as the `siteboss` binary (mimalloc, or glibc's malloc with
/// `SITEBOSS_MALLOC=system`), so the benches time what the CLI runs.
#[global_allocator]
static HEAP: siteboss::heap::Heap = siteboss::heap::Heap;

/// One allocator's prepared component and the runtime the warm groups share.
struct Config {
    allocator: Allocator,
    subject: Subject,
    /// The options the runtime was built with (pool capacity included).
    options: RuntimeOptions,
    runtime: Runtime,
}

/// Every configuration, prepared once; the temporary directory holds the artifacts.
struct Fixture {
    configs: Vec<Config>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn prepare() -> anyhow::Result<Self> {
        let dir = tempfile::TempDir::new()?;
        let capacity = u64::from(LATENCY_POOL_CAPACITY);
        let configs = Allocator::ALL
            .into_iter()
            .map(|allocator| {
                let subject = Subject::prepare(
                    ComponentSource::embedded(),
                    allocator,
                    &RuntimeOptions::new(allocator),
                    dir.path(),
                )?;
                let runtime = subject.runtime(capacity)?;
                anyhow::ensure!(
                    runtime.has_run(),
                    "{allocator}: the embedded component's wasi:cli/run is not called ({})",
                    subject.run_error.as_deref().unwrap_or("no run export")
                );
                let options = subject.options_with_capacity(capacity);
                Ok(Config {
                    allocator,
                    subject,
                    options,
                    runtime,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Fixture { configs, _dir: dir })
    }
}

fn main() {
    let fixture =
        Fixture::prepare().unwrap_or_else(|e| panic!("cannot prepare the benches: {e:#}"));
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_cold(&mut c, &fixture);
    bench_deserialize(&mut c, &fixture);
    bench_warm(&mut c, &fixture);
    bench_lifecycle(&mut c, &fixture);
    bench_parallel(&mut c, &fixture);
    c.final_summary();
}

/// Each iteration takes milliseconds, so few flat samples suffice.
fn bench_cold(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("cold");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5));
    for config in &fixture.configs {
        let s = &config.subject;
        for (from, artifact) in [("source", None), ("artifact", Some(s.artifact.as_path()))] {
            group.bench_function(BenchmarkId::new(from, config.allocator), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            match cold::once(&s.source, &config.options, s.footprint, artifact) {
                                Ok((reply, _)) => Duration::from_nanos(reply.total),
                                Err(e) => panic!(
                                    "{} cold start from {from} failed: {e:#}",
                                    config.allocator
                                ),
                            }
                        })
                        .sum()
                });
            });
        }
    }
    group.finish();
}

fn bench_deserialize(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("deserialize");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for config in &fixture.configs {
        let s = &config.subject;
        let bytes =
            std::fs::read(&s.artifact).unwrap_or_else(|e| panic!("{}: {e}", s.artifact.display()));
        group.bench_function(config.allocator.name(), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let engine = new_engine(&config.options, &s.footprint)
                        .unwrap_or_else(|e| panic!("{} engine: {e:#}", config.allocator));
                    let t0 = Instant::now();
                    let rt = Runtime::load(
                        engine,
                        Load::Artifact(&bytes),
                        &s.source,
                        &config.options,
                        s.footprint,
                    )
                    .unwrap_or_else(|e| panic!("{} deserialize: {e:#}", config.allocator));
                    timed += t0.elapsed();
                    // Dropping the runtime unmaps the engine (and its pool): not timed.
                    drop(rt);
                }
                timed
            });
        });
    }
    group.finish();
}

fn bench_warm(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("warm");
    for config in &fixture.configs {
        let rt = &config.runtime;
        group.bench_function(config.allocator.name(), |b| {
            // Timed one at a time, like `measure::warm`: collecting every
            // instance until the end of a sample would fill the pool.
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        warm::time_one(rt)
                            .unwrap_or_else(|e| panic!("{} warm start: {e}", config.allocator))
                    })
                    .sum()
            });
        });
    }
    group.finish();
}

fn bench_lifecycle(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("lifecycle");
    for config in &fixture.configs {
        let rt = &config.runtime;
        group.bench_function(config.allocator.name(), |b| {
            b.iter(|| {
                rt.lifecycle()
                    .unwrap_or_else(|e| panic!("{} lifecycle: {e}", config.allocator))
            });
        });
    }
    group.finish();
}

/// Sets the flag when dropped, so background threads stop even if the timed
/// thread panics (the scope would otherwise wait for them forever).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn bench_parallel(c: &mut Criterion, fixture: &Fixture) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(2);
    let mut group = c.benchmark_group("parallel");
    for config in &fixture.configs {
        let rt = &config.runtime;
        let name = config.allocator;
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let background: Vec<_> = (1..threads)
                .map(|_| {
                    s.spawn(|| {
                        while !stop.load(Ordering::Relaxed) {
                            rt.lifecycle()?;
                        }
                        Ok::<(), siteboss::engine::InstanceError>(())
                    })
                })
                .collect();
            let guard = StopOnDrop(&stop);
            group.bench_function(
                BenchmarkId::new(name.name(), format!("{threads}-threads")),
                |b| {
                    b.iter(|| {
                        rt.lifecycle()
                            .unwrap_or_else(|e| panic!("{name} timed lifecycle: {e}"))
                    });
                },
            );
            drop(guard);
            for t in background {
                if let Err(e) = t.join().expect("a background thread panicked") {
                    panic!("{name} background lifecycle: {e}");
                }
            }
        });
    }
    group.finish();
}
