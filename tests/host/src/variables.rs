//! Spin variables: application variables, component templates over them, and providers.
//!
//! Mirrors spin-expressions (`ProviderResolver`, `Key`, `Template`) and spin-variables
//! (`EnvVariablesProvider`, `runtime_config_from_toml`):
//! - a name is resolved by asking each provider in order, then falling back to the
//!   manifest default; a required variable nobody provides is a provider error
//!   `no provider resolved required variable "name"`;
//! - provider order is: `--variable` overrides (a static provider in front), the
//!   runtime-config `[[variables_provider]]`/`[[config_provider]]` entries in file order,
//!   then the always-present default env provider (`SPIN_VARIABLE_<NAME>`, `.env`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::manifest::{AppVariable, Manifest};

/// Errors as spin-expressions reports them; mapped 1:1 onto `fermyon:spin/variables.error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableError {
    InvalidName(String),
    Undefined(String),
    Provider(String),
    Other(String),
}

impl std::fmt::Display for VariableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Same wording as spin_expressions::Error's Display.
        match self {
            Self::InvalidName(m) => write!(f, "invalid variable name: {m}"),
            Self::Undefined(m) => write!(f, "undefined variable: {m}"),
            Self::Provider(m) => write!(f, "provider error: {m}"),
            Self::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for VariableError {}

/// A source of variable values, asked before manifest defaults.
#[derive(Debug, Clone)]
pub enum Provider {
    /// `--variable k=v` overrides.
    Static(HashMap<String, String>),
    /// spin-variables' env provider: `{prefix}_{NAME}` from `env`, falling back to a dotenv file.
    Env {
        prefix: String,
        env: HashMap<String, String>,
        dotenv: HashMap<String, String>,
    },
    /// `type = "vault"`, modelled only as far as the tests need it: a Vault that cannot be
    /// reached fails every lookup with a provider error, as Spin's does (it asks each
    /// provider in order and stops at the first error). A reachable one is refused too:
    /// the host speaks no Vault API.
    Vault { url: String },
}

impl Provider {
    /// Build an env provider; `prefix` defaults to `SPIN_VARIABLE` like Spin's.
    pub fn env(
        prefix: Option<String>,
        env: HashMap<String, String>,
        dotenv_path: Option<&Path>,
    ) -> Self {
        // Spin's provider ignores a missing dotenv file (dotenvy iter error is flattened).
        let dotenv = dotenv_path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse_dotenv(&t))
            .unwrap_or_default();
        Self::Env {
            prefix: prefix.unwrap_or_else(|| "SPIN_VARIABLE".to_string()),
            env,
            dotenv,
        }
    }

    fn get(&self, key: &str) -> Result<Option<String>, VariableError> {
        Ok(match self {
            Self::Static(map) => map.get(key).cloned(),
            Self::Vault { url } => {
                let authority = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
                let authority = authority.split('/').next().unwrap_or_default();
                let reached = std::net::ToSocketAddrs::to_socket_addrs(authority)
                    .ok()
                    .and_then(|mut addrs| addrs.next())
                    .is_some_and(|addr| {
                        std::net::TcpStream::connect_timeout(
                            &addr,
                            std::time::Duration::from_secs(1),
                        )
                        .is_ok()
                    });
                return Err(VariableError::Provider(if reached {
                    format!("the test host speaks no Vault API ({url})")
                } else {
                    format!("error sending request for url ({url}/v1/...): connection refused")
                }));
            }
            Self::Env {
                prefix,
                env,
                dotenv,
            } => {
                let env_key = format!("{prefix}_{}", key.to_ascii_uppercase());
                env.get(&env_key).or_else(|| dotenv.get(&env_key)).cloned()
            }
        })
    }
}

fn parse_dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// One part of a `{{ var }}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Expr(String),
}

