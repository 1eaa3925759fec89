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

/// A component's bytes and where they came from.
#[derive(Debug, Clone)]
pub struct ComponentSource {
    /// What the report calls it.
    pub name: String,
    /// The file it was read from, or `None` for the embedded component.
    pub path: Option<PathBuf>,
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
            bytes: EMBEDDED_HELLO.to_vec(),
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
