//! `siteboss compare` on synthetic result files: verdicts, exit codes and
//! one-line reasons for bad input.

mod common;

use siteboss::model::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared complete result, with warm start `warm` ns (rounds ±1%) and
/// the component hash `component_hash`.
fn result(warm: f64, component_hash: &str) -> BenchmarkResult {
    let mut r: BenchmarkResult = serde_json::from_slice(&common::result_json()).unwrap();
    r.component.fnv1a64 = component_hash.into();
    for c in &mut r.configurations {
        c.warm_start = Some(siteboss::stats::summarize_per_round(
            &[warm * 0.99, warm, warm * 1.01],
            Unit::Nanoseconds,
        ));
    }
    r
}

fn write(dir: &Path, name: &str, r: &BenchmarkResult) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(r).unwrap()).unwrap();
    p
}

fn compare(args: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_siteboss"))
        .arg("compare")
        .args(args)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The committed tolerance file with warm start and lifecycle at 15% (the
/// committed 60% is for stored baselines judged on a machine with slow
/// spells): these tests are about how `compare` judges, not about the
/// committed values.
fn strict_tolerances(dir: &Path) -> PathBuf {
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("baselines/tolerances.toml"),
    )
    .unwrap();
    let strict = committed.replace("relative = 0.60", "relative = 0.15");
    assert_ne!(strict, committed, "the committed file changed shape");
    let p = dir.join("tolerances.toml");
    std::fs::write(&p, strict).unwrap();
    p
}

#[test]
fn a_30_percent_slower_head_is_a_regression_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &result(2000.0, "aa"));
    let head = write(dir.path(), "head.json", &result(2600.0, "aa"));
    let t = strict_tolerances(dir.path());
    let (code, out, err) = compare(&[&base, &head], &["--tolerances", t.to_str().unwrap()]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    let warm = out
        .lines()
        .find(|l| l.contains("warm-start"))
        .expect("a warm-start row");
    assert!(
        warm.contains("1.300") && warm.contains("REGRESSION"),
        "{warm}"
    );
    let life = out
        .lines()
        .find(|l| l.contains("lifecycle"))
        .expect("a lifecycle row");
    assert!(life.contains("pass"), "{life}");

    let (code, json, _) = compare(
        &[&base, &head],
        &["--json", "--tolerances", t.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "warm-start")
        .unwrap();
    assert_eq!(row["verdict"]["verdict"], "regression");
}

#[test]
fn identical_runs_pass_with_exit_code_0_and_markdown_works() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &result(2000.0, "aa"));
    let head = write(dir.path(), "head.json", &result(2000.0, "aa"));
    let (code, md, _) = compare(&[&base, &head], &["--markdown"]);
    assert_eq!(code, 0, "{md}");
    assert!(md.contains("| pooling | warm-start |"), "{md}");
    assert!(md.contains("**No regression in "), "{md}");
}

#[test]
fn three_interleaved_pairs_are_judged_pair_by_pair() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (b, h)) in [(2000.0, 2600.0), (2100.0, 2730.0), (1950.0, 2535.0)]
        .iter()
        .enumerate()
    {
        files.push(write(dir.path(), &format!("b{i}.json"), &result(*b, "aa")));
        files.push(write(dir.path(), &format!("h{i}.json"), &result(*h, "aa")));
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let t = strict_tolerances(dir.path());
    let (code, out, _) = compare(&refs, &["--tolerances", t.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("3 interleaved BASE HEAD pairs"), "{out}");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &result(2000.0, "aa"));
    let other = write(dir.path(), "other.json", &result(2000.0, "bb"));
    let mut v2 = serde_json::to_value(result(2000.0, "aa")).unwrap();
    v2["schema_version"] = 3.into();
    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, v2.to_string()).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let mut partial = result(2000.0, "aa");
    partial.status = Status::Partial;
    partial.status_reason = Some("interrupted by SIGINT".into());
    let partial = write(dir.path(), "partial.json", &partial);
    let missing = dir.path().join("missing.json");
    let cases: [(&[&Path], &str); 6] = [
        (&[&base, &missing], "missing.json: no such file"),
        (&[&base, &newer], "newer.json: has schema_version 3"),
        (&[&base, &other], "other.json: measured component"),
        (
            &[&base, &text],
            "notes.txt: is not a siteboss benchmark result",
        ),
        (
            &[&base, &partial],
            "partial.json: is partial (interrupted by SIGINT)",
        ),
        (
            &[&base, &base, &base],
            "give result files as BASE HEAD pairs",
        ),
    ];
    for (args, expected) in cases {
        let (code, out, err) = compare(args, &[]);
        assert_eq!(code, 2, "{expected}: stdout {out} stderr {err}");
        assert!(out.is_empty(), "nothing on stdout for bad input: {out}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with("Error: ") && err.contains(expected),
            "{expected}: {err}"
        );
    }
}

