//! Records the rustc and wasmtime versions the tool is built with, for the
//! runner fingerprint every result carries.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SITEBOSS_RUSTC_VERSION={version}");

    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let wasmtime = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"wasmtime\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SITEBOSS_WASMTIME_VERSION={wasmtime}");
    // The `siteboss` binary is linked as a fixed-address (non-PIE) executable:
    // a fresh process then has no relative relocations to apply (37,736 in the
    // PIE build) and does not copy-on-write the pages they touch. Measured on
    // `siteboss --version` under callgrind: 1.10M -> 0.60M instructions, 265 ->
    // 129 page faults. The cost: the executable's own image is not randomized
    // (its heap, stacks, libraries and JIT code still are). `-z
    // pack-relative-relocs` (RELR) kept PIE but saved only 8% of instructions
    // and no page faults. Only the binary: tests and benches stay PIE.
    // Linux with the gnu/musl linkers only, and not a static-pie build.
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|x| x == "crt-static"));
    if linux && !crt_static {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
