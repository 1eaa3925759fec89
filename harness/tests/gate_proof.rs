//! Proof that the gate judges: its real trials, run against baselines that
//! were measured here, on real components, and judged on a second, separate
//! measurement. No verdict below is fixed by construction: each one compares
//! two measurements, so a gate that stopped measuring, or stopped counting
//! repeatably, or stopped seeing a change, fails these tests.
//!
//! The "real change" is a component whose `run` does a known amount of extra
//! work: the same minimal component with a counted loop in `run`.

mod common;

use siteboss::component::ComponentSource;
use siteboss::gate::{Gate, GateComponent, GateSettings, Judged, trial_name};
use siteboss::model::{Allocator, Metric};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Measuring trials run one at a time so they do not disturb each other.
static MEASURING: Mutex<()> = Mutex::new(());

/// A component whose `run` counts to `n` in a loop, then returns `ok`.
fn looping(n: u32) -> String {
    common::run_component(&format!(
        "(local $i i32)
         (block $done (loop $l
           (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br $l)))
         i32.const 0"
    ))
}

fn settings(baseline_dir: &Path, require: bool) -> GateSettings {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    GateSettings {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_siteboss")),
        baseline_dir: baseline_dir.to_path_buf(),
        tolerances: root.join("baselines/tolerances.toml"),
        runner: "proof-runner".into(),
        counts_key: "proof-key".into(),
        fingerprint: siteboss::fingerprint::current(),
        require_baseline: require,
        rounds: 5,
        valgrind: siteboss::measure::count::find_valgrind(),
    }
}

/// A gate guarding one component, `proof`, built from `wat`.
fn gate(settings: GateSettings, dir: &Path, wat: &str) -> Arc<Gate> {
    let path = common::write_wat(dir, &format!("proof-{:x}.wasm", fnv(wat)), wat);
    let component = GateComponent {
        name: "proof".into(),
        source: ComponentSource::from_path(&path).unwrap(),
        ..GateComponent::embedded()
    };
    Gate::new(settings, vec![component]).unwrap()
}

