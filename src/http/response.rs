//! What the service answers: status, headers and JSON body, before it is written to Spin.

use serde_json::json;

use crate::error::{ApiError, RETRY_AFTER_SECONDS};
use crate::readiness::Readiness;
use crate::service::Issued;
use crate::text;

/// The CORS headers the Go service sent on every response; browsers in the Rails app's
/// front end depend on them (the contract's HTTP section).
const CORS: [(&str, &str); 5] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-methods",
        "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    ),
    (
        "access-control-allow-headers",
        "Content-Type, Authorization, X-Requested-With, Accept",
    ),
    ("access-control-expose-headers", "X-Request-Id, X-Runtime"),
    ("access-control-max-age", "7200"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Why a request failed on the server's side, for the log line only.
    pub detail: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status, body.to_string().into_bytes())
    }

    pub fn health() -> Self {
        Self::json(200, json!({"status": "healthy"}))
    }

    /// 200 when Redis and MySQL both answered, else 503 with `Retry-After`; the body says
    /// which one failed, never why (the cause may name hosts; it goes to the log).
    pub fn ready(readiness: &Readiness) -> Self {
        // A check that fails on the settings says so: no waiting will make it pass.
        let state = |check: &Result<(), ApiError>| match check {
            Ok(()) => "ok",
            Err(ApiError::Misconfigured { .. }) => "misconfigured",
            Err(_) => "unavailable",
        };
        let checks = json!({"redis": state(&readiness.redis), "mysql": state(&readiness.mysql)});
        if readiness.is_ready() {
            return Self::json(200, json!({"status": "ready", "checks": checks}));
        }
        let mut reply = Self::json(503, json!({"status": "unavailable", "checks": checks}));
        reply
            .headers
            .push(("retry-after", RETRY_AFTER_SECONDS.to_string()));
        reply.detail = readiness.failures();
        reply
    }

    pub fn preflight() -> Self {
        Self::new(204, Vec::new())
    }

    /// Field order as the Go service wrote it, for clients that compare bytes.
    pub fn chat_created(issued: Issued) -> Self {
        Self::created(issued, r#"{"number":"#, r#","messages_count":0}"#)
    }

    pub fn message_created(issued: Issued) -> Self {
        Self::created(issued, r#"{"number":"#, "}")
    }

    /// A 201 whose body is the number between `before` and `after` (written by hand: see
    /// [`crate::text`]).
    fn created(issued: Issued, before: &str, after: &str) -> Self {
        let mut body = String::with_capacity(48);
        body.push_str(before);
        text::push_i64(&mut body, issued.number);
        body.push_str(after);
        Self::new(201, body.into_bytes()).replayed(issued.replayed)
    }

    /// A repeat answered from its `Idempotency-Key` says so, as is customary.
    fn replayed(mut self, replayed: bool) -> Self {
        if replayed {
            self.headers
                .push(("idempotent-replayed", "true".to_owned()));
        }
        self
    }

    pub fn error(error: &ApiError) -> Self {
        let mut reply = Self::json(error.status(), json!({"error": error.message()}));
        reply.headers.extend(error.extra_headers());
        reply.detail = error.log_detail();
        reply
    }

    /// Echoes the request's id (see `request_id`), on every reply.
    pub fn request_id(&mut self, id: &str) {
        self.headers.push(("x-request-id", id.to_owned()));
    }

    /// Sets `Access-Control-Allow-Origin` to what the access settings admit for this
    /// request. With an origin list configured, whether the header is sent and what it
    /// says depend on `Origin`, so every reply has caches vary on it: a reply cached for
    /// one origin (or for none) must not be served to another.
    pub fn allow_origin(&mut self, origin: Option<String>) {
        self.headers
            .retain(|(name, _)| *name != "access-control-allow-origin");
        if let Some(origin) = origin {
            self.headers.push(("access-control-allow-origin", origin));
        }
        self.headers.push(("vary", "Origin".to_owned()));
    }

    /// Every response is `application/json` and carries the CORS headers, even 204.
    fn new(status: u16, body: Vec<u8>) -> Self {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        headers.extend(CORS.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Self {
            status,
            headers,
            body,
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn success_bodies_match_the_contract() {
        let issued = |number| Issued {
            number,
            replayed: false,
        };
        assert_eq!(
            Reply::chat_created(issued(15)).body,
            br#"{"number":15,"messages_count":0}"#
        );
        assert_eq!(Reply::message_created(issued(1)).body, br#"{"number":1}"#);
        assert_eq!(Reply::health().body, br#"{"status":"healthy"}"#);
    }

    #[test]
    fn every_reply_is_json_with_cors() {
        for reply in [
            Reply::preflight(),
            Reply::health(),
            Reply::error(&ApiError::ChatNotFound),
        ] {
            assert_eq!(header(&reply, "content-type"), Some("application/json"));
            assert_eq!(header(&reply, "access-control-allow-origin"), Some("*"));
            assert_eq!(header(&reply, "access-control-max-age"), Some("7200"));
            assert_eq!(
                header(&reply, "access-control-expose-headers"),
                Some("X-Request-Id, X-Runtime")
            );
        }
    }

    #[test]
    fn readiness_names_the_failing_backend_and_keeps_the_cause_for_the_log() {
        use crate::error::Backend;
        let ready = Reply::ready(&Readiness {
            redis: Ok(()),
            mysql: Ok(()),
        });
        assert_eq!(ready.status, 200);
        assert_eq!(
            ready.body,
            br#"{"checks":{"mysql":"ok","redis":"ok"},"status":"ready"}"#
        );
        assert_eq!(header(&ready, "retry-after"), None);

        let down = Reply::ready(&Readiness {
            redis: Ok(()),
            mysql: Err(ApiError::unavailable(
                Backend::Mysql,
                "refused by db.internal",
            )),
        });
        assert_eq!(down.status, 503);
        assert_eq!(
            down.body,
            br#"{"checks":{"mysql":"unavailable","redis":"ok"},"status":"unavailable"}"#
        );
        assert_eq!(header(&down, "retry-after"), Some("1"));
        assert_eq!(
            down.detail.as_deref(),
            Some("mysql: refused by db.internal")
        );
    }

    #[test]
    fn errors_carry_their_text_and_headers() {
        let reply = Reply::error(&ApiError::MethodNotAllowed {
            allow: "POST, OPTIONS",
        });
        assert_eq!(reply.status, 405);
        assert_eq!(header(&reply, "allow"), Some("POST, OPTIONS"));
        assert_eq!(reply.body, br#"{"error":"Method not allowed"}"#);
    }
}
