//! The `siteboss` binary: thin glue over the library. Errors print once as
//! `Error: ...` with their causes on one line; exit codes are 0 ok,
//! 1 regression found, 2 could not run, 130/143 interrupted.

use clap::Parser;
use siteboss::benchmark::{self, BenchmarkOptions};
use siteboss::cli::{AbArgs, BenchmarkArgs, Cli, Command, CompareArgs};
use siteboss::engine::RuntimeOptions;
use siteboss::model::{BenchmarkResult, Status};
use siteboss::progress::Progress;
use siteboss::report::{Exporter, Html, Json, Markdown, Terminal};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mimalloc, or glibc's malloc with `SITEBOSS_MALLOC=system`: see
/// `siteboss::heap` and README, "The production configuration".
#[global_allocator]
static HEAP: siteboss::heap::Heap = siteboss::heap::Heap;

fn main() -> ExitCode {
    if let Err(e) = siteboss::heap::parse(
        std::env::var_os(siteboss::heap::ENV)
            .as_deref()
            .map(std::os::unix::ffi::OsStrExt::as_bytes),
    ) {
        eprintln!("Error: {e}");
        return ExitCode::from(2);
    }
    // Errors are printed as one line; capturing a backtrace for each would
    // only cost time, and at map exhaustion it deadlocked a process here.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: nothing else runs yet; no other thread reads the environment.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    // wasmtime-wasi drives WASI's async host calls from the calling thread
    // (`in_tokio`) and starts a tokio runtime for the rest (timers, I/O) on
    // the first such call, with one worker thread per core by default.
    // These hosts call components synchronously and deny sockets, so one
    // worker is enough: a cold start's first run took 0.171 -> 0.102 ms
    // (median of 16 alternating rounds of 20 fresh processes). A value the
    // user sets is kept. See README, "The production configuration".
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        // SAFETY: as above, no other thread exists yet.
        unsafe { std::env::set_var("TOKIO_WORKER_THREADS", "1") };
    }
    // A child-process phase (`siteboss __child REQUEST`) skips clap: building
    // the whole command tree to parse two arguments was about 5% of a fresh
    // cold-start child's own CPU samples (perf); skipping it made the whole
    // process x0.95 (16 alternating rounds of 20). Anything else, including
    // a malformed child command line, goes through clap.
    if let Some(request) = child_request() {
        return ExitCode::from(siteboss::measure::serve::serve(&request) as u8);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Lockstep => ExitCode::from(siteboss::measure::lockstep::serve() as u8),
        Command::Ab(args) => match run_ab(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
                ExitCode::from(2)
            }
        },
        Command::Child { request } => {
            ExitCode::from(siteboss::measure::serve::serve(&request) as u8)
        }
        Command::Compare(args) => match run_compare(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
                ExitCode::from(2)
            }
        },
        Command::Benchmark(args) => match run_benchmark(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
                ExitCode::from(2)
            }
        },
    }
}

/// The request file of `siteboss __child REQUEST`, exactly that command line.
fn child_request() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next(), args.next()) {
        (Some(sub), Some(request), None)
            if sub == siteboss::measure::child::SUBCOMMAND
                && !request.is_empty()
                && !request.to_string_lossy().starts_with('-') =>
        {
            Some(PathBuf::from(request))
        }
        _ => None,
    }
}

