//! Proof that the gate can fail: the real gate trial, run against baselines
//! written into a temporary directory, with this machine's own measurements.

use siteboss::gate::{Gate, GateSettings, trial_name};
use siteboss::model::{Allocator, Metric};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Measuring trials run one at a time so they do not disturb each other.
static MEASURING: Mutex<()> = Mutex::new(());

fn gate(baseline_dir: &Path) -> std::sync::Arc<Gate> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fingerprint = siteboss::fingerprint::current();
    Gate::new(GateSettings {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_siteboss")),
        baseline_dir: baseline_dir.to_path_buf(),
        tolerances: root.join("baselines/tolerances.toml"),
        runner: "proof-runner".into(),
        fingerprint,
        require_baseline: true,
        rounds: 5,
    })
    .unwrap()
}

/// A baseline snapshot in insta's format with one pooling warm-start value.
fn write_baseline(dir: &Path, warm_start_ns: f64) {
    let text = format!(
        "---\nsource: harness/tests/gate_proof.rs\ninfo:\n  arch: {}\n---\n{{\n  \"schema\": \"siteboss-baseline\",\n  \"schema_version\": 1,\n  \"runner\": \"proof-runner\",\n  \"component\": \"embedded hello\",\n  \"rounds\": 5,\n  \"metrics\": {{\"pooling\": {{\"warm-start\": {warm_start_ns}}}}}\n}}\n",
        std::env::consts::ARCH
    );
    std::fs::write(dir.join("proof-runner.snap"), text).unwrap();
}

fn run_trial(
    gate: &std::sync::Arc<Gate>,
    allocator: Allocator,
    metric: Metric,
) -> Result<(), String> {
    let name = trial_name(allocator, metric);
    let trial = gate
        .trials()
        .into_iter()
        .find(|t| t.name == name)
        .expect("the trial exists");
    (trial.run)()
}

fn measured_warm_start(gate: &Gate) -> f64 {
    siteboss::stats::median(&gate.measure(Allocator::Pooling, Metric::WarmStart).unwrap())
}

#[test]
fn a_baseline_30_percent_better_than_this_machine_fails_naming_the_metric() {
    let _guard = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let g = gate(dir.path());
    // 30% better than even this machine's best round: a slow episode during
    // the session spreads the rounds, and "what this machine measures" must
    // not be read from the slow ones.
    let best = g
        .measure(Allocator::Pooling, Metric::WarmStart)
        .unwrap()
        .into_iter()
        .fold(f64::INFINITY, f64::min);
    write_baseline(dir.path(), best * 0.7);
    let err = run_trial(&g, Allocator::Pooling, Metric::WarmStart)
        .expect_err("a 30% better baseline must fail the gate");
    assert!(
        err.starts_with("REGRESSION: gate::hello::pooling::warm-start"),
        "{err}"
    );
    assert!(
        err.contains("metric:    warm-start (lower is better)"),
        "{err}"
    );
    assert!(err.contains("proof-runner.snap"), "{err}");
    assert!(
        err.contains("SITEBOSS_RECORD=1 cargo test --release --test gate"),
        "{err}"
    );
}

#[test]
fn a_baseline_just_recorded_on_this_machine_passes() {
    let _guard = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let g = gate(dir.path());
    write_baseline(dir.path(), measured_warm_start(&g));
    run_trial(&g, Allocator::Pooling, Metric::WarmStart).expect("a fresh baseline must pass");
}

#[test]
fn a_corrupt_baseline_fails_and_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("proof-runner.snap"),
        "---\ninfo: {}\n---\n{ not json",
    )
    .unwrap();
    let g = gate(dir.path());
    let err = run_trial(&g, Allocator::Pooling, Metric::WarmStart)
        .expect_err("a corrupt baseline must fail");
    assert!(
        err.contains("proof-runner.snap: corrupt baseline: the JSON body"),
        "{err}"
    );
}

#[test]
fn a_missing_baseline_fails_only_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let g = gate(dir.path());
    let err = run_trial(&g, Allocator::Pooling, Metric::WarmStart).expect_err("required baseline");
    assert!(
        err.contains("no baseline for runner `proof-runner`"),
        "{err}"
    );
    assert!(err.contains("SITEBOSS_REQUIRE_BASELINE=1"), "{err}");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lenient = Gate::new(GateSettings {
        require_baseline: false,
        ..GateSettings {
            exe: PathBuf::from(env!("CARGO_BIN_EXE_siteboss")),
            baseline_dir: dir.path().to_path_buf(),
            tolerances: root.join("baselines/tolerances.toml"),
            runner: "proof-runner".into(),
            fingerprint: siteboss::fingerprint::current(),
            require_baseline: true,
            rounds: 5,
        }
    })
    .unwrap();
    run_trial(&lenient, Allocator::Pooling, Metric::WarmStart)
        .expect("passes with a notice when not required");
}

#[test]
fn a_corrupt_tolerance_file_fails_and_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let tol = dir.path().join("tolerances.toml");
    std::fs::write(&tol, "[warm-start]\nrelative = -0.5\n").unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let g = Gate::new(GateSettings {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_siteboss")),
        baseline_dir: root.join("baselines"),
        tolerances: tol.clone(),
        runner: "proof-runner".into(),
        fingerprint: siteboss::fingerprint::current(),
        require_baseline: true,
        rounds: 5,
    })
    .unwrap();
    let err = run_trial(&g, Allocator::Pooling, Metric::WarmStart)
        .expect_err("a negative tolerance must fail");
    assert!(
        err.contains("tolerances.toml: warm-start.relative: must be a number ≥ 0"),
        "{err}"
    );
}
