//! The HTTP surface: one request in, one JSON reply out, one log line. This module is the
//! dispatch; reading the request ([`read`]), what it means ([`routes`], [`request`]),
//! the reply ([`response`], written by [`write`]) and the log line ([`log_line`]) each
//! have their own.
//!
//! Everything about the request is parsed before any backend is touched, so bad input
//! takes no number and queues nothing.

mod access;
mod log_line;
mod read;
mod request;
mod request_id;
mod response;
mod routes;
mod write;

use wasi::http::types::{IncomingRequest, ResponseOutparam};

use crate::config::{Config, ConfigError};
use crate::domain::IdempotencyKey;
use crate::error::ApiError;
use crate::platform;
use crate::readiness::Readiness;
use crate::service;
use access::Access;
use log_line::{Logged, log};
use read::{Framing, Headers, method_name, read_message};
use request_id::RequestId;
use response::Reply;
use routes::Endpoint;
use write::write;

/// Serves one request. Never panics on input: every failure is an [`ApiError`] reply.
///
/// Synchronous on purpose: nothing here can overlap (one Redis call, at most one MySQL
/// connection, in sequence), so the SDK's async executor would only add host CPU to
/// every request (the figure: bench/README.md, "Figures behind comments in src/").
pub fn serve(request: IncomingRequest, response_out: ResponseOutparam) {
    let started = platform::monotonic();
    let method = method_name(request.method());
    let path = request.path_with_query().unwrap_or_default();
    let matched = routes::route(&method, &path);

    let headers = Headers(request.headers());
    let request_id = RequestId::from_header(headers.first("x-request-id").as_deref());
    // Liveness reads no settings: a secrets store's outage must not get every pod
    // restarted. Every other route reads them, and one that cannot be read fails the
    // request (500) rather than falling back to a default: no key asked, any origin.
    let origin = match matched.endpoint {
        Ok(Endpoint::Health) => Ok(Some("*".to_owned())),
        _ => access::allow_origin(headers.first("origin").as_deref(), variable),
    };

    let outcome = match (&origin, matched.endpoint) {
        (Err(error), _) => Err(ApiError::from(error.clone())),
        (Ok(_), Err(error)) => Err(error),
        // The preflight and the probes stay open: browsers send no credentials on a
        // preflight, and orchestrators' probes carry none. Neither do 404 and 405
        // answers need a key: they say only what the published API already says.
        (Ok(_), Ok(endpoint @ (Endpoint::Preflight | Endpoint::Health | Endpoint::Ready))) => {
            drop(headers);
            handle(endpoint, request, &Posted::default())
        }
        (Ok(_), Ok(endpoint)) => match authorize(&headers) {
            Err(error) => Err(error),
            Ok(()) => {
                let posted = Posted {
                    idempotency_key: headers.first("idempotency-key"),
                    framing: match endpoint {
                        Endpoint::CreateMessage { .. } => Framing {
                            content_length: headers.first("content-length"),
                            transfer_encoding: headers.first("transfer-encoding"),
                        },
                        _ => Framing::default(),
                    },
                };
                drop(headers);
                handle(endpoint, request, &posted)
            }
        },
    };
    let mut reply = outcome.unwrap_or_else(|error| Reply::error(&error));
    reply.allow_origin(origin.unwrap_or(None));
    reply.request_id(request_id.as_str());
    let (status, detail) = (reply.status, reply.detail.take());
    write(response_out, reply);
    log(&Logged {
        method: &method,
        route: matched.route,
        status,
        started,
        request_id: &request_id,
        detail,
    });
    crate::redis::close_after_reply();
}

/// The headers a POST endpoint reads besides the common ones.
#[derive(Default)]
struct Posted {
    idempotency_key: Option<Vec<u8>>,
    framing: Framing,
}

