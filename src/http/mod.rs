//! The HTTP surface: one request in, one JSON reply out, one log line.
//!
//! Everything about the request is parsed here ([`routes`], [`request`]) before any
//! backend is touched, so bad input takes no number and queues nothing.

mod access;
mod request;
mod request_id;
mod response;
mod routes;

use std::borrow::Cow;
use std::time::Duration;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasi::io::streams::StreamError;

use crate::config::Config;
use crate::domain::{IdempotencyKey, MessageBody};
use crate::error::ApiError;
use crate::json;
use crate::platform;
use crate::readiness::Readiness;
use crate::service;
use access::Access;
use request::MAX_REQUEST_BYTES;
use request_id::RequestId;
use response::Reply;
use routes::Endpoint;

/// Serves one request. Never panics on input: every failure is an [`ApiError`] reply.
///
/// Synchronous on purpose: nothing here can overlap (one Redis call, at most one MySQL
/// connection, in sequence), and the SDK's async executor cost ~17 µs of host CPU per
/// request in the test host, about a tenth of the whole platform floor.
pub fn serve(request: IncomingRequest, response_out: ResponseOutparam) {
    let started = platform::monotonic();
    let method = method_name(request.method());
    let path = request.path_with_query().unwrap_or_default();
    let matched = routes::route(&method, &path);

    let headers = Headers(request.headers());
    let request_id = RequestId::from_header(headers.first("x-request-id").as_deref());
    let origin = access::allow_origin(headers.first("origin").as_deref(), |name| {
        spin_sdk::variables::get(name).ok()
    });

    let outcome = match matched.endpoint {
        // The preflight and the probes stay open: browsers send no credentials on a
        // preflight, and orchestrators' probes carry none.
        Ok(endpoint @ (Endpoint::Preflight | Endpoint::Health | Endpoint::Ready)) => {
            drop(headers);
            handle(endpoint, request, &Posted::default())
        }
        Ok(endpoint) => {
            let access = Access::load(|name| spin_sdk::variables::get(name).ok());
            let authorization = access
                .requires_key()
                .then(|| headers.first("authorization"))
                .flatten();
            match access.authorize(authorization.as_deref()) {
                Ok(()) => {
                    let posted = Posted {
                        idempotency_key: headers.first("idempotency-key"),
                        content_length: matches!(endpoint, Endpoint::CreateMessage { .. })
                            .then(|| headers.first("content-length"))
                            .flatten(),
                    };
                    drop(headers);
                    handle(endpoint, request, &posted)
                }
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    };
    let mut reply = outcome.unwrap_or_else(|error| Reply::error(&error));
    reply.allow_origin(origin);
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
    crate::numbering::close_after_reply();
}

/// The request's method as text; the standard ones without an allocation.
fn method_name(method: Method) -> Cow<'static, str> {
    Cow::Borrowed(match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Head => "HEAD",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other(other) => return Cow::Owned(other),
    })
}

/// The request's headers, read one name at a time and only those the endpoint needs: a
/// `get` per name costs the host less than copying every header into the component with
/// `entries` (Spin adds eight `spin-*` headers of its own to each request), about 20,000
/// instructions a request in the test host. The resource is a child of the request and
/// must be dropped before the request's body is consumed.
struct Headers(Fields);

impl Headers {
    /// The first value of header `name` (lower case), if it was sent.
    fn first(&self, name: &str) -> Option<Vec<u8>> {
        self.0.get(&name.to_owned()).into_iter().next()
    }
}

/// The headers a POST endpoint reads besides the common ones.
#[derive(Default)]
struct Posted {
    idempotency_key: Option<Vec<u8>>,
    content_length: Option<Vec<u8>>,
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
            let body = read_message(request, headers.content_length.as_deref())?;
            let issued = service::create_message(&config()?, &token, chat, &body, key.as_ref())?;
            Ok(Reply::message_created(issued))
        }
    }
}

fn config() -> Result<Config, ApiError> {
    Config::load(|name| spin_sdk::variables::get(name).ok())
}

/// Reads the body up to [`MAX_REQUEST_BYTES`]; a declared or actual size over it is
/// answered 413 without reading the rest.
fn read_message(
    request: IncomingRequest,
    content_length: Option<&[u8]>,
) -> Result<MessageBody, ApiError> {
    let declared =
        content_length.and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_REQUEST_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    // The request's body can be taken once; failing that, or failing mid-stream (the
    // client went away), the body is unreadable.
    let body = request
        .consume()
        .map_err(|()| ApiError::InvalidRequestBody)?;
    let stream = body.stream().map_err(|()| ApiError::InvalidRequestBody)?;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    // With a declared length, the body is complete once that much has arrived (the
    // host's HTTP server delivers no more), so there is no read for the end of the stream.
    while declared != Some(bytes.len() as u64) {
        match stream.blocking_read(READ_CHUNK_BYTES) {
            Ok(chunk) if bytes.len() + chunk.len() > MAX_REQUEST_BYTES => {
                return Err(ApiError::PayloadTooLarge);
            }
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => return Err(ApiError::InvalidRequestBody),
        }
    }
    request::parse_message(&bytes)
}

