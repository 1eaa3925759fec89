//! Property tests of the three parsers that read files a user or CI hands
//! in: result files (`siteboss compare`), baselines and tolerance files.
//! Arbitrary bytes and mutated valid files never panic, and every error
//! names the file. Case counts are set here so the suite stays a few seconds.

mod common;

use common::result_json;
use proptest::prelude::*;
use proptest::sample::Index;
use siteboss::baseline::Baseline;
use siteboss::model::BenchmarkResult;
use siteboss::tolerance::Tolerances;
use std::path::Path;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

// ---- valid seeds ----

const BASELINE: &str = "---\nsource: harness/tests/gate.rs\ninfo:\n  arch: x86_64\n  cores: \"2\"\n---\n{\n  \"schema\": \"siteboss-baseline\",\n  \"schema_version\": 1,\n  \"runner\": \"r1\",\n  \"component\": \"embedded hello\",\n  \"rounds\": 9,\n  \"metrics\": {\"pooling\": {\"warm-start\": 3770.0, \"throughput\": 222000.0}, \"on-demand\": {\"lifecycle\": 22800.0}}\n}\n";

const TOLERANCES: &str = include_str!("../../baselines/tolerances.toml");

// ---- mutations ----

/// Byte-level damage to `seed`: overwritten bytes, a truncation, or a
/// spliced-in run of random bytes.
fn damaged(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let (a, b, c) = (seed.clone(), seed.clone(), seed);
    prop_oneof![
        prop::collection::vec((any::<Index>(), any::<u8>()), 1..8).prop_map(move |edits| {
            let mut out = a.clone();
            for (i, v) in edits {
                let at = i.index(out.len());
                out[at] = v;
            }
            out
        }),
        any::<Index>().prop_map(move |i| b[..i.index(b.len() + 1)].to_vec()),
        (
            any::<Index>(),
            0..64usize,
            prop::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(move |(i, cut, insert)| {
                let at = i.index(c.len());
                let end = (at + cut).min(c.len());
                let mut out = c[..at].to_vec();
                out.extend(insert);
                out.extend(&c[end..]);
                out
            }),
    ]
}

/// A JSON value a field should not have, or `None` to remove the field.
fn wrong_value() -> impl Strategy<Value = Option<serde_json::Value>> {
    use serde_json::json;
    prop_oneof![
        Just(None),
        Just(Some(json!(null))),
        Just(Some(json!(-1))),
        Just(Some(json!(0))),
        Just(Some(json!(1e308))),
        Just(Some(json!(u64::MAX))),
        Just(Some(json!(true))),
        Just(Some(json!([]))),
        Just(Some(json!({}))),
        Just(Some(json!("partial"))),
        Just(Some(json!("pooling"))),
        Just(Some(json!("warm-start"))),
        "[a-z\\-\n]{0,12}".prop_map(|s| Some(json!(s))),
    ]
}

/// Every JSON pointer in `v`, the root excluded.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(x, p, out);
            }
        }
        _ => {}
    }
}

/// `json` with one field set to a wrong value, or removed.
fn json_field_changed(json: &str, which: Index, to: Option<serde_json::Value>) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut all = Vec::new();
    pointers(&v, String::new(), &mut all);
    let p = &all[which.index(all.len())];
    match to {
        Some(x) => *v.pointer_mut(p).unwrap() = x,
        None => {
            let (parent, key) = p.rsplit_once('/').unwrap();
            let key = key.replace("~1", "/").replace("~0", "~");
            match v.pointer_mut(parent) {
                Some(serde_json::Value::Object(m)) => {
                    m.remove(&key);
                }
                Some(serde_json::Value::Array(a)) => {
                    a.remove(key.parse::<usize>().unwrap());
                }
                _ => {}
            }
        }
    }
    serde_json::to_string_pretty(&v).unwrap()
}

// ---- the parsers, with their file-naming property ----

