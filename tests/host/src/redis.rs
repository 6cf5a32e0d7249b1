//! `fermyon:spin/redis@2.0.0`, implemented like spin-factor-outbound-redis (`host.rs`).
//!
//! - `open`: allow-list check first (`redis` scheme; refused -> `invalid-address`), then
//!   `redis::Client::open` (bad URL -> `invalid-address`; `rediss://` is native TLS,
//!   verified against the system's roots, or `SSL_CERT_FILE`) and a fresh multiplexed
//!   connection (failure -> `other(<RedisError Display>)`, e.g.
//!   `other("Connection refused (os error 111)")`). One TCP connection per `open`; it
//!   closes when the resource is dropped or, at the latest, when the request's store is
//!   dropped. Nothing is pooled across requests.
//! - `execute`: the reply is flattened like Spin's `RedisResults`: nested arrays/sets are
//!   flattened depth-first; nil -> `nil`; OK -> `status("OK")`; simple strings ->
//!   `status`; bulk strings -> `binary`; integers -> `int64`; maps/attributes/verbatim
//!   strings/push -> `other("Could not convert Redis response - TypeError: ...")`.
//!   A server error reply (e.g. NOSCRIPT) becomes `other(<RedisError Display>)`, which for
//!   redis 0.32 reads `An error was signalled by the server - NoScriptError: No matching
//!   script. Please use EVAL.` (the literal `NOSCRIPT` code does *not* appear).

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, ErrorKind, RedisError, Value};
use wasmtime::component::Resource;

use crate::bindings::redis::{self as v2, Error, RedisParameter, RedisResult};
use crate::state::HostState;

/// The host side of a `connection` resource.
pub struct RedisConnection {
    conn: MultiplexedConnection,
}

