//! The request's Redis connection: how it is opened, how a command fails, and how it ends.
//!
//! Spin opens a new TCP connection for every `open` and keeps none between requests, so
//! a request opens one and everything it does in Redis (numbering, MySQL leases,
//! readiness) goes through it. Every command goes through `execute`: each distinct host
//! function the component imports is wired up again for every request's instance.
//!
//! It ends with Redis closing first. The side that closes a TCP connection first keeps it
//! in TIME_WAIT for a minute; on Spin's side each one holds an ephemeral port towards the
//! one Redis address, which capped a node at a few hundred requests a second
//! (docs/operations.md). On Redis's side TIME_WAIT sits on its listening port and holds
//! none. So the last command is `QUIT`, and the connection is let go only after Redis's
//! close has arrived, once the reply is out ([`close_after_reply`]).

use std::cell::RefCell;
use std::rc::Rc;

use spin_sdk::redis::{Connection, Error as RedisError, RedisParameter, RedisResult};

use crate::config::{ConfigError, without_password};
use crate::error::{ApiError, Backend};

/// One Redis connection, opened for this request.
pub struct Redis {
    connection: Rc<Connection>,
}

thread_local! {
    /// Connections told to `QUIT`, kept until the reply has gone out ([`close_after_reply`]).
    static QUITTED: RefCell<Vec<Rc<Connection>>> = const { RefCell::new(Vec::new()) };
}

impl Redis {
    pub fn open(url: &str) -> Result<Self, ApiError> {
        let connection = Connection::open(url).map_err(|error| unreachable(&error, url))?;
        Ok(Self {
            connection: Rc::new(connection),
        })
    }

    /// One command; a failure is a 503 that names Redis and keeps the cause for the log.
    pub fn execute(
        &self,
        command: &str,
        args: &[RedisParameter],
    ) -> Result<Vec<RedisResult>, ApiError> {
        self.connection.execute(command, args).map_err(unavailable)
    }

    /// Runs a script by its SHA-1 (`args[0]`), with EVAL (which also loads it) when this
    /// Redis has not seen it yet: after a restart or `SCRIPT FLUSH`. NOSCRIPT means
    /// nothing ran, so the second call cannot repeat any effect.
    pub fn run_script(
        &self,
        script: &str,
        args: &mut [RedisParameter],
    ) -> Result<Vec<RedisResult>, ApiError> {
        match self.connection.execute("EVALSHA", args) {
            Err(error) if is_noscript(&error) => {
                args[0] = RedisParameter::Binary(script.as_bytes().to_vec());
                self.execute("EVAL", args)
            }
            result => result.map_err(unavailable),
        }
    }
}

/// The last command is `QUIT`, so that Redis closes first. Best effort: a connection that
/// already failed closes as it may.
impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.connection.execute("QUIT", &[]);
        QUITTED.with(|quitted| quitted.borrow_mut().push(Rc::clone(&self.connection)));
    }
}

/// Lets go of the connections this request told to `QUIT`, once the reply is out, and
/// only after Redis has closed each: its close trails the `QUIT` reply by tens of
/// microseconds, and Spin's side, let go at once, would often close first after all
/// (bench/README.md, "bench/timewait"). A command sent after `QUIT` fails once Redis's
/// close arrives (its end of the stream, or a reset for the unread command), so waiting
/// for that failure is waiting for the close.
pub fn close_after_reply() {
    let quitted = QUITTED.with(|quitted| std::mem::take(&mut *quitted.borrow_mut()));
    for connection in quitted {
        let _ = connection.execute("PING", &[]);
    }
}

fn is_noscript(error: &RedisError) -> bool {
    matches!(error, RedisError::Other(text) if text.to_ascii_lowercase().contains("noscript"))
}

fn unavailable(error: RedisError) -> ApiError {
    ApiError::unavailable(Backend::Redis, format!("{error:?}"))
}

/// A failed `open`. Spin answers `invalid-address` for a host outside
/// `allowed_outbound_hosts` (or an address it cannot parse, which `redis_url`'s own check
/// has already refused): a misconfiguration to fix, not an outage to retry. Any other
/// text may quote the URL it was given: its password is masked in the host's own text,
/// before anything escapes it.
fn unreachable(error: &RedisError, url: &str) -> ApiError {
    match error {
        RedisError::InvalidAddress => ConfigError::HostNotAllowed {
            url_variable: "redis_url",
            host_variable: "redis_host",
        }
        .into(),
        RedisError::Other(text) => ApiError::unavailable(
            Backend::Redis,
            format!("Other({:?})", without_password(text, url)),
        ),
        typed => ApiError::unavailable(Backend::Redis, format!("{typed:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noscript_is_recognised_in_any_spelling() {
        for text in [
            "NOSCRIPT No matching script",
            "NoScriptError: No matching script",
        ] {
            assert!(is_noscript(&RedisError::Other(text.to_owned())));
        }
        assert!(!is_noscript(&RedisError::Other(
            "ERR wrong number".to_owned()
        )));
    }

    #[test]
    fn an_address_spin_refuses_is_a_misconfiguration_naming_redis_host() {
        let error = unreachable(&RedisError::InvalidAddress, "redis://10.0.0.9:6379");
        assert_eq!(error.status(), 500);
        assert!(error.log_detail().unwrap().contains("redis_host"));
        let error = unreachable(&RedisError::TooManyConnections, "redis://r");
        assert_eq!(error.status(), 503);
    }

    #[test]
    fn a_password_with_quotes_or_backslashes_is_masked_before_it_is_escaped() {
        let url = r#"redis://chat:Pa"ss\W0rd@127.0.0.2:6379"#;
        let error = RedisError::Other(format!("cannot connect to {url}"));
        let detail = unreachable(&error, url).log_detail().unwrap();
        assert!(!detail.contains("Pa"), "{detail}");
    }
}