fn handle(
    endpoint: Endpoint,
    request: IncomingRequest,
    headers: &Posted,
) -> Result<Reply, ApiError> {
    match endpoint {
        Endpoint::Health => Ok(Reply::health()),
        Endpoint::Ready => Ok(Reply::ready(&Readiness::check(&config()?))),
        Endpoint::Preflight => Ok(Reply::preflight()),
        Endpoint::CreateChat { token } => {
            let key = IdempotencyKey::parse(headers.idempotency_key.as_deref())?;
            let issued = service::create_chat(&config()?, &token, key.as_ref())?;
            Ok(Reply::chat_created(issued))
        }
        Endpoint::CreateMessage { token, chat } => {
            let key = IdempotencyKey::parse(headers.idempotency_key.as_deref())?;
            let config = config()?;
            let body = read_message(request, &headers.framing, || {
                Ok(config.request_body_timeout()?)
            })?;
            let issued = service::create_message(&config, &token, chat, &body, key.as_ref())?;
            Ok(Reply::message_created(issued))
        }
    }
}

/// With an API key configured, a creation needs `Authorization: Bearer <key>`.
fn authorize(headers: &Headers) -> Result<(), ApiError> {
    let access = Access::load(variable)?;
    let authorization = access
        .requires_key()
        .then(|| headers.first("authorization"))
        .flatten();
    access.authorize(authorization.as_deref())
}

fn config() -> Result<Config, ApiError> {
    Ok(Config::load(variable)?)
}

/// A Spin variable: `None` when it is undefined (its default applies); any other error,
/// a provider that is down or refuses, is an error that names the variable.
fn variable(name: &'static str) -> Result<Option<String>, ConfigError> {
    use spin_sdk::variables::Error;
    match spin_sdk::variables::get(name) {
        Ok(value) => Ok(Some(value)),
        Err(Error::Undefined(_)) => Ok(None),
        Err(Error::InvalidName(cause) | Error::Provider(cause) | Error::Other(cause)) => {
            Err(ConfigError::Unreadable { name, cause })
        }
    }
}

/// No input makes the edge panic: every method, path and body the parsers can be handed,
/// drawn from a deterministic generator biased towards the characters that matter
/// (separators, escapes, digits, signs, JSON punctuation, control and multi-byte text).
#[cfg(test)]
mod no_panic {
    use super::{request, routes};

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    const PIECES: &[&str] = &[
        "/",
        "/",
        "api",
        "v1",
        "chat_applications",
        "chats",
        "messages",
        "health",
        "%",
        "%4",
        "%41",
        "%C3%A9",
        "%FF",
        "%00",
        "0",
        "1",
        "-",
        "+",
        "9",
        "2147483647",
        "2147483648",
        "99999999999999999999",
        "?",
        "&",
        "=",
        "é",
        "👋",
        "\u{0}",
        "\t",
        " ",
        "..",
        "a",
    ];
    const JSON: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\"message\"",
        "\"body\"",
        "null",
        "5",
        "\"x\"",
        "\\u0000",
        "\\ud800",
        "\\",
        " ",
        "\u{3000}",
        "true",
        "\"é👋\"",
        "\u{ff}",
    ];

    #[test]
    fn any_method_path_and_body() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..50_000 {
            let method = rng.pick(&["GET", "POST", "OPTIONS", "DELETE", "PATCH", "", "post"]);
            let mut segment = || {
                (0..rng.next() % 6)
                    .map(|_| rng.pick(PIECES))
                    .collect::<String>()
            };
            let (token, number, free) = (segment(), segment(), segment());
            // Half well-formed routes with hostile parameters, half anything at all.
            for path in [
                format!("/api/v1/chat_applications/{token}/chats"),
                format!("/api/v1/chat_applications/{token}/chats/{number}/messages"),
                free,
            ] {
                let _ = routes::route(method, &path);
            }
            let body: String = (0..rng.next() % 16).map(|_| rng.pick(JSON)).collect();
            let _ = request::parse_message(body.as_bytes());
            let raw: Vec<u8> = (0..rng.next() % 32).map(|_| rng.next() as u8).collect();
            let _ = request::parse_message(&raw);
        }
    }
}
