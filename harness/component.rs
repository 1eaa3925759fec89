//! The component under test: the embedded hello world, or a user's file.
//!
//! Loading reads and classifies the bytes before Wasmtime sees them, so that a
//! wrong file gets an error that names the file and says what it is instead.

use std::path::{Path, PathBuf};

/// The hello-world WASI 0.2 component every figure is measured on by default.
///
/// Built from `assets/hello/` by `assets/build.sh`; see `assets/README.md`.
pub const EMBEDDED_HELLO: &[u8] = include_bytes!("../assets/hello.wasm");

/// The name the embedded component is reported under.
pub const EMBEDDED_NAME: &str = "embedded hello";

/// The name the gate, its trials and its baselines give the embedded component.
pub const EMBEDDED_GATE_NAME: &str = "hello";

/// The minimal `wasi:http/proxy` hello handler, the second embedded
/// component: answers `200 Hello, world!` to any request.
///
/// Built from `assets/http-hello/` by its `build.sh`; see its README.
pub const EMBEDDED_HTTP_HELLO: &[u8] = include_bytes!("../assets/http-hello.wasm");

/// The name the embedded HTTP handler is reported under.
pub const EMBEDDED_HTTP_NAME: &str = "embedded http-hello";

/// The name the gate gives the embedded HTTP handler.
pub const EMBEDDED_HTTP_GATE_NAME: &str = "http-hello";

/// The embedded components, by the name `--embedded` takes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Embedded {
    /// The hello-world command: `wasi:cli/run` prints `Hello, world!`.
    Cli,
    /// The hello HTTP handler: `wasi:http/incoming-handler` answers `200`.
    Http,
}

impl Embedded {
    /// Both, CLI first.
    pub const ALL: [Embedded; 2] = [Embedded::Cli, Embedded::Http];

    /// `cli` or `http`.
    pub fn name(self) -> &'static str {
        match self {
            Embedded::Cli => "cli",
            Embedded::Http => "http",
        }
    }

    /// The name its gate trials and baselines use.
    pub fn gate_name(self) -> &'static str {
        match self {
            Embedded::Cli => EMBEDDED_GATE_NAME,
            Embedded::Http => EMBEDDED_HTTP_GATE_NAME,
        }
    }
}

/// A component's bytes and where they came from.
#[derive(Debug, Clone)]
pub struct ComponentSource {
    /// What the report calls it.
    pub name: String,
    /// The file it was read from, or `None` for an embedded component.
    pub path: Option<PathBuf>,
    /// Which embedded component it is, or `None` for a file.
    pub embedded: Option<Embedded>,
    /// The `.wasm` bytes.
    pub bytes: Vec<u8>,
}

/// Why a `--component` file cannot be measured.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The path does not exist.
    #[error("{path}: no such file; pass the path of a .wasm component")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The path is a directory.
    #[error("{path}: is a directory; pass the path of a .wasm component inside it")]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{path}: cannot be read: {cause}")]
    Unreadable {
        /// The path given.
        path: PathBuf,
        /// The operating system's reason. Not a `source`: the message already
        /// says it, and `{:#}` would print it twice.
        cause: std::io::Error,
    },
    /// The file is empty.
    #[error("{path}: is empty (0 bytes); pass a .wasm component")]
    Empty {
        /// The path given.
        path: PathBuf,
    },
    /// The file is WebAssembly text, not binary.
    #[error(
        "{path}: is WebAssembly text, not binary; convert it with `wasm-tools parse {path} -o out.wasm`"
    )]
    Text {
        /// The path given.
        path: PathBuf,
    },
    /// The file does not start with the WebAssembly magic number.
    #[error("{path}: is not WebAssembly ({what}); pass a .wasm component")]
    NotWasm {
        /// The path given.
        path: PathBuf,
        /// What the first bytes look like.
        what: &'static str,
    },
    /// The file is a core module, not a component.
    #[error(
        "{path}: is a core WebAssembly module, not a component; make one with \
         `wasm-tools component new {path} -o component.wasm` (for a WASI preview 1 module add \
         `--adapt wasi_snapshot_preview1.command.wasm`), or build for the wasm32-wasip2 target"
    )]
    CoreModule {
        /// The path given.
        path: PathBuf,
    },
    /// The file is a native executable or library, not WebAssembly.
    #[error(
        "{path}: is a native ELF executable or library, not WebAssembly; pass a .wasm component"
    )]
    NativeBinary {
        /// The path given.
        path: PathBuf,
    },
    /// The file is a precompiled artifact, which this tool does not take as input.
    #[error(
        "{path}: is a precompiled Wasmtime artifact (.cwasm), not a .wasm component; artifacts \
         only load into the exact Wasmtime version and configuration that made them, so pass \
         the .wasm it was compiled from"
    )]
    Precompiled {
        /// The path given.
        path: PathBuf,
    },
    /// The header says component, but the rest is short or malformed.
    #[error(
        "{path}: has an unknown WebAssembly version or layer {version:#010x}; is it truncated?"
    )]
    UnknownVersion {
        /// The path given.
        path: PathBuf,
        /// The 4 bytes after the magic number, little-endian.
        version: u32,
    },
}

impl ComponentSource {
    /// The embedded hello-world component.
    pub fn embedded() -> Self {
        ComponentSource {
            name: EMBEDDED_NAME.to_owned(),
            path: None,
            embedded: Some(Embedded::Cli),
            bytes: EMBEDDED_HELLO.to_vec(),
        }
    }

