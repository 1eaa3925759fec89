//! `siteboss ab`: lock-step runs of two builds. A real run of this build
//! against itself, and every "could not run" case with fake children (shell
//! scripts that answer the protocol as an older or broken build would).

mod common;

use common::*;
use siteboss::model::{Allocator, Metric};
use std::path::{Path, PathBuf};

fn me() -> &'static str {
    env!("CARGO_BIN_EXE_siteboss")
}

/// A fake `siteboss` whose lock-step child runs `body` (a shell script).
fn fake(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A `ready` line as this build's child would send it, with `protocol` and
/// component hash `fnv`.
fn ready(protocol: u32, fnv: &str) -> String {
    format!(
        r#"{{"response":"ready","protocol":{protocol},"siteboss_version":"0.1.0","wasmtime_version":"48.0.8","component":"embedded hello (1904 bytes)","component_fnv1a64":"{fnv}","profiles":[{{"allocator":"pooling","has_run":true,"config":[]}}]}}"#
    )
}

/// A tolerance file for a few seconds of this build against itself on an
/// unknown machine: 40% each way. These tests prove the plumbing (every
/// metric judged, the right tolerance reaching the judge, exit codes); a
/// wrong pairing (a metric against another, a stale block) reads 2x or 0.5x
/// and fails them, as a regression or as an improvement, which they refuse.
/// `siteboss ab`'s false alarms at its real tolerances are measured by
/// `harness/ci/ab-error-rates.sh` over 20 full runs, not by one 3-second run
/// here.
fn wide_tolerances(dir: &Path) -> PathBuf {
    let p = dir.join("wide.toml");
    let mut toml = String::from("schema_version = 1\n");
    for (metric, direction) in [
        ("warm-start", "lower-is-better"),
        ("lifecycle", "lower-is-better"),
        ("throughput", "higher-is-better"),
    ] {
        toml += &format!(
            "[{metric}]\ndirection = \"{direction}\"\nrelative = 0.40\npaired_relative = 0.40\nenforce = true\n"
        );
    }
    std::fs::write(&p, toml).unwrap();
    p
}

fn one_line_error(out: &Outcome, expected: &str) {
    assert_eq!(
        out.code,
        Some(2),
        "stdout {} stderr {}",
        out.stdout,
        out.stderr
    );
    assert_no_panic(out);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("Error: ") && out.stderr.contains(expected),
        "expected {expected:?} in {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "times optimized code only: run `cargo test --release`"
)]
fn a_build_against_itself_judges_every_metric_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let tolerances = wide_tolerances(dir.path());
    let out = siteboss([
        "ab".as_ref(),
        me().as_ref(),
        me().as_ref(),
        "--allocator".as_ref(),
        "pooling".as_ref(),
        "--seconds".as_ref(),
        "4".as_ref(),
        "--min-pairs".as_ref(),
        "10".as_ref(),
        "--tolerances".as_ref(),
        tolerances.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let r: siteboss::ab::AbReport = serde_json::from_str(&out.stdout).unwrap();
    let metrics: Vec<_> = r.rows.iter().map(|r| r.metric.name()).collect();
    assert_eq!(metrics, ["warm-start", "lifecycle", "throughput"]);
    for row in &r.rows {
        // Judged at the file's tolerance: neither a regression nor an
        // improvement of 40% (either would be a pairing gone wrong).
        assert_eq!(row.tolerance.relative, 0.40, "{row:?}");
        assert_eq!(row.verdict, siteboss::model::Verdict::Pass, "{row:?}");
        assert!(row.pairs >= 10, "{row:?}");
        assert!(
            row.ratio_ci.0.is_finite() && row.ratio_ci.0 <= row.ratio_ci.1,
            "{row:?}"
        );
        // Every child of both builds measured blocks.
        assert_eq!(row.base_by_child.len(), 3, "{row:?}");
        assert_eq!(row.head_by_child.len(), 3, "{row:?}");
        assert!(row.base > 0.0 && row.head > 0.0);
    }
    assert!(r.seconds <= 10.0, "the budget holds: {}", r.seconds);
}

#[test]
fn could_not_run_cases_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-siteboss");
    let out = siteboss(["ab".as_ref(), missing.as_os_str(), me().as_ref()]);
    one_line_error(&out, "BASE: ");
    assert!(
        out.stderr.contains("no-such-siteboss: no such file"),
        "{}",
        out.stderr
    );

    // A build older than `siteboss ab`: clap rejects the hidden subcommand.
    let old = fake(
        dir.path(),
        "old",
        "echo \"error: unrecognized subcommand '$1'\" >&2; exit 2",
    );
    let out = siteboss(["ab".as_ref(), old.as_os_str(), me().as_ref()]);
    one_line_error(
        &out,
        "has no lock-step child mode (`__lockstep`): it predates `siteboss ab`",
    );

    // Another protocol version.
    let newer = fake(
        dir.path(),
        "newer",
        &format!("read hello; echo '{}'; read x", ready(99, "0")),
    );
    let out = siteboss([
        "ab".as_ref(),
        me().as_ref(),
        newer.as_os_str(),
        "--allocator".as_ref(),
        "pooling".as_ref(),
    ]);
    one_line_error(&out, "HEAD: lock-step protocol mismatch");

    // A child that dies after the hello.
    let dies = fake(
        dir.path(),
        "dies",
        &format!(
            "read hello; echo '{}'; read block; echo 'out of luck' >&2; exit 3",
            ready(
                1,
                &siteboss::component::ComponentSource::embedded().fnv1a64()
            )
        ),
    );
    let out = siteboss([
        "ab".as_ref(),
        me().as_ref(),
        dies.as_os_str(),
        "--allocator".as_ref(),
        "pooling".as_ref(),
    ]);
    one_line_error(&out, "HEAD: the child ended without an answer");
    assert!(out.stderr.contains("out of luck"), "{}", out.stderr);

    // The same failure leaves no working directory behind: BASE's children
    // (this build) had prepared theirs and were killed on the error path.
    let tmp = tempfile::tempdir().unwrap();
    let out = run_to_end(
        siteboss_command([
            "ab".as_ref(),
            me().as_ref(),
            dies.as_os_str(),
            "--allocator".as_ref(),
            "pooling".as_ref(),
        ])
        .env("TMPDIR", tmp.path()),
    );
    one_line_error(&out, "HEAD: the child ended without an answer");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("siteboss-lockstep-"))
        .collect();
    assert!(left.is_empty(), "left behind in TMPDIR: {left:?}");

    // A build that measures another component.
    let other = fake(
        dir.path(),
        "other",
        &format!(
            "read hello; echo '{}'; read x",
            ready(1, "00000000deadbeef")
        ),
    );
    let out = siteboss([
        "ab".as_ref(),
        me().as_ref(),
        other.as_os_str(),
        "--allocator".as_ref(),
        "pooling".as_ref(),
    ]);
    one_line_error(
        &out,
        "HEAD measured embedded hello (1904 bytes) [00000000deadbeef]",
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "times optimized code only: run `cargo test --release`"
)]
fn a_manifest_is_compared_component_by_component_with_its_own_profiles_and_tolerances() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("components.toml");
    std::fs::write(
        &manifest,
        r#"
[[component]]
name = "cli"
source = "embedded:cli"
profiles = ["pooling"]

[[component]]
name = "http"
source = "embedded:http"
request = "GET /"
profiles = ["on-demand"]
[component.tolerances]
lifecycle = { paired_relative = 0.45 }
"#,
    )
    .unwrap();
    let tolerances = wide_tolerances(dir.path());
    let out = siteboss([
        "ab".as_ref(),
        me().as_ref(),
        me().as_ref(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--tolerances".as_ref(),
        tolerances.as_os_str(),
        "--seconds".as_ref(),
        "3".as_ref(),
        "--min-pairs".as_ref(),
        "5".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let reports: Vec<siteboss::ab::AbReport> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(reports.len(), 2);
    assert!(
        reports[0].component.contains("1904 bytes"),
        "{}",
        reports[0].component
    );
    assert!(
        reports[1].component.contains("http-hello"),
        "{}",
        reports[1].component
    );
    for (r, profile) in reports
        .iter()
        .zip([Allocator::Pooling, Allocator::OnDemand])
    {
        assert!(!r.rows.is_empty());
        assert!(
            r.rows.iter().all(|row| row.allocator == profile),
            "{:?}",
            r.rows
        );
    }
    // The HTTP component's override reached the judge; the CLI one kept the file's.
    let lifecycle = |r: &siteboss::ab::AbReport| {
        r.rows
            .iter()
            .find(|row| row.metric == Metric::Lifecycle)
            .unwrap()
            .tolerance
            .relative
    };
    assert_eq!(lifecycle(&reports[1]), 0.45);
    assert_eq!(lifecycle(&reports[0]), 0.40);

    // A manifest with an unknown key is one line naming it, before any child starts.
    std::fs::write(
        &manifest,
        "[[component]]\nname = \"x\"\nsource = \"embedded:cli\"\nprofile = []\n",
    )
    .unwrap();
    let out = siteboss([
        "ab".as_ref(),
        me().as_ref(),
        me().as_ref(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ]);
    one_line_error(&out, "profile");
}
