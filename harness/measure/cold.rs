//! Cold start: a fresh engine, compiling (or deserializing) the component,
//! the first instantiation and the first run.

use super::child::{self, ColdReply, Reply, Request, Task};
use super::{Budget, Plan, Subject};
use crate::component::ComponentSource;
use crate::engine::{Footprint, Load, Runtime, RuntimeOptions, new_engine};
use crate::model::{ColdStartResult, Unit};
use crate::stats::{summarize, summarize_per_round};
use std::path::Path;
use std::time::{Duration, Instant};

/// One cold start in this process, timed part by part. Returns the reply
/// and what the cold start built (the engine, its pool and the instance): a
/// long-lived caller drops it; a child process that exits next leaves it to
/// the exit (`std::mem::forget`) instead of tearing it down one piece at a
/// time just before the kernel unmaps everything anyway (whole-process cold
/// start x0.947, 12 alternating rounds of 20 processes).
///
/// # Errors
///
/// Fails when the engine, the load or the instantiation fails. A trap in
/// `run` is an error too: a cold start that does not finish is not measured.
pub fn once(
    source: &ComponentSource,
    options: &RuntimeOptions,
    footprint: Footprint,
    artifact: Option<&Path>,
) -> anyhow::Result<(ColdReply, impl Sized + use<>)> {
    let t0 = Instant::now();
    let engine = new_engine(options, &footprint)?;
    let t1 = Instant::now();
    let bytes;
    let load = match artifact {
        Some(path) => {
            bytes = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
            Load::Artifact(&bytes)
        }
        None => Load::Compile,
    };
    let rt = Runtime::load(engine, load, source, options, footprint)?;
    let t2 = Instant::now();
    let mut live = rt.instantiate()?;
    let t3 = Instant::now();
    let run = if rt.has_run() {
        rt.run(&mut live)?;
        Some(t3.elapsed().as_nanos() as u64)
    } else {
        None
    };
    let total = t0.elapsed();
    let reply = ColdReply {
        engine: (t1 - t0).as_nanos() as u64,
        load: (t2 - t1).as_nanos() as u64,
        instantiate: (t3 - t2).as_nanos() as u64,
        run,
        total: total.as_nanos() as u64,
    };
    Ok((reply, (rt, live)))
}

/// `n` cold starts, each in a fresh child process, with a pool of `capacity`.
///
/// # Errors
///
/// Fails when a child fails.
pub fn in_fresh_processes(
    exe: &Path,
    subject: &Subject,
    precompiled: bool,
    n: usize,
    capacity: u32,
    dir: &Path,
) -> anyhow::Result<Vec<ColdReply>> {
    (0..n)
        .map(|_| one_process(exe, subject, precompiled, capacity, dir).map(|r| r.0))
        .collect()
}

fn one_process(
    exe: &Path,
    subject: &Subject,
    precompiled: bool,
    capacity: u32,
    dir: &Path,
) -> anyhow::Result<(ColdReply, crate::measure::os::ChildExit)> {
    let request = Request {
        component: subject.source.path.clone(),
        embedded: subject.source.embedded,
        options: subject.options_with_capacity(u64::from(capacity)),
        footprint: subject.footprint,
        reply: dir.join("cold.reply.json"),
        task: Task::Cold {
            artifact: precompiled.then(|| subject.artifact.clone()),
        },
    };
    let (reply, exit) = child::spawn(exe, &request, dir, Duration::from_secs(120))?;
    match reply {
        Reply::Cold(cold) => Ok((cold, exit)),
        _ => anyhow::bail!("a cold-start child gave the wrong kind of reply"),
    }
}

/// Cold start in `plan.cold_processes` fresh child processes (after one
/// untimed), and repeated `plan.cold_repeats` times inside this process;
/// fewer of each (at least one) when `plan.budget.cold_seconds` runs out.
///
/// # Errors
///
/// Fails when a child fails or a cold start fails.
pub fn cold_start(
    exe: &Path,
    subject: &Subject,
    precompiled: bool,
    plan: &Plan,
    dir: &Path,
    tick: &dyn Fn(),
) -> anyhow::Result<ColdStartResult> {
    let options = subject.options_with_capacity(u64::from(plan.latency_pool_capacity));
    let artifact = precompiled.then(|| subject.artifact.clone());
    let budget = Budget::start(plan.budget.cold_seconds, 1);
    // One untimed process first: it pages in the binary and the artifact;
    // skipped when compiling alone would take a quarter of the budget.
    if precompiled || subject.compile_time.as_secs_f64() < plan.budget.cold_seconds / 4.0 {
        in_fresh_processes(
            exe,
            subject,
            precompiled,
            1,
            plan.latency_pool_capacity,
            dir,
        )?;
    }
    let mut replies = Vec::with_capacity(plan.cold_processes);
    let mut walls = Vec::with_capacity(plan.cold_processes);
    let mut peaks = Vec::with_capacity(plan.cold_processes);
    // Enough processes to judge (`MIN_ROUNDS`) whatever the budget when each
    // is cheap; one when each compiles for a second or more.
    let cheap = precompiled || subject.compile_time < Duration::from_millis(100);
    let floor = if cheap {
        super::MIN_ROUNDS.min(plan.cold_processes).max(1)
    } else {
        1
    };
    for i in 0..plan.cold_processes {
        if i >= floor && budget.spent() {
            break;
        }
        let (cold, exit) = one_process(exe, subject, precompiled, plan.latency_pool_capacity, dir)?;
        replies.push(cold);
        walls.push(exit.wall.as_nanos() as f64);
        peaks.push(exit.peak_rss as f64);
        tick();
        if crate::interrupt::requested() {
            anyhow::bail!("interrupted");
        }
    }
    // Ticks for the processes the budget cut, so the bar stays in step.
    for _ in replies.len()..plan.cold_processes {
        tick();
    }
    let mut repeated = Vec::with_capacity(plan.cold_repeats);
    for i in 0..plan.cold_repeats {
        if i > 0 && budget.spent() {
            break;
        }
        repeated.push(
            once(
                &subject.source,
                &options,
                subject.footprint,
                artifact.as_deref(),
            )?
            .0
            .total as f64,
        );
    }
    // Each fresh process is an independent round: keep them for judging.
    let part = |f: fn(&ColdReply) -> u64| {
        summarize_per_round(
            &replies.iter().map(|r| f(r) as f64).collect::<Vec<_>>(),
            Unit::Nanoseconds,
        )
    };
    Ok(ColdStartResult {
        in_process: part(|r| r.total),
        engine: part(|r| r.engine),
        load: part(|r| r.load),
        instantiate: part(|r| r.instantiate),
        run: replies
            .iter()
            .map(|r| r.run.map(|x| x as f64))
            .collect::<Option<Vec<f64>>>()
            .map(|v| summarize(&v, Unit::Nanoseconds)),
        process: summarize(&walls, Unit::Nanoseconds),
        process_peak_rss: summarize(&peaks, Unit::Bytes),
        repeated_in_parent: summarize(&repeated, Unit::Nanoseconds),
    })
}