/// A result whose every figure reflects a machine running at `speed` (1.0
/// normal, 1.6 in a slow episode) and code `cost` times slower than the base.
fn drifted(speed: f64, cost: f64) -> BenchmarkResult {
    let mut r = result(2000.0 * speed * cost, "aa");
    for c in &mut r.configurations {
        let scale = |s: &mut Summary, by: f64| {
            s.median *= by;
            for x in &mut s.rounds {
                *x *= by;
            }
        };
        if let Some(l) = &mut c.lifecycle {
            scale(&mut l.total, speed * cost);
        }
        for t in &mut c.throughput {
            if let Some(l) = &mut t.lifecycles {
                scale(l, 1.0 / (speed * cost));
            }
            scale(&mut t.instantiations, 1.0 / (speed * cost));
        }
        c.memory = None;
        c.counts = None;
        c.cold_start = None;
        c.cold_start_precompiled = None;
    }
    r
}

#[test]
fn only_pairing_catches_a_regression_when_the_machine_drifts_between_pairs() {
    // Head is 20% slower than base in every pair, but the machine alternates
    // between normal speed and a 1.6x slow episode from pair to pair.
    let dir = tempfile::tempdir().unwrap();
    let speeds = [1.0, 1.6, 1.0, 1.6, 1.0];
    let mut files = Vec::new();
    for (i, speed) in speeds.iter().enumerate() {
        files.push(write(
            dir.path(),
            &format!("b{i}.json"),
            &drifted(*speed, 1.0),
        ));
        files.push(write(
            dir.path(),
            &format!("h{i}.json"),
            &drifted(*speed, 1.2),
        ));
    }
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let t = strict_tolerances(dir.path());
    let strict = ["--tolerances", t.to_str().unwrap()];
    // Paired: every pair's ratio is 1.2, so the interval is tight: caught.
    let (code, out, _) = compare(&refs, &strict);
    assert_eq!(code, 1, "{out}");
    let warm = out.lines().find(|l| l.contains("warm-start")).unwrap();
    assert!(
        warm.contains("1.200") && warm.contains("REGRESSION"),
        "{warm}"
    );
    // The same kind of data unpaired (two pairs: rounds pooled across the
    // normal and the slow pair) cannot tell the regression from the drift.
    let (code, out, _) = compare(&refs[..4], &strict);
    assert_eq!(code, 0, "{out}");
    let warm = out.lines().find(|l| l.contains("warm-start")).unwrap();
    assert!(warm.contains("pass"), "{warm}");
}

#[test]
fn a_metric_measured_on_one_side_only_cannot_be_judged_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let base = result(2000.0, "aa");
    let mut head = result(2000.0, "aa");
    // The head's run failed: it has instantiations per second but no
    // lifecycles per second. Its throughput must not be compared with the
    // base's lifecycles per second.
    for c in &mut head.configurations {
        for t in &mut c.throughput {
            t.lifecycles = None;
        }
    }
    let b = write(dir.path(), "base.json", &base);
    let h = write(dir.path(), "head.json", &head);
    let (code, out, _) = compare(&[&b, &h], &[]);
    assert_eq!(code, 1, "{out}");
    let row = out
        .lines()
        .find(|l| l.contains(" throughput "))
        .expect("a throughput row");
    assert!(
        row.contains("cannot judge: measured in 1 of 1 base file(s) and 0 of 1 head file(s)"),
        "{row}"
    );
    let inst = out
        .lines()
        .find(|l| l.contains("instantiation-throughput"))
        .expect("instantiations per second are compared with each other");
    assert!(inst.contains("pass"), "{inst}");
    assert!(!out.contains("No regression"), "{out}");
    assert!(out.contains("could not be judged"), "{out}");
}

#[test]
fn counted_metrics_are_judged_tightly_and_a_zero_count_by_its_floor() {
    let dir = tempfile::tempdir().unwrap();
    let base = result(2000.0, "aa");
    let mut head = result(2000.0, "aa");
    let set = |r: &mut BenchmarkResult, m: Metric, v: f64| {
        for c in &mut r.configurations {
            let counts = c.counts.as_mut().unwrap();
            counts
                .figures
                .insert(m, siteboss::stats::summarize_per_round(&[v; 5], m.unit()));
        }
    };
    // 3% more instructions per lifecycle: beyond the 1.5% tolerance.
    set(&mut head, Metric::InstructionsLifecycle, 5e4 * 1.03);
    let mut base = base;
    set(&mut base, Metric::InstructionsLifecycle, 5e4);
    // No page faults before or after: zero against zero is judged, and passes.
    set(&mut base, Metric::PageFaultsLifecycle, 0.0);
    set(&mut head, Metric::PageFaultsLifecycle, 0.0);
    let b = write(dir.path(), "base.json", &base);
    let h = write(dir.path(), "head.json", &head);
    let (code, out, _) = compare(&[&b, &h], &[]);
    assert_eq!(code, 1, "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("a {name} row: {out}"))
            .to_owned()
    };
    assert!(
        row("instructions-lifecycle").contains("REGRESSION"),
        "{out}"
    );
    assert!(row("instructions-lifecycle").contains("1.030"), "{out}");
    assert!(row("page-faults-lifecycle").contains("pass"), "{out}");
    // One page fault per lifecycle where there was none: beyond the floor.
    set(&mut head, Metric::PageFaultsLifecycle, 1.0);
    let h = write(dir.path(), "head.json", &head);
    let (_, out, _) = compare(&[&b, &h], &[]);
    let faults = out
        .lines()
        .find(|l| l.contains(" page-faults-lifecycle "))
        .unwrap();
    assert!(faults.contains("REGRESSION"), "{faults}");
}
