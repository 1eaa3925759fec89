//! `siteboss benchmark --quick --json` on the real embedded component: the
//! schema, and the invariants a user would notice.

mod common;

use common::{run_to_end, siteboss_command};
use siteboss::model::{BenchmarkResult, Limit, SCHEMA_NAME, SCHEMA_VERSION, Status, Summary};
use std::process::Command;

fn positive(name: &str, s: &Summary) {
    assert!(s.n > 0, "{name}: no samples");
    for (what, v) in [
        ("median", s.median),
        ("p25", s.p25),
        ("p75", s.p75),
        ("min", s.min),
        ("max", s.max),
    ] {
        assert!(v.is_finite() && v > 0.0, "{name}: {what} = {v}");
    }
    assert!(
        s.min <= s.p25 && s.p25 <= s.median && s.median <= s.p75 && s.p75 <= s.max,
        "{name}: {s:?}"
    );
}

#[test]
fn quick_json_run_of_both_hello_worlds_is_complete_and_sane() {
    // The default run measures both embedded hello worlds, the CLI command and
    // the HTTP handler, and writes one result per component.
    let out = Command::new(env!("CARGO_BIN_EXE_siteboss"))
        .args(["benchmark", "--quick", "--json", "--max-instances", "5000"])
        .output()
        .expect("siteboss runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}; stderr: {stderr}",
        out.status
    );
    let raw: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is JSON and nothing else");
    let items = raw.as_array().expect("an array: one result per component");
    assert_eq!(items.len(), 2, "the CLI and the HTTP hello");
    for (i, raw) in items.iter().enumerate() {
        check_result(raw.clone(), i == 0);
    }
    let http: BenchmarkResult = serde_json::from_value(items[1].clone()).unwrap();
    assert_eq!(http.component.workload.as_deref(), Some("http"));
    assert_eq!(http.component.request.as_deref(), Some("GET /"));
    let response = http
        .component
        .response
        .as_ref()
        .expect("the response is reported");
    assert_eq!(response.status, 200);
    assert_eq!(response.body_bytes, "Hello, world!\n".len() as u64);
    let cli: BenchmarkResult = serde_json::from_value(items[0].clone()).unwrap();
    assert_eq!(cli.component.workload.as_deref(), Some("cli"));
    assert!(cli.component.response.is_none());
}

fn check_result(raw: serde_json::Value, first: bool) {
    for key in [
        "schema",
        "schema_version",
        "status",
        "runner",
        "runner_id",
        "component",
        "settings",
        "configurations",
    ] {
        assert!(raw.get(key).is_some(), "missing top-level key {key}");
    }
    let r: BenchmarkResult = serde_json::from_value(raw).expect("the documented schema");
    assert_eq!(r.schema, SCHEMA_NAME);
    assert_eq!(r.schema_version, SCHEMA_VERSION);
    assert_eq!(r.status, Status::Complete, "{:?}", r.status_reason);
    assert!(!r.runner.cpu_model.is_empty() && r.runner.cores > 0 && r.runner.memory_bytes > 0);
    assert!(
        r.runner.wasmtime_version.starts_with("48."),
        "{}",
        r.runner.wasmtime_version
    );
    assert!(r.settings.quick);
    if !first {
        assert!(
            r.native.is_none(),
            "the native process is measured once, with the first component"
        );
        for c in &r.configurations {
            check_configuration(c);
        }
        return;
    }
    assert_eq!(
        r.component.bytes as usize,
        siteboss::component::EMBEDDED_HELLO.len()
    );

    let native = r
        .native
        .as_ref()
        .expect("the native process is measured in the same run");
    positive("native spawn", &native.spawn);
    positive("native rss", &native.rss);

    assert_eq!(
        r.configurations.len(),
        siteboss::model::Allocator::ALL.len(),
        "every profile by default"
    );
    for c in &r.configurations {
        check_configuration(c);
    }
}

