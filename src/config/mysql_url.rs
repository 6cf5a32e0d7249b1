//! `mysql_url`: the URL Spin's MySQL interface opens, checked before it is opened.
//!
//! Spin (spin-factor-outbound-mysql) takes one parameter of its own out of the URL,
//! `ssl-mode` (or `sslmode`, any case): any value but `DISABLED` is TLS with the
//! certificate chain and host name verified against the system's roots. Everything
//! else goes to mysql_async, which refuses a parameter it does not know, and Spin fails
//! hard on that; one it does know is either per-pool tuning (Spin opens one connection per
//! request) or a TLS switch that Spin's own `ssl-mode` handling overrides (`require_ssl`:
//! plaintext after all). So `ssl-mode` is the only parameter let through, and any other
//! is a misconfiguration that names it (`charset` or `sslca` copied from a Rails
//! `database.yml`, say) before anything is opened.
//!
//! The Go service's `MYSQL_DSN` form is accepted too and becomes such a URL; its `tls`
//! parameter maps onto what Spin can do, and what Spin cannot do (no verification, a
//! fallback to plaintext, a TLS config of the Go program's own) is refused, never
//! silently turned into plaintext.

use super::ConfigError;

/// The `ssl-mode` values MySQL's clients define. All but `DISABLED` get Spin's full
/// verification, which is what `VERIFY_IDENTITY` asks and stricter than the others ask.
const SSL_MODES: [&str; 5] = [
    "disabled",
    "preferred",
    "required",
    "verify_ca",
    "verify_identity",
];

/// `value` as the URL to open: a `mysql://` URL, or a Go driver DSN
/// (`user:password@tcp(host:port)/database?tls=true`).
pub fn parse(value: &str) -> Result<String, ConfigError> {
    let url = if value.starts_with("mysql://") {
        value.to_owned()
    } else {
        go_dsn_to_url(value)?.ok_or_else(|| {
            // The value may hold a password: the error names its form, not its content.
            ConfigError::invalid(
                "variable mysql_url is neither a mysql:// URL nor a Go DSN user:password@tcp(host:port)/database",
            )
        })?
    };
    check_parameters(&url)?;
    Ok(url)
}

/// Refuses what Spin's MySQL cannot take: see the module comment.
fn check_parameters(url: &str) -> Result<(), ConfigError> {
    // After the user info, which ends at the last `@` and may hold `?` or `#`.
    let location = url.rsplit_once('@').map_or(url, |(_, after)| after);
    if location.contains('#') {
        return Err(ConfigError::invalid(
            "variable mysql_url has a fragment (#...), which Spin's MySQL cannot take",
        ));
    }
    let Some((_, query)) = location.split_once('?') else {
        return Ok(());
    };
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !matches!(name.to_ascii_lowercase().as_str(), "ssl-mode" | "sslmode") {
            return Err(ConfigError::invalid(format!(
                "variable mysql_url has the parameter {}, which Spin's MySQL cannot take \
                 (it takes ssl-mode only)",
                super::parameter_name(pair)
            )));
        }
        if !SSL_MODES.contains(&value.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::invalid(
                "variable mysql_url has an ssl-mode that is none of DISABLED, PREFERRED, \
                 REQUIRED, VERIFY_CA, VERIFY_IDENTITY",
            ));
        }
    }
    Ok(())
}

