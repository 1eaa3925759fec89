//! Shared by the failure-behaviour tests: small misbehaving components in
//! WebAssembly text (compiled here with the `wat` crate), and running the
//! `siteboss` binary and checking a "could not run" outcome.

// Each test target uses some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `wasi:cli/run` lifted from a core function `run` of instance `$i`.
const RUN_EXPORT: &str = r#"
  (type $run-ty (func (result (result))))
  (func $run (type $run-ty) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run-instance))"#;

/// A component whose `run` has body `body` (a core function returning i32;
/// 0 is `ok`) in a module with one page of memory.
pub fn run_component(body: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory 1)
    (func (export "run") (result i32) {body}))
  (core instance $i (instantiate $m))
  {RUN_EXPORT})"#
    )
}

/// `run` executes `unreachable`.
pub fn traps_in_run() -> String {
    run_component("unreachable")
}

/// `run` never returns.
pub fn loops_in_run() -> String {
    run_component("(loop $forever (br $forever)) unreachable")
}

/// `run` grows its memory 1 MiB at a time for as long as growing succeeds.
pub fn grows_memory_in_run() -> String {
    run_component(
        "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) i32.const 0",
    )
}

/// Instantiates (one core instance with a memory) but exports nothing.
pub const NO_RUN: &str = r#"(component
  (core module $m (memory 1) (func (export "f")))
  (core instance $i (instantiate $m)))"#;

/// A core module's start function traps, so instantiation fails.
pub const START_TRAPS: &str = r#"(component
  (core module $m (func $start unreachable) (start $start))
  (core instance $i (instantiate $m)))"#;

/// The import this host does not provide.
pub const MISSING_IMPORT_NAME: &str = "wasi:keyvalue/store@0.2.0-draft";

/// Imports a `wasi:keyvalue/store` function (not provided here) and calls it in `run`.
pub fn imports_keyvalue() -> String {
    format!(
        r#"(component
  (import "{MISSING_IMPORT_NAME}" (instance $kv (export "handle" (func))))
  (core func $handle (canon lower (func $kv "handle")))
  (core instance $imports (export "handle" (func $handle)))
  (core module $m
    (import "http" "handle" (func $handle))
    (func (export "run") (result i32) call $handle i32.const 0))
  (core instance $i (instantiate $m (with "http" (instance $imports))))
  {RUN_EXPORT})"#
    )
}

/// `run` calls `wasi:cli/exit` with `ok` (`code` 0) or `err` (1).
pub fn exits_in_run(code: u32) -> String {
    format!(
        r#"(component
  (type $ty-exit (instance
    (type $status (result))
    (type $exit-ty (func (param "status" $status)))
    (export "exit" (func (type $exit-ty)))))
  (import "wasi:cli/exit@0.2.0" (instance $exit (type $ty-exit)))
  (core func $exit (canon lower (func $exit "exit")))
  (core instance $imports (export "exit" (func $exit)))
  (core module $m
    (import "cli" "exit" (func $exit (param i32)))
    (func (export "run") (result i32) (call $exit (i32.const {code})) unreachable))
  (core instance $i (instantiate $m (with "cli" (instance $imports))))
  {RUN_EXPORT})"#
    )
}

/// `run` sleeps for `nanos` on `wasi:clocks/monotonic-clock` (a host call,
/// where the epoch deadline cannot interrupt it), then returns `ok`.
pub fn sleeps_in_run(nanos: u64) -> String {
    format!(
        r#"(component
  (type $ty-poll (instance
    (export "pollable" (type $pollable (sub resource)))
    (type $borrow-pollable (borrow $pollable))
    (type $block-ty (func (param "self" $borrow-pollable)))
    (export "[method]pollable.block" (func (type $block-ty)))))
  (import "wasi:io/poll@0.2.0" (instance $poll (type $ty-poll)))
  (alias export $poll "pollable" (type $pollable))
  (type $ty-clock (instance
    (alias outer 1 $pollable (type $pollable-outer))
    (export "pollable" (type $p (eq $pollable-outer)))
    (type $own-pollable (own $p))
    (type $subscribe-ty (func (param "when" u64) (result $own-pollable)))
    (export "subscribe-duration" (func (type $subscribe-ty)))))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock (type $ty-clock)))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core instance $imports (export "subscribe" (func $subscribe)) (export "block" (func $block)))
  (core module $m
    (import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "block" (func $block (param i32)))
    (func (export "run") (result i32)
      (call $block (call $subscribe (i64.const {nanos})))
      i32.const 0))
  (core instance $i (instantiate $m (with "host" (instance $imports))))
  {RUN_EXPORT})"#
    )
}