    /// One of the embedded components.
    pub fn embedded_as(which: Embedded) -> Self {
        match which {
            Embedded::Cli => ComponentSource::embedded(),
            Embedded::Http => ComponentSource {
                name: EMBEDDED_HTTP_NAME.to_owned(),
                path: None,
                embedded: Some(Embedded::Http),
                bytes: EMBEDDED_HTTP_HELLO.to_vec(),
            },
        }
    }

    /// The component a run names: a file, or an embedded one (the CLI hello
    /// when neither is given).
    ///
    /// # Errors
    ///
    /// As [`ComponentSource::from_path`].
    pub fn resolve(
        path: Option<&Path>,
        embedded: Option<Embedded>,
    ) -> Result<Self, ComponentError> {
        match path {
            Some(p) => ComponentSource::from_path(p),
            None => Ok(ComponentSource::embedded_as(
                embedded.unwrap_or(Embedded::Cli),
            )),
        }
    }

    /// Reads and classifies a component file.
    ///
    /// # Errors
    ///
    /// Returns a [`ComponentError`] naming the file when it is missing, a
    /// directory, unreadable, empty, text, not WebAssembly, a core module or a
    /// precompiled artifact. Whether the bytes are a *valid* component is
    /// decided later, when Wasmtime compiles them.
    pub fn from_path(path: &Path) -> Result<Self, ComponentError> {
        let p = path.to_path_buf();
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ComponentError::NotFound { path: p.clone() },
            _ => ComponentError::Unreadable {
                path: p.clone(),
                cause: e,
            },
        })?;
        if meta.is_dir() {
            return Err(ComponentError::IsDirectory { path: p });
        }
        let bytes = std::fs::read(path).map_err(|e| ComponentError::Unreadable {
            path: p.clone(),
            cause: e,
        })?;
        classify(&p, &bytes)?;
        Ok(ComponentSource {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            // Absolute, because child processes read it again from another
            // working directory.
            path: Some(std::path::absolute(path).unwrap_or(p)),
            embedded: None,
            bytes,
        })
    }

    /// How errors name it: its path, or the embedded component's name.
    pub fn label(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => self.name.clone(),
        }
    }

    /// A 64-bit FNV-1a hash of the bytes, in hex.
    pub fn fnv1a64(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in &self.bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";
const CORE_VERSION: u32 = 0x0000_0001;
const COMPONENT_VERSION: u32 = 0x0001_000d;

/// Checks that `bytes` start like a binary component.
fn classify(path: &Path, bytes: &[u8]) -> Result<(), ComponentError> {
    let path = path.to_path_buf();
    if bytes.is_empty() {
        return Err(ComponentError::Empty { path });
    }
    if bytes.starts_with(b"\x7fELF") {
        // Wasmtime's artifacts are ELF files marked with its own OS ABI.
        return Err(if wasmtime::Engine::detect_precompiled(bytes).is_some() {
            ComponentError::Precompiled { path }
        } else {
            ComponentError::NativeBinary { path }
        });
    }
    if !bytes.starts_with(WASM_MAGIC) {
        let head = &bytes[..bytes.len().min(512)];
        let trimmed = std::str::from_utf8(head).map(str::trim_start);
        return Err(match trimmed {
            Ok(t)
                if t.starts_with("(component")
                    || t.starts_with("(module")
                    || t.starts_with(";;") =>
            {
                ComponentError::Text { path }
            }
            Ok(_) => ComponentError::NotWasm {
                path,
                what: "it looks like text",
            },
            Err(_) => ComponentError::NotWasm {
                path,
                what: "its first bytes are not the \\0asm magic number",
            },
        });
    }
    if bytes.len() < 8 {
        return Err(ComponentError::UnknownVersion { path, version: 0 });
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    match version {
        COMPONENT_VERSION => Ok(()),
        CORE_VERSION => Err(ComponentError::CoreModule { path }),
        _ => Err(ComponentError::UnknownVersion { path, version }),
    }
}

/// Core instances one instance of the component creates, counted in its
/// binary (every `core instance` declaration, at every nesting level). The
/// pooling allocator needs a slot for each; 64 if the bytes cannot be read.
pub fn core_instances(bytes: &[u8]) -> u32 {
    let mut count = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::InstanceSection(reader)) => count += reader.count(),
            Ok(_) => {}
            Err(_) => return 64,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> String {
        classify(Path::new("x.wasm"), bytes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_embedded_component_has_a_component_header() {
        classify(Path::new("embedded"), EMBEDDED_HELLO).unwrap();
    }

    #[test]
    fn each_wrong_kind_of_file_is_named_for_what_it_is() {
        assert!(err(b"").contains("is empty"));
        assert!(err(b"(module)").contains("WebAssembly text"));
        assert!(err(b"hello there").contains("looks like text"));
        assert!(err(&[0xff, 0xfe, 0x00, 0x01]).contains("magic number"));
        assert!(err(b"\0asm\x01\0\0\0").contains("core WebAssembly module"));
        assert!(err(b"\x7fELF\x02\x01").contains("native ELF executable"));
        assert!(err(b"\0asm\x0d\0").contains("truncated"));
    }

    #[test]
    fn missing_paths_and_directories_are_named() {
        let e = ComponentSource::from_path(Path::new("/no/such/file.wasm")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/no/such/file.wasm: no such file"),
            "{e}"
        );
        let e = ComponentSource::from_path(Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
