//! `siteboss benchmark --component PATH` on files that are not a measurable
//! component, and on components that misbehave: every case ends with one
//! clear line or a measured failure, never a crash or a hang.

mod common;

use common::*;
use siteboss::component::ComponentSource;
use siteboss::engine::{InstanceError, Runtime, RuntimeOptions};
use siteboss::model::{Allocator, BenchmarkResult};
use std::path::{Path, PathBuf};

/// `benchmark --quick --no-native --component PATH --json DIR/out.json ARGS…`.
fn benchmark(dir: &Path, component: &Path, extra: &[&str]) -> (Outcome, PathBuf) {
    let json = dir.join("out.json");
    let mut args: Vec<std::ffi::OsString> = vec![
        "benchmark".into(),
        "--quick".into(),
        "--no-native".into(),
        "--no-progress".into(),
        "--component".into(),
        component.into(),
        "--json".into(),
        json.clone().into(),
    ];
    args.extend(extra.iter().map(Into::into));
    (siteboss(args), json)
}

/// Runs a file that cannot be measured and checks the one-line error names
/// the file and contains `cause`.
fn could_not_run(component: &Path, cause: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (out, json) = benchmark(dir.path(), component, &[]);
    let mut expected = vec![component.to_str().unwrap()];
    expected.extend(cause);
    assert_could_not_run(&out, &json, &expected);
}

/// Runs a component that can be measured despite misbehaving: exit 0, a
/// complete result.
fn measured(dir: &Path, component: &Path, extra: &[&str]) -> (Outcome, BenchmarkResult) {
    let (out, json) = benchmark(dir, component, extra);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_no_panic(&out);
    let r = read_result(&json);
    assert_eq!(
        r.status,
        siteboss::model::Status::Complete,
        "{:?}",
        r.status_reason
    );
    (out, r)
}

/// The reasons recorded for `phase` in every configuration.
fn skipped(r: &BenchmarkResult, phase: &str) -> Vec<String> {
    r.configurations
        .iter()
        .flat_map(|c| c.skipped.iter())
        .filter(|s| s.phase == phase)
        .map(|s| s.reason.clone())
        .collect()
}

/// Asserts that both allocators skipped `run`, each for a reason containing `cause`.
fn assert_run_skipped_for_both(r: &BenchmarkResult, cause: &str) {
    let why = skipped(r, "run");
    assert_eq!(
        why.len(),
        siteboss::model::Allocator::ALL.len(),
        "one per profile: {why:?}"
    );
    for w in &why {
        assert!(w.contains(cause), "{w}");
    }
}

// ---- could not run: exit 2 and one line naming the file and the cause ----

#[test]
fn a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    could_not_run(&dir.path().join("nothing-here.wasm"), &["no such file"]);
}

#[test]
fn a_directory() {
    let dir = tempfile::tempdir().unwrap();
    could_not_run(dir.path(), &["is a directory"]);
}

#[test]
fn a_file_whose_read_fails() {
    // Root may read any file, so no permission bit makes a read fail; reading
    // this process's memory from offset 0 does, with EIO.
    let dir = tempfile::tempdir().unwrap();
    let path = Path::new("/proc/self/mem");
    let (out, json) = benchmark(dir.path(), path, &[]);
    assert_could_not_run(
        &out,
        &json,
        &["/proc/self/mem: cannot be read: Input/output error"],
    );
    assert_eq!(
        out.stderr.matches("Input/output error").count(),
        1,
        "the cause is said once: {}",
        out.stderr
    );
}

#[test]
fn an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wasm");
    std::fs::write(&path, b"").unwrap();
    could_not_run(&path, &["is empty (0 bytes)"]);
}

#[test]
fn a_text_file_and_webassembly_text() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "these are my notes, not a component\n").unwrap();
    could_not_run(&text, &["is not WebAssembly (it looks like text)"]);
    let wat = dir.path().join("hello.wat");
    std::fs::write(&wat, NO_RUN).unwrap();
    could_not_run(
        &wat,
        &["is WebAssembly text, not binary", "wasm-tools parse"],
    );
}

