//! The reports people look at: the HTML page with its charts, the Mermaid
//! charts of the job summary, and the exports to Bencher (BMF) and
//! github-action-benchmark, each checked against its documented schema,
//! written out below.

mod common;

use serde_json::{Value, json};
use siteboss::model::BenchmarkResult;
use std::process::Command;

/// The BMF JSON Schema as Bencher documents it (draft-07), verbatim in
/// substance: benchmark name → measure slug → {value, lower_value?, upper_value?}.
fn bmf_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema",
        "type": "object",
        "patternProperties": {
            ".+": {
                "type": "object",
                "patternProperties": {
                    ".+": {
                        "type": "object",
                        "properties": {
                            "value": {"type": "number"},
                            "lower_value": {"type": "number"},
                            "upper_value": {"type": "number"}
                        },
                        "required": ["value"]
                    }
                }
            }
        }
    })
}

/// github-action-benchmark's `customSmallerIsBetter` / `customBiggerIsBetter`
/// input: an array of {name, unit, value, range?, extra?}.
fn gab_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "unit": {"type": "string"},
                "value": {"type": "number"},
                "range": {"type": "string"},
                "extra": {"type": "string"}
            },
            "required": ["name", "unit", "value"],
            "additionalProperties": false
        }
    })
}

/// A validator for the JSON Schema keywords the two schemas above use:
/// `type`, `properties`, `patternProperties` (the pattern `.+` only),
/// `required`, `additionalProperties: false` and `items`. Returns every
/// violation with its JSON pointer.
fn validate(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            other => panic!("the validator does not know type {other}"),
        };
        if !ok {
            errors.push(format!("{at}: expected {t}, found {v}"));
            return;
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        let patterns = schema.get("patternProperties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = req.as_str().unwrap();
            if !obj.contains_key(key) {
                errors.push(format!("{at}: missing required `{key}`"));
            }
        }
        for (k, child) in obj {
            let path = format!("{at}/{k}");
            let mut matched = false;
            if let Some(s) = props.and_then(|p| p.get(k)) {
                matched = true;
                validate(s, child, &path, errors);
            }
            for (pattern, s) in patterns.into_iter().flatten() {
                assert_eq!(pattern, ".+", "the validator knows the pattern .+ only");
                if !k.is_empty() {
                    matched = true;
                    validate(s, child, &path, errors);
                }
            }
            if !matched && schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                errors.push(format!("{path}: not allowed"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            validate(items, item, &format!("{at}/{i}"), errors);
        }
    }
}

fn assert_valid(schema: &Value, v: &Value, what: &str) {
    let mut errors = Vec::new();
    validate(schema, v, "", &mut errors);
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

#[test]
fn the_validator_rejects_what_the_schemas_forbid() {
    let mut errors = Vec::new();
    validate(
        &bmf_schema(),
        &json!({"a": {"latency": {"lower_value": 1.0}}}),
        "",
        &mut errors,
    );
    validate(
        &bmf_schema(),
        &json!({"a": {"latency": {"value": "1"}}}),
        "",
        &mut errors,
    );
    validate(
        &gab_schema(),
        &json!([{"name": "a", "unit": "ns", "value": 1, "colour": "red"}]),
        "",
        &mut errors,
    );
    validate(&gab_schema(), &json!({"name": "a"}), "", &mut errors);
    assert_eq!(errors.len(), 4, "{errors:#?}");
    let mut none = Vec::new();
    validate(
        &bmf_schema(),
        &json!({"a": {"latency": {"value": 1.5, "upper_value": 2}}}),
        "",
        &mut none,
    );
    validate(
        &gab_schema(),
        &json!([{"name": "a", "unit": "ns", "value": 1, "range": "± 1"}]),
        "",
        &mut none,
    );
    assert!(none.is_empty(), "{none:#?}");
}

/// Checks that `html` is one well-formed document: every element opened is
/// closed in order (void elements aside), with nothing fetched from
/// anywhere. Returns the number of `<svg>` charts.
fn well_formed_offline_html(html: &str) -> usize {
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..80.min(html.len())]
    );
    const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    let mut svgs = 0;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("every tag is closed with >");
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(!name.is_empty(), "a tag without a name: <{tag}>");
        if tag.starts_with('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if tag.ends_with('/') || VOID.contains(&name.as_str()) {
            // Self-closing (SVG) or void.
        } else {
            if name == "svg" {
                svgs += 1;
            }
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "left open: {stack:?}");
    let lower = html.to_ascii_lowercase();
    for fetch in [
        "src=", "href=", "url(", "@import", "<script", "<link", "<iframe", "<object",
    ] {
        assert!(
            !lower.contains(fetch),
            "the page would fetch something: {fetch}"
        );
    }
    // The only URLs are the SVG namespace names, which no browser fetches.
    for (i, _) in lower.match_indices("http") {
        let url = &lower[i..(i + 40).min(lower.len())];
        assert!(
            url.starts_with("http://www.w3.org/"),
            "a URL in the page: {url}"
        );
    }
    assert!(
        !html.contains("could not be drawn"),
        "a chart failed to draw"
    );
    svgs
}

