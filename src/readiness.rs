//! Readiness: can this instance number and queue right now?
//!
//! `/health` stays a liveness check that touches nothing, so a Redis outage never makes an
//! orchestrator restart healthy instances. `/ready` opens Redis and MySQL the way a
//! request would, so a load balancer can stop sending writes while either is unreachable.
//! MySQL counts too: warm requests would still succeed without it, but every cold
//! lookup would be a 503, and operators asked to be told.

use crate::config::Config;
use crate::error::ApiError;
use crate::lookup;
use crate::numbering::Numbering;

/// The result of each check; an error keeps its cause for the log line.
#[derive(Debug)]
pub struct Readiness {
    pub redis: Result<(), ApiError>,
    pub mysql: Result<(), ApiError>,
}

impl Readiness {
    pub fn check(config: &Config) -> Self {
        Self {
            redis: Numbering::open(&config.redis_url).and_then(|redis| redis.ping()),
            mysql: lookup::ping(config),
        }
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
