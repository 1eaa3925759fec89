//! The figures the benchmarks page cites or measured on its own host.
//!
//! None of these is measured by this tool. They are shown beside our measured
//! columns, always marked as cited, with the page's sources as footnotes.

/// One cited figure: what the page says, verbatim.
#[derive(Debug, Clone, Copy)]
pub struct Cited {
    /// The text as the page gives it.
    pub text: &'static str,
    /// The footnote number of its source in [`SOURCES`].
    pub source: usize,
}

const fn c(text: &'static str, source: usize) -> Cited {
    Cited { text, source }
}

/// The page's headline rows: (WASM as the page measured it, Docker, Firecracker, smolvm).
pub struct HeadlineRow {
    /// The row's name on the page.
    pub metric: &'static str,
    /// The page's own WASM figure (measured on the page's host, not here).
    pub page_wasm: Cited,
    /// Docker.
    pub docker: Cited,
    /// Firecracker.
    pub firecracker: Cited,
    /// smolvm.
    pub smolvm: Cited,
}

/// Footnotes, numbered from 1.
pub const SOURCES: [&str; 6] = [
    "The page's WASM column, as the page gives it: measured by the page's authors with siteboss benchmark on a 20-core / 122 GB host, Linux 6.14, with a 13.7 KB component; not measured on this machine. Its throughput is ~9,436 instantiations/sec on 20 cores.",
    "Docker, as the page cites it: ~100 ms startup from community benchmarks (no official figure published), ~90 ms cold start, ~30 MB per container, and the page's N-instance totals.",
    "Firecracker, as the page cites it: <125 ms startup and <5 MiB overhead from firecracker-microvm.github.io; 128 MB guest RAM from the Firecracker design doc baseline config, so ~133 MB per microVM.",
    "smolvm, as the page cites it: <200 ms boot from smolmachines.com (Y Combinator W25); memory is elastic (balloon): <5 MB overhead + guest.",
    "Firecracker, as the page cites it: ~150 microVMs/sec per host from the design doc (5/core/sec, 30-core host).",
    "The page's concurrency estimates for its 122 GB host: available memory / memory per instance (smolvm: comparable to Firecracker).",
];

/// The headline table's rows as the page gives them.
pub const HEADLINE: [HeadlineRow; 5] = [
    HeadlineRow {
        metric: "Startup time",
        page_wasm: c("~105 µs", 1),
        docker: c("~100 ms", 2),
        firecracker: c("<125 ms", 3),
        smolvm: c("<200 ms", 4),
    },
    HeadlineRow {
        metric: "Memory per instance",
        page_wasm: c("~0.1 MB", 1),
        docker: c("~30 MB", 2),
        firecracker: c("~133 MB", 3),
        smolvm: c("elastic", 4),
    },
    HeadlineRow {
        metric: "Max concurrent",
        page_wasm: c("~698,945", 1),
        docker: c("~3,657", 6),
        firecracker: c("~825", 6),
        smolvm: c("~825", 6),
    },
    HeadlineRow {
        metric: "Throughput",
        page_wasm: c("~9,436/s", 1),
        docker: c("—", 2),
        firecracker: c("~150/s", 5),
        smolvm: c("—", 4),
    },
    HeadlineRow {
        metric: "Isolation model",
        page_wasm: c("language sandbox (WASI)", 1),
        docker: c("kernel namespaces", 2),
        firecracker: c("KVM microVM", 3),
        smolvm: c("KVM microVM", 4),
    },
];

/// The page's "Total memory for N instances" rows: (N, page's WASM, Docker).
pub const TOTAL_MEMORY: [(usize, Cited, Cited); 4] = [
    (1, c("~22 MB", 1), c("~180 MB", 2)),
    (10, c("~23 MB", 1), c("~450 MB", 2)),
    (100, c("~29 MB", 1), c("~3.1 GB", 2)),
    (1000, c("~90 MB", 1), c("~29.4 GB", 2)),
];

/// The page's cold start (engine + Cranelift compile + first instantiation).
pub const PAGE_COLD_START: Cited = c("~23 ms", 1);
/// The page's warm start.
pub const PAGE_WARM_START: Cited = c("~105 µs", 1);
/// Docker's cold start as the page cites it.
pub const DOCKER_COLD_START: Cited = c("~90 ms", 2);
/// The page's concurrency result.
pub const PAGE_CONCURRENT: Cited = c(
    "~698,945 live instances, stopped by vm.max_map_count; 46.4 GB of 109.7 GB available RAM used",
    1,
);
/// The size of the component the page measured.
pub const PAGE_COMPONENT_BYTES: Cited = c("13.7 KB", 1);
