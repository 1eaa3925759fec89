//! Memory per instance and total memory for N live instances, read as the
//! resident memory of fresh child processes.

use super::child::{self, MemoryReading, MemoryReply, Reply, Request, Task};
use super::{Budget, MIN_ROUNDS, Plan, Subject, os};
use crate::engine::Runtime;
use crate::model::{CutLimit, CutPoint, MemoryPoint, MemoryResult, Unit};
use crate::stats::{slope, summarize, summarize_per_round};
use std::path::Path;
use std::time::Duration;

fn reading(instances: usize) -> MemoryReading {
    MemoryReading {
        instances,
        rss: os::rss_bytes(),
        minor_faults: os::minor_faults(),
    }
}

/// The child's side: creates instances, runs each once and keeps it alive,
/// reading resident memory at each of `points`.
///
/// # Errors
///
/// Fails when an instantiation or a run fails.
pub fn measure_in_child(rt: &Runtime, points: &[usize]) -> anyhow::Result<MemoryReply> {
    // One instance created, run and dropped first, so lazily initialised
    // runtime state (thread-locals, WASI's runtime) is in the baseline and
    // not charged to the first instance.
    rt.lifecycle()
        .or_else(|e| if rt.has_run() { Err(e) } else { Ok(()) })?;
    let max = points.iter().copied().max().unwrap_or(0);
    let mut live = Vec::with_capacity(max);
    let runtime = reading(0);
    let mut readings = Vec::with_capacity(points.len());
    for &n in points {
        while live.len() < n {
            let mut l = rt.instantiate()?;
            if rt.has_run() {
                rt.run(&mut l)?;
            }
            live.push(l);
        }
        readings.push(reading(n));
    }
    Ok(MemoryReply {
        runtime,
        points: readings,
    })
}

/// Runs `plan.memory_rounds` fresh children and summarises them: resident
/// memory at each N, and the per-instance slope of each round.
///
/// # Errors
///
/// Fails when a child fails.
pub fn memory(
    exe: &Path,
    subject: &Subject,
    plan: &Plan,
    dir: &Path,
    tick: &dyn Fn(),
) -> anyhow::Result<MemoryResult> {
    let (points, cut) = fitting_points(
        &plan.memory_points,
        subject.lifecycle_estimate()?.as_secs_f64(),
        plan.budget.memory_seconds / MIN_ROUNDS.min(plan.memory_rounds).max(1) as f64,
        subject.footprint.memory_bytes,
        // Unknown available memory sets no limit here; the concurrency
        // phase's safety margin still guards the machine.
        os::available_bytes().map_or(u64::MAX, |a| {
            a.saturating_sub(plan.density.min_available_bytes) / 2
        }),
        u64::from(crate::engine::max_pool_capacity(subject.options.allocator)),
    );
    if points.len() < 2 {
        let why = cut
            .first()
            .map_or_else(String::new, |c| format!(": {}", c.reason));
        anyhow::bail!(
            "a slope needs two memory points, and only {} can be measured{why}",
            points.len()
        );
    }
    let max = points.iter().copied().max().unwrap_or(1) as u64;
    let request = Request {
        component: subject.source.path.clone(),
        embedded: subject.source.embedded,
        options: subject.options_with_capacity(max + 1),
        footprint: subject.footprint,
        reply: dir.join("memory.reply.json"),
        task: Task::Memory {
            artifact: subject.artifact.clone(),
            points: points.clone(),
        },
    };
    let budget = Budget::start(plan.budget.memory_seconds, 1);
    let mut replies = Vec::with_capacity(plan.memory_rounds);
    for i in 0..plan.memory_rounds {
        if i >= MIN_ROUNDS && budget.spent() {
            tick();
            continue;
        }
        let (reply, _) = child::spawn(exe, &request, dir, Duration::from_secs(300))?;
        let Reply::Memory(m) = reply else {
            anyhow::bail!("a memory child gave the wrong kind of reply");
        };
        replies.push(m);
        tick();
        if crate::interrupt::requested() {
            anyhow::bail!("interrupted");
        }
    }
    let mut result = summarize_memory(&replies, &points);
    result.cut = cut;
    Ok(result)
}