fn check_configuration(c: &siteboss::model::ConfigurationResult) {
    {
        let a = c.allocator;
        assert!(
            c.skipped.iter().all(|s| s.phase == "counts"),
            "{a}: skipped {:?}",
            c.skipped
        );
        assert!(!c.config.is_empty(), "{a}: the configuration is printed");
        for (name, cold) in [
            ("cold", c.cold_start.as_ref()),
            ("cold precompiled", c.cold_start_precompiled.as_ref()),
        ] {
            let cold = cold.unwrap_or_else(|| panic!("{a}: {name} missing"));
            positive(name, &cold.in_process);
            positive(name, &cold.process);
            assert!(
                cold.process.median > cold.in_process.median,
                "{a}: a whole process takes longer than its inside"
            );
        }
        positive("warm", c.warm_start.as_ref().expect("warm start"));
        let life = c.lifecycle.as_ref().expect("lifecycle");
        positive("lifecycle", &life.total);
        assert!(life.total.rounds.len() >= 3, "judgeable rounds are kept");

        let mem = c.memory.as_ref().expect("memory");
        positive("runtime rss", &mem.runtime_rss);
        positive("per instance", &mem.per_instance);
        // One row per N of the page, unless the phase's budget or the
        // machine's memory cut an N, which the result must then say.
        let mut ns: Vec<usize> = mem.points.iter().map(|p| p.instances).collect();
        ns.extend(mem.cut.iter().map(|c| c.instances));
        ns.sort_unstable();
        assert_eq!(
            ns,
            vec![1, 10, 100, 1000],
            "{a}: every N of the page, measured or cut"
        );
        assert!(mem.points.len() >= 2, "{a}: a slope needs two N");
        let life_seconds = c.lifecycle.as_ref().expect("lifecycle").total.median * 1e-9;
        for cut in &mem.cut {
            assert!(
                !cut.reason.is_empty(),
                "{a}: N = {} cut unexplained",
                cut.instances
            );
            if let siteboss::model::CutLimit::TimeBudget {
                lifecycle_seconds,
                round_seconds,
            } = cut.limit
            {
                // Cut because N lifecycles at the estimate overran the
                // round, and the estimate is the component's pace, not one
                // preempted sample (which once read milliseconds for a
                // 30 µs lifecycle and cut N = 1,000 here).
                assert!(
                    cut.instances as f64 * lifecycle_seconds > round_seconds - 0.05,
                    "{a}: {cut:?}"
                );
                assert!(
                    lifecycle_seconds <= 10.0 * life_seconds,
                    "{a}: estimate {lifecycle_seconds} s against a lifecycle median of {life_seconds} s: {cut:?}"
                );
            }
        }
        for w in mem.points.windows(2) {
            assert!(
                w[1].rss.median >= w[0].rss.median,
                "{a}: total memory must not fall as N grows: {w:?}"
            );
        }

        let d = c.density.as_ref().expect("density");
        assert!(d.instances > 0);
        assert!(!d.detail.is_empty(), "{a}: the limit is explained");
        if a == siteboss::model::Allocator::Pooling {
            assert_eq!(d.limit, Limit::MaxInstances, "{a}: {}", d.detail);
            assert_eq!(d.instances, 5000);
        } else {
            assert!(
                matches!(d.limit, Limit::MaxInstances | Limit::MapCount),
                "{a}: {:?}",
                d.limit
            );
        }
        assert!(d.rss_bytes > 0 && d.bytes_per_instance > 0.0 && d.machine_estimate > 0);
        // The all-cores fill made as many instances as the first fill
        // unless it names what stopped it, and it started as cold as the
        // first: it gained about as much resident memory per instance. A
        // second fill in the first fill's process, even in a freshly loaded
        // runtime, gained 58%, 65% and 86% of the first's (pooling,
        // pooling-cow, on-demand, --quick: the heap kept its pages); in a
        // process of its own, 100.2%.
        let all = d.all_cores.as_ref().expect("all-cores fill");
        assert!(all.own_process && all.threads >= 1, "{a}: {all:?}");
        assert!(
            all.instances == d.instances || all.limit.is_some(),
            "{a}: {all:?} against {}",
            d.instances
        );
        let gained = all
            .bytes_per_instance
            .expect("resident growth per instance");
        assert!(
            gained >= 0.95 * d.bytes_per_instance,
            "{a}: the all-cores fill gained {gained:.0} B per instance, the first {:.0} B: it was not as cold as the first",
            d.bytes_per_instance
        );

        assert_eq!(c.throughput.iter().map(|t| t.threads).min(), Some(1));
        for t in &c.throughput {
            positive("instantiations/s", &t.instantiations);
            positive("lifecycles/s", t.lifecycles.as_ref().expect("lifecycles/s"));
        }
        sanity_bounds(c);
    }
}