/// `run` draws two `u64`s from `wasi:random/random` and two from
/// `wasi:random/insecure`, and traps when either pair is equal (a chance of
/// 2^-64 each for a working source); otherwise it returns `ok`.
pub fn draws_random_in_run() -> String {
    format!(
        r#"(component
  (type $ty-random (instance
    (type $u64-ty (func (result u64)))
    (export "get-random-u64" (func (type $u64-ty)))))
  (import "wasi:random/random@0.2.0" (instance $random (type $ty-random)))
  (type $ty-insecure (instance
    (type $u64-ty (func (result u64)))
    (export "get-insecure-random-u64" (func (type $u64-ty)))))
  (import "wasi:random/insecure@0.2.0" (instance $insecure (type $ty-insecure)))
  (core func $secure (canon lower (func $random "get-random-u64")))
  (core func $insecure (canon lower (func $insecure "get-insecure-random-u64")))
  (core instance $imports (export "secure" (func $secure)) (export "insecure" (func $insecure)))
  (core module $m
    (import "host" "secure" (func $secure (result i64)))
    (import "host" "insecure" (func $insecure (result i64)))
    (func (export "run") (result i32)
      (if (i64.eq (call $secure) (call $secure)) (then unreachable))
      (if (i64.eq (call $insecure) (call $insecure)) (then unreachable))
      i32.const 0))
  (core instance $i (instantiate $m (with "host" (instance $imports))))
  {RUN_EXPORT})"#
    )
}

/// A core module, not a component.
pub const CORE_MODULE: &str = r#"(module (func (export "_start")))"#;

/// `run` writes `writes` × 4 KiB of zeros to stdout, one
/// `blocking-write-and-flush` (at most 4 KiB each in WASI 0.2) at a time.
/// The import and lowering patterns are those of `assets/component.wat.in`.
pub fn writes_to_stdout(writes: u32) -> String {
    format!(
        r#"(component
  (type $ty-error (instance (export "error" (type (sub resource)))))
  (import "wasi:io/error@0.2.0" (instance $error-instance (type $ty-error)))
  (alias export $error-instance "error" (type $error))
  (type $ty-streams (instance
    (export "output-stream" (type $output-stream (sub resource)))
    (alias outer 1 $error (type $error-outer))
    (export "error" (type $error-local (eq $error-outer)))
    (type $own-error (own $error-local))
    (type $stream-error-def (variant (case "last-operation-failed" $own-error) (case "closed")))
    (export "stream-error" (type $stream-error (eq $stream-error-def)))
    (type $borrow-os (borrow $output-stream))
    (type $bytes (list u8))
    (type $write-result (result (error $stream-error)))
    (type $bwf (func (param "self" $borrow-os) (param "contents" $bytes) (result $write-result)))
    (export "[method]output-stream.blocking-write-and-flush" (func (type $bwf)))))
  (import "wasi:io/streams@0.2.0" (instance $streams (type $ty-streams)))
  (alias export $streams "output-stream" (type $output-stream))
  (type $ty-stdout (instance
    (alias outer 1 $output-stream (type $os-outer))
    (export "output-stream" (type $os (eq $os-outer)))
    (type $own-os (own $os))
    (type $get-stdout-ty (func (result $own-os)))
    (export "get-stdout" (func (type $get-stdout-ty)))))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout (type $ty-stdout)))

  (core module $memory-module (memory (export "memory") 1))
  (core instance $memory-instance (instantiate $memory-module))
  (alias core export $memory-instance "memory" (core memory $memory))
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $bwf (canon lower (func $streams "[method]output-stream.blocking-write-and-flush") (memory $memory)))

  (core module $m
    (import "env" "memory" (memory 1))
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "bwf" (func $bwf (param i32 i32 i32 i32)))
    (func (export "run") (result i32)
      (local $out i32) (local $n i32)
      (local.set $out (call $get-stdout))
      (loop $write
        ;; 4 KiB from address 0; the result goes to address 8192.
        (call $bwf (local.get $out) (i32.const 0) (i32.const 4096) (i32.const 8192))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br_if $write (i32.lt_u (local.get $n) (i32.const {writes}))))
      i32.const 0))
  (core instance $env (export "memory" (memory $memory)))
  (core instance $host (export "get-stdout" (func $get-stdout)) (export "bwf" (func $bwf)))
  (core instance $i (instantiate $m (with "env" (instance $env)) (with "host" (instance $host))))
  {RUN_EXPORT})"#
    )
}

