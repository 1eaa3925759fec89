//! HTTP handlers served as a host serves them: the embedded hello answers
//! 200, and every way a handler can fail is reported as that failure, never
//! as a fast success. `assets/tests/http-probe` chooses its behaviour from
//! the request path.

use siteboss::component::{ComponentSource, Embedded};
use siteboss::engine::{InstanceError, Runtime, RuntimeOptions};
use siteboss::http::{RequestSpec, Served};
use siteboss::model::Allocator;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn probe_component() -> ComponentSource {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tests/http-probe/http-probe.wasm");
    ComponentSource::from_path(&path).unwrap()
}

fn request(method: &str, path: &str) -> RequestSpec {
    RequestSpec {
        method: method.into(),
        path: path.into(),
        ..RequestSpec::default()
    }
}

/// Probes, builds a runtime and serves `spec` once to a fresh instance.
fn serve(
    source: &ComponentSource,
    allocator: Allocator,
    spec: RequestSpec,
) -> Result<Served, InstanceError> {
    let options = RuntimeOptions {
        request: spec,
        ..RuntimeOptions::new(allocator)
    };
    let (footprint, _) = Runtime::probe(source, &options).expect("it compiles and links");
    assert!(
        footprint.http && footprint.has_run,
        "detected as an HTTP handler"
    );
    let rt = Runtime::compile(source, &options, footprint).expect("the runtime builds");
    assert_eq!(rt.workload(), siteboss::engine::Workload::Http);
    rt.serve_once()
        .map(|s| s.expect("an HTTP handler reports what it served"))
}

fn failure(path: &str) -> String {
    match serve(&probe_component(), Allocator::Pooling, request("GET", path)) {
        Ok(s) => panic!("{path}: served {s:?}, expected a failure"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_embedded_http_hello_answers_200_under_both_allocators() {
    let source = ComponentSource::embedded_as(Embedded::Http);
    for allocator in Allocator::ALL {
        let served = serve(&source, allocator, RequestSpec::default()).unwrap();
        assert_eq!(served.status, 200, "{allocator}");
        assert_eq!(served.body, b"Hello, world!\n", "{allocator}");
        assert_eq!(served.body_bytes, 14);
        assert_eq!(served.headers, 1, "content-type");
    }
}

#[test]
fn a_non_2xx_status_is_a_failure_that_names_it() {
    let e = failure("/status/503");
    assert!(e.contains("503 (Service Unavailable), not 2xx"), "{e}");
    let e = failure("/status/404");
    assert!(e.contains("404 (Not Found)"), "{e}");
    let ok = serve(
        &probe_component(),
        Allocator::OnDemand,
        request("GET", "/status/204"),
    )
    .unwrap();
    assert_eq!(ok.status, 204, "any 2xx is a success");
}

#[test]
fn a_handler_that_traps_or_never_answers_is_a_failure() {
    let e = failure("/trap");
    assert!(e.contains("wasm trap") || e.contains("unreachable"), "{e}");
    let e = failure("/no-response");
    assert!(e.contains("without calling response-outparam.set"), "{e}");
    let e = failure("/abort");
    assert!(e.contains("body was aborted"), "{e}");
}

#[test]
fn a_body_of_many_writes_is_read_whole_while_the_handler_runs() {
    // 300 writes of 1 KiB: more than the host buffers without a reader, so
    // the rescuer thread reads while the handler is still writing.
    let started = Instant::now();
    let served = serve(
        &probe_component(),
        Allocator::Pooling,
        request("GET", "/chunks/300"),
    )
    .unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(served.body_bytes, 300 * 1024);
    // Not a timing goal: the call timeout is 1 s, and a handler stuck
    // waiting for a reader would have been stopped by it or hung.
    assert!(started.elapsed().as_secs() < 60);
    // A few writes fit the buffer and are read after `handle` returns.
    let small = serve(
        &probe_component(),
        Allocator::OnDemand,
        request("GET", "/chunks/10"),
    )
    .unwrap();
    assert_eq!(small.body_bytes, 10 * 1024);
}

#[test]
fn the_request_carries_method_headers_and_body() {
    let spec = RequestSpec {
        method: "POST".into(),
        path: "/echo".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{\"a\":1}".to_vec(),
    };
    let served = serve(&probe_component(), Allocator::Pooling, spec).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&served.body),
        "POST /echo headers=1 body=7"
    );
}

#[test]
fn outgoing_http_is_refused_with_a_clear_error() {
    let served = serve(
        &probe_component(),
        Allocator::Pooling,
        request("GET", "/outgoing"),
    )
    .unwrap();
    let body = String::from_utf8_lossy(&served.body);
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn the_cli_serves_the_request_it_is_given_and_reports_a_failing_status() {
    let probe =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tests/http-probe/http-probe.wasm");
    let out = Command::new(env!("CARGO_BIN_EXE_siteboss"))
        .args([
            "benchmark",
            "--quick",
            "--no-native",
            "--allocator",
            "pooling",
        ])
        .args(["--phases", "warm-start,lifecycle", "--no-progress"])
        .arg("--component")
        .arg(&probe)
        .args(["--request", "GET", "/status/503"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("503 (Service Unavailable), not 2xx"),
        "{text}"
    );
    assert!(text.contains("lifecycle phase is skipped"), "{text}");

    let out = Command::new(env!("CARGO_BIN_EXE_siteboss"))
        .args([
            "benchmark",
            "--quick",
            "--no-native",
            "--allocator",
            "pooling",
        ])
        .args(["--phases", "lifecycle", "--no-progress", "--json"])
        .arg("--component")
        .arg(&probe)
        .args(["--request", "POST", "/echo", "--header", "x-a: 1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: siteboss::model::BenchmarkResult = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r.component.request.as_deref(),
        Some("POST /echo with 1 header(s)")
    );
    assert_eq!(r.component.response.as_ref().map(|s| s.status), Some(200));
    assert!(r.configurations[0].lifecycle.is_some(), "measured");
}

#[test]
fn bad_request_options_are_one_line_before_anything_runs() {
    for (args, expected) in [
        (vec!["--request", "GE T", "/"], "not an HTTP method"),
        (vec!["--request", "GET", "index"], "must start with /"),
        (vec!["--header", "novalue"], "is not a header"),
        (
            vec!["--body", "/nonexistent/body.json"],
            "--body /nonexistent/body.json: cannot be read",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_siteboss"))
            .args([
                "benchmark",
                "--embedded",
                "http",
                "--quick",
                "--no-progress",
            ])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(out.stdout.is_empty());
    }
}
