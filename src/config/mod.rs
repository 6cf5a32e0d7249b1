//! The component's settings, read from Spin variables on every request.
//!
//! Spin gives each request a fresh instance, so there is nothing to cache; reading a
//! variable is a host call each. The variables are declared in `spin.toml` and set with
//! `--variable`, `SPIN_VARIABLE_*` or a variables provider (see `runtime-config.toml`).

mod error;
mod masking;
mod mysql_url;
mod redis_url;

pub use error::ConfigError;
pub use masking::{without_credentials, without_password};

/// Where Redis and MySQL are, as the URLs Spin's outbound interfaces open.
pub struct Config {
    /// `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS (see
    /// [`redis_url`]).
    pub redis_url: String,
    /// Numbers per second that one application may be given; 0 when unlimited.
    pub rate_limit_per_second: u32,
    variables: Box<Variables>,
}

/// Looks a Spin variable up by name: `Ok(None)` when it is not defined (its default
/// applies), an error when the provider could not say (never read as "not set").
pub type Lookup = dyn Fn(&'static str) -> Result<Option<String>, ConfigError>;
type Variables = Lookup;

impl std::fmt::Debug for Config {
    // The URLs may hold passwords, so a debug print shows none of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the settings through `get` (Spin's `variables::get` in the component).
    pub fn load(
        get: impl Fn(&'static str) -> Result<Option<String>, ConfigError> + 'static,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            redis_url: redis_url::parse(&require(&get, "redis_url")?)?,
            rate_limit_per_second: rate_limit(get("rate_limit_per_second")?.as_deref())?,
            variables: Box::new(get),
        })
    }

    /// `mysql://user[:password]@host[:port]/database[?ssl-mode=...]` (see [`mysql_url`]),
    /// read only when MySQL is needed (a cache miss), so a warm request makes one host
    /// call fewer.
    pub fn mysql_url(&self) -> Result<String, ConfigError> {
        mysql_url::parse(&require(&self.variables, "mysql_url")?)
    }

    /// `lookup_cache_seconds`: how long a looked-up application or chat id is cached, and
    /// so how long writes can still reach one deleted in MySQL (docs/rails.md). Read only
    /// when a request fills the cache.
    pub fn cache_seconds(&self) -> Result<i64, ConfigError> {
        bounded(&self.variables, "lookup_cache_seconds", 300, 86_400)
    }

    /// `mysql_max_connections`: the MySQL connections the service may hold at once across
    /// all its instances and nodes (10 unless set), so that it never takes the
    /// connections the Rails app sharing the database needs; beyond it a lookup is a 503
    /// at once. Read only when a request needs MySQL.
    pub fn mysql_max_connections(&self) -> Result<u32, ConfigError> {
        let most = bounded(&self.variables, "mysql_max_connections", 10, 10_000)?;
        Ok(u32::try_from(most).unwrap_or(u32::MAX))
    }

    /// `request_body_timeout_seconds`: how long a message's body may take to arrive (5 s
    /// unless set). A client that stops sending holds an instance until then, and Spin
    /// has a bounded number of them (docs/operations.md, "Slow clients").
    pub fn request_body_timeout(&self) -> Result<std::time::Duration, ConfigError> {
        let seconds = bounded(&self.variables, "request_body_timeout_seconds", 5, 300)?;
        Ok(std::time::Duration::from_secs(seconds.unsigned_abs()))
    }

    /// `idempotency_key_seconds`: how long an `Idempotency-Key` is remembered, and so how
    /// many records Redis holds (docs/operations.md). Read only for a request with a key.
    pub fn idempotency_seconds(&self) -> Result<i64, ConfigError> {
        bounded(
            &self.variables,
            "idempotency_key_seconds",
            86_400,
            30 * 86_400,
        )
    }
}

/// A whole number (a lifetime in seconds, a count) from 1 to `most`; `default` when
/// unset or empty.
fn bounded(
    get: &impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    name: &'static str,
    default: i64,
    most: i64,
) -> Result<i64, ConfigError> {
    match get(name)?.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (1..=most).contains(n))
            .ok_or_else(|| {
                ConfigError::invalid(format!(
                    "variable {name} is not a whole number from 1 to {most}: {text:?}"
                ))
            }),
    }
}

fn require(
    get: &impl Fn(&'static str) -> Result<Option<String>, ConfigError>,
    name: &'static str,
) -> Result<String, ConfigError> {
    get(name)?
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or(ConfigError::Missing { name })
}

/// Off (0) unless set: the Go service had no limit, and a limit that is on by surprise
/// would turn a busy application's traffic into 429s.
fn rate_limit(value: Option<&str>) -> Result<u32, ConfigError> {
    match value.map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            ConfigError::invalid(format!(
                "variable rate_limit_per_second is not a whole number of requests: {text:?}"
            ))
        }),
    }
}

