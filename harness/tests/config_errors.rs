//! Baselines, tolerance files and runner ids, end to end: through the gate
//! test binary (as `cargo test --release --test gate` runs it) and through
//! `siteboss compare`. The parsers' own cases are unit tests in
//! `harness/baseline.rs` and `harness/tolerance.rs`, and `gate_proof.rs`
//! drives the gate's trial code; this covers the environment and the
//! binaries around them.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The gate test binary of this build: a sibling of this test binary in
/// `target/<profile>/deps`, named `gate-<hash>`. `cargo test` builds every
/// test target before running any; the newest one is this build's.
fn gate_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let deps = me.parent().unwrap();
    std::fs::read_dir(deps)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("gate-") && !name.contains('.')
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!(
                "no gate test binary in {}; build it with `cargo test --release --no-run`",
                deps.display()
            )
        })
}

/// Runs the gate with `env` (and no inherited SITEBOSS_* settings).
fn gate(env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(gate_binary());
    for var in [
        "SITEBOSS_RUNNER",
        "SITEBOSS_REQUIRE_BASELINE",
        "SITEBOSS_BASELINE_DIR",
        "SITEBOSS_TOLERANCES",
        "SITEBOSS_RECORD",
        "SITEBOSS_COUNTS_KEY",
        "SITEBOSS_GATE_ROUNDS",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    run_to_end(&mut cmd)
}

/// Trials of the gate: every component of the committed manifest, each of
/// its profiles, every gate metric.
fn trial_count() -> usize {
    let manifest =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(siteboss::manifest::DEFAULT_MANIFEST);
    let profiles: usize = siteboss::manifest::load(&manifest)
        .unwrap()
        .iter()
        .map(|c| c.profiles.len())
        .sum();
    profiles * siteboss::gate::gate_metrics().count()
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the gate ignores every trial in a debug build"
)]
fn without_baselines_every_trial_is_ignored_with_its_reason_unless_required() {
    let n = trial_count();
    let out = gate(&[
        ("SITEBOSS_RUNNER", "no-such-runner"),
        ("SITEBOSS_COUNTS_KEY", "no-such-key"),
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("0 passed; 0 failed; {n} ignored")),
        "nothing passes without judging: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("... ignored (")
            && out
                .stdout
                .contains("no timed baseline for `no-such-runner`")
            && out.stdout.contains("no counted baseline for `no-such-key`")
            && out.stdout.contains("SITEBOSS_RECORD=1"),
        "{}",
        out.stdout
    );

    let out = gate(&[
        ("SITEBOSS_RUNNER", "no-such-runner"),
        ("SITEBOSS_COUNTS_KEY", "no-such-key"),
        ("SITEBOSS_REQUIRE_BASELINE", "1"),
    ]);
    assert_eq!(out.code, Some(101), "{}", out.stdout);
    // Every trial fails, except those that can never apply (pooling-cow is
    // not counted under Valgrind), which stay ignored with that reason.
    let not_applicable = out.stdout.matches("... ignored (not applicable").count();
    assert!(
        out.stdout.contains(&format!(
            "0 passed; {} failed; {not_applicable} ignored",
            n - not_applicable
        )),
        "{}",
        out.stdout
    );
    assert!(not_applicable < n / 4, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("SITEBOSS_REQUIRE_BASELINE=1 makes a trial that cannot judge fail"),
        "{}",
        out.stdout
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the gate ignores every trial in a debug build"
)]
fn a_runner_id_that_cannot_name_a_file_fails() {
    let out = gate(&[
        ("SITEBOSS_RUNNER", "../etc/passwd"),
        ("SITEBOSS_COUNTS_KEY", "no-such-key"),
    ]);
    assert_eq!(out.code, Some(101), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("runner id `../etc/passwd` is not usable as a baseline name"),
        "{}",
        out.stdout
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the gate ignores every trial in a debug build"
)]
fn a_corrupt_baseline_or_tolerance_file_fails_the_gate_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("r1.snap");
    std::fs::write(
        &snap,
        "---\ninfo: {}\n---\n{\"schema\": \"siteboss-baseline\", \"schema_version\": 9}\n",
    )
    .unwrap();
    let dir_str = dir.path().to_str().unwrap();
    let out = gate(&[
        ("SITEBOSS_RUNNER", "r1"),
        ("SITEBOSS_COUNTS_KEY", "no-such-key"),
        ("SITEBOSS_BASELINE_DIR", dir_str),
        ("SITEBOSS_GATE_ROUNDS", "3"),
    ]);
    assert_eq!(out.code, Some(101), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("{}: corrupt baseline", snap.display())),
        "{}",
        out.stdout
    );

    let tol = dir.path().join("tolerances.toml");
    std::fs::write(&tol, "[warm-start]\nrelative = \"ten\"\n").unwrap();
    let out = gate(&[
        ("SITEBOSS_RUNNER", "r1"),
        ("SITEBOSS_COUNTS_KEY", "no-such-key"),
        ("SITEBOSS_TOLERANCES", tol.to_str().unwrap()),
    ]);
    assert_eq!(out.code, Some(101), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "{}: warm-start.relative: must be a number, found \"ten\"",
            tol.display()
        )),
        "{}",
        out.stdout
    );
}

