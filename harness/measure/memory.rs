//! Memory per instance and total memory for N live instances, read as the
//! resident memory of fresh child processes.

use super::child::{self, Reply, Request, Task};
use super::{Plan, Subject, os};
use crate::engine::Runtime;
use crate::model::{MemoryPoint, MemoryResult, Unit};
use crate::stats::{slope, summarize, summarize_per_round};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// One child's readings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryReply {
    /// Resident bytes with the runtime loaded and no instance alive.
    pub runtime_rss: u64,
    /// `(live instances, resident bytes)`, ascending.
    pub points: Vec<(usize, u64)>,
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
    let runtime_rss = os::rss_bytes();
    let mut readings = Vec::with_capacity(points.len());
    for &n in points {
        while live.len() < n {
            let mut l = rt.instantiate()?;
            if rt.has_run() {
                rt.run(&mut l)?;
            }
            live.push(l);
        }
        readings.push((n, os::rss_bytes()));
    }
    Ok(MemoryReply {
        runtime_rss,
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
    let max = plan.memory_points.iter().copied().max().unwrap_or(1) as u64;
    let request = Request {
        component: subject.source.path.clone(),
        options: subject.options_with_capacity(max + 1),
        footprint: subject.footprint,
        reply: dir.join("memory.reply.json"),
        task: Task::Memory {
            artifact: subject.artifact.clone(),
            points: plan.memory_points.clone(),
        },
    };
    let mut replies = Vec::with_capacity(plan.memory_rounds);
    for _ in 0..plan.memory_rounds {
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
    Ok(summarize_memory(&replies, &plan.memory_points))
}

/// Summarises children's readings. Pure, so it is tested without children.
pub fn summarize_memory(replies: &[MemoryReply], points: &[usize]) -> MemoryResult {
    let runtime: Vec<f64> = replies.iter().map(|r| r.runtime_rss as f64).collect();
    let rows = points
        .iter()
        .map(|&n| MemoryPoint {
            instances: n,
            rss: summarize(
                &replies
                    .iter()
                    .filter_map(|r| r.points.iter().find(|p| p.0 == n).map(|p| p.1 as f64))
                    .collect::<Vec<_>>(),
                Unit::Bytes,
            ),
        })
        .collect();
    // The slope over every N of a round, including N = 0 (the runtime alone).
    let slopes: Vec<f64> = replies
        .iter()
        .map(|r| {
            let mut pts = vec![(0.0, r.runtime_rss as f64)];
            pts.extend(r.points.iter().map(|&(n, b)| (n as f64, b as f64)));
            slope(&pts)
        })
        .collect();
    MemoryResult {
        runtime_rss: summarize(&runtime, Unit::Bytes),
        points: rows,
        per_instance: summarize_per_round(&slopes, Unit::Bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_per_instance_cost_not_total_over_n() {
        let reply = |base: u64, per: u64| MemoryReply {
            runtime_rss: base,
            points: [1usize, 10, 100, 1000]
                .iter()
                .map(|&n| (n, base + per * n as u64))
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
    }
}
