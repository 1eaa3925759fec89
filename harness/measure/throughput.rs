//! Throughput: how many instantiations and lifecycles per second all threads
//! complete together.

use super::Plan;
use crate::engine::{InstanceError, Runtime};
use crate::model::{ThroughputResult, Unit};
use crate::stats::summarize_per_round;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What each throughput round loops over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Instantiate and drop, without running.
    Instantiate,
    /// Instantiate, run, drop.
    Lifecycle,
}

/// Measures both kinds of work with `threads` threads, `plan.rounds` rounds
/// of `plan.throughput_seconds` each.
///
/// # Errors
///
/// Fails when any thread's instantiation or run fails.
pub fn throughput(
    rt: &Runtime,
    plan: &Plan,
    threads: usize,
    tick: &dyn Fn(),
) -> Result<ThroughputResult, InstanceError> {
    let duration = Duration::from_secs_f64(plan.throughput_seconds);
    // Warm every thread's slots and caches once, untimed.
    rate(
        rt,
        threads,
        Duration::from_millis(50),
        Work::Lifecycle.or(rt),
    )?;
    let mut inst = Vec::with_capacity(plan.rounds);
    let mut life = Vec::with_capacity(plan.rounds);
    for _ in 0..plan.rounds {
        inst.push(rate(rt, threads, duration, Work::Instantiate)?);
        if rt.has_run() {
            life.push(rate(rt, threads, duration, Work::Lifecycle)?);
        }
        tick();
        if crate::interrupt::requested() {
            break;
        }
    }
    Ok(ThroughputResult {
        threads,
        instantiations: summarize_per_round(&inst, Unit::PerSecond),
        lifecycles: (!life.is_empty()).then(|| summarize_per_round(&life, Unit::PerSecond)),
    })
}

impl Work {
    /// `self`, or plain instantiation when the component has no `run`.
    fn or(self, rt: &Runtime) -> Work {
        if rt.has_run() {
            self
        } else {
            Work::Instantiate
        }
    }
}

/// Operations per second completed by `threads` threads in `duration`.
///
/// # Errors
///
/// The first error any thread hit.
pub fn rate(
    rt: &Runtime,
    threads: usize,
    duration: Duration,
    work: Work,
) -> Result<f64, InstanceError> {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let (total, elapsed) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<u64, InstanceError> {
                    start.wait();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        match work {
                            Work::Instantiate => drop(rt.instantiate()?),
                            Work::Lifecycle => rt.lifecycle()?,
                        }
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        // Sleep in short steps so an interrupt ends the round quickly.
        while t0.elapsed() < duration && !crate::interrupt::requested() {
            std::thread::sleep(
                (duration - t0.elapsed().min(duration)).min(Duration::from_millis(50)),
            );
        }
        stop.store(true, Ordering::Relaxed);
        let mut total = 0u64;
        let mut first_err = None;
        for w in workers {
            match w.join().expect("throughput worker panicked") {
                Ok(n) => total += n,
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        let elapsed = t0.elapsed();
        match first_err {
            Some(e) => Err(e),
            None => Ok((total, elapsed)),
        }
    })?;
    Ok(total as f64 / elapsed.as_secs_f64())
}