#[test]
fn a_truncated_component() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.wasm");
    std::fs::write(&path, &siteboss::component::EMBEDDED_HELLO[..100]).unwrap();
    could_not_run(
        &path,
        &["is not a valid component", "unexpected end-of-file"],
    );
}

#[test]
fn random_bytes_with_and_without_a_component_header() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed xorshift sequence: the same bytes on every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert!(!random.starts_with(b"\0asm"));
    let path = dir.path().join("random.wasm");
    std::fs::write(&path, &random).unwrap();
    could_not_run(&path, &["is not WebAssembly"]);

    let mut headed = b"\0asm\x0d\0\x01\0".to_vec();
    headed.extend(&random);
    let path = dir.path().join("random-after-header.wasm");
    std::fs::write(&path, &headed).unwrap();
    could_not_run(&path, &["is not a valid component"]);
}

#[test]
fn a_core_module_is_named_and_the_fix_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "module.wasm", CORE_MODULE);
    could_not_run(
        &path,
        &[
            "is a core WebAssembly module, not a component",
            "wasm-tools component new",
            "wasm32-wasip2",
        ],
    );
}

#[test]
fn a_missing_import_is_named_with_the_way_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "keyvalue-client.wasm", &imports_keyvalue());
    could_not_run(
        &path,
        &[
            "imports something this host does not provide",
            MISSING_IMPORT_NAME,
            "--stub-missing-imports",
        ],
    );
}

#[test]
fn a_start_function_that_traps() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "start-traps.wasm", START_TRAPS);
    could_not_run(
        &path,
        &[
            "cannot be instantiated",
            "wasm `unreachable` instruction executed",
        ],
    );
}

#[test]
fn a_precompiled_artifact_and_a_native_binary() {
    let dir = tempfile::tempdir().unwrap();
    let source = ComponentSource::embedded();
    let options = RuntimeOptions::new(Allocator::Pooling);
    let (footprint, _) = Runtime::probe(&source, &options).unwrap();
    let artifact = Runtime::precompile(&source, &options, footprint).unwrap();
    let path = dir.path().join("hello.cwasm");
    std::fs::write(&path, artifact).unwrap();
    could_not_run(&path, &["is a precompiled Wasmtime artifact (.cwasm)"]);
    could_not_run(
        Path::new(env!("CARGO_BIN_EXE_siteboss")),
        &["is a native ELF executable or library, not WebAssembly"],
    );
}

// ---- measured, with the failure reported ----

#[test]
fn missing_imports_stubbed_are_measured_instantiate_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "keyvalue-client.wasm", &imports_keyvalue());
    let (_, r) = measured(
        dir.path(),
        &path,
        &[
            "--stub-missing-imports",
            "--allocator",
            "pooling",
            "--phases",
            "warm-start,lifecycle,concurrency",
            "--max-instances",
            "50",
        ],
    );
    let why = skipped(&r, "run");
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].contains(&format!(
            "`{MISSING_IMPORT_NAME}#handle` has not been defined"
        )) && why[0].contains("every phase instantiates without running"),
        "{}",
        why[0]
    );
    let c = &r.configurations[0];
    assert!(c.warm_start.is_some(), "instantiation is measured");
    assert!(c.lifecycle.is_none(), "run is not");
    assert_eq!(c.density.as_ref().unwrap().instances, 50);
}

#[test]
fn a_component_without_run_gets_the_instantiation_phases() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "library.wasm", NO_RUN);
    let (out, r) = measured(
        dir.path(),
        &path,
        &["--phases", "warm-start,lifecycle,throughput"],
    );
    assert!(!r.component.has_run);
    for c in &r.configurations {
        assert!(c.warm_start.is_some(), "{}", c.allocator);
        assert!(c.lifecycle.is_none(), "{}", c.allocator);
        assert!(!c.throughput.is_empty(), "{}", c.allocator);
        assert!(c.throughput.iter().all(|t| t.lifecycles.is_none()));
    }
    let why = skipped(&r, "run");
    assert_eq!(
        why.len(),
        siteboss::model::Allocator::ALL.len(),
        "one per profile: {why:?}"
    );
    assert!(
        why[0].contains("exports neither wasi:cli/run nor wasi:http/incoming-handler"),
        "{}",
        why[0]
    );
    assert!(
        out.stdout
            .contains("exports neither wasi:cli/run nor wasi:http/incoming-handler"),
        "the report says why"
    );
}

