//! siteboss-bench: measures how fast and how densely WebAssembly components
//! start on Wasmtime, and gates regressions. See ARCHITECTURE.md for the map.

pub mod ab;
pub mod baseline;
pub mod benchmark;
pub mod capture;
pub mod cli;
pub mod compare;
pub mod component;
pub mod engine;
pub mod fingerprint;
pub mod gate;
pub mod heap;
pub mod host;
pub mod http;
pub mod interrupt;
pub mod judge;
pub mod manifest;
pub mod measure;
pub mod model;
pub mod progress;
pub mod report;
pub mod stats;
pub mod tolerance;
pub mod valgrind;
