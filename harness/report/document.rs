//! The report's content: which sections and tables a result becomes.

use super::chart::{self, Chart};
use super::cited::{self, Cited, HEADLINE, SOURCES, TOTAL_MEMORY};
use super::format::{bytes, count, median, ratio, smaller_by, spread, time};
use crate::model::{Allocator, BenchmarkResult, ConfigurationResult, Status, Summary};

/// A rendered-agnostic report.
#[derive(Debug, Clone)]
pub struct Document {
    /// The report's title line.
    pub title: String,
    /// Its sections, in order.
    pub sections: Vec<Section>,
}

/// A titled section: tables, then lines of text.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// Tables, in order.
    pub tables: Vec<Table>,
    /// Lines of text after the tables.
    pub lines: Vec<String>,
    /// Charts after the lines (drawn by the HTML page; the Markdown job
    /// summary draws those Mermaid can show; the terminal leaves them out).
    pub charts: Vec<Chart>,
}

/// A table: a header row and rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

fn cite(c: Cited) -> String {
    format!("{} [{}]", c.text, c.source)
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "—".into())
}

fn config(r: &BenchmarkResult, a: Allocator) -> Option<&ConfigurationResult> {
    r.configurations.iter().find(|c| c.allocator == a)
}

/// The measured WASM columns present in the result, production profile first.
fn wasm_columns(r: &BenchmarkResult) -> Vec<&ConfigurationResult> {
    Allocator::ALL
        .iter()
        .filter_map(|&a| config(r, a))
        .collect()
}

fn column_name(c: &ConfigurationResult) -> String {
    format!("WASM {} (measured)", c.allocator)
}

fn all_cores(c: &ConfigurationResult) -> Option<&crate::model::ThroughputResult> {
    c.throughput.iter().max_by_key(|t| t.threads)
}

/// Builds the report for `r`.
pub fn document(r: &BenchmarkResult) -> Document {
    let status = match r.status {
        Status::Complete => String::new(),
        Status::Partial => format!(
            " — PARTIAL: {}",
            r.status_reason
                .as_deref()
                .unwrap_or("some phases did not finish")
        ),
    };
    let title = format!(
        "siteboss benchmark: {} ({} bytes) on {}{status}",
        r.component.name,
        count(r.component.bytes),
        r.runner_id
    );
    let mut sections = vec![
        headline(r),
        profiles(r),
        total_memory(r),
        cold_warm(r),
        concurrency(r),
        throughput(r),
    ];
    if let Some(c) = counts_section(r) {
        sections.push(c);
    }
    if let Some(n) = native_section(r) {
        sections.push(n);
    }
    sections.push(runner(r));
    sections.push(configuration(r));
    let skipped: Vec<String> = r
        .configurations
        .iter()
        .flat_map(|c| {
            c.skipped
                .iter()
                .map(move |s| format!("{} / {}: {}", c.allocator, s.phase, s.reason))
        })
        .collect();
    let target = r
        .settings
        .budget_seconds
        .as_ref()
        .and_then(|b| b.get(RUN_TARGET_KEY))
        .map_or_else(|| "time".to_owned(), |s| format!("{s:.0} s"));
    let scaled = r.configurations.iter().filter_map(|c| {
        c.budget_scale.map(|f| {
            format!(
                "{}: every timed phase's budget scaled to {:.0}% so the run ends within its {target} target (from the component's compile and lifecycle times for the first profile, from the profiles already run for the others)",
                c.allocator,
                f * 100.0,
            )
        })
    });
    let cuts = r.configurations.iter().flat_map(|c| {
        c.budgeted.iter().map(move |b| {
            format!(
                "{} / {}: {} {} of target {}: time budget ({:.2} s)",
                c.allocator,
                b.phase,
                count(b.taken as u64),
                b.what,
                count(b.target as u64),
                b.budget_seconds
            )
        })
    });
    let budgeted: Vec<String> = scaled.chain(cuts).collect();
    if !budgeted.is_empty() {
        sections.push(Section {
            title: "Fewer samples than planned".into(),
            lines: budgeted,
            ..Default::default()
        });
    }
    if let Some(t) = time_section(r) {
        sections.push(t);
    }
    if !skipped.is_empty() {
        sections.push(Section {
            title: "Not measured".into(),
            lines: skipped,
            ..Default::default()
        });
    }
    sections.push(Section {
        title: "Sources of cited figures".into(),
        lines: SOURCES
            .iter()
            .enumerate()
            .map(|(i, s)| format!("[{}] {s}", i + 1))
            .collect(),
        ..Default::default()
    });
    Document { title, sections }
}