/// The Go driver's DSN grammar: `[user[:password]@][tcp[(address)]]/dbname[?params]`.
/// The user info ends at the last `@` before the database, so a password may hold `@`.
/// `Ok(None)` when `dsn` is not in that form.
fn go_dsn_to_url(dsn: &str) -> Result<Option<String>, ConfigError> {
    let (without_params, params) = dsn.split_once('?').unwrap_or((dsn, ""));
    let Some((before_db, database)) = without_params.rsplit_once('/') else {
        return Ok(None);
    };
    let (user_info, address) = match before_db.rsplit_once('@') {
        Some((user_info, address)) => (Some(user_info), address),
        None => (None, before_db),
    };
    let host_port = match address {
        "" | "tcp" => "127.0.0.1:3306".to_owned(),
        _ => {
            let Some(inner) = address
                .strip_prefix("tcp(")
                .and_then(|rest| rest.strip_suffix(')'))
            else {
                return Ok(None);
            };
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
    let ssl_mode = go_tls(params)?.map_or(String::new(), |mode| format!("?ssl-mode={mode}"));
    Ok(Some(format!(
        "mysql://{credentials}{host_port}/{}{ssl_mode}",
        encode(database)
    )))
}

/// The `ssl-mode` for the Go driver's `tls` parameter, the one Go DSN parameter that
/// changes what reaches the wire; the others (`parseTime`, `charset`, timeouts, ...) set
/// how the Go program read results, and are dropped.
fn go_tls(params: &str) -> Result<Option<&'static str>, ConfigError> {
    let tls = params
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| *name == "tls")
        .map(|(_, value)| value)
        .next_back();
    match tls.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0") => Ok(None),
        Some("true" | "1") => Ok(Some("VERIFY_IDENTITY")),
        Some("skip-verify") => Err(ConfigError::invalid(
            "variable mysql_url asks for tls=skip-verify, TLS without verification, which \
             Spin's MySQL cannot do: put the server's CA in the system's roots or \
             SSL_CERT_FILE and use tls=true",
        )),
        Some("preferred") => Err(ConfigError::invalid(
            "variable mysql_url asks for tls=preferred, TLS without verification or \
             plaintext, which Spin's MySQL cannot do: use tls=true (or tls=false)",
        )),
        Some(_) => Err(ConfigError::invalid(
            "variable mysql_url names a custom TLS config of the Go driver (tls=<name>), \
             which Spin's MySQL cannot take: use tls=true with the CA in SSL_CERT_FILE",
        )),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(value: &str) -> String {
        let error = crate::error::ApiError::from(parse(value).unwrap_err());
        assert_eq!(error.status(), 500, "{value}");
        let detail = error.log_detail().unwrap();
        assert!(!detail.contains("secret"), "{value}: {detail}");
        detail
    }

    #[test]
    fn urls_pass_through_with_or_without_ssl_mode() {
        for url in [
            "mysql://root@127.0.0.1:3306/chat",
            "mysql://u:p@db:3306/x?ssl-mode=REQUIRED",
            "mysql://u:p@db:3306/x?sslMode=verify_identity",
            "mysql://u:p@db:3306/x?ssl-mode=DISABLED",
            "mysql://u:p%3F%23@db:3306/x?ssl-mode=VERIFY_CA",
        ] {
            assert_eq!(parse(url).as_deref(), Ok(url));
        }
    }

    #[test]
    fn go_dsn_variants() {
        let cases = [
            (
                "root:password@tcp(mysql:3306)/chat_system_development?parseTime=true",
                "mysql://root:password@mysql:3306/chat_system_development",
            ),
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
            assert_eq!(parse(dsn).as_deref(), Ok(url), "{dsn}");
        }
    }

    #[test]
    fn the_go_tls_parameter_becomes_verified_tls_or_a_misconfiguration() {
        for (dsn, url) in [
            (
                "u:p@tcp(db:3306)/x?tls=true&parseTime=true",
                "mysql://u:p@db:3306/x?ssl-mode=VERIFY_IDENTITY",
            ),
            (
                "u:p@tcp(db:3306)/x?parseTime=true&tls=1",
                "mysql://u:p@db:3306/x?ssl-mode=VERIFY_IDENTITY",
            ),
            ("u:p@tcp(db:3306)/x?tls=false", "mysql://u:p@db:3306/x"),
        ] {
            assert_eq!(parse(dsn).as_deref(), Ok(url), "{dsn}");
        }
        assert!(detail("u:secret@tcp(db)/x?tls=skip-verify").contains("skip-verify"));
        assert!(detail("u:secret@tcp(db)/x?tls=preferred").contains("preferred"));
        assert!(detail("u:secret@tcp(db)/x?tls=rds-ca").contains("custom TLS config"));
    }

    #[test]
    fn a_parameter_spin_cannot_take_is_named_in_the_misconfiguration() {
        for (url, name) in [
            ("mysql://u:secret@db/x?charset=utf8mb4", "charset"),
            (
                "mysql://u:secret@db/x?ssl-mode=REQUIRED&sslca=/etc/ca.pem",
                "sslca",
            ),
            ("mysql://u:secret@db/x?require_ssl=true", "require_ssl"),
            ("mysql://u:secret@db/x?pool_max=1", "pool_max"),
        ] {
            assert!(detail(url).contains(name), "{url}");
        }
        assert!(detail("mysql://u:secret@db/x?ssl-mode=on").contains("VERIFY_IDENTITY"));
        assert!(detail("mysql://u:secret@db/x#frag").contains("fragment"));
    }

    #[test]
    fn unusable_values_are_a_misconfiguration_that_hides_the_value() {
        for value in ["root:secret@unix(/run/mysqld.sock)/x", "nonsense"] {
            assert!(detail(value).contains("neither"));
        }
    }
}