/// Relations between figures that must hold whatever the machine: cheap
/// checks that a phase measures what its name says.
fn sanity_bounds(c: &siteboss::model::ConfigurationResult) {
    let a = c.allocator;
    let warm = c.warm_start.as_ref().unwrap().median;
    let life = c.lifecycle.as_ref().unwrap();
    // A lifecycle instantiates, runs and drops: it cannot be quicker than the
    // instantiation alone.
    assert!(
        life.total.median >= warm,
        "{a}: lifecycle {} < warm start {warm}",
        life.total.median
    );
    // Run and drop are timed on their own, in another loop; together they
    // are part of a lifecycle (with slack for the separate loops' noise).
    assert!(
        life.run.median + life.drop.median <= 1.5 * life.total.median,
        "{a}: run {} + drop {} vs lifecycle {}",
        life.run.median,
        life.drop.median,
        life.total.median
    );
    // One thread completes about 1/lifecycle lifecycles per second.
    let one = c.throughput.iter().find(|t| t.threads == 1).unwrap();
    let rate = one.lifecycles.as_ref().unwrap().median;
    let expected = 1e9 / life.total.median;
    // Above: a rate cannot beat 1/lifecycle by much. Below, only a loose
    // bound: the rate counts wall time, so a machine whose other work takes
    // most of the core (seen here: 30k/s against 1/lifecycle = 85k/s while
    // two builds ran) slows it, while the lifecycle's median does not move.
    assert!(
        rate > expected / 8.0 && rate < expected * 2.0,
        "{a}: 1 thread ran {rate}/s, 1/lifecycle is {expected}/s"
    );
    // A live instance holds at least its one page of linear memory, and at
    // most its memory slot plus a generous 64 KiB of store and VM context.
    let per = c.memory.as_ref().unwrap().per_instance.median;
    assert!(
        (4096.0..=(65536.0 + 65536.0)).contains(&per),
        "{a}: {per} bytes per instance"
    );
    // Counts: a lifecycle is a warm start, a run and a drop, so its
    // instructions are their sum (each counted in its own block) to within
    // a few percent; and a pooled or on-demand instance takes some page
    // faults to come alive.
    // --quick leaves the counts phase out unless --phases names it.
    match c.counts.as_ref() {
        Some(counts) => count_bounds(c, counts),
        None => assert!(
            c.skipped
                .iter()
                .any(|s| s.phase == "counts" && s.reason.contains("not in --quick")),
            "{a}: {:?}",
            c.skipped
        ),
    }
    let faults = c
        .memory
        .as_ref()
        .unwrap()
        .page_faults_per_instance
        .as_ref()
        .expect("page faults per instance")
        .median;
    assert!(
        (1.0..=64.0).contains(&faults),
        "{a}: {faults} page faults per live instance"
    );
}

/// A lifecycle's instructions are its parts' sum, and loading costs more
/// than instantiating.
fn count_bounds(c: &siteboss::model::ConfigurationResult, counts: &siteboss::model::CountsResult) {
    use siteboss::model::Metric;
    let a = c.allocator;
    let n = |m: Metric| {
        counts
            .figures
            .get(&m)
            .unwrap_or_else(|| panic!("{a}: no {m}"))
            .median
    };
    let sum =
        n(Metric::InstructionsWarmStart) + n(Metric::InstructionsRun) + n(Metric::InstructionsDrop);
    let whole = n(Metric::InstructionsLifecycle);
    assert!(
        (sum - whole).abs() <= 0.03 * whole,
        "{a}: warm start + run + drop = {sum} instructions, lifecycle = {whole}"
    );
    assert!(n(Metric::InstructionsDeserialize) > n(Metric::InstructionsFirstInstantiate));
    assert!(n(Metric::SyscallsLifecycle) >= 0.0 && n(Metric::PageFaultsLifecycle) >= 0.0);
}