fn other(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

fn unsupported(what: &str) -> RedisError {
    RedisError::from((
        ErrorKind::TypeError,
        "Could not convert Redis response",
        what.to_string(),
    ))
}

/// Spin's `FromRedisValue for RedisResults`, as a function.
pub fn flatten_reply(value: &Value) -> Result<Vec<RedisResult>, RedisError> {
    fn append(out: &mut Vec<RedisResult>, value: &Value) -> Result<(), RedisError> {
        match value {
            Value::Nil => out.push(RedisResult::Nil),
            Value::Int(v) => out.push(RedisResult::Int64(*v)),
            Value::BulkString(b) => out.push(RedisResult::Binary(b.clone())),
            Value::SimpleString(s) => out.push(RedisResult::Status(s.clone())),
            Value::Okay => out.push(RedisResult::Status("OK".to_string())),
            Value::Array(items) | Value::Set(items) => {
                for v in items {
                    append(out, v)?;
                }
            }
            Value::Double(d) => out.push(RedisResult::Binary(d.to_string().into_bytes())),
            Value::Boolean(b) => out.push(RedisResult::Int64(i64::from(*b))),
            Value::BigNumber(n) => out.push(RedisResult::Binary(n.to_string().into_bytes())),
            Value::Map(_) => return Err(unsupported("Redis Map type is not supported")),
            Value::Attribute { .. } => {
                return Err(unsupported("Redis Attribute type is not supported"));
            }
            Value::VerbatimString { .. } => {
                return Err(unsupported(
                    "Redis string with format attribute is not supported",
                ));
            }
            Value::Push { .. } => return Err(unsupported("Redis Pub/Sub types are not supported")),
            Value::ServerError(err) => {
                return Err(RedisError::from((
                    ErrorKind::ResponseError,
                    "Server error",
                    format!("{err:?}"),
                )));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    append(&mut out, value)?;
    Ok(out)
}

impl HostState {
    fn redis(&mut self, c: &Resource<RedisConnection>) -> Result<MultiplexedConnection, Error> {
        self.table
            .get(c)
            .map(|c| c.conn.clone())
            .map_err(|_| Error::Other("could not find connection for resource".into()))
    }
}

impl v2::Host for HostState {}

impl v2::HostConnection for HostState {
    async fn open(&mut self, address: String) -> Result<Resource<RedisConnection>, Error> {
        let allowed = match &self.component.allowed_hosts {
            Ok(allowed) => allowed,
            Err(unresolved) => return Err(Error::Other(unresolved.clone())),
        };
        if !allowed.check_url(&address, "redis") {
            crate::state::report_disallowed(&self.component.id, &address);
            return Err(Error::InvalidAddress);
        }
        let client = redis::Client::open(address.as_str()).map_err(|_| Error::InvalidAddress)?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&AsyncConnectionConfig::new())
            .await
            .map_err(other)?;
        self.table
            .push(RedisConnection { conn })
            .map_err(|_| Error::TooManyConnections)
    }

    async fn publish(
        &mut self,
        c: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let mut conn = self.redis(&c)?;
        conn.publish::<_, _, ()>(&channel, &payload)
            .await
            .map_err(other)
    }

    async fn get(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut conn = self.redis(&c)?;
        conn.get::<_, Option<Vec<u8>>>(&key).await.map_err(other)
    }

    async fn set(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Error> {
        let mut conn = self.redis(&c)?;
        conn.set::<_, _, ()>(&key, &value).await.map_err(other)
    }

    async fn incr(&mut self, c: Resource<RedisConnection>, key: String) -> Result<i64, Error> {
        let mut conn = self.redis(&c)?;
        conn.incr(&key, 1).await.map_err(other)
    }

    async fn del(&mut self, c: Resource<RedisConnection>, keys: Vec<String>) -> Result<u32, Error> {
        let mut conn = self.redis(&c)?;
        conn.del(&keys).await.map_err(other)
    }

    async fn sadd(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let mut conn = self.redis(&c)?;
        // Spin maps only sadd's TypeError to `type-error`; everything else is `other`.
        conn.sadd(&key, &values).await.map_err(|e| {
            if e.kind() == ErrorKind::TypeError {
                Error::TypeError
            } else {
                other(e)
            }
        })
    }

    async fn smembers(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
    ) -> Result<Vec<String>, Error> {
        let mut conn = self.redis(&c)?;
        conn.smembers(&key).await.map_err(other)
    }

    async fn srem(
        &mut self,
        c: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Result<u32, Error> {
        let mut conn = self.redis(&c)?;
        conn.srem(&key, &values).await.map_err(other)
    }

    async fn execute(
        &mut self,
        c: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Result<Vec<RedisResult>, Error> {
        let mut conn = self.redis(&c)?;
        let mut cmd = redis::cmd(&command);
        for a in arguments {
            match a {
                RedisParameter::Int64(v) => cmd.arg(v),
                RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let value: Value = cmd.query_async(&mut conn).await.map_err(other)?;
        flatten_reply(&value).map_err(other)
    }

    async fn drop(&mut self, c: Resource<RedisConnection>) -> wasmtime::Result<()> {
        // Dropping the MultiplexedConnection ends its driver task and closes the socket.
        self.table.delete(c)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_nested_and_keeps_nil_and_ok() {
        let v = Value::Array(vec![
            Value::Int(1),
            Value::Nil,
            Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Okay]),
            Value::SimpleString("QUEUED".into()),
        ]);
        assert_eq!(
            flatten_reply(&v).unwrap(),
            vec![
                RedisResult::Int64(1),
                RedisResult::Nil,
                RedisResult::Binary(b"a".to_vec()),
                RedisResult::Status("OK".into()),
                RedisResult::Status("QUEUED".into()),
            ]
        );
        assert_eq!(flatten_reply(&Value::Nil).unwrap(), vec![RedisResult::Nil]);
    }

    #[test]
    fn maps_are_type_errors_with_spins_text() {
        let e = flatten_reply(&Value::Map(vec![])).unwrap_err().to_string();
        assert_eq!(
            e,
            "Could not convert Redis response - TypeError: Redis Map type is not supported"
        );
    }

    mod live {
        use super::super::*;
        use crate::bindings::redis::HostConnection;
        use crate::state::test_support::{PrivateRedis, state};

        #[tokio::test]
        async fn disallowed_host_is_invalid_address() {
            let mut st = state(&["redis://127.0.0.1:6380"]);
            let r = HostConnection::open(&mut st, "redis://127.0.0.1:6379".into()).await;
            assert!(matches!(r, Err(Error::InvalidAddress)));
        }

        #[tokio::test]
        async fn refused_is_other_with_io_text() {
            // Port 1 is allowed but closed.
            let mut st = state(&["redis://127.0.0.1:1"]);
            match HostConnection::open(&mut st, "redis://127.0.0.1:1".into()).await {
                Err(Error::Other(m)) => assert!(m.contains("Connection refused"), "{m}"),
                other => panic!("expected other(..), got {:?}", other.map(|_| ())),
            }
        }

        #[tokio::test]
        async fn execute_flattens_and_reports_noscript_like_spin() {
            let redis = PrivateRedis::start();
            let mut st = state(&[&redis.url()]);
            let c = HostConnection::open(&mut st, format!("{}/0", redis.url()))
                .await
                .unwrap();
            let rep = || Resource::<RedisConnection>::new_borrow(c.rep());
            let script = "return {1, 'a', {2, false}, redis.status_reply('OK')}";
            let out = HostConnection::execute(
                &mut st,
                rep(),
                "EVAL".into(),
                vec![
                    RedisParameter::Binary(script.into()),
                    RedisParameter::Int64(0),
                ],
            )
            .await
            .unwrap();
            // Lua false is a RESP2 nil, kept as `nil`; OK stays `status("OK")`.
            assert_eq!(
                out,
                vec![
                    RedisResult::Int64(1),
                    RedisResult::Binary(b"a".to_vec()),
                    RedisResult::Int64(2),
                    RedisResult::Nil,
                    RedisResult::Status("OK".into()),
                ]
            );
            let err = HostConnection::execute(
                &mut st,
                rep(),
                "EVALSHA".into(),
                vec![
                    RedisParameter::Binary(b"0000000000000000000000000000000000000000".to_vec()),
                    RedisParameter::Int64(0),
                ],
            )
            .await
            .unwrap_err();
            assert_eq!(
                err,
                Error::Other(
                    "An error was signalled by the server - NoScriptError: No matching script. Please use EVAL."
                        .into()
                )
            );
            HostConnection::drop(&mut st, c).await.unwrap();
        }
    }
}
