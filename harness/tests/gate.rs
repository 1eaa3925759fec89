//! The regression gate: `cargo test --release --test gate`.
//!
//! One libtest-mimic trial per component, allocator and metric, so
//! `-- warm` filters, `--list` lists and `--format json` works. Each trial
//! measures independent rounds and judges them against
//! `baselines/<runner>.snap` with the tolerances in `baselines/tolerances.toml`.
//!
//! `SITEBOSS_RECORD=1` replaces the trials with one that measures every metric
//! and writes a pending `baselines/<runner>.snap.new` for `cargo insta review`.
//!
//! Measurement trials run one at a time (they would disturb each other), and
//! only in optimized builds: a debug build of Wasmtime is many times slower, so
//! judging it against a release baseline would be a false regression. In a
//! debug build every trial is listed but ignored, and a notice says why.

use libtest_mimic::{Arguments, Failed, Trial};
use siteboss::gate::{Gate, GateSettings};
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let settings = GateSettings::from_env(PathBuf::from(env!("CARGO_BIN_EXE_siteboss")), root);
    let gate = match Gate::new(settings) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("Error: cannot set up the gate: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // Trials measure; measuring two at once would make both wrong.
    args.test_threads = Some(1);
    let optimized = !cfg!(debug_assertions);
    if !optimized && !args.list {
        eprintln!(
            "siteboss gate: this test binary is not optimized, so its timings would be false regressions; \
             the measurement trials are ignored. Run `cargo test --release` to judge."
        );
    }
    let recording = std::env::var_os("SITEBOSS_RECORD").is_some_and(|v| v != "0");
    if recording && std::env::var_os("INSTA_UPDATE").is_none() {
        // A recording always leaves a pending `.snap.new` for review, also on
        // CI, where insta would otherwise write nothing.
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("INSTA_UPDATE", "new") };
    }
    let trials: Vec<Trial> = if recording {
        vec![
            Trial::test(
                format!("record::hello::{}", gate.settings.runner),
                move || record(&gate),
            )
            .with_ignored_flag(!optimized),
        ]
    } else {
        gate.trials()
            .into_iter()
            .map(|t| {
                let run = t.run;
                Trial::test(t.name, move || run().map_err(Failed::from))
                    .with_ignored_flag(!optimized)
            })
            .collect()
    };
    libtest_mimic::run(&args, trials).exit_code()
}

/// Measures every metric and writes a pending snapshot for review.
fn record(gate: &Gate) -> Result<(), Failed> {
    let s = &gate.settings;
    siteboss::baseline::path_for(&s.baseline_dir, &s.runner).map_err(|e| e.to_string())?;
    let body = gate.record().map_err(|e| format!("{e:#}"))?;
    let json = serde_json::to_string_pretty(&body).map_err(|e| e.to_string())?;
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(&s.baseline_dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_info(&siteboss::baseline::fingerprint_fields(&s.fingerprint));
    settings.set_description(format!(
        "siteboss gate baseline for runner {}: medians of {} rounds; see README.md, \"Updating the baseline\"",
        s.runner, s.rounds
    ));
    let name = s.runner.clone();
    // insta writes `<runner>.snap.new` and panics when the snapshot differs;
    // for a recording that pending file is the success case.
    // Its panic is expected here: silence the hook so no backtrace is printed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, json))
    }));
    std::panic::set_hook(hook);
    let pending = s.baseline_dir.join(format!("{}.snap.new", s.runner));
    match outcome {
        Ok(()) => println!("the baseline {} already matches this machine's figures", s.baseline_dir.join(format!("{}.snap", s.runner)).display()),
        Err(_) if pending.exists() => println!(
            "pending baseline written: {}\n  review it with `cargo insta review` (or accept with `cargo insta accept`, or `mv {} {}`)",
            pending.display(),
            pending.display(),
            pending.with_extension("").display()
        ),
        Err(_) => return Err("insta did not write a pending snapshot; set INSTA_UPDATE=new (CI disables writes by default)".into()),
    }
    Ok(())
}