/// `siteboss compare FILE FILE` on `bytes`: never panics; an error names the file.
fn check_result_file(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutated.json");
    std::fs::write(&path, bytes).unwrap();
    if let Err(e) = siteboss::compare::load(&[path.clone(), path.clone()]) {
        let msg = e.to_string();
        prop_assert!(
            msg.starts_with(&format!("{}: ", path.display())),
            "does not name the file: {msg}"
        );
    }
    // The typed schema on its own must not panic either.
    let _ = serde_json::from_slice::<BenchmarkResult>(bytes);
    Ok(())
}

fn check_baseline(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("baselines/mutated.snap");
    if let Err(e) = Baseline::parse(path, text) {
        let msg = e.to_string();
        prop_assert!(
            msg.starts_with("baselines/mutated.snap: corrupt baseline: "),
            "{msg}"
        );
    }
    Ok(())
}

fn check_tolerances(text: &str) -> Result<(), TestCaseError> {
    let path = Path::new("baselines/mutated.toml");
    if let Err(e) = Tolerances::parse(path, text) {
        let msg = e.to_string();
        prop_assert!(msg.starts_with("baselines/mutated.toml: "), "{msg}");
    }
    Ok(())
}

#[test]
fn the_valid_seeds_parse() {
    let r = result_json();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valid.json");
    std::fs::write(&path, &r).unwrap();
    siteboss::compare::load(&[path.clone(), path]).expect("the seed result file is valid");
    Baseline::parse(Path::new("b.snap"), BASELINE).expect("the seed baseline is valid");
    Tolerances::parse(Path::new("t.toml"), TOLERANCES).expect("the committed tolerances");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn result_files_of_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_result_file(&bytes)?;
    }

    #[test]
    fn result_files_damaged_byte_by_byte(bytes in damaged(result_json())) {
        check_result_file(&bytes)?;
    }

    #[test]
    fn result_files_with_a_wrong_or_missing_field(which in any::<Index>(), to in wrong_value()) {
        let json = String::from_utf8(result_json()).unwrap();
        check_result_file(json_field_changed(&json, which, to).as_bytes())?;
    }

    #[test]
    fn baselines_of_arbitrary_text(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_baseline(&String::from_utf8_lossy(&bytes))?;
        // With a valid header, so the body parser is reached.
        check_baseline(&format!("---\ninfo: {{}}\n---\n{}", String::from_utf8_lossy(&bytes)))?;
    }

    #[test]
    fn baselines_damaged_byte_by_byte(bytes in damaged(BASELINE.as_bytes().to_vec())) {
        check_baseline(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn baselines_with_a_wrong_or_missing_field(which in any::<Index>(), to in wrong_value()) {
        let (header, body) = BASELINE.split_at(BASELINE.find("{\n").unwrap());
        check_baseline(&format!("{header}{}\n", json_field_changed(body, which, to)))?;
    }

    #[test]
    fn tolerances_of_arbitrary_text(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_tolerances(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn tolerances_damaged_byte_by_byte(bytes in damaged(TOLERANCES.as_bytes().to_vec())) {
        check_tolerances(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn tolerances_with_a_wrong_value_or_name(
        line in any::<Index>(),
        value in prop_oneof![
            Just("-0.5".to_owned()), Just("\"ten\"".to_owned()), Just("nan".to_owned()),
            Just("inf".to_owned()), Just("-inf".to_owned()), Just("1e400".to_owned()),
            Just("true".to_owned()), Just("[1]".to_owned()), Just("{}".to_owned()),
            Just("".to_owned()), "[a-z\\-]{1,10}".prop_map(|s| format!("\"{s}\"")),
        ],
        rename in "[a-z\\-]{1,12}",
    ) {
        // Set one `key = value` line's value, or rename one `[table]`.
        let lines: Vec<&str> = TOLERANCES.lines().collect();
        let editable: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(" = ") || lines[i].starts_with('['))
            .collect();
        let at = editable[line.index(editable.len())];
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out[at] = match lines[at].split_once(" = ") {
            Some((key, _)) => format!("{key} = {value}"),
            None => format!("[{rename}]"),
        };
        check_tolerances(&out.join("\n"))?;
    }
}