/// Parse a Spin template: literal text with `{{ name }}` expressions.
pub fn parse_template(s: &str) -> Result<Vec<Part>, VariableError> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Lit(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            VariableError::Other(format!(
                "invalid variable template: unclosed '{{{{' in {s:?}"
            ))
        })?;
        parts.push(Part::Expr(after[..end].trim().to_string()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(parts)
}

/// spin_expressions::Key::validate: lower-case letters, digits and single underscores,
/// starting with a letter and ending with a letter or digit.
pub fn validate_key(key: &str) -> Result<(), VariableError> {
    let reason = if key.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {c:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !key.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !key.as_bytes()[key.len() - 1].is_ascii_alphanumeric() {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if key.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        Some(r) => Err(VariableError::InvalidName(format!("{key:?}: {r}"))),
        None => Ok(()),
    }
}

/// The application's variables and how to resolve them.
#[derive(Debug, Clone)]
pub struct Variables {
    app: BTreeMap<String, AppVariable>,
    providers: Vec<Provider>,
    /// component id -> variable name -> template
    components: HashMap<String, BTreeMap<String, Vec<Part>>>,
}

impl Variables {
    /// Build the resolver; fails like Spin's loader on invalid names or templates that
    /// reference unknown application variables.
    pub fn new(manifest: &Manifest, providers: Vec<Provider>) -> Result<Self> {
        for name in manifest.variables.keys() {
            validate_key(name)?;
        }
        let mut components = HashMap::new();
        for (id, c) in &manifest.components {
            let mut templates = BTreeMap::new();
            for (key, tpl) in &c.variables {
                validate_key(key)?;
                let parts = parse_template(tpl)?;
                for p in &parts {
                    if let Part::Expr(v) = p
                        && !manifest.variables.contains_key(v)
                    {
                        bail!("invalid variable template: unknown variable {v:?}");
                    }
                }
                templates.insert(key.clone(), parts);
            }
            components.insert(id.clone(), templates);
        }
        Ok(Self {
            app: manifest.variables.clone(),
            providers,
            components,
        })
    }

    /// Resolve one application variable: providers in order, then the default.
    pub fn resolve_app_variable(&self, name: &str) -> Result<String, VariableError> {
        let var = self
            .app
            .get(name)
            .ok_or_else(|| VariableError::InvalidName(name.to_string()))?;
        for provider in &self.providers {
            if let Some(v) = provider.get(name)? {
                return Ok(v);
            }
        }
        var.default.clone().ok_or_else(|| {
            VariableError::Provider(format!("no provider resolved required variable {name:?}"))
        })
    }

    /// Resolve a template whose expressions name application variables.
    pub fn resolve_template(&self, parts: &[Part]) -> Result<String, VariableError> {
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(v) => out.push_str(&self.resolve_app_variable(v)?),
            }
        }
        Ok(out)
    }

    /// `fermyon:spin/variables.get` for a component, with Spin's error texts.
    pub fn get(&self, component_id: &str, key: &str) -> Result<String, VariableError> {
        validate_key(key)?;
        let templates = self.components.get(component_id).ok_or_else(|| {
            VariableError::Undefined(format!("no variable for component {component_id:?}"))
        })?;
        let tpl = templates.get(key).ok_or_else(|| {
            VariableError::Undefined(format!("no variable for {component_id:?}.{key:?}"))
        })?;
        self.resolve_template(tpl)
    }

    /// Spin's startup check (`ensure_required_variables_resolvable`): every required
    /// application variable must be provided, or `spin up` fails before serving.
    pub fn ensure_required_resolvable(&self) -> Result<()> {
        for (name, var) in &self.app {
            if var.default.is_none() {
                self.resolve_app_variable(name)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        Ok(())
    }

    /// All application variables resolved (Spin's `PreparedResolver`), used for
    /// `{{ var }}` templates in `allowed_outbound_hosts`.
    pub fn prepared(&self) -> Result<HashMap<String, String>, VariableError> {
        self.app
            .keys()
            .map(|k| Ok((k.clone(), self.resolve_app_variable(k)?)))
            .collect()
    }
}

/// Read `[[variables_provider]]` (or legacy `[[config_provider]]`) from a runtime-config
/// file. Only `type = "env"` is supported; `vault`/`azure_key_vault`/`static` are refused.
pub fn providers_from_runtime_config(
    path: &Path,
    env: &HashMap<String, String>,
) -> Result<Vec<Provider>> {
    let text = std::fs::read_to_string(path)?;
    let table: toml::Table = toml::from_str(&text)?;
    let Some(list) = table
        .get("variables_provider")
        .or_else(|| table.get("config_provider"))
    else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("config_provider must be an array of tables"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut providers = Vec::new();
    for entry in list {
        let kind = entry.get("type").and_then(|t| t.as_str()).unwrap_or("");
        match kind {
            "env" => {
                let prefix = entry
                    .get("prefix")
                    .and_then(|v| v.as_str())
                    .map(String::from);
                // Spin passes dotenv_path through unchanged (relative to the cwd);
                // resolving it against the runtime-config file is friendlier for tests
                // and only differs for relative paths run from another directory.
                let dotenv: Option<PathBuf> = entry
                    .get("dotenv_path")
                    .and_then(|v| v.as_str())
                    .map(|p| base.join(p));
                providers.push(Provider::env(prefix, env.clone(), dotenv.as_deref()));
            }
            // `values = { name = "value", ... }`, as Spin's static provider reads it.
            "static" => {
                let values = entry
                    .get("values")
                    .and_then(|v| v.as_table())
                    .ok_or_else(|| anyhow::anyhow!("a static provider needs a `values` table"))?;
                let values = values
                    .iter()
                    .map(|(name, value)| match value.as_str() {
                        Some(text) => Ok((name.clone(), text.to_owned())),
                        None => bail!("static provider value {name:?} is not a string"),
                    })
                    .collect::<Result<HashMap<_, _>>>()?;
                providers.push(Provider::Static(values));
            }
            "vault" => {
                let url = entry
                    .get("url")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| anyhow::anyhow!("a vault provider needs a `url`"))?;
                providers.push(Provider::Vault {
                    url: url.to_owned(),
                });
            }
            other => bail!("variables provider type {other:?} is not supported by the test host"),
        }
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[variables]
redis_url = { default = "redis://127.0.0.1:6379" }
token = { required = true }
[component.c]
source = "x.wasm"
[component.c.variables]
redis_url = "{{ redis_url }}"
auth = "Bearer {{token}}"
"#,
            Path::new("/"),
        )
        .unwrap()
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_then_env_then_override() {
        let m = manifest();
        let vars = Variables::new(&m, vec![Provider::env(None, env(&[]), None)]).unwrap();
        assert_eq!(
            vars.get("c", "redis_url").unwrap(),
            "redis://127.0.0.1:6379"
        );

        let e = env(&[("SPIN_VARIABLE_REDIS_URL", "redis://env:1")]);
        let vars = Variables::new(&m, vec![Provider::env(None, e.clone(), None)]).unwrap();
        assert_eq!(vars.get("c", "redis_url").unwrap(), "redis://env:1");

        let over = Provider::Static(env(&[("redis_url", "redis://cli:2")]));
        let vars = Variables::new(&m, vec![over, Provider::env(None, e, None)]).unwrap();
        assert_eq!(vars.get("c", "redis_url").unwrap(), "redis://cli:2");
    }

    #[test]
    fn required_missing_fails_startup_and_get() {
        let vars = Variables::new(&manifest(), vec![]).unwrap();
        let err = vars.ensure_required_resolvable().unwrap_err().to_string();
        assert!(
            err.contains("no provider resolved required variable \"token\""),
            "{err}"
        );
        assert!(matches!(
            vars.get("c", "auth"),
            Err(VariableError::Provider(_))
        ));
    }

    #[test]
    fn template_interpolates() {
        let p = Provider::Static(env(&[("token", "abc")]));
        let vars = Variables::new(&manifest(), vec![p]).unwrap();
        assert_eq!(vars.get("c", "auth").unwrap(), "Bearer abc");
    }

    #[test]
    fn undefined_and_invalid_names() {
        let vars = Variables::new(&manifest(), vec![]).unwrap();
        assert_eq!(
            vars.get("c", "nope"),
            Err(VariableError::Undefined(
                "no variable for \"c\".\"nope\"".into()
            ))
        );
        assert!(matches!(
            vars.get("c", "Bad"),
            Err(VariableError::InvalidName(_))
        ));
        assert!(matches!(
            vars.get("c", "a__b"),
            Err(VariableError::InvalidName(_))
        ));
    }

    #[test]
    fn custom_prefix_and_dotenv() {
        let dir = std::env::temp_dir().join(format!("sth-dotenv-{}", std::process::id()));
        std::fs::write(&dir, "# c\nAPP_TOKEN=\"from-dotenv\"\n").unwrap();
        let p = Provider::env(Some("APP".into()), env(&[]), Some(&dir));
        let vars = Variables::new(&manifest(), vec![p]).unwrap();
        assert_eq!(vars.get("c", "auth").unwrap(), "Bearer from-dotenv");
        std::fs::remove_file(dir).unwrap();
    }

    #[test]
    fn a_static_provider_in_the_runtime_config_answers_before_the_environment() {
        let path = std::env::temp_dir().join(format!("sth-static-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[[variables_provider]]\ntype = \"static\"\nvalues = { token = \"from-static\" }\n",
        )
        .unwrap();
        let mut providers = providers_from_runtime_config(&path, &env(&[])).unwrap();
        providers.push(Provider::env(
            None,
            env(&[("SPIN_VARIABLE_TOKEN", "from-env")]),
            None,
        ));
        let vars = Variables::new(&manifest(), providers).unwrap();
        assert_eq!(vars.get("c", "auth").unwrap(), "Bearer from-static");

        std::fs::write(
            &path,
            "[[variables_provider]]\ntype = \"static\"\nvalues = { token = 1 }\n",
        )
        .unwrap();
        assert!(providers_from_runtime_config(&path, &env(&[])).is_err());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn unknown_template_variable_is_rejected() {
        let mut m = manifest();
        m.components
            .get_mut("c")
            .unwrap()
            .variables
            .insert("x".into(), "{{ missing }}".into());
        assert!(Variables::new(&m, vec![]).is_err());
    }
}