/// Compiles `wat` (component or module text) and writes it to `dir/name`.
pub fn write_wat(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// How a `siteboss` process ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code, `None` when a signal ended it.
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// A `siteboss` command, with backtraces asked for, as a user's shell may.
pub fn siteboss_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_siteboss"));
    cmd.args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE");
    cmd
}

/// Runs `siteboss` with `args` to the end.
pub fn siteboss<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_to_end(&mut siteboss_command(args))
}

/// How long a test lets one `siteboss` run take before calling it a hang.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `cmd` to the end; a run that outlives [`HANG`] is killed and fails
/// the test, so a hang shows as a failure rather than a stuck suite.
pub fn run_to_end(cmd: &mut Command) -> Outcome {
    use std::process::Stdio;
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("siteboss starts");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(HANG) {
        Ok(out) => out.expect("siteboss is waited for"),
        Err(_) => {
            // SAFETY: the child is not reaped until its waiting thread returns.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("siteboss did not end within {HANG:?}: {cmd:?}");
        }
    };
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts no panic and no backtrace reached stderr.
pub fn assert_no_panic(out: &Outcome) {
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(
            !out.stderr.contains(bad),
            "{bad:?} on stderr: {}",
            out.stderr
        );
    }
}

/// Asserts the "could not run" outcome: exit code 2, exactly one stderr line
/// `Error: …` containing each of `expected`, no panic or backtrace, and no
/// `json` file that claims to be complete.
pub fn assert_could_not_run(out: &Outcome, json: &Path, expected: &[&str]) {
    assert_eq!(out.code, Some(2), "exit code; stderr: {}", out.stderr);
    assert_no_panic(out);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", out.stderr);
    assert!(lines[0].starts_with("Error: "), "{}", lines[0]);
    for e in expected {
        assert!(lines[0].contains(e), "expected {e:?} in: {}", lines[0]);
    }
    assert_not_complete(json);
}

/// Asserts `json` is absent, or marked partial.
pub fn assert_not_complete(json: &Path) {
    if let Ok(text) = std::fs::read_to_string(json) {
        let v: serde_json::Value = serde_json::from_str(&text).expect("the JSON file parses");
        assert_eq!(v["status"], "partial", "{}", json.display());
    }
}

/// Reads a result file written with `--json`.
pub fn read_result(json: &Path) -> siteboss::model::BenchmarkResult {
    let text = std::fs::read_to_string(json).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", json.display()))
}

