//! `redis_url`: the URL Spin's Redis interface opens, checked before it is opened.
//!
//! Spin hands the URL to the `redis` crate as it is: `redis://` is plaintext, `rediss://`
//! is TLS verified against the system's roots (`docs/managed-backends.md`), a user and
//! password are an ACL login and `/N` a database index. What the crate would also act on
//! is refused here rather than passed on: `#insecure` (TLS with no verification, so a
//! password would go to whoever answers) and query parameters (`?protocol=resp3` makes
//! replies that Spin's interface cannot return).

use super::ConfigError;

/// `value` as the URL to open: a `redis://` or `rediss://` URL, or the Go service's
/// `REDIS_URL` form `host:port`, which is plaintext as it was there.
pub fn parse(value: &str) -> Result<String, ConfigError> {
    let url = match value.split_once("://") {
        None => format!("redis://{value}"),
        Some(("redis" | "rediss", _)) => value.to_owned(),
        // The value may hold a password: errors name its form, not its content.
        Some(_) => {
            return Err(ConfigError::invalid(
                "variable redis_url is neither a redis:// or rediss:// URL nor host:port",
            ));
        }
    };
    // After the user info (which ends at the last `@`, and whose password may hold `#` or
    // `?`) only the host, port and database are expected.
    let location = url
        .rsplit_once('@')
        .map_or(url.as_str(), |(_, after)| after);
    if location.contains('#') {
        return Err(ConfigError::invalid(
            "variable redis_url has a fragment (#insecure turns TLS verification off, \
             which this service refuses: add the server's CA to SSL_CERT_FILE instead)",
        ));
    }
    if let Some((_, query)) = location.split_once('?') {
        return Err(ConfigError::invalid(format!(
            "variable redis_url has the parameter {}, and takes none",
            super::parameter_name(query)
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_the_redis_crate_opens_as_asked_pass_through() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis://cache:6379/3",
            "rediss://cache.example.com:6380",
            "rediss://chat:s3cret@cache:6390/2",
            "rediss://:p%23ss%3Fw@cache:6380/0",
        ] {
            assert_eq!(parse(url).as_deref(), Ok(url));
        }
    }

    #[test]
    fn the_go_service_form_is_plaintext_as_it_was() {
        assert_eq!(parse("redis:6379").as_deref(), Ok("redis://redis:6379"));
    }

    #[test]
    fn unverified_tls_parameters_and_other_schemes_are_a_misconfiguration() {
        for url in [
            "rediss://cache:6380/#insecure",
            "rediss://:secret@cache:6380#insecure",
            "redis://cache:6379/0?protocol=resp3",
            "unix:///run/redis.sock",
            "redis+unix:///run/redis.sock",
            "http://secret@cache",
        ] {
            let error = crate::error::ApiError::from(parse(url).unwrap_err());
            assert_eq!(error.status(), 500, "{url}");
            assert!(!error.log_detail().unwrap().contains("secret"), "{url}");
        }
        let detail = parse("redis://c/0?protocol=resp3").unwrap_err().to_string();
        assert!(detail.contains("protocol"));
    }
}
