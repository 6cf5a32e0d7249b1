//! Turning the built `.wasm` into a component, and listing a component's imports.
//!
//! `cargo build --target wasm32-wasip1` produces a core module; Spin (spin-componentize)
//! wraps such a module into a component with wit-component's `ComponentEncoder` and the
//! WASI preview1 *reactor* adapter, so that preview1 calls (clock, random, environ,
//! stderr) become `wasi:*` p2 imports. Files that already are components load as-is.

use std::path::Path;

use anyhow::{Context, Result, bail};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};

/// Return component bytes for `bytes`, adapting a core module when needed.
pub fn componentize(bytes: &[u8]) -> Result<Vec<u8>> {
    if Parser::is_component(bytes) {
        return Ok(bytes.to_vec());
    }
    if !Parser::is_core_wasm(bytes) {
        bail!("not a WebAssembly module or component");
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(bytes)
        .context("the module has no usable component-type metadata (was it built with spin-sdk / wit-bindgen?)")?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .context("failed to encode the module as a component")
}

/// Read and componentize a `.wasm` file.
pub fn load_component_bytes(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    componentize(&bytes).with_context(|| format!("failed to componentize {}", path.display()))
}

/// The top-level import names of a component (or of the component Spin would make from a
/// core module), e.g. `fermyon:spin/redis@2.0.0`, `wasi:io/streams@0.2.x`.
pub fn component_imports(path: &Path) -> Result<Vec<String>> {
    let bytes = load_component_bytes(path)?;
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload? {
            // Nested modules/components have their own imports; only the outermost count.
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    names.push(import?.name.0.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The WIT interfaces a core module itself imports and exports, e.g.
/// `fermyon:spin/redis@2.0.0` and `wasi:http/incoming-handler@0.2.0`: what a host must
/// provide whichever preview1 adapter it applies (the adapter's own imports, listed by
/// [`component_imports`], are the host's choice: Spin links the adapter it ships).
/// The preview1 module the adapter stands in for is left out of `imports`; the functions
/// the module takes from it are `preview1` (none: no adapter is needed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModuleInterfaces {
    pub imports: std::collections::BTreeSet<String>,
    pub exports: std::collections::BTreeSet<String>,
    pub preview1: std::collections::BTreeSet<String>,
}

pub fn module_interfaces(path: &Path) -> Result<ModuleInterfaces> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    if !Parser::is_core_wasm(&bytes) {
        bail!("{} is not a core WebAssembly module", path.display());
    }
    let mut found = ModuleInterfaces::default();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    if import.module == WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME {
                        found.preview1.insert(import.name.to_owned());
                    } else {
                        found.imports.insert(import.module.to_owned());
                    }
                }
            }
            // wit-bindgen names an exported function `<interface>#<function>`, and its
            // post-return function `cabi_post_<interface>#<function>`.
            Payload::ExportSection(reader) => {
                for export in reader {
                    let name = export?.name;
                    if let Some((interface, _)) = name.split_once('#') {
                        let interface = interface.strip_prefix("cabi_post_").unwrap_or(interface);
                        found.exports.insert(interface.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}