/// The profiles counted under Valgrind (pooling-cow's pool does not fit it,
/// and its counted trials are ignored with that reason).
fn countable() -> Vec<Allocator> {
    Allocator::ALL
        .into_iter()
        .filter(|a| a.not_countable().is_none())
        .collect()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Records `metrics` with `gate` and writes the baselines into `dir` as
/// insta snapshots, as `cargo insta accept` would.
fn record(gate: &Gate, metrics: &[Metric], dir: &Path) {
    let (bodies, left_out) = gate.record(Some(metrics)).unwrap();
    assert!(left_out.is_empty(), "{left_out:?}");
    for body in bodies.iter().filter(|b| !b.components.is_empty()) {
        let text = format!(
            "---\nsource: harness/tests/gate_proof.rs\n---\n{}\n",
            serde_json::to_string_pretty(body).unwrap()
        );
        std::fs::write(
            dir.join(format!("{}.snap", Gate::snapshot_name(body))),
            text,
        )
        .unwrap();
    }
}

fn run_trial(gate: &Arc<Gate>, allocator: Allocator, metric: Metric) -> Result<Judged, String> {
    let name = trial_name("proof", allocator, metric);
    let trial = gate
        .trials()
        .into_iter()
        .find(|t| t.name == name)
        .expect("the trial exists");
    (trial.run)()
}

fn require_valgrind() {
    if let Err(reason) = siteboss::measure::count::find_valgrind() {
        panic!("this proof counts instructions, which needs Valgrind: {reason}");
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "judges optimized code only: run `cargo test --release`"
)]
fn counted_trials_pass_a_recount_and_catch_a_few_hundred_added_instructions() {
    require_valgrind();
    let _guard = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let baselines = tempfile::tempdir().unwrap();
    let counted = [
        Metric::InstructionsWarmStart,
        Metric::InstructionsRun,
        Metric::InstructionsLifecycle,
    ];
    // The baseline: `run` loops 100 times.
    let base = gate(settings(baselines.path(), true), work.path(), &looping(100));
    record(&base, &counted, baselines.path());

    // The same component, counted again in a new child: every trial passes,
    // because counts repeat far inside the 1.5% tolerance.
    let again = gate(settings(baselines.path(), true), work.path(), &looping(100));
    for metric in counted {
        for allocator in countable() {
            assert_eq!(
                run_trial(&again, allocator, metric),
                Ok(Judged::Passed),
                "{allocator} {metric}"
            );
        }
    }

    // pooling-cow is never counted: ignored with the reason, never passed.
    assert!(matches!(
        run_trial(&again, Allocator::PoolingCow, Metric::InstructionsLifecycle),
        Ok(Judged::Ignored(why)) if why.contains("more than Valgrind can map")
    ));

    // `run` loops 250 times instead: a few hundred instructions more per
    // run, and nothing else. The run and the lifecycle regress; the warm
    // start (which does not call run) does not.
    let changed = gate(settings(baselines.path(), true), work.path(), &looping(250));
    for allocator in countable() {
        for metric in [Metric::InstructionsRun, Metric::InstructionsLifecycle] {
            let err = run_trial(&changed, allocator, metric)
                .expect_err("a few hundred more instructions per run is caught");
            assert!(
                err.starts_with(&format!("REGRESSION: gate::proof::{allocator}::{metric}")),
                "{err}"
            );
            assert!(err.contains("counts key: proof-key"), "{err}");
            assert!(err.contains("counts-proof-key.snap"), "{err}");
            assert!(
                err.contains("SITEBOSS_RECORD=1 cargo test --release --test gate"),
                "{err}"
            );
        }
        assert_eq!(
            run_trial(&changed, allocator, Metric::InstructionsWarmStart),
            Ok(Judged::Passed),
            "{allocator}: instantiation did not change"
        );
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "judges optimized code only: run `cargo test --release`"
)]
fn timed_trials_catch_a_run_that_takes_several_times_longer() {
    let _guard = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let work = tempfile::tempdir().unwrap();
    let baselines = tempfile::tempdir().unwrap();
    let base = gate(settings(baselines.path(), true), work.path(), &looping(0));
    record(&base, &[Metric::Lifecycle], baselines.path());
    // Some 100,000 loop iterations: tens of microseconds per run, against a
    // lifecycle of a few microseconds, measured in a new session. A slow
    // episode of the machine (up to 1.6x) cannot hide it, and cannot make
    // the unchanged warm start fail, since only the lifecycle is judged.
    let changed = gate(
        settings(baselines.path(), true),
        work.path(),
        &looping(100_000),
    );
    for allocator in Allocator::ALL {
        let err = run_trial(&changed, allocator, Metric::Lifecycle)
            .expect_err("a run several times longer is caught");
        assert!(
            err.starts_with(&format!("REGRESSION: gate::proof::{allocator}::lifecycle")),
            "{err}"
        );
        assert!(err.contains("runner:    proof-runner"), "{err}");
        assert!(err.contains("median of its 5 rounds"), "{err}");
    }
}

#[test]
fn a_corrupt_baseline_fails_and_names_its_file() {
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("proof-runner.snap"),
        "---\ninfo: {}\n---\n{ not json",
    )
    .unwrap();
    let g = gate(settings(dir.path(), true), work.path(), &looping(0));
    let err = run_trial(&g, Allocator::Pooling, Metric::WarmStart)
        .expect_err("a corrupt baseline must fail");
    assert!(
        err.contains("proof-runner.snap: corrupt baseline: the JSON body"),
        "{err}"
    );
}