fn run_benchmark(args: &BenchmarkArgs) -> anyhow::Result<ExitCode> {
    if args.json.as_deref() == Some(Path::new("-"))
        && args.markdown.as_deref() == Some(Path::new("-"))
    {
        anyhow::bail!(
            "--json and --markdown cannot both write to stdout; give one of them a file path"
        );
    }
    siteboss::interrupt::install()?;
    let exe =
        std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find this executable: {e}"))?;
    let base = BenchmarkOptions {
        plan: args.plan(),
        quick: args.quick,
        allocators: args.allocators(),
        component: args.subject.component.clone(),
        embedded: args.subject.embedded,
        runtime: RuntimeOptions {
            request: args.subject.request()?,
            ..args.runtime()
        },
        phases: args.phases(),
        native: if args.no_native {
            None
        } else {
            siteboss::measure::native::default_programs()
        },
    };
    let runs = targets(args, &base)?;
    let json_file = args.json.clone().filter(|p| p != Path::new("-"));
    let md_file = args.markdown.clone().filter(|p| p != Path::new("-"));
    let gab_files = args
        .github_action_benchmark
        .as_deref()
        .map(siteboss::report::export::github_action_benchmark_paths);
    // A mistyped path fails now, not after minutes of measuring.
    for path in json_file
        .iter()
        .chain(&md_file)
        .chain(&args.html)
        .chain(&args.bmf)
        .chain(gab_files.iter().flat_map(|(s, b)| [s, b]))
    {
        check_writable(path)?;
    }
    let mut done: Vec<BenchmarkResult> = Vec::new();
    let mut write_error = None;
    let mut interrupted = None;
    for (n, options) in runs.iter().enumerate() {
        if runs.len() > 1 {
            eprintln!(
                "[{}/{}] {}",
                n + 1,
                runs.len(),
                siteboss::component::ComponentSource::resolve(
                    options.component.as_deref(),
                    options.embedded
                )
                .map(|s| s.label())
                .unwrap_or_default()
            );
        }
        let progress = Progress::new(benchmark::progress_steps(options), !args.no_progress);
        let mut sink = |r: &BenchmarkResult| {
            // Files are rewritten after each phase so a crash loses nothing.
            let all: Vec<&BenchmarkResult> = done.iter().chain([r]).collect();
            for (path, text) in [
                (
                    json_file.as_ref(),
                    json_file.as_ref().map(|_| json_of(&all)),
                ),
                (
                    md_file.as_ref(),
                    md_file.as_ref().map(|_| markdown_of(&all)),
                ),
                (
                    args.html.as_ref(),
                    args.html.as_ref().map(|_| html_of(&all)),
                ),
            ] {
                if let (Some(path), Some(text)) = (path, text)
                    && let Err(e) = write_atomically(path, &text)
                {
                    write_error.get_or_insert(e);
                }
            }
        };
        let result = benchmark::run(options, &exe, &progress, &mut sink);
        progress.finish();
        let result = result?;
        let stop = result.status == Status::Partial && siteboss::interrupt::signal().is_some();
        if stop {
            interrupted = Some(result.status_reason.clone().unwrap_or_default());
        }
        done.push(result);
        if stop {
            break;
        }
    }
    let all: Vec<&BenchmarkResult> = done.iter().collect();
    let stdout_text = if args.json.as_deref() == Some(Path::new("-")) {
        json_of(&all)
    } else if args.markdown.as_deref() == Some(Path::new("-")) {
        markdown_of(&all)
    } else {
        all.iter()
            .map(|r| Terminal.render(r))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = out
        .write_all(stdout_text.as_bytes())
        .and_then(|_| out.flush());
    // History tools get complete runs only: a partial one would show as a
    // step in someone's chart.
    if done.iter().all(|r| r.status == Status::Complete) {
        if let Some(path) = &args.bmf {
            let mut all = serde_json::Map::new();
            for r in &done {
                if let serde_json::Value::Object(m) = siteboss::report::export::bmf(r) {
                    all.extend(m);
                }
            }
            let text = serde_json::to_string_pretty(&all)? + "\n";
            if let Err(e) = write_atomically(path, &text) {
                write_error.get_or_insert(e);
            }
        }
        if let Some((smaller, bigger)) = &gab_files {
            let (mut s, mut b) = (Vec::new(), Vec::new());
            for r in &done {
                let (rs, rb) = siteboss::report::export::github_action_benchmark(r);
                s.extend(rs);
                b.extend(rb);
            }
            for (path, entries) in [(smaller, s), (bigger, b)] {
                let text = serde_json::to_string_pretty(&entries)? + "\n";
                if let Err(e) = write_atomically(path, &text) {
                    write_error.get_or_insert(e);
                }
            }
        }
    } else if args.bmf.is_some() || gab_files.is_some() {
        eprintln!(
            "warning: the run is partial, so --bmf and --github-action-benchmark were not written"
        );
    }
    // Reported after the result is on stdout, so a failed file write loses
    // nothing that was measured.
    if let Some(e) = write_error {
        return Err(e);
    }
    Ok(match (interrupted, siteboss::interrupt::signal()) {
        (Some(reason), Some(sig)) => {
            eprintln!("Interrupted: {reason}");
            ExitCode::from((128 + sig) as u8)
        }
        _ => ExitCode::SUCCESS,
    })
}

/// One result as a JSON object; several (one per component) as an array.
fn json_of(results: &[&BenchmarkResult]) -> String {
    match results {
        [one] => Json.render(one),
        many => {
            let values: Vec<_> = many
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect();
            serde_json::to_string_pretty(&values).unwrap_or_default() + "\n"
        }
    }
}

/// Several pages' bodies in one page (compare's per-component reports).
fn join_pages(pages: &[String]) -> String {
    match pages {
        [one] => one.clone(),
        many => {
            let mut out = String::new();
            for (i, page) in many.iter().enumerate() {
                let start = if i == 0 {
                    0
                } else {
                    page.find("<body>").map_or(0, |b| b + "<body>".len())
                };
                let end = if i + 1 == many.len() {
                    page.len()
                } else {
                    page.rfind("</body>").unwrap_or(page.len())
                };
                if i > 0 {
                    out.push_str("\n<hr>\n");
                }
                out.push_str(&page[start..end]);
            }
            out
        }
    }
}

/// One page; with several components, their sections one after another,
/// each section title naming its component.
fn html_of(results: &[&BenchmarkResult]) -> String {
    match results {
        [one] => Html.render(one),
        many => {
            let mut sections = Vec::new();
            let mut intro = Vec::new();
            for r in many {
                let doc = siteboss::report::document(r);
                intro.push(doc.title.clone());
                for mut section in doc.sections {
                    section.title = format!("{}: {}", r.component.name, section.title);
                    sections.push(section);
                }
            }
            siteboss::report::html::page(
                &format!("siteboss benchmark: {} components", many.len()),
                &intro,
                &sections,
            )
        }
    }
}

fn markdown_of(results: &[&BenchmarkResult]) -> String {
    results
        .iter()
        .map(|r| Markdown.render(r))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The components a run measures: `--component` or `--embedded`; the
/// manifest's with `--manifest`; otherwise both embedded hello worlds. The
/// native process is measured once, with the first.
fn targets(args: &BenchmarkArgs, base: &BenchmarkOptions) -> anyhow::Result<Vec<BenchmarkOptions>> {
    use siteboss::component::Embedded;
    if args.subject.component.is_some() || args.subject.embedded.is_some() {
        return Ok(vec![base.clone()]);
    }
    let mut runs = Vec::new();
    if let Some(path) = &args.manifest {
        for entry in siteboss::manifest::load(path)? {
            runs.push(BenchmarkOptions {
                component: entry.source.path.clone(),
                embedded: entry.source.embedded,
                allocators: if args.allocator_given() {
                    base.allocators.clone()
                } else {
                    entry.profiles.clone()
                },
                runtime: RuntimeOptions {
                    request: entry.request.clone(),
                    ..base.runtime.clone()
                },
                ..base.clone()
            });
        }
    } else {
        for which in Embedded::ALL {
            runs.push(BenchmarkOptions {
                embedded: Some(which),
                ..base.clone()
            });
        }
    }
    for later in runs.iter_mut().skip(1) {
        later.native = None;
    }
    Ok(runs)
}

fn run_compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.html {
        check_writable(path)?;
    }
    let groups = siteboss::compare::load(&args.files)?;
    let tolerances = siteboss::compare::tolerances(args.tolerances.as_deref())?;
    // One comparison per component; files of several components (from a
    // run of several) are compared component by component.
    let reports: Vec<_> = groups
        .iter()
        .map(|results| siteboss::compare::compare(results, &tolerances))
        .collect();
    if let Some(path) = &args.html {
        let pages: Vec<String> = reports.iter().map(siteboss::compare::html).collect();
        write_atomically(path, &join_pages(&pages))?;
    }
    let text = if args.json {
        if let [one] = reports.as_slice() {
            serde_json::to_string_pretty(one)? + "\n"
        } else {
            serde_json::to_string_pretty(&reports)? + "\n"
        }
    } else {
        reports
            .iter()
            .map(|r| siteboss::compare::render(r, args.markdown))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    Ok(if reports.iter().any(|r| r.rows.is_empty()) {
        // Nothing was judged: not a pass.
        ExitCode::from(2)
    } else if reports.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        // A regression, or a metric that could not be judged.
        ExitCode::from(1)
    })
}

fn run_ab(args: &AbArgs) -> anyhow::Result<ExitCode> {
    siteboss::interrupt::install()?;
    for path in args.json_file.iter().chain(&args.html) {
        check_writable(path)?;
    }
    let tolerances = siteboss::compare::tolerances(args.tolerances.as_deref())?;
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let base = siteboss::ab::AbOptions {
        base: absolute(&args.base),
        head: absolute(&args.head),
        component: args.subject.component.as_ref().map(absolute),
        embedded: args.subject.embedded,
        request: args.subject.request()?,
        allocators: args.allocators(),
        seconds: args.seconds,
        min_pairs: args.min_pairs,
        ops: args.ops,
        throughput_millis: args.throughput_millis,
        call_timeout_ms: 1000,
        max_memory_bytes: 64 << 20,
        output_limit: 64 << 10,
        aslr: args.aslr,
        children: usize::from(args.children),
    };
    // One comparison per component: the one named, or each of a manifest's
    // with its own request, profiles and tolerance overrides.
    let mut runs = Vec::new();
    match &args.manifest {
        Some(path) => {
            for entry in siteboss::manifest::load(path)? {
                runs.push((
                    Some(entry.name.clone()),
                    siteboss::ab::AbOptions {
                        component: entry.source.path.as_ref().map(absolute),
                        embedded: entry.source.embedded,
                        request: entry.request.clone(),
                        allocators: if args.allocator.is_some() {
                            base.allocators.clone()
                        } else {
                            entry.profiles.clone()
                        },
                        ..base.clone()
                    },
                    entry.tolerances(&tolerances),
                ));
            }
        }
        None => runs.push((None, base.clone(), tolerances.clone())),
    }
    let mut reports = Vec::new();
    let mut failed = None;
    for (n, (name, options, tolerances)) in runs.iter().enumerate() {
        if let Some(name) = name {
            eprintln!("[{}/{}] {name}", n + 1, runs.len());
        }
        let bar = siteboss::progress::Progress::timed(args.seconds, !args.no_progress);
        let result = siteboss::ab::run(options, tolerances, &|pairs, secs| {
            bar.set_seconds(secs, &format!("{pairs} pairs"));
        });
        bar.finish();
        match result {
            Ok(report) => reports.push(report),
            Err(e) => {
                // The components compared before it are still written.
                failed = Some(match name {
                    Some(name) => anyhow::anyhow!("{name}: {e}"),
                    None => e.into(),
                });
                break;
            }
        }
        if siteboss::interrupt::requested() {
            break;
        }
    }
    if reports.is_empty()
        && let Some(e) = failed
    {
        return Err(e);
    }
    // A manifest always gives an array, one report per component compared.
    let json = if let ([one], None) = (reports.as_slice(), &args.manifest) {
        serde_json::to_string_pretty(one)? + "\n"
    } else {
        serde_json::to_string_pretty(&reports)? + "\n"
    };
    if let Some(path) = &args.json_file {
        write_atomically(path, &json)?;
    }
    if let Some(path) = &args.html {
        let pages: Vec<String> = reports.iter().map(siteboss::ab::html).collect();
        write_atomically(path, &join_pages(&pages))?;
    }
    let text = if args.json {
        json
    } else {
        reports
            .iter()
            .map(|r| siteboss::ab::render(r, args.markdown))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(sig) = siteboss::interrupt::signal() {
        eprintln!("Interrupted: the verdict is on the pairs measured before it");
        return Ok(ExitCode::from((128 + sig) as u8));
    }
    Ok(if reports.iter().all(|r| r.passed()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Fails now, not after minutes of measuring, when `path` cannot be written:
/// its directory is missing, or it is a directory.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{}: cannot write: {} is not a directory",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        anyhow::bail!("{}: cannot write: it is a directory", path.display());
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file and a rename, so a reader
/// never sees a half-written file.
fn write_atomically(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("{}: cannot write: {e}", path.display()))
}
