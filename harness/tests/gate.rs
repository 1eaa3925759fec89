//! The regression gate: `cargo test --release --test gate`.
//!
//! One libtest-mimic trial per component, profile and metric, so `-- warm`
//! filters, `--list` lists and `--format json` works. Each trial measures
//! independent rounds and judges them: counted metrics against
//! `baselines/counts-<key>.snap`, timed ones against `baselines/<runner>.snap`,
//! with the tolerances in `baselines/tolerances.toml`. A trial that cannot
//! judge is reported as ignored, with its reason (see `siteboss::gate`).
//!
//! `SITEBOSS_RECORD=1` replaces the trials with one that measures every metric
//! and writes pending `baselines/<runner>.snap.new` and
//! `baselines/counts-<key>.snap.new` for `cargo insta review`.
//!
//! Measurement trials run one at a time (they would disturb each other), and
//! only in optimized builds: a debug build of Wasmtime is many times slower, so
//! judging it against a release baseline would be a false regression. In a
//! debug build every trial is listed but ignored, and a notice says why.

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// The `siteboss` binary's heap: the gate times warm start, lifecycle and
/// throughput in this process, so it must allocate as the binary does.
#[global_allocator]
static HEAP: siteboss::heap::Heap = siteboss::heap::Heap;
use siteboss::gate::{Gate, GateComponent, GateSettings, Judged};
use std::path::{Path, PathBuf};

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let settings = GateSettings::from_env(PathBuf::from(env!("CARGO_BIN_EXE_siteboss")), root);
    // The components under the gate: assets/components.toml, or the manifest
    // SITEBOSS_MANIFEST names.
    let manifest = std::env::var_os("SITEBOSS_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(siteboss::manifest::DEFAULT_MANIFEST));
    let components = match siteboss::manifest::load(&manifest) {
        Ok(entries) => entries.into_iter().map(GateComponent::from).collect(),
        Err(e) => {
            eprintln!("Error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let gate = match Gate::new(settings, components) {
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
    if let Err(reason) = &gate.settings.valgrind
        && !args.list
    {
        eprintln!("siteboss gate: instruction and system-call trials will be ignored: {reason}");
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
                format!(
                    "record::{}::{}",
                    gate.settings.runner, gate.settings.counts_key
                ),
                move || record(&gate),
            )
            .with_ignored_flag(!optimized),
        ]
    } else {
        gate.trials()
            .into_iter()
            .map(|t| {
                let run = t.run;
                Trial::ignorable_test(t.name, move || match run() {
                    Ok(Judged::Passed) => Ok(Completion::Completed),
                    Ok(Judged::Ignored(reason)) => Ok(Completion::ignored_with(reason)),
                    Err(msg) => Err(Failed::from(msg)),
                })
                .with_ignored_flag(!optimized)
            })
            .collect()
    };
    libtest_mimic::run(&args, trials).exit_code()
}

/// Measures every metric and writes pending snapshots for review.
fn record(gate: &Gate) -> Result<(), Failed> {
    let s = &gate.settings;
    for kind in [siteboss::model::Kind::Timed, siteboss::model::Kind::Counted] {
        siteboss::baseline::path_for(&s.baseline_dir, kind, s.key(kind))
            .map_err(|e| e.to_string())?;
    }
    let (bodies, left_out) = gate.record(None).map_err(|e| format!("{e:#}"))?;
    for body in bodies {
        if body.components.is_empty() {
            continue;
        }
        let json = serde_json::to_string_pretty(&body).map_err(|e| e.to_string())?;
        let name = Gate::snapshot_name(&body);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&s.baseline_dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_info(&siteboss::baseline::fingerprint_fields(&s.fingerprint));
        settings.set_description(format!(
            "siteboss gate baseline, {} figures for {}: medians of {} rounds, with the rounds; see README.md, \"Updating the baseline\"",
            siteboss::baseline::kind_name(body.kind),
            body.key,
            body.rounds
        ));
        // insta writes `<name>.snap.new` and panics when the snapshot differs;
        // for a recording that pending file is the success case.
        // Its panic is expected here: silence the hook so no backtrace is printed.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            settings.bind(|| insta::assert_snapshot!(name.clone(), json))
        }));
        std::panic::set_hook(hook);
        let current = s.baseline_dir.join(format!("{name}.snap"));
        let pending = s.baseline_dir.join(format!("{name}.snap.new"));
        match outcome {
            Ok(()) => println!("the baseline {} already matches this machine's figures", current.display()),
            Err(_) if pending.exists() => println!(
                "pending baseline written: {}\n  review it with `cargo insta review` (or accept with `cargo insta accept`, or `mv {} {}`)",
                pending.display(),
                pending.display(),
                current.display()
            ),
            Err(_) => return Err("insta did not write a pending snapshot; set INSTA_UPDATE=new (CI disables writes by default)".into()),
        }
    }
    for line in &left_out {
        println!("not recorded: {line}");
    }
    Ok(())
}