/// The name of the first parameter in `query`, for an error that names it: printable
/// ASCII and short, since it goes into a log line; never its value, which may be secret.
fn parameter_name(query: &str) -> String {
    let pair = query.split('&').find(|pair| !pair.is_empty()).unwrap_or("");
    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
    let printable: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect();
    format!("{printable:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::error::ApiError;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ApiError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Ok(Config::load(move |name| {
            Ok(pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()))
        })?)
    }

    #[test]
    fn urls_pass_through() {
        let config = load(&[
            ("redis_url", "redis://127.0.0.1:6379/0"),
            ("mysql_url", "mysql://root@127.0.0.1:3306/chat"),
        ])
        .unwrap();
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379/0");
        assert_eq!(
            config.mysql_url().unwrap(),
            "mysql://root@127.0.0.1:3306/chat"
        );
    }

    #[test]
    fn the_go_service_forms_are_read_too() {
        let config = load(&[
            ("redis_url", "redis:6379"),
            (
                "mysql_url",
                "root:pw@tcp(mysql:3306)/chat?parseTime=true&tls=true",
            ),
        ])
        .unwrap();
        assert_eq!(config.redis_url, "redis://redis:6379");
        assert_eq!(
            config.mysql_url().unwrap(),
            "mysql://root:pw@mysql:3306/chat?ssl-mode=VERIFY_IDENTITY"
        );
    }

    #[test]
    fn the_rate_limit_is_off_unless_set_to_a_number() {
        let limit = |value: Option<&str>| {
            let mut pairs = vec![("redis_url", "redis://r")];
            pairs.extend(value.map(|v| ("rate_limit_per_second", v)));
            load(&pairs).map(|config| config.rate_limit_per_second)
        };
        assert_eq!(limit(None), Ok(0));
        assert_eq!(limit(Some("")), Ok(0));
        assert_eq!(limit(Some("0")), Ok(0));
        assert_eq!(limit(Some(" 50 ")), Ok(50));
        for bad in ["-1", "1.5", "ten", "4294967296"] {
            assert_eq!(limit(Some(bad)).unwrap_err().status(), 500, "{bad}");
        }
    }

    #[test]
    fn unusable_settings_are_a_misconfiguration_that_hides_the_value() {
        for mysql in [
            "",
            "root:secret@unix(/run/mysqld.sock)/x",
            "mysql://u:secret@d/x?a=b",
        ] {
            let config = load(&[("redis_url", "redis://r"), ("mysql_url", mysql)]).unwrap();
            let error = ApiError::from(config.mysql_url().unwrap_err());
            assert_eq!(error.status(), 500);
            assert!(!error.log_detail().unwrap().contains("secret"));
        }
        for redis in [None, Some("rediss://:secret@r:6380/#insecure")] {
            let pairs: Vec<_> = redis.map(|url| ("redis_url", url)).into_iter().collect();
            let error = load(&pairs).unwrap_err();
            assert_eq!(error.status(), 500);
            assert!(!error.log_detail().unwrap().contains("secret"));
        }
    }

    #[test]
    fn lifetimes_have_defaults_and_bounds() {
        let lifetimes = |pairs: &[(&str, &str)]| {
            let mut all = vec![("redis_url", "redis://r")];
            all.extend_from_slice(pairs);
            let config = load(&all).unwrap();
            (config.cache_seconds(), config.idempotency_seconds())
        };
        assert_eq!(lifetimes(&[]), (Ok(300), Ok(86_400)));
        assert_eq!(
            lifetimes(&[
                ("lookup_cache_seconds", "30"),
                ("idempotency_key_seconds", " 3600 ")
            ]),
            (Ok(30), Ok(3600))
        );
        for bad in ["0", "-5", "1.5", "a day", "86401"] {
            let (cache, _) = lifetimes(&[("lookup_cache_seconds", bad)]);
            assert_eq!(ApiError::from(cache.unwrap_err()).status(), 500, "{bad}");
        }
    }

    #[test]
    fn a_variable_the_provider_cannot_read_is_an_error_never_its_default() {
        let down = |failing: &'static str| {
            move |name: &str| {
                if name == failing {
                    Err(ConfigError::Unreadable {
                        name: failing,
                        cause: "vault: connection refused".to_owned(),
                    })
                } else {
                    Ok(match name {
                        "redis_url" => Some("redis://r".to_owned()),
                        "mysql_url" => Some("mysql://u@m/chat".to_owned()),
                        _ => None,
                    })
                }
            }
        };
        for name in ["redis_url", "rate_limit_per_second"] {
            let error = ApiError::from(Config::load(down(name)).unwrap_err());
            assert_eq!(error.status(), 500, "{name}");
            assert!(error.log_detail().unwrap().contains(name), "{name}");
        }
        for name in [
            "mysql_url",
            "lookup_cache_seconds",
            "mysql_max_connections",
            "idempotency_key_seconds",
        ] {
            let config = Config::load(down(name)).unwrap();
            let failed = [
                config.mysql_url().err(),
                config.cache_seconds().err(),
                config.mysql_max_connections().err(),
                config.idempotency_seconds().err(),
            ];
            assert_eq!(failed.iter().flatten().count(), 1, "{name}");
        }
        let undefined = Config::load(|name| Ok((name == "redis_url").then(|| "redis://r".into())));
        let config = undefined.unwrap();
        assert_eq!(config.rate_limit_per_second, 0);
        assert_eq!(config.cache_seconds(), Ok(300));
    }
}
