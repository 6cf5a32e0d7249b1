//! Readiness: can this instance number and queue right now?
//!
//! `/health` stays a liveness check that touches nothing, so a Redis outage never makes an
//! orchestrator restart healthy instances. `/ready` opens Redis and MySQL the way a
//! request would (MySQL at most every two seconds across all instances), so a load
//! balancer can stop sending writes while either is unreachable.
//! MySQL counts too: warm requests would still succeed without it, but every cold
//! lookup would be a 503, and operators asked to be told.

use std::time::Duration;

use spin_sdk::redis::{RedisParameter, RedisResult};

use crate::config::{Config, without_credentials};
use crate::error::{ApiError, Backend};
use crate::lookup;
use crate::platform;
use crate::redis::Redis;
use crate::text;

/// How often `/ready` checks MySQL across all instances ([`claim_mysql_check`]), and how
/// long the last outcome is kept for those that do not: long enough to outlive a check
/// that takes a while.
const MYSQL_CHECK_MILLISECONDS: i64 = 2_000;
const MYSQL_OUTCOME_MILLISECONDS: i64 = 10_000;

/// The result of each check; an error keeps its cause for the log line.
#[derive(Debug)]
pub struct Readiness {
    pub redis: Result<(), ApiError>,
    pub mysql: Result<(), ApiError>,
}

impl Readiness {
    /// Redis is checked on every call. MySQL is checked at most once per two seconds
    /// across all instances, the outcome shared through Redis: `/ready` needs no key, so
    /// a flood of it must not become a flood of MySQL connections.
    pub fn check(config: &Config) -> Self {
        let connection = Redis::open(&config.redis_url);
        let redis = connection
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|redis| redis.execute("PING", &[]).map(drop));
        let mysql = match (&connection, config.mysql_url()) {
            (Ok(redis), Ok(url)) => {
                let key = shared_check_key(&url);
                let shared = (!claim_mysql_check(redis, &key))
                    .then(|| awaited_outcome(redis, &key))
                    .flatten();
                shared.unwrap_or_else(|| {
                    let outcome = lookup::ping(config);
                    share_mysql_check(redis, &key, &outcome);
                    outcome
                })
            }
            // Nothing to share it through, or nothing to check: said by the check itself.
            _ => lookup::ping(config),
        };
        Self { redis, mysql }
    }

    pub fn is_ready(&self) -> bool {
        self.redis.is_ok() && self.mysql.is_ok()
    }

    /// The causes of failed checks, for the log only (never the response).
    pub fn failures(&self) -> Option<String> {
        let causes: Vec<String> = [&self.redis, &self.mysql]
            .into_iter()
            .filter_map(|check| check.as_ref().err()?.log_detail())
            .collect();
        (!causes.is_empty()).then(|| causes.join("; "))
    }
}

/// The last shared outcome; waits a little for the first one when the check that will
/// make it is still running (100 ms at most, then the caller checks for itself).
fn awaited_outcome(redis: &Redis, key: &str) -> Option<Result<(), ApiError>> {
    for _ in 0..20 {
        if let Some(outcome) = shared_mysql_check(redis, key) {
            return Some(outcome);
        }
        platform::sleep(Duration::from_millis(5));
    }
    None
}

/// Whether this `/ready` is the one to check MySQL now: one per
/// [`MYSQL_CHECK_MILLISECONDS`] across all instances is. `/ready` is public and polled
/// by every load balancer, so however often it is called, MySQL is opened for it
/// about that often. `key` names the database checked, so instances configured for
/// different databases never share a check.
fn claim_mysql_check(redis: &Redis, key: &str) -> bool {
    let claim = format!("{key}:claim");
    let claimed = redis.execute(
        "SET",
        &[
            RedisParameter::Binary(claim.into_bytes()),
            RedisParameter::Binary(b"1".to_vec()),
            RedisParameter::Binary(b"NX".to_vec()),
            RedisParameter::Binary(b"PX".to_vec()),
            RedisParameter::Int64(MYSQL_CHECK_MILLISECONDS),
        ],
    );
    // Claimed, or Redis could not say: check rather than answer from nothing.
    !matches!(claimed.as_deref(), Ok([RedisResult::Nil] | []))
}

/// The outcome of the last MySQL check any instance made ([`claim_mysql_check`]).
fn shared_mysql_check(redis: &Redis, key: &str) -> Option<Result<(), ApiError>> {
    let stored = redis
        .execute("GET", &[RedisParameter::Binary(key.as_bytes().to_vec())])
        .ok()?;
    match stored.first()? {
        RedisResult::Binary(text) if text.as_slice() == b"ok" => Some(Ok(())),
        RedisResult::Binary(text) => Some(Err(ApiError::unavailable(
            Backend::Mysql,
            String::from_utf8_lossy(text),
        ))),
        _ => None,
    }
}

/// Shares this instance's MySQL check with the others (see [`shared_mysql_check`]).
fn share_mysql_check(redis: &Redis, key: &str, outcome: &Result<(), ApiError>) {
    let text = match outcome {
        Ok(()) => "ok".to_owned(),
        // The detail without its "mysql: " prefix, which the reader adds back.
        Err(error) => error
            .log_detail()
            .map(|d| d.trim_start_matches("mysql: ").to_owned())
            .unwrap_or_default(),
    };
    let _ = redis.execute(
        "SET",
        &[
            RedisParameter::Binary(key.as_bytes().to_vec()),
            RedisParameter::Binary(text.into_bytes()),
            RedisParameter::Binary(b"PX".to_vec()),
            RedisParameter::Int64(MYSQL_OUTCOME_MILLISECONDS),
        ],
    );
}

/// The Redis key of the shared MySQL check: named by the database checked (its URL
/// without the credentials, hashed with 64-bit FNV-1a), so that instances configured for
/// different databases never read each other's outcome.
fn shared_check_key(mysql_url: &str) -> String {
    let hash = without_credentials(mysql_url)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let mut key = String::from("chat_service:v1:ready:mysql:");
    text::push_hex(&mut key, &hash.to_be_bytes());
    key
}