/// How much one read of the request body asks for.
const READ_CHUNK_BYTES: u64 = 64 * 1024;

/// The largest body written before the response is handed to the host. The host buffers
/// a body written that early in a small queue (one write of up to [`BLOCKING_WRITE_MAX`]
/// is sure to fit), and the service's JSON replies are a few hundred bytes at most;
/// anything larger is streamed after handing over instead.
const PREWRITTEN_BODY_MAX: usize = BLOCKING_WRITE_MAX;

fn write(response_out: ResponseOutparam, reply: Reply) {
    let mut headers: Vec<(String, Vec<u8>)> = reply
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into_bytes()))
        .collect();
    // A declared length lets the host send the body as it is instead of chunked, with no
    // separate terminator write. (A 204 must not carry one: RFC 9110, 8.6.)
    if reply.status != 204 {
        let mut length = String::new();
        json::push_u64(&mut length, reply.body.len() as u64);
        headers.push(("content-length".to_owned(), length.into_bytes()));
    }
    // Header names and values are constants or digits, so the host cannot refuse them.
    let Ok(fields) = Fields::from_list(&headers) else {
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(reply.status);
    // The body of a new response can always be taken, once.
    let Ok(body) = response.body() else {
        return;
    };
    // The whole body is written and finished before the response is handed over, so the
    // host's HTTP server finds headers and body ready together and sends them in one
    // write. Handed over first, the headers can go out alone when the server is busy,
    // and Nagle then holds the body back until the client's delayed ACK: a 40 ms stall
    // on a connection that sends one request at a time (Spin, like the test host, does
    // not set TCP_NODELAY).
    if reply.body.len() <= PREWRITTEN_BODY_MAX {
        send_body(body, &reply.body);
        ResponseOutparam::set(response_out, Ok(response));
    } else {
        ResponseOutparam::set(response_out, Ok(response));
        send_body(body, &reply.body);
    }
}

fn send_body(body: OutgoingBody, bytes: &[u8]) {
    if let Ok(stream) = body.write() {
        // A client that hung up cannot be answered; there is nothing else to do.
        for chunk in bytes.chunks(BLOCKING_WRITE_MAX) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}

/// The most `blocking-write-and-flush` accepts in one call (wasi:io 0.2).
const BLOCKING_WRITE_MAX: usize = 4096;

/// What the log line of a request says.
struct Logged<'a> {
    method: &'a str,
    route: &'static str,
    status: u16,
    started: Duration,
    request_id: &'a RequestId,
    /// The cause of a server-side failure (a 5xx, a failed readiness check).
    detail: Option<String>,
}

/// One line per request on stderr, as JSON: method, route template (never the token),
/// status, duration and request id; for a server-side failure, the cause. Never a
/// message body or a secret.
fn log(logged: &Logged<'_>) {
    let micros = (platform::monotonic() - logged.started).as_micros();
    platform::log_line(&logged.render(micros));
}

impl Logged<'_> {
    /// The line, newline included, written by hand (see [`crate::json`]) since it is built
    /// on every request. The method, request id and cause are escaped; the route is a
    /// constant template and the rest are numbers.
    fn render(&self, duration_micros: u128) -> String {
        let mut line = String::with_capacity(192);
        line.push_str(r#"{"method":"#);
        json::push_string(&mut line, self.method);
        line.push_str(r#","route":""#);
        line.push_str(self.route);
        line.push_str(r#"","status":"#);
        json::push_u64(&mut line, self.status.into());
        line.push_str(r#","duration_ms":"#);
        let micros = u64::try_from(duration_micros).unwrap_or(u64::MAX);
        json::push_u64(&mut line, micros / 1000);
        line.push('.');
        json::push_padded(&mut line, micros % 1000, 3);
        line.push_str(r#","request_id":"#);
        json::push_string(&mut line, self.request_id.as_str());
        if let Some(detail) = &self.detail {
            line.push_str(r#","error":"#);
            json::push_string(&mut line, detail);
        }
        line.push_str("}\n");
        line
    }
}

#[cfg(test)]
mod log_line {
    use super::*;

    #[test]
    fn is_one_json_object_with_every_field_escaped() {
        let request_id = RequestId::from_header(Some(br#"a"b\c"#));
        let logged = Logged {
            method: "PO\"ST",
            route: "/api/v1/chat_applications/:token/chats",
            status: 503,
            started: Duration::ZERO,
            request_id: &request_id,
            detail: Some("redis: \"down\"\n\u{1}".to_owned()),
        };
        let rendered = logged.render(452);
        let line = rendered
            .strip_suffix('\n')
            .expect("a line ends with a newline");
        assert!(!line.contains('\n'));
        let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "method": "PO\"ST",
                "route": "/api/v1/chat_applications/:token/chats",
                "status": 503,
                "duration_ms": 0.452,
                "request_id": r#"a"b\c"#,
                "error": "redis: \"down\"\n\u{1}",
            })
        );
        let quiet = Logged {
            detail: None,
            ..logged
        };
        let line = quiet.render(12_034);
        assert!(line.contains(r#""duration_ms":12.034,"#), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed.get("error"), None);
        let line = quiet.render(7);
        assert!(line.contains(r#""duration_ms":0.007,"#), "{line}");
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