#[test]
fn a_trap_in_run_is_a_measured_failure_in_every_phase() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "traps.wasm", &traps_in_run());
    let (out, r) = measured(
        dir.path(),
        &path,
        &["--allocator", "pooling", "--max-instances", "200"],
    );
    let why = skipped(&r, "run");
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].contains("wasi:cli/run failed when probed")
            && why[0].contains("wasm `unreachable` instruction executed"),
        "{}",
        why[0]
    );
    let c = &r.configurations[0];
    // Only run is skipped (and counts, which --quick leaves out).
    assert_eq!(
        c.skipped.iter().filter(|s| s.phase != "counts").count(),
        1,
        "only run is skipped: {:?}",
        c.skipped
    );
    assert!(c.cold_start.is_some() && c.cold_start_precompiled.is_some());
    assert!(c.warm_start.is_some() && c.memory.is_some() && !c.throughput.is_empty());
    assert_eq!(c.density.as_ref().unwrap().instances, 200);
    assert!(c.lifecycle.is_none());
    assert!(out.stdout.contains("Not measured"), "{}", out.stdout);
    assert!(
        out.stdout.contains("instruction executed"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_run_that_never_returns_is_stopped_by_the_call_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "loops.wasm", &loops_in_run());
    let (out, r) = measured(
        dir.path(),
        &path,
        &["--call-timeout", "200", "--phases", "warm-start"],
    );
    assert_run_skipped_for_both(&r, "stopped after the 200 ms call timeout (epoch deadline)");
    assert!(out.stdout.contains("call timeout"), "{}", out.stdout);
}

#[test]
fn the_default_call_timeout_stops_a_run_that_never_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "loops.wasm", &loops_in_run());
    let source = ComponentSource::from_path(&path).unwrap();
    let options = RuntimeOptions::new(Allocator::Pooling);
    assert_eq!(options.call_timeout_ms, 1000, "the documented default");
    let (_, run_error) = Runtime::probe(&source, &options).unwrap();
    assert!(
        matches!(run_error, Some(InstanceError::Timeout(1000))),
        "{run_error:?}"
    );
}

#[test]
fn a_run_that_sleeps_for_an_hour_is_stopped_by_the_call_timeout() {
    // Blocked in a host call, where the epoch deadline cannot reach it.
    let dir = tempfile::tempdir().unwrap();
    let hour = 3600 * 1_000_000_000;
    let path = write_wat(dir.path(), "sleeps.wasm", &sleeps_in_run(hour));
    let (_, r) = measured(
        dir.path(),
        &path,
        &["--call-timeout", "200", "--phases", "warm-start"],
    );
    assert_run_skipped_for_both(&r, "stopped after the 200 ms call timeout");
}

#[test]
fn a_short_sleep_is_a_normal_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "naps.wasm", &sleeps_in_run(5_000_000));
    let source = ComponentSource::from_path(&path).unwrap();
    let options = RuntimeOptions::new(Allocator::Pooling);
    let (_, run_error) = Runtime::probe(&source, &options).unwrap();
    assert!(run_error.is_none(), "{run_error:?}");
}

/// A host thread inside its own current-thread tokio runtime's context: a
/// component's clock wait still ends, because calls into components enter
/// WASI's multi-thread runtime, whose worker drives the timer. On the
/// caller's runtime, `Handle::block_on` would wait forever for a timer
/// nobody drives (and the call timeout cannot cut a host `block_on`), so this
/// gives up after 60 s rather than hang.
#[test]
fn a_short_sleep_ends_inside_a_callers_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "naps.wasm", &sleeps_in_run(5_000_000));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let own = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _inside = own.enter();
        let source = ComponentSource::from_path(&path).unwrap();
        let options = RuntimeOptions::new(Allocator::Pooling);
        let outcome = Runtime::probe(&source, &options).map(|(_, run_error)| run_error);
        let _ = tx.send(format!("{outcome:?}"));
    });
    let outcome = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("a 5 ms sleep did not end within 60 s inside a current-thread runtime's context");
    assert_eq!(outcome, "Ok(None)");
}