#[test]
fn markdown_and_terminal_reports_mark_cited_figures() {
    // Render a real quick result without re-running: parse the JSON of a tiny run.
    let out = quick_pooled(&["--markdown", "--max-instances", "1000", "--no-native"])
        .output()
        .expect("siteboss runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("## siteboss benchmark"), "{md}");
    assert!(md.contains("| Docker (cited) |"), "{md}");
    assert!(
        md.contains("~100 ms [2]"),
        "cited figures carry their footnote"
    );
    assert!(
        md.contains("[2] Docker, as the page cites it"),
        "footnotes list the sources"
    );
    assert!(md.contains("### Total memory for N instances"));
    assert!(md.contains("### Concurrent capacity"));
    assert!(md.contains("### Runner"));
}

/// `siteboss benchmark --quick` of the embedded CLI hello, pooled profile,
/// then `extra` arguments.
fn quick_pooled(extra: &[&str]) -> Command {
    let mut args = vec![
        "benchmark",
        "--embedded",
        "cli",
        "--quick",
        "--allocator",
        "pooling",
    ];
    args.extend_from_slice(extra);
    siteboss_command(args)
}

/// [`quick_pooled`] of only `phases`, JSON on stdout, then `extra` arguments.
fn quick_pooled_json(phases: &str, extra: &[&str]) -> Command {
    let mut args = vec![
        "--phases",
        phases,
        "--no-native",
        "--no-progress",
        "--json",
        "-",
    ];
    args.extend_from_slice(extra);
    quick_pooled(&args)
}

#[test]
fn the_heap_is_chosen_by_the_environment_and_named_in_the_result() {
    let run = |value: Option<&str>| {
        let mut cmd = quick_pooled_json("warm-start,cold-start", &[]);
        match value {
            Some(v) => cmd.env(siteboss::heap::ENV, v),
            None => cmd.env_remove(siteboss::heap::ENV),
        };
        run_to_end(&mut cmd)
    };
    // A value that names no allocator: one line, exit 2, nothing measured.
    let bad = run(Some("jemalloc"));
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    assert!(
        bad.stderr
            .starts_with("Error: SITEBOSS_MALLOC=\"jemalloc\" is not an allocator"),
        "{}",
        bad.stderr
    );
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    // The default and the system allocator both measure (the cold start
    // runs in child processes, which inherit the choice), and the result
    // names the heap the measuring process really chose (a binary without
    // the global allocator would say "not installed").
    let system = if cfg!(target_env = "gnu") {
        "glibc malloc "
    } else {
        "the C library's malloc"
    };
    for (value, named) in [(None, "mimalloc 2."), (Some("system"), system)] {
        let out = run(value);
        assert_eq!(out.code, Some(0), "{value:?}: {}", out.stderr);
        let r: BenchmarkResult = serde_json::from_str(&out.stdout).unwrap();
        assert!(
            r.runner.heap_allocator.starts_with(named),
            "{value:?}: {}",
            r.runner.heap_allocator
        );
        assert_eq!(
            r.runner.heap_allocator.contains("SITEBOSS_MALLOC=system"),
            value.is_some(),
            "{}",
            r.runner.heap_allocator
        );
        let c = &r.configurations[0];
        assert!(
            c.warm_start.is_some() && c.cold_start.is_some(),
            "{:?}",
            c.skipped
        );
    }
}

/// `--engine-per-thread` gives each thread of a multi-thread throughput
/// round a runtime of its own; without it they share one. The result and the
/// report say which.
#[test]
fn throughput_threads_share_one_engine_unless_given_one_each() {
    let run = |own: bool| {
        let extra: &[&str] = if own { &["--engine-per-thread"] } else { &[] };
        let out = run_to_end(&mut quick_pooled_json("throughput", extra));
        assert_eq!(out.code, Some(0), "{out:?}");
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
        let one = match v {
            serde_json::Value::Array(mut a) => a.remove(0),
            v => v,
        };
        serde_json::from_value::<BenchmarkResult>(one).expect("the documented schema")
    };
    for own in [false, true] {
        let r = run(own);
        assert_eq!(r.settings.engine_per_thread, own);
        let c = &r.configurations[0];
        let threads: Vec<usize> = c.throughput.iter().map(|t| t.threads).collect();
        assert_eq!(threads, r.settings.threads, "a row per thread count");
        for t in &c.throughput {
            positive("lifecycles/s", t.lifecycles.as_ref().expect("lifecycles/s"));
            let expected = if own { t.threads } else { 1 };
            assert_eq!(t.engines, Some(expected), "own={own}: {t:?}");
        }
        let text = siteboss::report::document(&r)
            .sections
            .iter()
            .find(|s| s.title == "Throughput")
            .expect("a throughput section")
            .lines
            .join("\n");
        let said = if own {
            "had an engine, pool and loaded component of its own"
        } else {
            "share one engine"
        };
        assert!(text.contains(said), "{text}");
    }
}
