//! The manifest: the components a user puts under the gate and measures
//! together (`assets/components.toml` by default).
//!
//! ```toml
//! [[component]]
//! name = "hello"                  # trial names: gate::hello::<profile>::<metric>
//! source = "embedded:cli"         # or embedded:http, or a path to a .wasm
//!
//! [[component]]
//! name = "my-api"
//! source = "../my-api/target/wasm32-wasip2/release/my_api.wasm"  # relative to this file
//! request = { method = "POST", path = "/items", headers = ["content-type: application/json"], body = "item.json" }
//! profiles = ["pooling"]          # default: every profile
//! [component.tolerances]          # per-metric overrides of baselines/tolerances.toml
//! instructions-lifecycle = { relative = 0.03 }
//! ```
//!
//! A missing file, a bad path or an unknown key is one line naming it.

use crate::component::{ComponentSource, Embedded};
use crate::http::RequestSpec;
use crate::model::{Allocator, Metric, Tolerance};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest committed with the project, relative to the crate root.
pub const DEFAULT_MANIFEST: &str = "assets/components.toml";

/// A component named by the manifest, loaded and checked.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its name in trial names and baselines.
    pub name: String,
    /// Its bytes.
    pub source: ComponentSource,
    /// The request an HTTP handler is served.
    pub request: RequestSpec,
    /// The profiles it is measured and gated with.
    pub profiles: Vec<Allocator>,
    /// Tolerances that replace the tolerance file's for this component.
    pub tolerances: BTreeMap<Metric, Override>,
}

/// A per-component change to a metric's tolerance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Replaces `relative`.
    pub relative: Option<f64>,
    /// Replaces `paired_relative`.
    pub paired_relative: Option<f64>,
    /// Replaces `absolute_floor`.
    pub absolute_floor: Option<f64>,
    /// Replaces `enforce`.
    pub enforce: Option<bool>,
}

impl Entry {
    /// `tolerances` with this component's overrides applied: what `compare`
    /// and `ab` judge it with, as the gate does.
    pub fn tolerances(
        &self,
        tolerances: &crate::tolerance::Tolerances,
    ) -> crate::tolerance::Tolerances {
        tolerances.with(|metric, t| match self.tolerances.get(&metric) {
            Some(o) => o.apply(t),
            None => t,
        })
    }
}