fn siteboss(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_siteboss"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("siteboss runs")
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "times optimized code only: run `cargo test --release`"
)]
fn a_quick_run_writes_the_html_page_mermaid_and_both_exports() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let out = siteboss(&[
        "benchmark",
        "--embedded",
        "cli",
        "--quick",
        "--max-instances",
        "3000",
        "--no-progress",
        "--json",
        &p("r.json"),
        "--markdown",
        &p("r.md"),
        "--html",
        &p("r.html"),
        "--bmf",
        &p("bmf.json"),
        "--github-action-benchmark",
        &p("gab.json"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The result keeps what the charts draw.
    let r = common::read_result(&dir.path().join("r.json"));
    for c in &r.configurations {
        let warm = c
            .warm_start_histogram
            .as_ref()
            .expect("warm-start histogram");
        assert_eq!(
            warm.total() as usize,
            c.warm_start.as_ref().unwrap().n,
            "{}",
            c.allocator
        );
        let life = c.lifecycle.as_ref().unwrap();
        assert_eq!(
            life.histogram
                .as_ref()
                .expect("lifecycle histogram")
                .total() as usize,
            life.total.n
        );
        let d = c.density.as_ref().unwrap();
        let last = d.trace.last().expect("a fill trace");
        assert_eq!(last.instances, d.instances, "the trace ends at the stop");
        assert!(
            d.trace
                .windows(2)
                .all(|w| w[0].seconds <= w[1].seconds && w[0].instances <= w[1].instances)
        );
        assert!(
            d.trace.len() < 200,
            "the trace stays small: {}",
            d.trace.len()
        );
    }
    let native = r.native.as_ref().expect("native phase");
    let dirty = native
        .private_dirty
        .as_ref()
        .expect("Private_Dirty from smaps_rollup");
    assert!(
        dirty.median > 0.0 && dirty.median < native.rss.median,
        "{dirty:?} vs {:?}",
        native.rss
    );

    // The page: every chart there and drawn, well-formed, offline.
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    let svgs = well_formed_offline_html(&html);
    assert_eq!(
        svgs, 6,
        "two latency charts, memory, fill, cold start, throughput"
    );
    for title in [
        "Warm start latency",
        "Request lifecycle latency",
        "Total memory for N live instances",
        "Concurrency phase: filling up to the limit",
        "Where cold start&#39;s time goes",
        "Throughput against threads",
        "page&apos;s WASM (cited)",
        "stop: --max-instances cap",
    ] {
        assert!(html.contains(title), "missing {title}");
    }
    // Every table of the terminal report is on the page.
    let doc = siteboss::report::document(&r);
    let tables: usize = doc.sections.iter().map(|s| s.tables.len()).sum();
    assert_eq!(html.matches("<table>").count(), tables);
    for s in &doc.sections {
        assert!(
            html.contains(&siteboss::report::html::escape(&s.title)),
            "{}",
            s.title
        );
    }
    // Like-for-like: the headline native ratio is on the lifecycle.
    assert!(html.contains("Request lifecycle (instantiate + run + drop, "));
    assert!(html.contains("Instantiation alone (no run, no drop; not like for like)"));

    let md = std::fs::read_to_string(dir.path().join("r.md")).unwrap();
    assert!(md.contains("```mermaid\nxychart-beta\n"), "{md}");
    assert!(
        md.contains("x-axis \"live instances (N)\" [\"1\", \"10\", \"100\", \"1000\"]"),
        "{md}"
    );

    // BMF: valid, every judged metric of every profile, intervals ordered.
    let bmf: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("bmf.json")).unwrap())
            .unwrap();
    assert_valid(&bmf_schema(), &bmf, "bmf.json");
    for name in [
        "siteboss/hello/pooling/warm-start",
        "siteboss/hello/on-demand/lifecycle",
        "siteboss/native/spawn-exit",
    ] {
        let m = bmf[name]["latency"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {bmf}"));
        let (lo, v, hi) = (
            m["lower_value"].as_f64().unwrap(),
            m["value"].as_f64().unwrap(),
            m["upper_value"].as_f64().unwrap(),
        );
        assert!(lo <= v && v <= hi && v > 0.0, "{name}: {m:?}");
    }
    assert!(
        bmf["siteboss/hello/pooling/throughput"]["throughput"]["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        bmf["siteboss/hello/pooling/memory-per-instance"]["memory-bytes"]["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // github-action-benchmark: two valid files, split by direction.
    let read = |n: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(n)).unwrap()).unwrap()
    };
    let smaller = read("gab.smaller-is-better.json");
    let bigger = read("gab.bigger-is-better.json");
    assert_valid(&gab_schema(), &smaller, "smaller");
    assert_valid(&gab_schema(), &bigger, "bigger");
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(names(&smaller).contains(&"siteboss/hello/pooling/warm-start".to_owned()));
    assert!(names(&bigger).contains(&"siteboss/hello/pooling/throughput".to_owned()));
    assert!(!names(&smaller).iter().any(|n| n.ends_with("/throughput")));
    assert!(!names(&bigger).iter().any(|n| n.ends_with("/warm-start")));
}

