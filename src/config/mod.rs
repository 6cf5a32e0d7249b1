//! The component's settings, read from Spin variables on every request.
//!
//! Spin gives each request a fresh instance, so there is nothing to cache; reading a
//! variable is a host call each. The variables are declared in `spin.toml` and set with
//! `--variable`, `SPIN_VARIABLE_*` or a variables provider (see `runtime-config.toml`).

use crate::error::ApiError;

/// Where Redis and MySQL are, as the URLs Spin's outbound interfaces open.
pub struct Config {
    /// `redis://[user:password@]host[:port][/db]` (or `rediss://`).
    pub redis_url: String,
    /// Numbers per second that one application may be given; 0 when unlimited.
    pub rate_limit_per_second: u32,
    variables: Box<Variables>,
}

/// Looks a Spin variable up by name.
type Variables = dyn Fn(&str) -> Option<String>;

impl std::fmt::Debug for Config {
    // The URLs may hold passwords, so a debug print shows none of them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

impl Config {
    /// Reads the settings through `get` (Spin's `variables::get` in the component).
    pub fn load(get: impl Fn(&str) -> Option<String> + 'static) -> Result<Self, ApiError> {
        Ok(Self {
            redis_url: redis_url(&require(&get, "redis_url")?),
            rate_limit_per_second: rate_limit(get("rate_limit_per_second").as_deref())?,
            variables: Box::new(get),
        })
    }

    /// `mysql://user[:password]@host[:port]/database`, read only when MySQL is needed (a
    /// cache miss), so a warm request makes one host call fewer.
    pub fn mysql_url(&self) -> Result<String, ApiError> {
        mysql_url(&require(&self.variables, "mysql_url")?)
    }
}

fn require(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<String, ApiError> {
    get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::misconfigured(format!("variable {name} is not set")))
}

/// Off (0) unless set: the Go service had no limit, and a limit that is on by surprise
/// would turn a busy application's traffic into 429s.
fn rate_limit(value: Option<&str>) -> Result<u32, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| {
            ApiError::misconfigured(format!(
                "variable rate_limit_per_second is not a whole number of requests: {text:?}"
            ))
        }),
    }
}

/// Accepts the Go service's `REDIS_URL` form (`host:port`) as well as a URL.
fn redis_url(value: &str) -> String {
    if value.contains("://") {
        value.to_owned()
    } else {
        format!("redis://{value}")
    }
}

/// Accepts a `mysql://` URL, or the Go driver DSN the Go service read from `MYSQL_DSN`
/// (`user:password@tcp(host:port)/database?parseTime=true`), turned into the URL that
/// Spin's MySQL interface opens. DSN parameters are Go driver settings and are dropped.
fn mysql_url(value: &str) -> Result<String, ApiError> {
    if value.starts_with("mysql://") {
        return Ok(value.to_owned());
    }
    go_dsn_to_url(value).ok_or_else(|| {
        // The value may hold a password: the error names its form, not its content.
        ApiError::misconfigured(
            "variable mysql_url is neither a mysql:// URL nor a Go DSN user:password@tcp(host:port)/database",
        )
    })
}

