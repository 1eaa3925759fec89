//! Reads the runner's fingerprint and derives its coarse runner id.

use crate::model::Fingerprint;

/// The wasmtime crate version this build links.
pub const WASMTIME_VERSION: &str = env!("SITEBOSS_WASMTIME_VERSION");
/// The rustc that built this tool.
pub const RUSTC_VERSION: &str = env!("SITEBOSS_RUSTC_VERSION");

/// Reads the fingerprint of the machine this process runs on.
pub fn current() -> Fingerprint {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_owned())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown cpu".into());
    Fingerprint {
        arch: std::env::consts::ARCH.to_owned(),
        os: std::env::consts::OS.to_owned(),
        os_version: sysinfo::System::long_os_version().unwrap_or_else(|| "unknown".into()),
        kernel: sysinfo::System::kernel_version().unwrap_or_else(|| "unknown".into()),
        cpu_model,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes: sys.total_memory(),
        max_map_count: read_proc_u64("/proc/sys/vm/max_map_count"),
        overcommit_memory: read_proc_u64("/proc/sys/vm/overcommit_memory"),
        wasmtime_version: WASMTIME_VERSION.to_owned(),
        rustc_version: RUSTC_VERSION.to_owned(),
        heap_allocator: crate::heap::describe(),
        siteboss_version: env!("CARGO_PKG_VERSION").to_owned(),
        optimized: !cfg!(debug_assertions),
    }
}

/// Reads a number from a `/proc` file.
pub fn read_proc_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The coarse runner id baselines are filed under.
///
/// `SITEBOSS_RUNNER` wins when set. Otherwise it is arch, OS, CPU model, core
/// count and a memory bucket, so that machines of one kind share one id.
pub fn runner_id(fp: &Fingerprint) -> String {
    if let Ok(id) = std::env::var("SITEBOSS_RUNNER") {
        let id = id.trim();
        if !id.is_empty() {
            return id.to_owned();
        }
    }
    derived_runner_id(fp)
}

/// The runner id derived from the fingerprint alone.
pub fn derived_runner_id(fp: &Fingerprint) -> String {
    let gib = fp.memory_bytes as f64 / (1u64 << 30) as f64;
    // Round to the nearest 4 GiB (nearest 1 GiB below 8 GiB): a machine that
    // reports 23.5 GiB and one that reports 24.1 GiB are the same kind.
    let bucket = if gib < 8.0 {
        gib.round().max(1.0)
    } else {
        (gib / 4.0).round() * 4.0
    };
    let id = format!(
        "{}-{}-{}-{}c-{}g",
        fp.arch,
        fp.os,
        slug(&fp.cpu_model),
        fp.cores,
        bucket as u64
    );
    id
}

/// Lower-case letters and digits, runs of anything else as one `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(cpu: &str, mem_gib: f64) -> Fingerprint {
        Fingerprint {
            arch: "x86_64".into(),
            os: "linux".into(),
            os_version: "Debian 12".into(),
            kernel: "6.1".into(),
            cpu_model: cpu.into(),
            cores: 2,
            memory_bytes: (mem_gib * (1u64 << 30) as f64) as u64,
            max_map_count: Some(65530),
            overcommit_memory: Some(0),
            wasmtime_version: "48.0.8".into(),
            rustc_version: "rustc 1.95.0".into(),
            heap_allocator: "mimalloc 2.3.2".into(),
            siteboss_version: "0.1.0".into(),
            optimized: true,
        }
    }

    #[test]
    fn machines_of_one_kind_share_an_id() {
        assert_eq!(
            derived_runner_id(&fp("AMD EPYC", 23.5)),
            "x86_64-linux-amd-epyc-2c-24g"
        );
        assert_eq!(
            derived_runner_id(&fp("AMD EPYC", 24.6)),
            "x86_64-linux-amd-epyc-2c-24g"
        );
        assert_ne!(
            derived_runner_id(&fp("AMD EPYC", 31.0)),
            "x86_64-linux-amd-epyc-2c-24g"
        );
        assert_eq!(
            derived_runner_id(&fp("  Intel(R) Xeon(R) @ 2.1GHz ", 3.8)),
            "x86_64-linux-intel-r-xeon-r-2-1ghz-2c-4g"
        );
    }
}
