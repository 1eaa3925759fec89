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

#[test]
fn a_30_percent_slower_head_is_a_regression_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &result(2000.0, "aa"));
    let head = write(dir.path(), "head.json", &result(2600.0, "aa"));
    let (code, out, err) = compare(&[&base, &head], &[]);
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

    let (code, json, _) = compare(&[&base, &head], &["--json"]);
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
    assert!(md.contains("**No regression.**"), "{md}");
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
    let (code, out, _) = compare(&refs, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("3 interleaved BASE HEAD pairs"), "{out}");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base.json", &result(2000.0, "aa"));
    let other = write(dir.path(), "other.json", &result(2000.0, "bb"));
    let mut v2 = serde_json::to_value(result(2000.0, "aa")).unwrap();
    v2["schema_version"] = 2.into();
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
        (&[&base, &newer], "newer.json: has schema_version 2"),
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