/// A complete result file with every kind of section filled.
pub fn result_json() -> Vec<u8> {
    use siteboss::model::*;
    let s =
        |unit: Unit, m: f64| siteboss::stats::summarize_per_round(&[m * 0.99, m, m * 1.01], unit);
    let ns = |m: f64| s(Unit::Nanoseconds, m);
    let cold = ColdStartResult {
        in_process: ns(4e6),
        engine: ns(1e6),
        load: ns(2e6),
        instantiate: ns(1e4),
        run: Some(ns(2e3)),
        process: ns(6e6),
        process_peak_rss: s(Unit::Bytes, 2e7),
        repeated_in_parent: ns(3e6),
    };
    let r = BenchmarkResult {
        schema: SCHEMA_NAME.into(),
        schema_version: SCHEMA_VERSION,
        status: Status::Complete,
        status_reason: None,
        started_unix: 1,
        runner: siteboss::fingerprint::current(),
        runner_id: "proptest".into(),
        component: ComponentInfo {
            name: "embedded hello".into(),
            path: Some("/x/hello.wasm".into()),
            bytes: 1904,
            fnv1a64: "0123456789abcdef".into(),
            has_run: true,
            artifact_bytes: 9000,
            workload: Some("cli".into()),
            request: None,
            response: None,
        },
        settings: Settings {
            quick: true,
            rounds: 5,
            samples_per_round: 1000,
            cold_processes: 5,
            memory_rounds: 3,
            memory_points: vec![1, 10],
            throughput_seconds: 0.3,
            threads: vec![1, 2],
            engine_per_thread: false,
            max_instances: 20_000,
            max_memory_bytes: u64::MAX,
            min_available_bytes: 1 << 30,
            time_limit_seconds: 10.0,
            budget_seconds: None,
        },
        native: Some(NativeResult {
            command: "/bin/echo".into(),
            spawn: ns(5e5),
            rss_command: "/bin/cat".into(),
            rss: s(Unit::Bytes, 1e6),
            pss: Some(s(Unit::Bytes, 3e5)),
            private_dirty: Some(s(Unit::Bytes, 1e5)),
        }),
        prepare_seconds: None,
        configurations: vec![ConfigurationResult {
            allocator: Allocator::Pooling,
            config: vec!["allocator = pooling".into()],
            skipped: vec![Skipped {
                phase: "run".into(),
                reason: "why".into(),
            }],
            budgeted: Vec::new(),
            cold_start: Some(cold.clone()),
            cold_start_precompiled: Some(cold),
            warm_start: Some(ns(3e3)),
            warm_start_histogram: siteboss::stats::log_histogram(
                &[2.9e3, 3e3, 3.1e3],
                Unit::Nanoseconds,
                20,
            ),
            lifecycle: Some(LifecycleResult {
                total: ns(6e3),
                run: ns(1e3),
                drop: ns(2e3),
                histogram: siteboss::stats::log_histogram(
                    &[5.9e3, 6e3, 6.1e3],
                    Unit::Nanoseconds,
                    20,
                ),
            }),
            memory: Some(MemoryResult {
                runtime_rss: s(Unit::Bytes, 2e7),
                points: vec![MemoryPoint {
                    instances: 1,
                    rss: s(Unit::Bytes, 2e7),
                }],
                per_instance: s(Unit::Bytes, 12e3),
                page_faults_per_instance: Some(s(Unit::PageFaults, 3.0)),
                cut: vec![],
            }),
            density: Some(DensityResult {
                instances: 20_000,
                limit: Limit::MaxInstances,
                detail: "cap".into(),
                lift: Some("--max-instances N".into()),
                rss_bytes: 1,
                mappings: 60,
                bytes_per_instance: 12e3,
                available_bytes: 1 << 34,
                machine_estimate: 1,
                fill_seconds: 0.4,
                teardown_seconds: 0.2,
                all_cores: Some(AllCoresFill {
                    threads: 2,
                    own_process: true,
                    instances: 20_000,
                    limit: None,
                    detail: String::new(),
                    fill_seconds: 0.25,
                    teardown_seconds: 0.1,
                    bytes_per_instance: Some(11_900.0),
                }),
                heap_pages: "a 20 GiB region advised MADV_HUGEPAGE (transparent huge pages); the rest of the heap, and the other phases', on 4 KiB pages (THP `madvise`)".into(),
                trace: vec![
                    FillPoint {
                        seconds: 0.0,
                        instances: 1,
                        rss_bytes: 2e7 as u64,
                    },
                    FillPoint {
                        seconds: 0.4,
                        instances: 20_000,
                        rss_bytes: 26e7 as u64,
                    },
                ],
            }),
            throughput: vec![ThroughputResult {
                threads: 2,
                instantiations: s(Unit::PerSecond, 3e5),
                lifecycles: Some(s(Unit::PerSecond, 2e5)),
                engines: Some(1),
            }],
            counts: Some(CountsResult {
                instrument: Some("valgrind-3.19.0 --tool=callgrind".into()),
                cpu_seen: Some("Intel(R) Core(TM) i7-4910MQ CPU @ 2.90GHz (x86-64-v3)".into()),
                key: "x86_64-linux-x86-64-v3".into(),
                ops_per_block: 100,
                figures: Metric::counted()
                    .filter(|m| {
                        *m != Metric::MemoryPerInstance && *m != Metric::PageFaultsPerInstance
                    })
                    .map(|m| (m, s(m.unit(), 5e4)))
                    .collect(),
            }),
            phase_seconds: Default::default(),
            phase_steal: Default::default(),
            budget_scale: None,
        }],
    };
    serde_json::to_vec_pretty(&r).unwrap()
}