/// WASI's random interfaces, served by this host's generator
/// (`host::KernelRandom`), give fresh values: two draws from each differ, so
/// `run` returns `ok`. A generator returning a constant made this fail.
#[test]
fn wasi_random_gives_fresh_values_from_both_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "random.wasm", &draws_random_in_run());
    let source = ComponentSource::from_path(&path).unwrap();
    for allocator in [Allocator::Pooling, Allocator::OnDemand] {
        let options = RuntimeOptions::new(allocator);
        let (_, run_error) = Runtime::probe(&source, &options).unwrap();
        assert!(run_error.is_none(), "{allocator:?}: {run_error:?}");
    }
}

#[test]
fn a_run_that_grows_memory_without_bound_is_stopped_by_the_store_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "grows.wasm", &grows_memory_in_run());
    let (out, r) = measured(
        dir.path(),
        &path,
        &["--instance-memory-limit", "4MiB", "--phases", "warm-start"],
    );
    assert_run_skipped_for_both(&r, "stopped by the store's memory limit of 4194304 bytes");
    assert!(out.stdout.contains("memory limit"), "{}", out.stdout);
}

#[test]
fn megabytes_of_stdout_are_counted_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let writes = 1024u32; // 4 MiB
    let path = write_wat(dir.path(), "chatty.wasm", &writes_to_stdout(writes));
    let source = ComponentSource::from_path(&path).unwrap();
    let options = RuntimeOptions {
        output_limit: 64 << 10,
        ..RuntimeOptions::new(Allocator::Pooling)
    };
    let (footprint, run_error) = Runtime::probe(&source, &options).unwrap();
    assert!(run_error.is_none(), "{run_error:?}");
    let rt = Runtime::compile(&source, &options, footprint).unwrap();
    let mut live = rt.instantiate().unwrap();
    rt.run(&mut live).expect("the writer never sees an error");
    let stdout = &live.store.data().stdout;
    assert_eq!(
        stdout.total(),
        u64::from(writes) * 4096,
        "every byte counted"
    );
    assert_eq!(stdout.contents().len(), 64 << 10, "only the limit kept");
}

#[test]
fn a_chatty_component_is_measured_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_wat(dir.path(), "chatty.wasm", &writes_to_stdout(256));
    let (_, r) = measured(
        dir.path(),
        &path,
        &[
            "--output-limit",
            "1KiB",
            "--allocator",
            "pooling",
            "--phases",
            "concurrency",
            "--max-instances",
            "20",
        ],
    );
    assert!(skipped(&r, "run").is_empty(), "its run succeeds");
    assert_eq!(r.configurations[0].density.as_ref().unwrap().instances, 20);
}

#[test]
fn a_relative_component_path_reaches_the_child_processes() {
    // Children run in a temporary directory; a relative path must still work.
    let dir = tempfile::tempdir().unwrap();
    write_wat(dir.path(), "relative.wasm", &traps_in_run());
    let json = dir.path().join("out.json");
    let out = run_to_end(
        siteboss_command([
            "benchmark",
            "--quick",
            "--no-native",
            "--no-progress",
            "--allocator",
            "pooling",
            "--phases",
            "memory,concurrency",
            "--max-instances",
            "20",
            "--component",
            "relative.wasm",
            "--json",
            "out.json",
        ])
        .current_dir(dir.path()),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let r = read_result(&json);
    let c = &r.configurations[0];
    assert!(c.memory.is_some() && c.density.is_some(), "{:?}", c.skipped);
}

#[test]
fn exit_ok_is_a_successful_run_and_exit_err_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let options = RuntimeOptions::new(Allocator::Pooling);
    let run = |code: u32| {
        let path = write_wat(dir.path(), &format!("exit{code}.wasm"), &exits_in_run(code));
        let source = ComponentSource::from_path(&path).unwrap();
        Runtime::probe(&source, &options).unwrap().1
    };
    assert!(run(0).is_none(), "{:?}", run(0));
    let err = run(1).expect("exit(err) fails the run").to_string();
    assert!(err.contains("exit status 1"), "{err}");
}
