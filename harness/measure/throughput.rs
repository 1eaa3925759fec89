//! Throughput: how many instantiations and lifecycles per second all threads
//! complete together.

use super::{MIN_ROUNDS, Plan};
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
/// of `plan.throughput_seconds` each, or fewer or shorter rounds (see
/// [`shape`]) when they would not fit in `budget_seconds`. Thread `i` works
/// in `rts[i % rts.len()]`: one runtime they all share, or one each.
///
/// # Panics
///
/// When `rts` is empty.
///
/// # Errors
///
/// Fails when any thread's instantiation or run fails.
pub fn throughput(
    rts: &[Runtime],
    plan: &Plan,
    threads: usize,
    budget_seconds: f64,
    tick: &dyn Fn(),
) -> Result<ThroughputResult, InstanceError> {
    let rt = rts.first().expect("throughput needs at least one runtime");
    let works = if rt.has_run() { 2.0 } else { 1.0 };
    let (rounds, seconds) = shape(
        plan.rounds,
        plan.throughput_seconds,
        budget_seconds - WARM_UP.as_secs_f64(),
        works,
    );
    let duration = Duration::from_secs_f64(seconds);
    // Warm every thread's slots and caches once, untimed.
    rate(rts, threads, WARM_UP, Work::Lifecycle.or(rt))?;
    let mut inst = Vec::with_capacity(rounds);
    let mut life = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        inst.push(rate(rts, threads, duration, Work::Instantiate)?);
        if rt.has_run() {
            life.push(rate(rts, threads, duration, Work::Lifecycle)?);
        }
        tick();
        if crate::interrupt::requested() {
            break;
        }
    }
    Ok(ThroughputResult {
        threads,
        engines: Some(rts.len().min(threads)),
        instantiations: summarize_per_round(&inst, Unit::PerSecond),
        lifecycles: (!life.is_empty()).then(|| summarize_per_round(&life, Unit::PerSecond)),
    })
}

/// The untimed warm-up before the rounds.
const WARM_UP: Duration = Duration::from_millis(50);
/// The shortest round a budget may cut a round to.
const MIN_ROUND_SECONDS: f64 = 0.05;

/// Rounds and seconds per round that fit `budget` seconds, for `works` timed
/// rates per round: the planned rounds of the planned length when they fit;
/// else fewer rounds, at least [`MIN_ROUNDS`]; else shorter rounds, at least
/// [`MIN_ROUND_SECONDS`].
pub fn shape(rounds: usize, seconds: f64, budget: f64, works: f64) -> (usize, f64) {
    let budget = budget.max(0.0);
    let fit = (budget / (works * seconds)).floor() as usize;
    if fit >= MIN_ROUNDS {
        return (fit.min(rounds), seconds);
    }
    let rounds = MIN_ROUNDS.min(rounds);
    let seconds = (budget / (works * rounds as f64)).clamp(MIN_ROUND_SECONDS, seconds);
    (rounds, seconds)
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

/// Operations per second completed by `threads` threads in `duration`,
/// thread `i` in `rts[i % rts.len()]`.
///
/// # Errors
///
/// The first error any thread hit.
///
/// # Panics
///
/// When `rts` is empty.
pub fn rate(
    rts: &[Runtime],
    threads: usize,
    duration: Duration,
    work: Work,
) -> Result<f64, InstanceError> {
    assert!(!rts.is_empty(), "throughput needs at least one runtime");
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let (total, elapsed) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let rt = &rts[i % rts.len()];
                let (start, stop) = (&start, &stop);
                s.spawn(move || -> Result<u64, InstanceError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_cuts_rounds_first_then_their_length() {
        // Fits as planned.
        assert_eq!(shape(5, 0.3, 10.0, 2.0), (5, 0.3));
        // Fewer rounds of the planned length.
        assert_eq!(shape(5, 0.3, 2.4, 2.0), (4, 0.3));
        // At the minimum of rounds, shorter ones.
        let (r, s) = shape(5, 0.3, 0.9, 2.0);
        assert_eq!(r, MIN_ROUNDS);
        assert!((s - 0.15).abs() < 1e-9, "{s}");
        // Never shorter than the floor, whatever the budget.
        assert_eq!(shape(5, 0.3, 0.0, 2.0), (MIN_ROUNDS, MIN_ROUND_SECONDS));
    }
}