#[test]
fn compare_writes_its_ratio_chart_as_html_and_mermaid() {
    let dir = tempfile::tempdir().unwrap();
    let base: siteboss::model::BenchmarkResult =
        serde_json::from_slice(&common::result_json()).unwrap();
    let mut head = base.clone();
    for c in &mut head.configurations {
        c.warm_start = Some(siteboss::stats::summarize_per_round(
            &[6900.0, 6930.0, 6960.0],
            siteboss::model::Unit::Nanoseconds,
        ));
    }
    let write = |n: &str, r: &siteboss::model::BenchmarkResult| {
        let p = dir.path().join(n);
        std::fs::write(&p, serde_json::to_vec(r).unwrap()).unwrap();
        p.to_string_lossy().into_owned()
    };
    let (b, h) = (write("b.json", &base), write("h.json", &head));
    let html = dir.path().join("c.html");
    let out = siteboss(&[
        "compare",
        &b,
        &h,
        "--markdown",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a regression: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("```mermaid\nxychart-beta\n"), "{md}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(well_formed_offline_html(&page), 1);
    assert!(
        page.contains("pooling warm-start") && page.contains("regression"),
        "the regressed row is drawn"
    );
    assert!(page.contains("<table>"));

    // A path that cannot be written fails before anything is compared.
    let out = siteboss(&["compare", &b, &h, "--html", "/no/such/dir/c.html"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("Error: ") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "times optimized code only: run `cargo test --release`"
)]
fn ab_writes_its_ratio_chart_as_html() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("ab.html");
    let me = env!("CARGO_BIN_EXE_siteboss");
    let out = siteboss(&[
        "ab",
        me,
        me,
        "--allocator",
        "pooling",
        "--seconds",
        "3",
        "--min-pairs",
        "6",
        "--no-progress",
        "--markdown",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(well_formed_offline_html(&page), 1);
    for metric in [
        "pooling warm-start",
        "pooling lifecycle",
        "pooling throughput",
    ] {
        assert!(page.contains(metric), "{metric}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("```mermaid"));
}

/// Stolen CPU time is shown beside a phase's seconds, and a phase with much
/// of it earns a line that says timed figures from it read slow.
#[test]
fn where_the_time_went_shows_stolen_cpu_time() {
    let mut r: BenchmarkResult = serde_json::from_slice(&common::result_json()).unwrap();
    let c = &mut r.configurations[0];
    c.phase_seconds.insert("lifecycle".into(), 3.0);
    c.phase_seconds.insert("warm-start".into(), 2.0);
    c.phase_steal.insert("lifecycle".into(), 0.42);
    c.phase_steal.insert("warm-start".into(), 0.001);
    let doc = siteboss::report::document(&r);
    let time = doc
        .sections
        .iter()
        .find(|s| s.title == "Where the time went")
        .expect("a time section");
    let text = time.lines.join("\n");
    assert!(text.contains("lifecycle 3.0 s, 42% stolen"), "{text}");
    assert!(
        text.contains("warm-start 2.0 s)"),
        "below 1% is not shown: {text}"
    );
    assert!(
        text.contains("stole up to 42%") && text.contains("pooling: lifecycle"),
        "{text}"
    );
    // Without steal worth a line, there is none.
    r.configurations[0]
        .phase_steal
        .insert("lifecycle".into(), 0.02);
    let doc = siteboss::report::document(&r);
    let text = doc
        .sections
        .iter()
        .find(|s| s.title == "Where the time went")
        .unwrap()
        .lines
        .join("\n");
    assert!(text.contains("lifecycle 3.0 s, 2% stolen"), "{text}");
    assert!(!text.contains("stole up to"), "{text}");
}

/// `/proc/stat`'s first line gives stolen and total ticks; a share needs ticks
/// to have passed.
#[test]
fn proc_stat_steal_is_parsed() {
    use siteboss::measure::os::{parse_cpu_ticks, steal_share};
    let stat =
        "cpu  4441072 445742 506467 1389800 6050 0 16360 352334 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
    let t = parse_cpu_ticks(stat).unwrap();
    assert_eq!(
        t,
        (
            352334,
            4441072 + 445742 + 506467 + 1389800 + 6050 + 16360 + 352334
        )
    );
    assert_eq!(parse_cpu_ticks("cpu0 1 2 3 4 5 6 7 8\n"), None);
    assert_eq!(parse_cpu_ticks("cpu 1 2 3\n"), None);
    assert_eq!(parse_cpu_ticks("cpu 1 2 3 4 5 6 7 x\n"), None);
    assert_eq!(steal_share((10, 100), (30, 200)), Some(0.2));
    assert_eq!(steal_share((10, 100), (10, 100)), None);
    assert_eq!(steal_share((10, 100), (10, 50)), None);
}

/// A planned N the memory phase cut is named in the memory section with the
/// limit that cut it.
#[test]
fn a_memory_point_cut_by_its_budget_is_named_with_its_reason() {
    let mut r: BenchmarkResult = serde_json::from_slice(&common::result_json()).unwrap();
    let section = |r: &BenchmarkResult| {
        siteboss::report::document(r)
            .sections
            .into_iter()
            .find(|s| s.title == "Total memory for N instances")
            .expect("a memory section")
    };
    assert!(
        !section(&r).lines.join("\n").contains("not measured"),
        "nothing cut, nothing said"
    );
    r.configurations[0]
        .memory
        .as_mut()
        .unwrap()
        .cut
        .push(siteboss::model::CutPoint {
        instances: 1000,
        limit: siteboss::model::CutLimit::TimeBudget {
            lifecycle_seconds: 9e-4,
            round_seconds: 0.5,
        },
        reason:
            "time budget: 1000 instances at 900.0 µs each need about 0.950 s, a round has 0.500 s"
                .into(),
    });
    let s = section(&r);
    let text = s.lines.join("\n");
    assert!(
        text.contains("pooling: N = 1,000 not measured: time budget: 1000 instances"),
        "{text}"
    );
}

/// A native comparison is worded in the direction it goes: a realistic
/// component slower than a native spawn is "slower", never "0.25× faster".
#[test]
fn a_native_comparison_says_slower_or_more_when_it_is() {
    let mut r: BenchmarkResult = serde_json::from_slice(&common::result_json()).unwrap();
    let text = |r: &BenchmarkResult| siteboss::report::native_ratios(r).join("\n");
    let fast = text(&r);
    assert!(fast.contains("same run: 83.3× faster"), "{fast}");
    assert!(fast.contains("× less."), "{fast}");
    let c = &mut r.configurations[0];
    // A 2 ms lifecycle against the native 0.5 ms spawn; 400 KB against
    // the native process's 100 KB.
    c.lifecycle.as_mut().unwrap().total.median = 2e6;
    c.memory.as_mut().unwrap().per_instance.median = 4e5;
    let slow = text(&r);
    assert!(slow.contains("same run: 4.00× slower"), "{slow}");
    assert!(slow.contains(": 4.00× more."), "{slow}");
    assert!(!slow.contains("0.25×"), "{slow}");
}

/// Throughput measured with an engine per thread is exported as a series of
/// its own, so history tools never join it to the shared engine's.
#[test]
fn an_engine_per_thread_throughput_is_its_own_series() {
    let mut r: BenchmarkResult = serde_json::from_slice(&common::result_json()).unwrap();
    let names = |r: &BenchmarkResult| -> Vec<String> {
        siteboss::report::export::bmf(r)
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let shared = names(&r);
    assert!(
        shared.iter().any(|n| n.ends_with("/throughput")),
        "{shared:?}"
    );
    r.settings.engine_per_thread = true;
    let own = names(&r);
    assert!(
        own.iter()
            .any(|n| n.ends_with("/throughput-engine-per-thread")),
        "{own:?}"
    );
    assert!(!own.iter().any(|n| n.ends_with("/throughput")), "{own:?}");
    // Other figures keep their names.
    assert!(own.iter().any(|n| n.ends_with("/warm-start")), "{own:?}");
}

/// The all-cores fill says whether it ran in a process of its own; a file from
/// before that (no `own_process`) is read as a refill of the first pool, and
/// said to be so.
#[test]
fn an_all_cores_fill_says_whether_it_had_a_process_of_its_own() {
    let lines = |raw: &serde_json::Value| {
        let r: BenchmarkResult = serde_json::from_value(raw.clone()).unwrap();
        siteboss::report::document(&r)
            .sections
            .into_iter()
            .find(|s| s.title == "Concurrent capacity")
            .expect("a concurrency section")
            .lines
            .join("\n")
    };
    let mut raw: serde_json::Value = serde_json::from_slice(&common::result_json()).unwrap();
    let fresh = lines(&raw);
    assert!(
        fresh.contains("in a process of its own, as cold as the first fill's"),
        "{fresh}"
    );
    let all = raw["configurations"][0]["density"]["all_cores"]
        .as_object_mut()
        .unwrap();
    assert!(all.remove("own_process").is_some());
    let old = lines(&raw);
    assert!(
        old.contains("refilling its pool") && !old.contains("process of its own"),
        "{old}"
    );
    // The pages the fills' heap was on are named; a file from before they
    // were chosen names none.
    assert!(
        fresh.contains("the fills' heap: a 20 GiB region advised MADV_HUGEPAGE"),
        "{fresh}"
    );
    let d = raw["configurations"][0]["density"].as_object_mut().unwrap();
    assert!(d.remove("heap_pages").is_some());
    assert!(!lines(&raw).contains("fills' heap"));
}

/// The all-cores fill's memory per instance has a row of its own; a file
/// without it (from before it was kept) shows a dash there.
#[test]
fn the_all_cores_fill_memory_per_instance_is_a_row() {
    let cell = |raw: &serde_json::Value| {
        let r: BenchmarkResult = serde_json::from_value(raw.clone()).unwrap();
        let section = siteboss::report::document(&r)
            .sections
            .into_iter()
            .find(|s| s.title == "Concurrent capacity")
            .expect("a concurrency section");
        let row = section.tables[0]
            .rows
            .iter()
            .find(|row| row[0] == "Memory per instance over the 2-thread fill")
            .cloned()
            .expect("the row");
        row[1].clone()
    };
    let mut raw: serde_json::Value = serde_json::from_slice(&common::result_json()).unwrap();
    let with = cell(&raw);
    assert!(with.contains("KiB") || with.contains("KB"), "{with}");
    raw["configurations"][0]["density"]["all_cores"]
        .as_object_mut()
        .unwrap()
        .remove("bytes_per_instance");
    assert_eq!(cell(&raw), "—");
}
