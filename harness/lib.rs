//! siteboss-bench: measures how fast and how densely WebAssembly components
//! start on Wasmtime, and gates regressions. See ARCHITECTURE.md for the map.

pub mod benchmark;
pub mod capture;
pub mod cli;
pub mod component;
pub mod engine;
pub mod fingerprint;
pub mod host;
pub mod interrupt;
pub mod measure;
pub mod report;
pub mod model;
pub mod progress;
pub mod stats;
