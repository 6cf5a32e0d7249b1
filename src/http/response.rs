//! What the service answers: status, headers and JSON body, before it is written to Spin.

use serde_json::json;

use crate::error::ApiError;

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
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::new(status, body.to_string().into_bytes())
    }

    pub fn health() -> Self {
        Self::json(200, json!({"status": "healthy"}))
    }

    pub fn preflight() -> Self {
        Self::new(204, Vec::new())
    }

    /// Field order as the Go service wrote it, for clients that compare bytes.
    pub fn chat_created(number: i64) -> Self {
        Self::new(
            201,
            format!(r#"{{"number":{number},"messages_count":0}}"#).into_bytes(),
        )
    }

    pub fn message_created(number: i64) -> Self {
        Self::json(201, json!({"number": number}))
    }

    pub fn error(error: &ApiError) -> Self {
        let mut reply = Self::json(error.status(), json!({"error": error.message()}));
        reply.headers.extend(error.extra_headers());
        reply
    }

    /// Every response is `application/json` and carries the CORS headers, even 204.
    fn new(status: u16, body: Vec<u8>) -> Self {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        headers.extend(CORS.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Self {
            status,
            headers,
            body,
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
        assert_eq!(
            Reply::chat_created(15).body,
            br#"{"number":15,"messages_count":0}"#
        );
        assert_eq!(Reply::message_created(1).body, br#"{"number":1}"#);
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
    fn errors_carry_their_text_and_headers() {
        let reply = Reply::error(&ApiError::MethodNotAllowed {
            allow: "POST, OPTIONS",
        });
        assert_eq!(reply.status, 405);
        assert_eq!(header(&reply, "allow"), Some("POST, OPTIONS"));
        assert_eq!(reply.body, br#"{"error":"Method not allowed"}"#);
    }
}