impl Override {
    /// `base` with this override applied.
    pub fn apply(&self, base: Tolerance) -> Tolerance {
        Tolerance {
            relative: self.relative.unwrap_or(base.relative),
            paired_relative: self.paired_relative.or(base.paired_relative),
            absolute_floor: self.absolute_floor.or(base.absolute_floor),
            enforce: self.enforce.unwrap_or(base.enforce),
            ..base
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    component: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    source: String,
    #[serde(default)]
    request: Option<RawRequest>,
    #[serde(default)]
    profiles: Option<Vec<String>>,
    #[serde(default)]
    tolerances: BTreeMap<String, Override>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRequest {
    /// `"GET /"`.
    Line(String),
    /// `{ method, path, headers, body }`.
    Table(RawRequestTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequestTable {
    #[serde(default = "get")]
    method: String,
    #[serde(default = "slash")]
    path: String,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    body: Option<PathBuf>,
}

fn get() -> String {
    "GET".into()
}

fn slash() -> String {
    "/".into()
}

/// Reads and checks a manifest; every component's file is read and
/// classified now, so a bad path fails before anything is measured.
///
/// # Errors
///
/// One line naming the file, the component and what is wrong.
pub fn load(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let at = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("{at}: cannot be read: {e}; a manifest lists components as [[component]] tables (see README.md, \"Your own components\")")
    })?;
    let file: File = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{at}: {}", e.to_string().replace('\n', " ").trim()))?;
    if file.component.is_empty() {
        anyhow::bail!("{at}: lists no [[component]]");
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut entries: Vec<Entry> = Vec::new();
    for raw in file.component {
        let name = raw.name.trim().to_owned();
        let bad = |what: String| anyhow::anyhow!("{at}: component `{name}`: {what}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "a name is letters, digits, `-` and `_` (it is part of trial names)".into(),
            ));
        }
        if entries.iter().any(|e| e.name == name) {
            return Err(bad("is listed twice".into()));
        }
        let source = match raw.source.strip_prefix("embedded:") {
            Some("cli") => ComponentSource::embedded_as(Embedded::Cli),
            Some("http") => ComponentSource::embedded_as(Embedded::Http),
            Some(other) => {
                return Err(bad(format!(
                    "source `embedded:{other}`: no such embedded component; use embedded:cli or embedded:http"
                )));
            }
            None => ComponentSource::from_path(&dir.join(&raw.source))
                .map_err(|e| bad(format!("source: {e}")))?,
        };
        let request = match raw.request {
            None => RequestSpec::default(),
            Some(RawRequest::Line(line)) => {
                let (method, path) = line.trim().split_once(' ').ok_or_else(|| {
                    bad(format!("request `{line}`: write it as \"METHOD /path\""))
                })?;
                RequestSpec {
                    method: method.into(),
                    path: path.trim().into(),
                    ..RequestSpec::default()
                }
            }
            Some(RawRequest::Table(t)) => {
                let mut headers = Vec::new();
                for h in &t.headers {
                    headers.push(
                        crate::cli::parse_header(h).map_err(|e| bad(format!("request: {e}")))?,
                    );
                }
                let body = match &t.body {
                    None => Vec::new(),
                    Some(b) => std::fs::read(dir.join(b)).map_err(|e| {
                        bad(format!("request body {}: cannot be read: {e}", b.display()))
                    })?,
                };
                RequestSpec {
                    method: t.method,
                    path: t.path,
                    headers,
                    body,
                }
            }
        };
        request
            .validate()
            .map_err(|e| bad(format!("request: {e}")))?;
        let profiles = match raw.profiles {
            None => Allocator::ALL.to_vec(),
            Some(list) if list.is_empty() => return Err(bad("profiles is empty".into())),
            Some(list) => list
                .iter()
                .map(|p| {
                    p.parse::<Allocator>()
                        .map_err(|e| bad(format!("profiles: {e}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let mut tolerances = BTreeMap::new();
        for (metric, o) in raw.tolerances {
            let m: Metric = metric
                .parse()
                .map_err(|e: crate::model::ParseError| bad(format!("tolerances: {e}")))?;
            for (key, v) in [
                ("relative", o.relative),
                ("paired_relative", o.paired_relative),
                ("absolute_floor", o.absolute_floor),
            ] {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return Err(bad(format!(
                        "tolerances.{metric}.{key}: must be a number >= 0"
                    )));
                }
            }
            tolerances.insert(m, o);
        }
        entries.push(Entry {
            name,
            source,
            request,
            profiles,
            tolerances,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> anyhow::Result<Vec<Entry>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("components.toml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn the_committed_manifest_lists_both_hello_worlds() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MANIFEST);
        let entries = load(&path).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["hello", "http-hello"]);
        assert_eq!(entries[1].source.embedded, Some(Embedded::Http));
    }

    #[test]
    fn requests_profiles_and_overrides_are_read() {
        let e = load_text(
            r#"
[[component]]
name = "api"
source = "embedded:http"
request = { method = "POST", path = "/x", headers = ["a: b"] }
profiles = ["pooling"]
[component.tolerances]
instructions-lifecycle = { relative = 0.05 }
"#,
        )
        .unwrap();
        assert_eq!(e[0].request.method, "POST");
        assert_eq!(e[0].request.headers, [("a".to_owned(), "b".to_owned())]);
        assert_eq!(e[0].profiles, [Allocator::Pooling]);
        assert_eq!(
            e[0].tolerances[&Metric::InstructionsLifecycle].relative,
            Some(0.05)
        );
        let line = load_text(
            "[[component]]\nname = \"h\"\nsource = \"embedded:http\"\nrequest = \"DELETE /a\"\n",
        )
        .unwrap();
        assert_eq!(
            (
                line[0].request.method.as_str(),
                line[0].request.path.as_str()
            ),
            ("DELETE", "/a")
        );
    }

    #[test]
    fn mistakes_are_one_line_naming_the_file_and_key() {
        let cases = [
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:cli\"\ncolour = 1\n",
                "unknown field `colour`",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"missing.wasm\"\n",
                "no such file",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:rust\"\n",
                "no such embedded component",
            ),
            (
                "[[component]]\nname = \"a b\"\nsource = \"embedded:cli\"\n",
                "a name is letters",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:cli\"\nprofiles = [\"fast\"]\n",
                "profiles",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:cli\"\n[component.tolerances]\nspeed = { relative = 0.1 }\n",
                "tolerances",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:cli\"\n[component.tolerances]\nlifecycle = { relative = -1 }\n",
                "must be a number >= 0",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:http\"\nrequest = \"GET\"\n",
                "METHOD /path",
            ),
            (
                "[[component]]\nname = \"a\"\nsource = \"embedded:cli\"\n[[component]]\nname = \"a\"\nsource = \"embedded:cli\"\n",
                "listed twice",
            ),
            ("", "lists no [[component]]"),
        ];
        for (text, expected) in cases {
            let e = load_text(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?} gave {e:?}");
            assert!(e.contains("components.toml"), "{e:?} names the file");
            assert!(!e.contains('\n'), "{e:?} is one line");
        }
        let missing = load(Path::new("/nonexistent/components.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nonexistent/components.toml: cannot be read"),
            "{missing}"
        );
    }
}