/// The Go driver's DSN grammar: `[user[:password]@][tcp[(address)]]/dbname[?params]`.
/// The user info ends at the last `@` before the database, so a password may hold `@`.
fn go_dsn_to_url(dsn: &str) -> Option<String> {
    let without_params = dsn.split_once('?').map_or(dsn, |(head, _)| head);
    let (before_db, database) = without_params.rsplit_once('/')?;
    let (user_info, address) = match before_db.rsplit_once('@') {
        Some((user_info, address)) => (Some(user_info), address),
        None => (None, before_db),
    };
    let host_port = match address {
        "" | "tcp" => "127.0.0.1:3306".to_owned(),
        _ => {
            let inner = address.strip_prefix("tcp(")?.strip_suffix(')')?;
            match inner {
                "" => "127.0.0.1:3306".to_owned(),
                _ if inner.starts_with('[') || inner.matches(':').count() == 1 => inner.to_owned(),
                _ => format!("{inner}:3306"),
            }
        }
    };
    let credentials = match user_info {
        None => String::new(),
        Some(info) => match info.split_once(':') {
            Some((user, password)) => format!("{}:{}@", encode(user), encode(password)),
            None => format!("{}@", encode(info)),
        },
    };
    Some(format!(
        "mysql://{credentials}{host_port}/{}",
        encode(database)
    ))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `text` with the password of `url` masked: a host's error text may quote the address it
/// was given (Spin's MySQL interface answers `address <url> is not permitted` for a host
/// outside `allowed_outbound_hosts`), and such a text is kept for the log line. Masked as
/// written in the URL and percent-decoded, so that neither spelling gets through.
pub fn without_password(text: &str, url: &str) -> String {
    let Some(password) = password(url) else {
        return text.to_owned();
    };
    let mut masked = text.to_owned();
    let decoded = percent_decode(password);
    // The longer first, so that one spelling cannot leave part of the other.
    let (long, short) = if decoded.len() > password.len() {
        (decoded.as_str(), password)
    } else {
        (password, decoded.as_str())
    };
    for secret in [long, short] {
        if !secret.is_empty() {
            masked = masked.replace(secret, "***");
        }
    }
    masked
}

/// The password of `scheme://user:password@host...`. The user info ends at the last `@`,
/// as in [`go_dsn_to_url`], so a password written with a bare `@` is found whole.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (user_info, _) = rest.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    Some(password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ApiError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
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
    fn go_service_forms_are_translated() {
        let config = load(&[
            ("redis_url", "redis:6379"),
            (
                "mysql_url",
                "root:password@tcp(mysql:3306)/chat_system_development?parseTime=true",
            ),
        ])
        .unwrap();
        assert_eq!(config.redis_url, "redis://redis:6379");
        assert_eq!(
            config.mysql_url().unwrap(),
            "mysql://root:password@mysql:3306/chat_system_development"
        );
    }

    #[test]
    fn go_dsn_variants() {
        let cases = [
            ("u:p@tcp(db)/x", "mysql://u:p@db:3306/x"),
            ("u@tcp(db:3307)/x", "mysql://u@db:3307/x"),
            ("u:p@/x", "mysql://u:p@127.0.0.1:3306/x"),
            ("/x", "mysql://127.0.0.1:3306/x"),
            (
                "u:p@ss:w@rd@tcp([::1]:3306)/x",
                "mysql://u:p%40ss%3Aw%40rd@[::1]:3306/x",
            ),
        ];
        for (dsn, url) in cases {
            assert_eq!(go_dsn_to_url(dsn).as_deref(), Some(url), "{dsn}");
        }
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
        for mysql in ["", "root:secret@unix(/run/mysqld.sock)/x", "nonsense"] {
            let config = load(&[("redis_url", "redis://r"), ("mysql_url", mysql)]).unwrap();
            let error = config.mysql_url().unwrap_err();
            assert_eq!(error.status(), 500);
            assert!(!error.log_detail().unwrap().contains("secret"));
        }
        assert_eq!(
            load(&[("mysql_url", "mysql://x/y")]).unwrap_err().status(),
            500
        );
    }

    #[test]
    fn a_quoted_url_loses_its_password_in_either_spelling() {
        let url = "mysql://rails:p%40ss:w0rd@db.internal:3306/chat";
        let quoted = format!("address {url} is not permitted; login p@ss:w0rd refused");
        let masked = without_password(&quoted, url);
        assert_eq!(
            masked,
            "address mysql://rails:***@db.internal:3306/chat is not permitted; login *** refused"
        );
        let bare = "redis://:hunter2@cache:6379/0";
        assert_eq!(
            without_password(&format!("cannot open {bare}"), bare),
            "cannot open redis://:***@cache:6379/0"
        );
        for no_password in ["mysql://root@db/x", "redis://cache:6379", "nonsense"] {
            assert_eq!(without_password("as it was", no_password), "as it was");
        }
    }
}
