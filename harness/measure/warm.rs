//! Warm start (instantiate through `InstancePre` with a fresh store) and a
//! request's full lifecycle (instantiate, run, drop), each timed on one
//! pinned CPU (see [`super::os::pin_to_last_cpu`]).

use super::{Budget, MIN_SAMPLES_PER_ROUND, Plan};
use crate::engine::{InstanceError, Runtime};
use crate::model::{Histogram, LifecycleResult, Summary, Unit};
use crate::stats::{log_histogram, summarize_rounds};
use std::time::{Duration, Instant};

/// One warm start: `Store::new` + WASI context + `InstancePre::instantiate`,
/// timed; the instance is dropped after the clock stops.
///
/// # Errors
///
/// Fails when the instantiation fails.
pub fn time_one(rt: &Runtime) -> Result<Duration, InstanceError> {
    let t0 = Instant::now();
    let live = rt.instantiate()?;
    let elapsed = t0.elapsed();
    drop(live);
    Ok(elapsed)
}

/// Times `Store::new` + WASI context + `InstancePre::instantiate`. Dropping
/// the store is outside the timed region.
///
/// Each round gets an equal share of `plan.budget.warm_seconds`: its warm-up
/// stops at a quarter of the share and its samples at the share, after at
/// least [`MIN_SAMPLES_PER_ROUND`]; `Summary::n` says how many were taken.
///
/// # Errors
///
/// Fails when an instantiation fails.
pub fn warm_start(rt: &Runtime, plan: &Plan, tick: &dyn Fn()) -> Result<Summary, InstanceError> {
    warm_start_distribution(rt, plan, tick).map(|(s, _)| s)
}

/// Bins per factor of ten of the latency histograms a result keeps.
pub const HISTOGRAM_BINS_PER_DECADE: u32 = 20;

/// [`warm_start`], with every sample also counted in a histogram.
///
/// # Errors
///
/// Fails when an instantiation fails.
pub fn warm_start_distribution(
    rt: &Runtime,
    plan: &Plan,
    tick: &dyn Fn(),
) -> Result<(Summary, Option<Histogram>), InstanceError> {
    let _pinned = super::os::pin_to_last_cpu();
    let budget = Budget::start(plan.budget.warm_seconds, plan.rounds);
    let mut rounds = Vec::with_capacity(plan.rounds);
    for r in 0..plan.rounds {
        let (warmed, end) = round_deadlines(&budget, r);
        for i in 0..plan.warmup {
            if i > 0 && Instant::now() >= warmed {
                break;
            }
            drop(rt.instantiate()?);
        }
        let mut samples = Vec::with_capacity(plan.samples_per_round);
        for i in 0..plan.samples_per_round {
            if i >= MIN_SAMPLES_PER_ROUND && Instant::now() >= end {
                break;
            }
            samples.push(time_one(rt)?.as_nanos() as f64);
        }
        rounds.push(samples);
        tick();
        if crate::interrupt::requested() {
            break;
        }
    }
    let all: Vec<f64> = rounds.iter().flatten().copied().collect();
    Ok((
        summarize_rounds(&rounds, Unit::Nanoseconds),
        log_histogram(&all, Unit::Nanoseconds, HISTOGRAM_BINS_PER_DECADE),
    ))
}

/// When round `r`'s warm-up and the whole round should end: the warm-up
/// gets the first quarter of the round's share of the budget.
fn round_deadlines(budget: &Budget, r: usize) -> (Instant, Instant) {
    let end = budget.part_deadline(r);
    let begin = Instant::now().max(budget.part_start(r)).min(end);
    (begin + (end - begin) / 4, end)
}

/// Times instantiate + `wasi:cli/run` + drop as one, then, in a second loop,
/// the run and the drop on their own.
///
/// Each round gets an equal share of `plan.budget.lifecycle_seconds`: a
/// quarter for its warm-up, half for the timed totals and the rest for the
/// parts, each after at least [`MIN_SAMPLES_PER_ROUND`] samples.
///
/// # Errors
///
/// Fails when an instantiation fails or `run` traps.
pub fn lifecycle(
    rt: &Runtime,
    plan: &Plan,
    tick: &dyn Fn(),
) -> Result<LifecycleResult, InstanceError> {
    let _pinned = super::os::pin_to_last_cpu();
    let budget = Budget::start(plan.budget.lifecycle_seconds, plan.rounds);
    let mut totals = Vec::with_capacity(plan.rounds);
    let mut runs = Vec::with_capacity(plan.rounds);
    let mut drops = Vec::with_capacity(plan.rounds);
    for r in 0..plan.rounds {
        let (warmed, end) = round_deadlines(&budget, r);
        let totals_end = warmed + (end - warmed) * 2 / 3;
        for i in 0..plan.warmup {
            if i > 0 && Instant::now() >= warmed {
                break;
            }
            rt.lifecycle()?;
        }
        let mut total = Vec::with_capacity(plan.samples_per_round);
        for i in 0..plan.samples_per_round {
            if i >= MIN_SAMPLES_PER_ROUND && Instant::now() >= totals_end {
                break;
            }
            let t0 = Instant::now();
            rt.lifecycle()?;
            total.push(t0.elapsed().as_nanos() as f64);
        }
        // The parts, timed separately so their extra clock reads do not
        // inflate the total above.
        let parts = (total.len() / 2).max(1);
        let mut run = Vec::with_capacity(parts);
        let mut dropped = Vec::with_capacity(parts);
        for i in 0..parts {
            if i >= MIN_SAMPLES_PER_ROUND.min(parts) && Instant::now() >= end {
                break;
            }
            let mut live = rt.instantiate()?;
            let t0 = Instant::now();
            rt.run(&mut live)?;
            let t1 = Instant::now();
            drop(live);
            let t2 = Instant::now();
            run.push((t1 - t0).as_nanos() as f64);
            dropped.push((t2 - t1).as_nanos() as f64);
        }
        totals.push(total);
        runs.push(run);
        drops.push(dropped);
        tick();
        if crate::interrupt::requested() {
            break;
        }
    }
    let all: Vec<f64> = totals.iter().flatten().copied().collect();
    Ok(LifecycleResult {
        histogram: log_histogram(&all, Unit::Nanoseconds, HISTOGRAM_BINS_PER_DECADE),
        total: summarize_rounds(&totals, Unit::Nanoseconds),
        run: summarize_rounds(&runs, Unit::Nanoseconds),
        drop: summarize_rounds(&drops, Unit::Nanoseconds),
    })
}