/// Seconds a child process takes before its first instance, about.
const CHILD_START_SECONDS: f64 = 0.05;

/// The memory points one round can reach within `round_seconds`, when each
/// instance takes `lifecycle` seconds to create and run, and within
/// `memory_room` bytes when each holds up to `instance_bytes`: the planned
/// points from the smallest up while they fit, and always the two smallest
/// (a slope needs two). A point whose pool (N + 1 slots) would pass
/// `pool_slots`, the most the profile's pool may have, is cut whatever its
/// rank, so fewer than two may remain (the phase then says so and is not
/// measured). The rest are returned as cut, each with its reason.
pub fn fitting_points(
    planned: &[usize],
    lifecycle: f64,
    round_seconds: f64,
    instance_bytes: u64,
    memory_room: u64,
    pool_slots: u64,
) -> (Vec<usize>, Vec<CutPoint>) {
    let mut sorted = planned.to_vec();
    sorted.sort_unstable();
    let mut points = Vec::with_capacity(sorted.len());
    let mut cut = Vec::new();
    for (i, &n) in sorted.iter().enumerate() {
        let seconds = CHILD_START_SECONDS + n as f64 * lifecycle;
        let bytes = (n as u64).saturating_mul(instance_bytes);
        let cut_by = if n as u64 >= pool_slots {
            Some((
                CutLimit::PoolCapacity { slots: pool_slots },
                format!(
                    "pool capacity: {n} instances need {} slots, and this profile's pool holds at most {pool_slots} in the address space this process may use",
                    n + 1
                ),
            ))
        } else if i < 2 {
            None
        } else if seconds > round_seconds {
            Some((
                CutLimit::TimeBudget {
                    lifecycle_seconds: lifecycle,
                    round_seconds,
                },
                format!(
                    "time budget: {n} instances at {:.1} µs each need about {seconds:.3} s, a round has {round_seconds:.3} s",
                    lifecycle * 1e6
                ),
            ))
        } else if bytes > memory_room {
            Some((
                CutLimit::Memory,
                format!(
                    "memory: {n} instances of up to {} KiB each need {} MiB, half the memory available above the safety margin is {} MiB",
                    instance_bytes >> 10,
                    bytes >> 20,
                    memory_room >> 20
                ),
            ))
        } else {
            None
        };
        match cut_by {
            None => points.push(n),
            Some((limit, reason)) => cut.push(CutPoint {
                instances: n,
                limit,
                reason,
            }),
        }
    }
    (points, cut)
}