/// The key of the whole run's time target in `Settings::budget_seconds`.
pub const RUN_TARGET_KEY: &str = "whole run";

/// Steal shown beside a phase's seconds from this share up.
const STEAL_SHOWN: f64 = 0.01;
/// Steal that earns a line of its own.
const STEAL_WARNED: f64 = 0.05;

/// Where the run's wall-clock time went: probing and compiling, then each
/// profile's phases, longest first. `None` for a result without timings
/// (one written before they were recorded).
fn time_section(r: &BenchmarkResult) -> Option<Section> {
    let mut lines = Vec::new();
    if let Some(s) = r.prepare_seconds {
        lines.push(format!("probing and compiling for every profile: {s:.1} s"));
    }
    for c in &r.configurations {
        if c.phase_seconds.is_empty() {
            continue;
        }
        let mut phases: Vec<(&String, &f64)> = c.phase_seconds.iter().collect();
        phases.sort_by(|a, b| b.1.total_cmp(a.1));
        let total: f64 = phases.iter().map(|(_, s)| **s).sum();
        lines.push(format!(
            "{}: {total:.1} s ({})",
            c.allocator,
            phases
                .iter()
                .map(|(p, s)| match c.phase_steal.get(*p) {
                    Some(st) if *st >= STEAL_SHOWN => {
                        format!("{p} {s:.1} s, {:.0}% stolen", st * 100.0)
                    }
                    _ => format!("{p} {s:.1} s"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let worst = r
        .configurations
        .iter()
        .flat_map(|c| c.phase_steal.iter().map(move |(p, s)| (c.allocator, p, *s)))
        .max_by(|a, b| a.2.total_cmp(&b.2));
    if let Some((allocator, phase, steal)) = worst.filter(|w| w.2 >= STEAL_WARNED) {
        lines.push(format!(
            "The hypervisor stole up to {:.0}% of this machine's CPU time during a phase \
             ({allocator}: {phase}): timed figures from such phases read slow; counted ones do not.",
            steal * 100.0
        ));
    }
    (!lines.is_empty()).then(|| Section {
        title: "Where the time went".into(),
        lines,
        ..Default::default()
    })
}

/// The profile this run recommends for its component, and why.
///
/// Candidates are the pooling profiles whose warm start and lifecycle medians
/// are no worse than on-demand's in the same run (every latency figure that
/// was measured for both); of those, the one with the least memory per
/// instance, then the most concurrent instances, then the fastest lifecycle.
/// When no pooling profile qualifies, on-demand is recommended. `None` when
/// the run measured neither latency figure.
pub fn recommended(r: &BenchmarkResult) -> Option<(Allocator, String)> {
    let latency = |c: &ConfigurationResult| {
        [
            c.warm_start.as_ref().map(|s| s.median),
            c.lifecycle.as_ref().map(|l| l.total.median),
        ]
    };
    let measured = |c: &ConfigurationResult| latency(c).iter().any(Option::is_some);
    let on_demand = config(r, Allocator::OnDemand);
    let pooled: Vec<&ConfigurationResult> = wasm_columns(r)
        .into_iter()
        .filter(|c| c.allocator.is_pooling() && measured(c))
        .collect();
    let no_worse = |c: &ConfigurationResult| match on_demand {
        None => true,
        Some(d) => latency(c)
            .iter()
            .zip(latency(d))
            .all(|(p, d)| match (p, d) {
                (Some(p), Some(d)) => *p <= d,
                _ => true,
            }),
    };
    let key = |c: &ConfigurationResult| {
        (
            c.memory
                .as_ref()
                .map_or(f64::INFINITY, |m| m.per_instance.median),
            -(c.density.as_ref().map_or(0, |d| d.instances) as f64),
            c.lifecycle
                .as_ref()
                .map_or(f64::INFINITY, |l| l.total.median),
        )
    };
    let best = pooled.iter().filter(|c| no_worse(c)).min_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match (best, on_demand) {
        (Some(c), _) => Some((
            c.allocator,
            "no slower than on-demand on warm start and lifecycle in this run, and of those the least memory per instance".into(),
        )),
        (None, Some(d)) if measured(d) => Some((
            Allocator::OnDemand,
            "every pooling profile was slower than on-demand on warm start or lifecycle in this run".into(),
        )),
        _ => None,
    }
}

/// Which profile wins on latency, memory and density, with the figures, and
/// which one the run recommends.
fn profiles(r: &BenchmarkResult) -> Section {
    let cols = wasm_columns(r);
    let mut lines = Vec::new();
    let mut win = |what: &str,
                   figure: &dyn Fn(&ConfigurationResult) -> Option<f64>,
                   show: &dyn Fn(f64) -> String,
                   lower: bool| {
        let measured: Vec<(Allocator, f64)> = cols
            .iter()
            .filter_map(|c| {
                figure(c)
                    .filter(|v| v.is_finite())
                    .map(|v| (c.allocator, v))
            })
            .collect();
        let best = measured.iter().copied().min_by(|a, b| {
            let o = a.1.total_cmp(&b.1);
            if lower { o } else { o.reverse() }
        });
        if let Some((a, _)) = best {
            lines.push(format!(
                "{what}: {a} wins ({})",
                measured
                    .iter()
                    .map(|(b, v)| format!("{b} {}", show(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    win(
        "Latency, warm start",
        &|c| c.warm_start.as_ref().map(|s| s.median),
        &time,
        true,
    );
    win(
        "Latency, lifecycle",
        &|c| c.lifecycle.as_ref().map(|l| l.total.median),
        &time,
        true,
    );
    win(
        "Memory per instance",
        &|c| c.memory.as_ref().map(|m| m.per_instance.median),
        &bytes,
        true,
    );
    win(
        "Density (most concurrent instances)",
        &|c| c.density.as_ref().map(|d| d.instances as f64),
        &|v| count(v as u64),
        false,
    );
    match recommended(r) {
        Some((a, why)) => lines.push(format!("Recommended for this component: {a}: {why}.")),
        None => lines.push("No profile recommended: no latency figure was measured.".into()),
    }
    for c in &cols {
        if let Some(slot) = c.config.iter().find(|l| l.starts_with("memory slot")) {
            lines.push(format!("{}: {slot}", c.allocator));
        }
    }
    Section {
        title: "Which profile".into(),
        lines,
        ..Default::default()
    }
}

fn headline(r: &BenchmarkResult) -> Section {
    let cols = wasm_columns(r);
    let mut header = vec!["Metric".to_owned()];
    header.extend(cols.iter().map(|c| column_name(c)));
    header.push("Native process (measured)".into());
    header.push(format!(
        "Page's WASM (cited; a {} component)",
        cited::PAGE_COMPONENT_BYTES.text
    ));
    header.extend(["Docker (cited)", "Firecracker (cited)", "smolvm (cited)"].map(String::from));
    let native = r.native.as_ref();
    let mut rows = Vec::new();
    let mut row = |name: &str,
                   wasm: &dyn Fn(&ConfigurationResult) -> Option<String>,
                   native: String,
                   i: Option<usize>| {
        let mut cells = vec![name.to_owned()];
        cells.extend(cols.iter().map(|c| or_dash(wasm(c))));
        cells.push(native);
        match i.map(|i| &HEADLINE[i]) {
            Some(h) => cells.extend([
                cite(h.page_wasm),
                cite(h.docker),
                cite(h.firecracker),
                cite(h.smolvm),
            ]),
            None => cells.extend(std::iter::repeat_n("—".to_owned(), 4)),
        }
        rows.push(cells);
    };
    row(
        "Startup (warm start: instantiate only)",
        &|c| c.warm_start.as_ref().map(median),
        "—".into(),
        Some(0),
    );
    row(
        "Request lifecycle (instantiate + run + drop; native: spawn + exit)",
        &|c| c.lifecycle.as_ref().map(|l| median(&l.total)),
        or_dash(native.map(|n| median(&n.spawn))),
        None,
    );
    row(
        "Memory per instance (slope over N; native: Private_Dirty of a live process)",
        &|c| c.memory.as_ref().map(|m| median(&m.per_instance)),
        or_dash(native.map(|n| match &n.private_dirty {
            Some(d) => median(d),
            None => format!("{} (VmRSS; no smaps_rollup)", median(&n.rss)),
        })),
        Some(1),
    );
    row(
        "Max concurrent (here: reached on this host)",
        &|c| {
            c.density
                .as_ref()
                .map(|d| format!("{} ({})", count(d.instances), d.limit.name()))
        },
        "—".into(),
        Some(2),
    );
    row(
        "Throughput (lifecycles/s, all cores)",
        &|c| {
            all_cores(c)
                .and_then(|t| t.lifecycles.as_ref().or(Some(&t.instantiations)))
                .map(median)
        },
        "—".into(),
        Some(3),
    );
    row(
        "Isolation model",
        &|_| Some("language sandbox (WASI)".into()),
        "OS process".into(),
        Some(4),
    );
    let mut lines = vec![
        "Measured columns are medians from this run; cited columns are the page's figures with their sources below, not measured here.".to_owned(),
        format!(
            "Component difference: this run measured {} ({} bytes); the page measured a {} component. Every comparison with the page's column compares different components.",
            r.component.name,
            count(r.component.bytes),
            cited::PAGE_COMPONENT_BYTES.text
        ),
    ];
    lines.extend(native_ratios(r));
    for c in &cols {
        if let Some(d) = &c.density {
            lines.push(format!(
                "{}: machine estimate (available RAM {} / {} per instance) = {} instances.",
                c.allocator,
                bytes(d.available_bytes as f64),
                bytes(d.bytes_per_instance),
                count(d.machine_estimate)
            ));
        }
    }
    Section {
        title: "Headline".into(),
        tables: vec![Table { header, rows }],
        lines,
        charts: Vec::new(),
    }
}

/// The like-for-like native comparisons: a native process's spawn and exit
/// against a WASM request's whole lifecycle (each starts, prints
/// `Hello, world!` and is gone), with instantiation alone beside it,
/// labelled; and a native process's private memory against the WASM slope.
pub fn native_ratios(r: &BenchmarkResult) -> Vec<String> {
    let mut lines = Vec::new();
    // The recommended profile's figures (the pooling one when none is).
    let a = recommended(r).map_or(Allocator::Pooling, |x| x.0);
    let (Some(p), Some(n)) = (config(r, a), r.native.as_ref()) else {
        return lines;
    };
    match (&p.lifecycle, &p.warm_start) {
        (Some(l), w) => lines.push(format!(
            "Request lifecycle (instantiate + run + drop, {a}) vs native process spawn + exit, same run: {} ({} vs {}).{}",
            smaller_by(n.spawn.median, l.total.median, "faster", "slower"),
            median(&l.total),
            median(&n.spawn),
            w.as_ref()
                .map(|w| format!(
                    " Instantiation alone (no run, no drop; not like for like): {} ({}).",
                    smaller_by(n.spawn.median, w.median, "faster", "slower"),
                    median(w)
                ))
                .unwrap_or_default()
        )),
        (None, Some(w)) => lines.push(format!(
            "No lifecycle was measured (the component has no run), so there is no like-for-like native ratio; instantiation alone vs native spawn + exit: {} ({} vs {}).",
            smaller_by(n.spawn.median, w.median, "faster", "slower"),
            median(w),
            median(&n.spawn)
        )),
        (None, None) => {}
    }
    if let (Some(m), Some(d)) = (&p.memory, &n.private_dirty) {
        lines.push(format!(
            "Memory: a live native process's Private_Dirty {} (Pss {}, VmRSS {} with shared libc pages) vs {} per further live instance ({a}): {}.",
            median(d),
            or_dash(n.pss.as_ref().map(median)),
            median(&n.rss),
            median(&m.per_instance),
            smaller_by(d.median, m.per_instance.median, "less", "more")
        ));
    }
    lines
}

fn total_memory(r: &BenchmarkResult) -> Section {
    let cols = wasm_columns(r);
    let mut header = vec!["Instances".to_owned()];
    header.extend(
        cols.iter()
            .map(|c| format!("WASM {} total RSS", c.allocator)),
    );
    header.extend(["Page's WASM (cited)", "Docker (cited)"].map(String::from));
    let mut ns: Vec<usize> = cols
        .iter()
        .filter_map(|c| c.memory.as_ref())
        .flat_map(|m| m.points.iter().map(|p| p.instances))
        .collect();
    ns.sort_unstable();
    ns.dedup();
    let rows = ns
        .iter()
        .map(|&n| {
            let mut cells = vec![count(n as u64)];
            cells.extend(cols.iter().map(|c| {
                or_dash(
                    c.memory
                        .as_ref()
                        .and_then(|m| m.points.iter().find(|p| p.instances == n))
                        .map(|p| median(&p.rss)),
                )
            }));
            let cited_row = TOTAL_MEMORY.iter().find(|t| t.0 == n);
            cells.push(or_dash(cited_row.map(|t| cite(t.1))));
            cells.push(or_dash(cited_row.map(|t| cite(t.2))));
            cells
        })
        .collect();
    let mut lines = Vec::new();
    for c in &cols {
        if let Some(m) = &c.memory {
            lines.push(format!(
                "{}: runtime alone (engine + component, no instance) {}; each further live instance {} (least-squares slope over N, per round: {}).",
                c.allocator,
                median(&m.runtime_rss),
                median(&m.per_instance),
                m.per_instance.rounds.iter().map(|v| bytes(*v)).collect::<Vec<_>>().join(", ")
            ));
            for cut in &m.cut {
                lines.push(format!(
                    "{}: N = {} not measured: {}.",
                    c.allocator,
                    count(cut.instances as u64),
                    cut.reason
                ));
            }
        }
    }
    lines.push("Each total is the resident memory of a fresh process holding N live instances that have each run once; the median over fresh processes.".into());
    Section {
        title: "Total memory for N instances".into(),
        tables: vec![Table { header, rows }],
        lines,
        charts: chart::memory_vs_n(r).into_iter().collect(),
    }
}

fn cold_warm(r: &BenchmarkResult) -> Section {
    let cols = wasm_columns(r);
    let mut header = vec!["Phase".to_owned()];
    header.extend(cols.iter().map(|c| c.allocator.to_string()));
    header.push("Page (cited)".into());
    let mut rows = Vec::new();
    let mut row =
        |name: &str, f: &dyn Fn(&ConfigurationResult) -> Option<&Summary>, cited: String| {
            let mut cells = vec![name.to_owned()];
            cells.extend(cols.iter().map(|c| or_dash(f(c).map(spread))));
            cells.push(cited);
            rows.push(cells);
        };
    row(
        "Cold start from .wasm: engine + compile + instantiate + run (fresh process)",
        &|c| c.cold_start.as_ref().map(|s| &s.in_process),
        cite(cited::PAGE_COLD_START),
    );
    row(
        "  engine",
        &|c| c.cold_start.as_ref().map(|s| &s.engine),
        "—".into(),
    );
    row(
        "  compile + link",
        &|c| c.cold_start.as_ref().map(|s| &s.load),
        "—".into(),
    );
    row(
        "  first instantiate",
        &|c| c.cold_start.as_ref().map(|s| &s.instantiate),
        "—".into(),
    );
    row(
        "  first run",
        &|c| c.cold_start.as_ref().and_then(|s| s.run.as_ref()),
        "—".into(),
    );
    row(
        "  whole process, spawn to exit",
        &|c| c.cold_start.as_ref().map(|s| &s.process),
        cite(cited::DOCKER_COLD_START) + " Docker",
    );
    row(
        "  repeated in one process",
        &|c| c.cold_start.as_ref().map(|s| &s.repeated_in_parent),
        "—".into(),
    );
    row(
        "Cold start from precompiled artifact (fresh process)",
        &|c| c.cold_start_precompiled.as_ref().map(|s| &s.in_process),
        "—".into(),
    );
    row(
        "  deserialize + link",
        &|c| c.cold_start_precompiled.as_ref().map(|s| &s.load),
        "—".into(),
    );
    row(
        "  whole process, spawn to exit",
        &|c| c.cold_start_precompiled.as_ref().map(|s| &s.process),
        "—".into(),
    );
    row(
        "  repeated in one process",
        &|c| {
            c.cold_start_precompiled
                .as_ref()
                .map(|s| &s.repeated_in_parent)
        },
        "—".into(),
    );
    row(
        "Warm start: instantiate (InstancePre, fresh Store + WASI)",
        &|c| c.warm_start.as_ref(),
        cite(cited::PAGE_WARM_START),
    );
    row(
        "Request lifecycle: instantiate + run + drop",
        &|c| c.lifecycle.as_ref().map(|l| &l.total),
        "—".into(),
    );
    row(
        "  run alone",
        &|c| c.lifecycle.as_ref().map(|l| &l.run),
        "—".into(),
    );
    row(
        "  drop alone",
        &|c| c.lifecycle.as_ref().map(|l| &l.drop),
        "—".into(),
    );
    let mut lines = vec![
        "Cells: median [p25–p75] n=samples. Cold starts run in fresh child processes of this binary and are timed inside them; \"whole process\" adds process creation, as a host spawning a runtime would see it.".to_owned(),
    ];
    for c in &cols {
        if let Some(l) = &c.lifecycle {
            lines.push(format!(
                "{}: lifecycle p99 {}.",
                c.allocator,
                time(l.total.p99)
            ));
        }
        for (name, s) in [
            ("warm start", c.warm_start.as_ref()),
            ("lifecycle", c.lifecycle.as_ref().map(|l| &l.total)),
        ] {
            if let Some(s) = s
                && s.outliers > 0
            {
                lines.push(format!(
                        "{}: {} of {} {name} samples are outliers (modified z-score > 3.5); kept in every figure.",
                        c.allocator, s.outliers, s.n
                    ));
            }
        }
    }
    Section {
        title: "Cold start vs warm start".into(),
        tables: vec![Table { header, rows }],
        lines,
        charts: [
            chart::latency(r, false),
            chart::latency(r, true),
            chart::cold_start(r),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// `12.34 s (5.6 µs each)`.
fn seconds_each(seconds: f64, n: u64) -> String {
    if n == 0 {
        return format!("{seconds:.2} s");
    }
    format!("{seconds:.2} s ({:.1} µs each)", seconds * 1e6 / n as f64)
}

fn concurrency(r: &BenchmarkResult) -> Section {
    let cols = wasm_columns(r);
    let mut header = vec!["".to_owned()];
    header.extend(cols.iter().map(|c| c.allocator.to_string()));
    let mut rows = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&crate::model::DensityResult) -> String| {
        let mut cells = vec![name.to_owned()];
        cells.extend(cols.iter().map(|c| or_dash(c.density.as_ref().map(f))));
        rows.push(cells);
    };
    row("Live instances reached", &|d| count(d.instances));
    row("Stopped by", &|d| d.limit.name().to_owned());
    row("Resident memory at the stop", &|d| {
        bytes(d.rss_bytes as f64)
    });
    row("Memory mappings at the stop", &|d| count(d.mappings));
    row("Memory per instance over the 1-thread fill", &|d| {
        bytes(d.bytes_per_instance)
    });
    row("Available RAM at the start", &|d| {
        bytes(d.available_bytes as f64)
    });
    row("Machine estimate (available / per instance)", &|d| {
        count(d.machine_estimate)
    });
    row("Time to create them, 1 thread", &|d| {
        seconds_each(d.fill_seconds, d.instances)
    });
    row("Time to tear them all down, 1 thread", &|d| {
        seconds_each(d.teardown_seconds, d.instances)
    });
    let cores = |d: &crate::model::DensityResult| d.all_cores.as_ref().map_or(0, |a| a.threads);
    let threads = cols
        .iter()
        .filter_map(|c| c.density.as_ref())
        .map(cores)
        .max()
        .unwrap_or(0);
    if threads > 0 {
        row(&format!("Time to create them, {threads} threads"), &|d| {
            or_dash(d.all_cores.as_ref().filter(|a| a.instances > 0).map(|a| {
                let short = if a.instances < d.instances {
                    format!(", {} instances", count(a.instances))
                } else {
                    String::new()
                };
                format!("{}{short}", seconds_each(a.fill_seconds, a.instances))
            }))
        });
        row(
            &format!("Time to tear them all down, {threads} threads"),
            &|d| {
                or_dash(
                    d.all_cores
                        .as_ref()
                        .filter(|a| a.instances > 0)
                        .map(|a| seconds_each(a.teardown_seconds, a.instances)),
                )
            },
        );
        row(
            &format!("Memory per instance over the {threads}-thread fill"),
            &|d| {
                or_dash(
                    d.all_cores
                        .as_ref()
                        .and_then(|a| a.bytes_per_instance)
                        .map(bytes),
                )
            },
        );
    }
    let mut lines = Vec::new();
    for c in &cols {
        if let Some(d) = &c.density {
            lines.push(format!("{}: {}.", c.allocator, d.detail));
            if let Some(l) = &d.lift {
                lines.push(format!("{}: to lift it: {l}", c.allocator));
            }
            if !d.heap_pages.is_empty() {
                lines.push(format!(
                    "{}: the fills' heap: {}.",
                    c.allocator, d.heap_pages
                ));
            }
            if let Some(a) = &d.all_cores {
                let stop = match a.limit {
                    Some(limit) if a.instances == 0 => {
                        format!("made no instance: {} ({})", limit.name(), a.detail)
                    }
                    Some(limit) => format!("stopped by {} ({})", limit.name(), a.detail),
                    None => "reached the 1-thread fill's count".to_owned(),
                };
                lines.push(format!(
                    "{}: the {}-thread fill ({}; each thread keeps and drops its own instances) {stop}.",
                    c.allocator,
                    a.threads,
                    match (a.own_process, c.allocator.is_pooling()) {
                        (true, _) => "in a process of its own, as cold as the first fill's",
                        (false, true) => "in the first fill's process, refilling its pool, whose pages stayed resident: not like for like with the first fill",
                        (false, false) => "in the first fill's process, whose heap kept its pages: not like for like with the first fill",
                    }
                ));
            }
        }
    }
    lines.push(format!(
        "The page (cited): {}.",
        cite(cited::PAGE_CONCURRENT)
    ));
    Section {
        title: "Concurrent capacity".into(),
        tables: vec![Table { header, rows }],
        lines,
        charts: chart::fill(r).into_iter().collect(),
    }
}

fn throughput(r: &BenchmarkResult) -> Section {
    let mut header = vec![
        "Allocator".to_owned(),
        "Threads".into(),
        "Instantiations/s".into(),
        "Lifecycles/s".into(),
    ];
    header.push("vs 1 thread".into());
    let mut rows = Vec::new();
    for c in wasm_columns(r) {
        let one = c.throughput.iter().find(|t| t.threads == 1);
        for t in &c.throughput {
            let scale = match (one, t.threads) {
                (Some(o), n) if n > 1 => {
                    let pick = |x: &crate::model::ThroughputResult| {
                        x.lifecycles.as_ref().unwrap_or(&x.instantiations).median
                    };
                    ratio(pick(t) / pick(o))
                }
                _ => "—".into(),
            };
            rows.push(vec![
                c.allocator.to_string(),
                t.threads.to_string(),
                spread(&t.instantiations),
                or_dash(t.lifecycles.as_ref().map(spread)),
                scale,
            ]);
        }
    }
    let mut lines = vec![format!(
        "Each cell: median over rounds of completed operations per second, all threads together; n=rounds. The page (cited): {}.",
        cite(HEADLINE[3].page_wasm)
    )];
    // What the multi-thread rows ran in, as each row recorded it.
    let multi = || {
        wasm_columns(r)
            .into_iter()
            .flat_map(|c| c.throughput.iter())
            .filter(|t| t.threads > 1)
    };
    if multi().any(|t| t.engines.is_some_and(|e| e > 1)) {
        lines.push("Each thread of a multi-thread round had an engine, pool and loaded component of its own (`--engine-per-thread`; the slots split among them).".into());
    } else if multi().any(|t| t.engines == Some(1)) {
        lines.push(
            "The threads of a multi-thread round share one engine, pool and loaded component."
                .into(),
        );
    }
    Section {
        title: "Throughput".into(),
        tables: vec![Table { header, rows }],
        lines,
        charts: chart::throughput(r).into_iter().collect(),
    }
}

fn counts_section(r: &BenchmarkResult) -> Option<Section> {
    let cols: Vec<&ConfigurationResult> = wasm_columns(r)
        .into_iter()
        .filter(|c| c.counts.is_some() || c.memory.is_some())
        .collect();
    let any_counts = cols.iter().any(|c| c.counts.is_some());
    if !any_counts {
        return None;
    }
    let mut header = vec!["Per operation (counted)".to_owned()];
    header.extend(cols.iter().map(|c| c.allocator.to_string()));
    let rows = crate::model::Metric::counted()
        .filter(|m| cols.iter().any(|c| c.summary(*m).is_some()))
        .map(|m| {
            let mut row = vec![m.name().to_owned()];
            row.extend(cols.iter().map(|c| {
                or_dash(c.summary(m).map(|s| {
                    format!(
                        "{} [{}–{}] n={}",
                        super::format::value(s.median, s.unit),
                        super::format::value(s.min, s.unit)
                            .split(' ')
                            .next()
                            .unwrap_or_default(),
                        super::format::value(s.max, s.unit)
                            .split(' ')
                            .next()
                            .unwrap_or_default(),
                        s.n
                    )
                }))
            }));
            row
        })
        .collect();
    let mut lines = vec![
        "Each cell: the median over rounds of the steady-state count per operation (a block of operations after a warm-up, minus an empty block, divided by its length), [min–max] over rounds. Counts, unlike times, do not move with the machine's load.".to_owned(),
    ];
    if let Some(c) = cols.iter().find_map(|c| c.counts.as_ref()) {
        match (&c.instrument, &c.cpu_seen) {
            (Some(i), Some(cpu)) => lines.push(format!(
                "Instructions and system calls: {i}, user space only, on the CPU Valgrind presents ({cpu}); system calls exclude those the vDSO answers natively (clock_gettime and kin). Page faults: getrusage, natively. Counted-baseline key: {}.",
                c.key
            )),
            _ => lines.push(format!(
                "Instructions and system calls were not counted (see \"Not measured\"). Page faults: getrusage, natively. Counted-baseline key: {}.",
                c.key
            )),
        }
    }
    Some(Section {
        title: "Counted per operation".into(),
        tables: vec![Table { header, rows }],
        lines,
        charts: Vec::new(),
    })
}

fn native_section(r: &BenchmarkResult) -> Option<Section> {
    let n = r.native.as_ref()?;
    Some(Section {
        title: "Native process (same run)".into(),
        tables: vec![Table {
            header: vec!["Measured".into(), "Command".into(), "Median [p25–p75] n".into()],
            rows: [
                Some(vec!["Spawn + exit".into(), n.command.clone(), spread(&n.spawn)]),
                Some(vec!["Resident memory (VmRSS), live".into(), n.rss_command.clone(), spread(&n.rss)]),
                n.pss.as_ref().map(|s| vec!["Pss (smaps_rollup), live".into(), n.rss_command.clone(), spread(s)]),
                n.private_dirty.as_ref().map(|s| vec!["Private_Dirty (smaps_rollup), live".into(), n.rss_command.clone(), spread(s)]),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }],
        lines: vec![
            "The floor under any container: spawning a tiny native program and waiting for it to exit, and the memory one such process holds while alive.".into(),
            "VmRSS counts the shared libc and loader pages every process maps; Pss divides them among the processes sharing them; Private_Dirty is what only this process wrote, which one more such process adds again: the figure comparable with a WASM instance's per-instance slope.".into(),
        ],
        charts: Vec::new(),
    })
}

fn runner(r: &BenchmarkResult) -> Section {
    let f = &r.runner;
    Section {
        title: "Runner".into(),
        lines: vec![
            format!("runner id: {}", r.runner_id),
            format!("cpu: {} ({} cores available)", f.cpu_model, f.cores),
            format!("memory: {}", bytes(f.memory_bytes as f64)),
            format!(
                "os: {} ({} {}), kernel {}",
                f.os_version, f.os, f.arch, f.kernel
            ),
            format!(
                "vm.max_map_count: {}, vm.overcommit_memory: {}",
                f.max_map_count
                    .map(|v| v.to_string())
                    .unwrap_or("unknown".into()),
                f.overcommit_memory
                    .map(|v| v.to_string())
                    .unwrap_or("unknown".into())
            ),
            format!(
                "wasmtime {}, {}, siteboss {}, heap: {}{}",
                f.wasmtime_version,
                f.rustc_version,
                f.siteboss_version,
                if f.heap_allocator.is_empty() {
                    "not recorded"
                } else {
                    &f.heap_allocator
                },
                if f.optimized {
                    ""
                } else {
                    " (UNOPTIMIZED debug build: figures are not representative)"
                }
            ),
        ],
        ..Default::default()
    }
}

/// What one lifecycle does, in words: run the command, or serve the request
/// and what it answered.
fn workload_line(r: &BenchmarkResult, workload: &str) -> String {
    match workload {
        "http" => {
            let request = r.component.request.as_deref().unwrap_or("GET /");
            match &r.component.response {
                Some(resp) => format!(
                    "serve `{request}` through wasi:http/incoming-handler and read the whole response: status {}, {} header(s), {} body bytes",
                    resp.status,
                    resp.headers,
                    count(resp.body_bytes)
                ),
                None => format!(
                    "serve `{request}` through wasi:http/incoming-handler (no successful response: see the skipped phases)"
                ),
            }
        }
        "cli" => "call wasi:cli/run".into(),
        _ => "instantiate only (no wasi:cli/run or wasi:http/incoming-handler export)".into(),
    }
}

fn configuration(r: &BenchmarkResult) -> Section {
    let mut lines = vec![format!(
        "component: {}{}, {} bytes (the page measured a {} component [1]), fnv1a64 {}, precompiled artifact {} bytes, has a workload to run: {}",
        r.component.name,
        r.component
            .path
            .as_ref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default(),
        count(r.component.bytes),
        cited::PAGE_COMPONENT_BYTES.text,
        r.component.fnv1a64,
        count(r.component.artifact_bytes),
        r.component.has_run
    )];
    if let Some(w) = &r.component.workload {
        lines.push(format!("workload per lifecycle: {}", workload_line(r, w)));
    }
    let s = &r.settings;
    lines.push(format!(
        "settings: quick={}, rounds={}, samples/round={}, cold processes={}, memory points={:?} x{} processes, throughput {} s x rounds with threads {:?}, max instances={}, min available={}, time limit={} s",
        s.quick,
        s.rounds,
        s.samples_per_round,
        s.cold_processes,
        s.memory_points,
        s.memory_rounds,
        s.throughput_seconds,
        s.threads,
        count(s.max_instances),
        bytes(s.min_available_bytes as f64),
        s.time_limit_seconds
    ));
    for c in wasm_columns(r) {
        lines.push(format!("[{}]", c.allocator));
        lines.extend(c.config.iter().map(|l| format!("  {l}")));
    }
    Section {
        title: "Configuration".into(),
        lines,
        ..Default::default()
    }
}