#[test]
fn a_trial_that_cannot_judge_is_ignored_with_its_reason_or_fails_when_required() {
    let work = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let lenient = gate(settings(empty.path(), false), work.path(), &looping(0));
    let strict = gate(settings(empty.path(), true), work.path(), &looping(0));

    // No baseline: timed and counted.
    for (metric, expected) in [
        (Metric::WarmStart, "no timed baseline for `proof-runner`"),
        (
            Metric::InstructionsLifecycle,
            "no counted baseline for `proof-key`",
        ),
        (
            Metric::PageFaultsLifecycle,
            "no counted baseline for `proof-key`",
        ),
    ] {
        match run_trial(&lenient, Allocator::Pooling, metric) {
            Ok(Judged::Ignored(reason)) => {
                assert!(reason.contains(expected), "{reason}");
                assert!(reason.contains("SITEBOSS_RECORD=1"), "{reason}");
            }
            other => panic!("{metric}: expected ignored, got {other:?}"),
        }
        let err = run_trial(&strict, Allocator::Pooling, metric).expect_err("required");
        assert!(err.contains(expected), "{err}");
        assert!(err.contains("SITEBOSS_REQUIRE_BASELINE=1"), "{err}");
    }

    // A baseline without the metric.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("counts-proof-key.snap"),
        "---\ninfo: {}\n---\n{\"schema\": \"siteboss-baseline\", \"schema_version\": 2, \"kind\": \"counted\", \"key\": \"proof-key\", \"rounds\": 5, \"components\": {\"proof\": {\"pooling\": {\"instructions-run\": {\"median\": 100.0}}}}}\n",
    )
    .unwrap();
    let g = gate(settings(dir.path(), false), work.path(), &looping(0));
    match run_trial(&g, Allocator::Pooling, Metric::PageFaultsLifecycle) {
        Ok(Judged::Ignored(reason)) => {
            assert!(
                reason.contains("has no proof pooling page-faults-lifecycle value"),
                "{reason}"
            )
        }
        other => panic!("expected ignored, got {other:?}"),
    }

    // No Valgrind: counted-instruction trials say how to install it.
    let mut s = settings(dir.path(), false);
    s.valgrind = Err(format!(
        "valgrind not found; {}",
        siteboss::measure::count::INSTALL_VALGRIND
    ));
    let g = gate(s.clone(), work.path(), &looping(0));
    match run_trial(&g, Allocator::Pooling, Metric::InstructionsRun) {
        Ok(Judged::Ignored(reason)) => {
            assert!(reason.contains("apt-get install -y valgrind"), "{reason}")
        }
        other => panic!("expected ignored, got {other:?}"),
    }
    s.require_baseline = true;
    let g = gate(s, work.path(), &looping(0));
    let err = run_trial(&g, Allocator::Pooling, Metric::InstructionsRun).expect_err("required");
    assert!(err.contains("valgrind not found"), "{err}");

    // No tolerance for a metric.
    let tol = dir.path().join("tolerances.toml");
    std::fs::write(&tol, "[warm-start]\nrelative = 0.1\n").unwrap();
    let mut s = settings(dir.path(), false);
    s.tolerances = tol;
    let g = gate(s, work.path(), &looping(0));
    match run_trial(&g, Allocator::Pooling, Metric::InstructionsRun) {
        Ok(Judged::Ignored(reason)) => {
            assert!(
                reason.contains("no tolerance for instructions-run"),
                "{reason}"
            )
        }
        other => panic!("expected ignored, got {other:?}"),
    }
}

#[test]
fn a_metric_that_does_not_apply_is_ignored_as_such() {
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let g = gate(settings(dir.path(), true), work.path(), common::NO_RUN);
    match run_trial(&g, Allocator::Pooling, Metric::Lifecycle) {
        Ok(Judged::Ignored(reason)) => assert!(reason.contains("not applicable"), "{reason}"),
        other => panic!("expected not applicable, got {other:?}"),
    }
}

#[test]
fn a_corrupt_tolerance_file_fails_and_names_its_file() {
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tol = dir.path().join("tolerances.toml");
    std::fs::write(&tol, "[warm-start]\nrelative = -0.5\n").unwrap();
    let mut s = settings(dir.path(), true);
    s.tolerances = tol;
    let g = gate(s, work.path(), &looping(0));
    let err = run_trial(&g, Allocator::Pooling, Metric::WarmStart)
        .expect_err("a negative tolerance must fail");
    assert!(
        err.contains("tolerances.toml: warm-start.relative: must be a number ≥ 0"),
        "{err}"
    );
}

/// The real code changes `harness/ci/regressions.sh` proves the gate with
/// still apply to this tree: a patch that no longer applies would be
/// reported as "does not apply" instead of judged (the control patch went
/// stale once when the throughput section's wording moved).
#[test]
fn every_regression_patch_still_applies_to_this_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("harness/ci/regressions");
    let mut patches: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("harness/ci/regressions")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    patches.sort();
    assert!(
        patches.len() >= 2,
        "a real change and a control: {patches:?}"
    );
    for p in &patches {
        let out = std::process::Command::new("git")
            .args(["apply", "--check"])
            .arg(p)
            .current_dir(root)
            .output()
            .expect("git runs (the regression patches are applied with it)");
        assert!(
            out.status.success(),
            "{} no longer applies: {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}
