//! Readiness: can this instance number and queue right now?
//!
//! `/health` stays a liveness check that touches nothing, so a Redis outage never makes an
//! orchestrator restart healthy instances. `/ready` opens Redis and MySQL the way a
//! request would (MySQL at most every two seconds across all instances), so a load
//! balancer can stop sending writes while either is unreachable.
//! MySQL counts too: warm requests would still succeed without it, but every cold
//! lookup would be a 503, and operators asked to be told.

use std::time::Duration;

use crate::config::{Config, without_credentials};
use crate::error::ApiError;
use crate::json;
use crate::lookup;
use crate::numbering::Numbering;
use crate::platform;

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
        let numbering = Numbering::open(&config.redis_url);
        let redis = numbering
            .as_ref()
            .map_err(Clone::clone)
            .and_then(Numbering::ping);
        let mysql = match (&numbering, config.mysql_url()) {
            (Ok(numbering), Ok(url)) => {
                let key = shared_check_key(&url);
                let shared = (!numbering.claim_mysql_check(&key))
                    .then(|| awaited_outcome(numbering, &key))
                    .flatten();
                shared.unwrap_or_else(|| {
                    let outcome = lookup::ping(config);
                    numbering.share_mysql_check(&key, &outcome);
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
fn awaited_outcome(numbering: &Numbering, key: &str) -> Option<Result<(), ApiError>> {
    for _ in 0..20 {
        if let Some(outcome) = numbering.shared_mysql_check(key) {
            return Some(outcome);
        }
        platform::sleep(Duration::from_millis(5));
    }
    None
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
    json::push_hex(&mut key, &hash.to_be_bytes());
    key
}