/// Summarises children's readings. Pure, so it is tested without children.
pub fn summarize_memory(replies: &[MemoryReply], points: &[usize]) -> MemoryResult {
    let runtime: Vec<f64> = replies.iter().map(|r| r.runtime.rss as f64).collect();
    let rows = points
        .iter()
        .map(|&n| MemoryPoint {
            instances: n,
            rss: summarize(
                &replies
                    .iter()
                    .filter_map(|r| {
                        r.points
                            .iter()
                            .find(|p| p.instances == n)
                            .map(|p| p.rss as f64)
                    })
                    .collect::<Vec<_>>(),
                Unit::Bytes,
            ),
        })
        .collect();
    // The slope over every N of a round, including N = 0 (the runtime alone).
    let slopes = |value: fn(&MemoryReading) -> u64| -> Vec<f64> {
        replies
            .iter()
            .map(|r| {
                let pts: Vec<(f64, f64)> = std::iter::once(&r.runtime)
                    .chain(&r.points)
                    .map(|p| (p.instances as f64, value(p) as f64))
                    .collect();
                slope(&pts)
            })
            .collect()
    };
    MemoryResult {
        runtime_rss: summarize(&runtime, Unit::Bytes),
        points: rows,
        per_instance: summarize_per_round(&slopes(|p| p.rss), Unit::Bytes),
        page_faults_per_instance: Some(summarize_per_round(
            &slopes(|p| p.minor_faults),
            Unit::PageFaults,
        )),
        cut: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_cut_to_the_time_and_memory_a_round_has() {
        let planned = [1, 10, 100, 1000, 10_000];
        // A fast, small instance reaches every point.
        let (points, cut) = fitting_points(&planned, 1e-5, 1.0, 65536, 1 << 34, u64::MAX);
        assert_eq!(points, planned);
        assert!(cut.is_empty());
        // 4 ms per instance in a 1 s round: up to 100; the rest say why.
        let (points, cut) = fitting_points(&planned, 0.004, 1.0, 65536, 1 << 34, u64::MAX);
        assert_eq!(points, [1, 10, 100]);
        assert_eq!(
            cut.iter().map(|c| c.instances).collect::<Vec<_>>(),
            [1000, 10_000]
        );
        assert!(
            cut[0]
                .reason
                .starts_with("time budget: 1000 instances at 4000.0 µs"),
            "{}",
            cut[0].reason
        );
        assert_eq!(
            cut[0].limit,
            CutLimit::TimeBudget {
                lifecycle_seconds: 0.004,
                round_seconds: 1.0
            }
        );
        // 32 MiB per instance in 4 GiB of room: up to 100.
        let (points, cut) = fitting_points(&planned, 1e-5, 100.0, 32 << 20, 4 << 30, u64::MAX);
        assert_eq!(points, [1, 10, 100]);
        assert!(
            cut[0].reason.starts_with("memory: 1000 instances"),
            "{}",
            cut[0].reason
        );
        assert_eq!(cut[0].limit, CutLimit::Memory);
        // A pool that holds at most 63 slots (the copy-on-write profile in
        // 512 GiB of address space) cuts every point it cannot hold.
        let (points, cut) = fitting_points(&planned, 1e-5, 100.0, 65536, 1 << 34, 63);
        assert_eq!(points, [1, 10]);
        assert_eq!(cut[0].limit, CutLimit::PoolCapacity { slots: 63 });
        assert!(
            cut[0]
                .reason
                .starts_with("pool capacity: 100 instances need 101 slots"),
            "{}",
            cut[0].reason
        );
        let (points, _) = fitting_points(&planned, 1e-5, 100.0, 65536, 1 << 34, 5);
        assert_eq!(points, [1]);
        // However slow, the two smallest stay.
        let (points, cut) = fitting_points(&[10, 1, 100], 10.0, 0.1, 1, 1, u64::MAX);
        assert_eq!(points, [1, 10]);
        assert_eq!(cut.len(), 1);
    }

    #[test]
    fn slope_is_per_instance_cost_not_total_over_n() {
        let reply = |base: u64, per: u64| MemoryReply {
            runtime: MemoryReading {
                instances: 0,
                rss: base,
                minor_faults: 1000,
            },
            points: [1usize, 10, 100, 1000]
                .iter()
                .map(|&n| MemoryReading {
                    instances: n,
                    rss: base + per * n as u64,
                    minor_faults: 1000 + 3 * n as u64,
                })
                .collect(),
        };
        let m = summarize_memory(
            &[reply(20 << 20, 12_000), reply(21 << 20, 12_000)],
            &[1, 10, 100, 1000],
        );
        assert!(
            (m.per_instance.median - 12_000.0).abs() < 1.0,
            "{}",
            m.per_instance.median
        );
        assert_eq!(m.points.len(), 4);
        assert_eq!(m.points[3].instances, 1000);
        // Total at N=1 is dominated by the runtime, which is why total/N is wrong.
        assert!(m.points[0].rss.median > 100.0 * m.per_instance.median);
        let faults = m.page_faults_per_instance.unwrap();
        assert!((faults.median - 3.0).abs() < 1e-9, "{}", faults.median);
    }
}