/// `siteboss compare A B ARGS…` on two copies of a valid result file.
fn compare(dir: &Path, extra: &[&str]) -> Outcome {
    let a = dir.join("a.json");
    std::fs::write(&a, result_json()).unwrap();
    let mut args = vec!["compare".to_owned(), a.display().to_string()];
    args.push(a.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    siteboss(args)
}

/// Exit 2, one `Error: ` line containing `expected`, no panic.
fn one_line_error(out: &Outcome, expected: &str) {
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_no_panic(out);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("Error: ") && out.stderr.contains(expected),
        "expected {expected:?} in {}",
        out.stderr
    );
}

#[test]
fn compare_with_a_bad_tolerance_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        compare(dir.path(), &[]).code,
        Some(0),
        "the files are valid"
    );
    for (text, expected) in [
        (
            "[warm-start]\nrelative = -0.2\n",
            "warm-start.relative: must be a number ≥ 0",
        ),
        (
            "[warm-start]\nrelative = \"ten\"\n",
            "warm-start.relative: must be a number",
        ),
        (
            "[warm-starts]\nrelative = 0.1\n",
            "warm-starts: unknown metric `warm-starts`",
        ),
        ("[warm-start\n", "is not valid TOML"),
    ] {
        let tol = dir.path().join("bad.toml");
        std::fs::write(&tol, text).unwrap();
        let out = compare(dir.path(), &["--tolerances", tol.to_str().unwrap()]);
        one_line_error(&out, &format!("{}: {expected}", tol.display()));
    }
    let missing = dir.path().join("missing.toml");
    let out = compare(dir.path(), &["--tolerances", missing.to_str().unwrap()]);
    one_line_error(
        &out,
        &format!("{}: cannot be read: No such file", missing.display()),
    );
    assert_eq!(
        out.stderr.matches("No such file").count(),
        1,
        "the cause is said once: {}",
        out.stderr
    );
}

#[test]
fn compare_of_an_unreadable_result_file_says_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    std::fs::write(&a, result_json()).unwrap();
    let out = siteboss(["compare", a.to_str().unwrap(), "/proc/self/mem"]);
    one_line_error(&out, "/proc/self/mem: cannot be read: Input/output error");
    assert_eq!(
        out.stderr.matches("Input/output error").count(),
        1,
        "{}",
        out.stderr
    );
}

#[test]
fn an_unwritable_output_path_fails_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-such-dir").join("out.json");
    for (flag, path) in [
        ("--json", nowhere.clone()),
        ("--markdown", dir.path().to_path_buf()),
    ] {
        let out = siteboss([
            "benchmark".as_ref(),
            "--quick".as_ref(),
            flag.as_ref(),
            path.as_os_str(),
        ] as [&std::ffi::OsStr; 4]);
        one_line_error(&out, &format!("{}: cannot write: ", path.display()));
        assert!(
            out.stdout.is_empty(),
            "nothing was measured: {}",
            out.stdout
        );
    }
}
