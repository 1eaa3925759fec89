//! The sandbox every measured component runs in: a probe component tries to
//! read files, the environment, its arguments, the network and stdin, and
//! gets nothing.
//!
//! Its own test target, because it sets environment variables in this
//! process (to prove they do not leak), which must not race other tests.

use siteboss::component::ComponentSource;
use siteboss::engine::{Runtime, RuntimeOptions};
use siteboss::model::Allocator;
use std::path::Path;

/// The probe's output: one `name: OK …` or `name: DENIED …` line per attempt.
fn probe_output(allocator: Allocator) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tests/sandbox-probe/sandbox-probe.wasm");
    let source = ComponentSource::from_path(&path).expect("the probe is a component");
    let options = RuntimeOptions::new(allocator);
    let (footprint, run_error) = Runtime::probe(&source, &options).expect("it links");
    assert!(
        run_error.is_none(),
        "{allocator}: run failed: {run_error:?}"
    );
    let rt = Runtime::compile(&source, &options, footprint).expect("it compiles");
    let mut live = rt.instantiate().expect("it instantiates");
    rt.run(&mut live).expect("its run returns ok");
    let host = live.store.data();
    assert!(host.stderr.contents().is_empty(), "{allocator}: stderr");
    String::from_utf8(host.stdout.contents()).expect("utf-8")
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
}

#[test]
fn a_measured_component_gets_no_files_env_args_network_or_stdin() {
    // Set here, in this process, so a leak would show in the probe's output.
    // SAFETY: this is the only test of this binary; no other thread reads the
    // environment while it is written.
    unsafe {
        std::env::set_var("SITEBOSS_SANDBOX_SECRET", "must-not-leak");
        std::env::set_var("HOME", "/root-must-not-leak");
    }
    for allocator in Allocator::ALL {
        let out = probe_output(allocator);
        println!("{allocator}:\n{out}");
        assert!(
            !out.contains("must-not-leak"),
            "{allocator}: leaked:\n{out}"
        );
        assert_eq!(
            line(&out, "args"),
            "args: [\"sandbox-probe.wasm\"]",
            "{allocator}: only its name"
        );
        assert_eq!(line(&out, "env"), "env: []", "{allocator}: no environment");
        for name in [
            "read /etc/passwd",
            "list /",
            "list .",
            "create /tmp/sandbox-probe",
            "tcp connect 127.0.0.1:1",
            "udp bind 127.0.0.1:0",
            "resolve localhost",
        ] {
            assert!(
                line(&out, name).starts_with(&format!("{name}: DENIED ")),
                "{allocator}: {}",
                line(&out, name)
            );
        }
        // Refused by the host's socket policy, not merely unanswered.
        for name in ["tcp connect 127.0.0.1:1", "udp bind 127.0.0.1:0"] {
            assert!(
                line(&out, name).contains("Permission denied"),
                "{allocator}"
            );
        }
        assert_eq!(
            line(&out, "stdin"),
            "stdin: OK []",
            "{allocator}: empty stdin"
        );
    }
    assert!(
        !Path::new("/tmp/sandbox-probe").exists(),
        "the probe created a host file"
    );
}
