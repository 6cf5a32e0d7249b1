//! The service's share of MySQL: at most `mysql_max_connections` connections across all
//! instances and nodes, held as leases in Redis.
//!
//! MySQL is shared with the Rails app, and a flood of cache misses (unknown tokens, say)
//! from every Spin instance at once took all of its `max_connections`. So every lookup
//! first takes a lease, and a request that finds none free is turned away at once (503,
//! `Retry-After`) rather than waiting: nothing has been taken or queued by then.

use spin_sdk::redis::{RedisParameter, RedisResult};

use crate::error::ApiError;
use crate::platform;
use crate::redis::Redis;
use crate::text;

/// The leases are one Redis sorted set (member: a random lease id, score: its expiry in
/// Redis's clock). A lease is given up when its lookup ends; one whose holder died
/// expires after [`LEASE_MILLISECONDS`].
const LEASES_KEY: &str = "chat_service:v1:mysql:leases";
const LEASE_SCRIPT: &str = "\
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', 'chat_service:v1:mysql:leases', '-inf', ms)
if redis.call('ZCARD', 'chat_service:v1:mysql:leases') >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', 'chat_service:v1:mysql:leases', ms + tonumber(ARGV[3]), ARGV[1])
return 1";

/// Longer than any lookup: the longest, a held message's, waits about a second.
const LEASE_MILLISECONDS: i64 = 10_000;

/// One of the service's MySQL connections, held from [`MysqlLease::take`] to
/// [`MysqlLease::end`].
#[derive(Debug)]
#[must_use = "a lease not ended holds one of the service's MySQL connections until it expires"]
pub struct MysqlLease(String);

impl MysqlLease {
    /// Takes one of `limit` leases; `None` when all are in use.
    pub fn take(redis: &Redis, limit: u32) -> Result<Option<Self>, ApiError> {
        let mut id = String::with_capacity(32);
        text::push_hex(&mut id, &platform::random_bytes::<16>());
        let taken = redis.execute(
            "EVAL",
            &[
                RedisParameter::Binary(LEASE_SCRIPT.as_bytes().to_vec()),
                RedisParameter::Int64(0),
                RedisParameter::Binary(id.clone().into_bytes()),
                RedisParameter::Int64(limit.into()),
                RedisParameter::Int64(LEASE_MILLISECONDS),
            ],
        )?;
        Ok(matches!(taken.first(), Some(RedisResult::Int64(1))).then_some(Self(id)))
    }

    /// Gives the lease back. Best effort: a lease not given back expires by itself.
    pub fn end(self, redis: &Redis) {
        let _ = redis.execute(
            "ZREM",
            &[
                RedisParameter::Binary(LEASES_KEY.as_bytes().to_vec()),
                RedisParameter::Binary(self.0.into_bytes()),
            ],
        );
    }
}
