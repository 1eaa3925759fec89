//! The machine a result was measured on.

use serde::{Deserialize, Serialize};

/// What identifies the machine and toolchain a result was measured on.
///
/// The runner id is the coarse part of this (see `fingerprint::runner_id`);
/// the rest is recorded so that a reader can tell two machines of one kind
/// apart when their numbers differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// CPU architecture, such as `x86_64`.
    pub arch: String,
    /// Operating system family, such as `linux`.
    pub os: String,
    /// Distribution and version, such as `Debian GNU/Linux 12`.
    pub os_version: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model as the kernel reports it.
    pub cpu_model: String,
    /// Logical cores available to this process.
    pub cores: usize,
    /// Total RAM in bytes.
    pub memory_bytes: u64,
    /// `/proc/sys/vm/max_map_count`, when readable.
    pub max_map_count: Option<u64>,
    /// `/proc/sys/vm/overcommit_memory`, when readable.
    pub overcommit_memory: Option<u64>,
    /// The wasmtime crate version the tool was built with.
    pub wasmtime_version: String,
    /// The rustc that built the tool.
    pub rustc_version: String,
    /// The heap allocator of the measuring processes (`heap::describe`).
    /// Empty in results written before it was recorded.
    #[serde(default)]
    pub heap_allocator: String,
    /// This tool's version.
    pub siteboss_version: String,
    /// Whether the tool was built with optimizations.
    pub optimized: bool,
}
