//! SIGINT and SIGTERM during a real `siteboss benchmark`: the run ends within
//! a second, exits 128 + the signal, and what it had measured is still in
//! the `--json` file, marked partial.

mod common;

use common::*;
use siteboss::model::{BenchmarkResult, Status};
use std::path::Path;
use std::time::{Duration, Instant};

/// The result file, once it parses and `ready` says enough is measured.
fn wait_for(
    json: &Path,
    child: &mut std::process::Child,
    ready: impl Fn(&BenchmarkResult) -> bool,
) -> BenchmarkResult {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // The file is replaced by a rename, so a read sees a whole file.
        if let Ok(text) = std::fs::read_to_string(json)
            && let Ok(r) = serde_json::from_str::<BenchmarkResult>(&text)
            && ready(&r)
        {
            return r;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("siteboss ended before it was interrupted: {status}");
        }
        assert!(Instant::now() < deadline, "nothing measured in 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts a run, waits until `ready` and then `settle` more (so the next,
/// long phase is under way), sends `signal`, and checks the ending.
fn interrupt(
    signal: libc::c_int,
    extra: &[&str],
    ready: impl Fn(&BenchmarkResult) -> bool,
    settle: Duration,
) -> BenchmarkResult {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("result.json");
    let mut child = siteboss_command([
        "benchmark",
        "--embedded",
        "cli",
        "--quick",
        "--no-native",
        "--no-progress",
    ])
    .args(extra)
    .arg("--json")
    .arg(&json)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    wait_for(&json, &mut child, ready);
    std::thread::sleep(settle);
    let sent = Instant::now();
    // SAFETY: the pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "still running 10 s after the signal"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed();
    println!("ended {took:?} after the signal");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        took < Duration::from_secs(1),
        "ended {took:?} after the signal"
    );
    assert_eq!(status.code(), Some(128 + signal), "stderr: {stderr}");
    for bad in ["panicked", "stack backtrace"] {
        assert!(!stderr.contains(bad), "{stderr}");
    }
    let r = read_result(&json);
    assert_eq!(r.status, Status::Partial);
    let name = if signal == libc::SIGTERM {
        "SIGTERM"
    } else {
        "SIGINT"
    };
    let reason = r.status_reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("interrupted by {name}")),
        "{reason}"
    );
    assert!(stderr.contains("Interrupted: "), "{stderr}");
    r
}

/// The first configuration's `warm_start` is in the file.
fn warm_start_measured(r: &BenchmarkResult) -> bool {
    r.configurations
        .first()
        .is_some_and(|c| c.warm_start.is_some())
}

#[test]
fn sigint_during_the_cold_start_children() {
    // The first phase is measured; the second (more cold-start children) is
    // running when the signal arrives.
    let r = interrupt(
        libc::SIGINT,
        &["--allocator", "pooling"],
        |r| {
            r.configurations
                .first()
                .is_some_and(|c| c.cold_start.is_some())
        },
        Duration::ZERO,
    );
    let c = &r.configurations[0];
    assert!(c.cold_start.is_some(), "the measured phase is kept");
    assert!(c.density.is_none(), "later phases never ran");
}

#[test]
fn sigterm_while_the_concurrency_child_fills() {
    // A concurrency phase that would run for 30 s, 300 ms in.
    let r = interrupt(
        libc::SIGTERM,
        &[
            "--allocator",
            "pooling",
            "--phases",
            "warm-start,concurrency",
            "--max-instances",
            "1000000",
            "--time-limit",
            "30",
        ],
        warm_start_measured,
        Duration::from_millis(300),
    );
    let c = &r.configurations[0];
    assert!(c.warm_start.is_some(), "the measured phase is kept");
    assert!(c.density.is_none(), "the cut-short phase is not reported");
}

#[test]
fn sigint_during_the_throughput_threads() {
    // Quick throughput runs for about 6 s; it is 300 ms in.
    let r = interrupt(
        libc::SIGINT,
        &[
            "--allocator",
            "on-demand",
            "--phases",
            "warm-start,throughput",
        ],
        warm_start_measured,
        Duration::from_millis(300),
    );
    assert!(
        r.configurations[0].warm_start.is_some(),
        "the measured phase is kept"
    );
}
