//! The `siteboss` binary: thin glue over the library. Errors print once as
//! `Error: ...` with their causes on one line; exit codes are 0 ok,
//! 1 regression found, 2 could not run, 130/143 interrupted.

use clap::Parser;
use siteboss::benchmark::{self, BenchmarkOptions};
use siteboss::cli::{AbArgs, BenchmarkArgs, Cli, Command, CompareArgs};
use siteboss::model::{BenchmarkResult, Status};
use siteboss::progress::Progress;
use siteboss::report::{Exporter, Html, Json, Markdown, Terminal};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Errors are printed as one line; capturing a backtrace for each would
    // only cost time, and at map exhaustion it deadlocked a process here.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: nothing else runs yet; no other thread reads the environment.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
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
    let options = BenchmarkOptions {
        plan: args.plan(),
        quick: args.quick,
        allocators: args.allocators(),
        component: args.component.clone(),
        runtime: args.runtime(),
        phases: args.phases(),
        native: if args.no_native {
            None
        } else {
            siteboss::measure::native::default_programs()
        },
    };
    let progress = Progress::new(benchmark::progress_steps(&options), !args.no_progress);
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
    let mut write_error = None;
    let mut sink = |r: &BenchmarkResult| {
        // Files are rewritten after each phase so a crash loses nothing.
        for (path, text) in [
            (
                json_file.as_ref(),
                json_file.as_ref().map(|_| Json.render(r)),
            ),
            (
                md_file.as_ref(),
                md_file.as_ref().map(|_| Markdown.render(r)),
            ),
            (
                args.html.as_ref(),
                args.html.as_ref().map(|_| Html.render(r)),
            ),
        ] {
            if let (Some(path), Some(text)) = (path, text)
                && let Err(e) = write_atomically(path, &text)
            {
                write_error.get_or_insert(e);
            }
        }
    };
    let result = benchmark::run(&options, &exe, &progress, &mut sink);
    progress.finish();
    let result = result?;
    let stdout_text = if args.json.as_deref() == Some(Path::new("-")) {
        Json.render(&result)
    } else if args.markdown.as_deref() == Some(Path::new("-")) {
        Markdown.render(&result)
    } else {
        Terminal.render(&result)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = out
        .write_all(stdout_text.as_bytes())
        .and_then(|_| out.flush());
    // History tools get complete runs only: a partial one would show as a
    // step in someone's chart.
    if result.status == Status::Complete {
        if let Some(path) = &args.bmf {
            let text =
                serde_json::to_string_pretty(&siteboss::report::export::bmf(&result))? + "\n";
            if let Err(e) = write_atomically(path, &text) {
                write_error.get_or_insert(e);
            }
        }
        if let Some((smaller, bigger)) = &gab_files {
            let (s, b) = siteboss::report::export::github_action_benchmark(&result);
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
    Ok(match (result.status, siteboss::interrupt::signal()) {
        (Status::Partial, Some(sig)) => {
            eprintln!(
                "Interrupted: {}",
                result.status_reason.as_deref().unwrap_or("")
            );
            ExitCode::from((128 + sig) as u8)
        }
        _ => ExitCode::SUCCESS,
    })
}

fn run_compare(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.html {
        check_writable(path)?;
    }
    let results = siteboss::compare::load(&args.files)?;
    let tolerances = siteboss::compare::tolerances(args.tolerances.as_deref())?;
    let report = siteboss::compare::compare(&results, &tolerances);
    if let Some(path) = &args.html {
        write_atomically(path, &siteboss::compare::html(&report))?;
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        siteboss::compare::render(&report, args.markdown)
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    Ok(if report.rows.is_empty() {
        // Nothing was judged: not a pass.
        ExitCode::from(2)
    } else if report.passed() {
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
    let options = siteboss::ab::AbOptions {
        base: absolute(&args.base),
        head: absolute(&args.head),
        component: args.component.as_ref().map(absolute),
        allocators: args.allocators(),
        seconds: args.seconds,
        min_pairs: args.min_pairs,
        ops: args.ops,
        throughput_millis: args.throughput_millis,
        call_timeout_ms: 1000,
        max_memory_bytes: 64 << 20,
        output_limit: 64 << 10,
    };
    let bar = siteboss::progress::Progress::timed(args.seconds, !args.no_progress);
    let result = siteboss::ab::run(&options, &tolerances, &|pairs, secs| {
        bar.set_seconds(secs, &format!("{pairs} pairs"));
    });
    bar.finish();
    let report = result?;
    let json = serde_json::to_string_pretty(&report)? + "\n";
    if let Some(path) = &args.json_file {
        write_atomically(path, &json)?;
    }
    if let Some(path) = &args.html {
        write_atomically(path, &siteboss::ab::html(&report))?;
    }
    let text = if args.json {
        json
    } else {
        siteboss::ab::render(&report, args.markdown)
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    if let Some(sig) = siteboss::interrupt::signal() {
        eprintln!("Interrupted: the verdict is on the pairs measured before it");
        return Ok(ExitCode::from((128 + sig) as u8));
    }
    Ok(if report.passed() {
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
