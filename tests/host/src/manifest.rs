//! The subset of Spin's manifest v2 (`spin.toml`) that the test host understands.
//!
//! Mirrors spin-manifest's schema for the fields we read; anything else in the file is
//! ignored (Spin would reject unknown keys in some tables, the test host does not).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// A parsed `spin.toml`, with component sources resolved against the manifest directory.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Directory holding the manifest; `source` paths are relative to it (as in Spin).
    pub dir: PathBuf,
    /// `[variables]`: application variables.
    pub variables: BTreeMap<String, AppVariable>,
    /// `[component.<id>]` tables by id.
    pub components: BTreeMap<String, Component>,
    /// `[[trigger.http]]` entries in manifest order (order matters for duplicate routes).
    pub http_triggers: Vec<HttpTrigger>,
    /// `[application.trigger.http] base`, default "/".
    pub http_base: String,
    /// `[application] name` and `version`, which Spin serves at `/.well-known/spin/info`.
    pub name: String,
    pub version: Option<String>,
}

/// One `[variables]` entry. Spin requires exactly one of `default` / `required = true`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppVariable {
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Component {
    pub id: String,
    /// Absolute path of the `.wasm` named by `source`.
    pub source: PathBuf,
    /// Raw `allowed_outbound_hosts` strings (may contain `{{ var }}` templates).
    pub allowed_outbound_hosts: Vec<String>,
    /// `[component.<id>.variables]`: name -> template over application variables.
    pub variables: BTreeMap<String, String>,
    /// `environment = { K = "v" }`: WASI environment of the component.
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    application: Option<RawApplication>,
    #[serde(default)]
    variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
    #[serde(default)]
    trigger: HashMap<String, Vec<toml::Value>>,
}

#[derive(Deserialize, Default)]
struct RawApplication {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    trigger: Option<RawAppTrigger>,
}

#[derive(Deserialize, Default)]
struct RawAppTrigger {
    #[serde(default)]
    http: Option<RawAppHttp>,
}

#[derive(Deserialize, Default)]
struct RawAppHttp {
    #[serde(default)]
    base: Option<String>,
}

#[derive(Deserialize)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: toml::Value,
    component: toml::Value,
}

impl Manifest {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read manifest {}", path.display()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        Self::parse(&text, &dir).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn parse(text: &str, dir: &Path) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        if raw.spin_manifest_version.as_integer() != Some(2) {
            bail!("only spin_manifest_version = 2 is supported by the test host");
        }
        for (name, var) in &raw.variables {
            // spin-manifest: "variable has both `required` and `default`" is an error,
            // and so is neither.
            match (var.required, &var.default) {
                (true, Some(_)) => bail!("variable {name:?} has both `required` and `default`"),
                (false, None) => {
                    bail!("variable {name:?} must have `required = true` or a `default`")
                }
                _ => {}
            }
        }
        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let source = match &c.source {
                toml::Value::String(s) => dir.join(s),
                _ => bail!("component {id:?}: only a local file `source` is supported"),
            };
            components.insert(
                id.clone(),
                Component {
                    id,
                    source,
                    allowed_outbound_hosts: c.allowed_outbound_hosts,
                    variables: c.variables,
                    environment: c.environment,
                },
            );
        }
        let mut http_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            if kind != "http" {
                bail!("trigger type {kind:?} is not supported by the test host (http only)");
            }
            for entry in entries {
                let t: RawHttpTrigger = entry.try_into()?;
                let route = match t.route {
                    toml::Value::String(s) => s,
                    // `{ private = true }` routes are not reachable over HTTP in Spin.
                    _ => continue,
                };
                let component = match t.component {
                    toml::Value::String(s) => s,
                    _ => bail!("inline trigger components are not supported by the test host"),
                };
                if !components.contains_key(&component) {
                    bail!("trigger route {route:?} names unknown component {component:?}");
                }
                http_triggers.push(HttpTrigger { route, component });
            }
        }
        let application = raw.application.unwrap_or_default();
        let (name, version) = (application.name.unwrap_or_default(), application.version);
        let http_base = application
            .trigger
            .and_then(|t| t.http)
            .and_then(|h| h.base)
            .unwrap_or_else(|| "/".to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            variables: raw.variables,
            components,
            http_triggers,
            http_base,
            name,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
redis_url = { default = "redis://127.0.0.1:6379" }
secret = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "svc"
[component.svc]
source = "target/x.wasm"
allowed_outbound_hosts = ["redis://127.0.0.1:6379"]
[component.svc.variables]
redis_url = "{{ redis_url }}"
"#;

    #[test]
    fn parses_v2_manifest() {
        let m = Manifest::parse(MANIFEST, Path::new("/app")).unwrap();
        assert_eq!(m.components["svc"].source, Path::new("/app/target/x.wasm"));
        assert_eq!(m.http_triggers[0].route, "/...");
        assert!(m.variables["secret"].required);
        assert_eq!(
            m.components["svc"].variables["redis_url"],
            "{{ redis_url }}"
        );
        assert_eq!(m.http_base, "/");
    }

    #[test]
    fn rejects_required_with_default() {
        let bad = MANIFEST.replace(
            "secret = { required = true, secret = true }",
            "secret = { required = true, default = \"x\" }",
        );
        assert!(Manifest::parse(&bad, Path::new("/")).is_err());
    }
}
