//! The embedded component is a valid WASI 0.2 component that prints exactly
//! `Hello, world!\n`, under both allocators; so is its standard packaging.

use siteboss::component::ComponentSource;
use siteboss::engine::{Runtime, RuntimeOptions};
use siteboss::model::Allocator;
use std::path::Path;

fn run_once(source: &ComponentSource, allocator: Allocator) -> (Vec<u8>, Vec<u8>) {
    let options = RuntimeOptions::new(allocator);
    let (footprint, run_error) =
        Runtime::probe(source, &options).expect("the component compiles and links");
    assert!(run_error.is_none(), "run failed: {run_error:?}");
    assert!(footprint.has_run, "it exports wasi:cli/run");
    let rt = Runtime::compile(source, &options, footprint).expect("the runtime builds");
    let mut live = rt.instantiate().expect("it instantiates");
    rt.run(&mut live).expect("run returns ok");
    let host = live.store.data();
    (host.stdout.contents(), host.stderr.contents())
}

#[test]
fn the_embedded_component_prints_exactly_hello_world() {
    let source = ComponentSource::embedded();
    for allocator in Allocator::ALL {
        let (stdout, stderr) = run_once(&source, allocator);
        assert_eq!(
            String::from_utf8_lossy(&stdout),
            "Hello, world!\n",
            "{allocator}"
        );
        assert!(stderr.is_empty(), "{allocator}: stderr {stderr:?}");
    }
}

#[test]
fn the_standard_packaging_prints_the_same() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hello-wit-component.wasm");
    let source = ComponentSource::from_path(&path).unwrap();
    let (stdout, _) = run_once(&source, Allocator::Pooling);
    assert_eq!(stdout, b"Hello, world!\n");
}

#[test]
fn the_embedded_bytes_are_the_committed_file() {
    let committed =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/hello.wasm")).unwrap();
    assert_eq!(committed, siteboss::component::EMBEDDED_HELLO);
}

#[test]
fn every_instance_runs_in_a_fresh_sandbox() {
    // Two lifecycles on one runtime: each instance's stdout holds only its own line.
    let source = ComponentSource::embedded();
    let options = RuntimeOptions::new(Allocator::Pooling);
    let (footprint, _) = Runtime::probe(&source, &options).unwrap();
    let rt = Runtime::compile(&source, &options, footprint).unwrap();
    for _ in 0..3 {
        let mut live = rt.instantiate().unwrap();
        rt.run(&mut live).unwrap();
        assert_eq!(live.store.data().stdout.contents(), b"Hello, world!\n");
    }
}

#[test]
fn table_writes_are_read_from_the_component() {
    use siteboss::engine::writes_tables;
    // The lean packaging's one table is never written; wit-component's fixup
    // module fills the shim's imported table at every instantiation.
    for (name, writes) in [
        ("hello.wasm", false),
        ("hello-wit-component.wasm", true),
        ("http-hello.wasm", true),
        ("realistic/json-regex.wasm", true),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets")
            .join(name);
        assert_eq!(
            writes_tables(&std::fs::read(path).unwrap()),
            writes,
            "{name}"
        );
    }
    let import_table = r#"(import "m" "t" (table 1 funcref))"#;
    let cases: Vec<(String, bool, &str)> = vec![
        (
            "(table 1 funcref) (func (drop (ref.null func)))".into(),
            false,
            "no segment, no table instruction",
        ),
        // Function indices at a constant offset into a defined table are
        // filled lazily, at first use; past the table's initial size, into an
        // imported table, or at a computed offset, at instantiation.
        (
            "(table 1 funcref) (func $f) (elem (i32.const 0) $f)".into(),
            false,
            "lazy segment",
        ),
        (
            "(table 1 funcref) (func $f) (elem (i32.const 1) $f)".into(),
            true,
            "past the initial size",
        ),
        (
            format!("{import_table} (func $f) (elem (i32.const 0) $f)"),
            true,
            "into an imported table",
        ),
        (
            r#"(import "m" "g" (global i32)) (table 1 funcref) (func $f) (elem (global.get 0) $f)"#
                .into(),
            true,
            "computed offset",
        ),
        (
            "(table 1 funcref) (func $f) (elem (i32.const 0) funcref (ref.func $f))".into(),
            true,
            "expressions",
        ),
        (
            "(table 1 funcref (ref.null func))".into(),
            true,
            "a table's initial expression",
        ),
        // Imported tables come first in the index space.
        (
            format!(
                "{import_table} (table 1 funcref) (func $f) (elem (table 1) (i32.const 0) func $f)"
            ),
            false,
            "lazy segment after an imported table",
        ),
        (
            format!(
                "{import_table} (table 1 funcref) (func $f) (elem (table 0) (i32.const 0) func $f)"
            ),
            true,
            "the imported table by index",
        ),
        // A passive segment writes nothing until `table.init`.
        (
            "(table 1 funcref) (func $f) (elem func $f)".into(),
            false,
            "passive segment",
        ),
    ];
    let ops = [
        "(call_indirect (type $t) (i32.const 0))",
        "(table.set (i32.const 0) (ref.null func))",
        "(drop (table.get (i32.const 0)))",
        "(drop (table.grow (ref.null func) (i32.const 1)))",
        "(table.fill (i32.const 0) (ref.null func) (i32.const 1))",
        "(table.copy (i32.const 0) (i32.const 0) (i32.const 1))",
        "(table.init $e (i32.const 0) (i32.const 0) (i32.const 1))",
    ];
    let cases = cases.into_iter().map(|(body, w, why)| (format!("(module {body})"), w, why.to_owned())).chain(
        ops.iter().map(|op| {
            let text = format!("(module (type $t (func)) (table 1 funcref) (func $f) (elem $e func $f) (func {op}))");
            (text, true, (*op).to_owned())
        }),
    );
    for (text, writes, why) in cases {
        assert_eq!(
            writes_tables(&wat::parse_str(&text).unwrap()),
            writes,
            "{why}: {text}"
        );
    }
    // Each core module of a component is read on its own: the first
    // module's imported table is not the second's defined one.
    let component = format!(
        "(component (core module {import_table}) (core module (table 1 funcref) (func $f) (elem (i32.const 0) $f)))"
    );
    assert!(!writes_tables(&wat::parse_str(component).unwrap()));
    assert!(
        writes_tables(b"not wasm"),
        "unreadable bytes keep the page resident"
    );
}
