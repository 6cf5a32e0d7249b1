//! The contract floor: every host call a warm chat creation must make, with as little
//! guest work around them as can be written, so that `bench/run` can say how much of the
//! chat-service's cost is the contract's and how much is the component's own.
//!
//! What a warm chat creation cannot do without, and why:
//! - the method and path (routing), and three request headers (`X-Request-Id`, `Origin`,
//!   `Idempotency-Key`: issues #5 and #6; `Authorization` only matters with an API key);
//! - three variables (`redis_url`, `api_key`, `rate_limit_per_second`), one random draw
//!   (the request id and the job's two ids) and three clock readings (the job's time, the
//!   log line's duration);
//! - one Redis connection and one call of the chat-service's own numbering script with a
//!   job of the real size (issue #4: lookups, INCR, SADD and LPUSH in one script);
//! - a 201 with the contract's eight headers (`Content-Type`, five CORS headers,
//!   `X-Request-Id`, `Content-Length`);
//! - one JSON log line on stderr (issue #6).
//!
//! It is exported and answers the way the chat-service does (WASI 0.2 bindings, no async
//! executor, headers read by name). The token is the path (`/<token>`); `bench/run` keeps
//! its lookup in the script's cache.

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const SCRIPT: &str = include_str!("../../../src/numbering.lua");
const SCRIPT_SHA1: &str = env!("NUMBERING_SCRIPT_SHA1");

/// A chat job cut where the script splices in `parent_id,number`, as long as the
/// chat-service's (fixed ids and time: only the size matters here).
const JOB_HEAD: &str = r#"{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"CreateChatJob","queue":"default","args":[{"job_class":"CreateChatJob","job_id":"11111111-1111-4111-9111-111111111111","provider_job_id":null,"queue_name":"default","priority":null,"arguments":"#;
const JOB_TAIL: &str = r#","executions":0,"exception_executions":{},"locale":"en","timezone":"UTC","enqueued_at":"2026-11-27T16:24:22.346034123Z","scheduled_at":null}],"retry":true,"jid":"abababababababababababab","created_at":1795796662.346034,"enqueued_at":1795796662.346034}"#;

const CORS: [(&str, &[u8]); 5] = [
    ("access-control-allow-origin", b"*"),
    (
        "access-control-allow-methods",
        b"GET, POST, PUT, PATCH, DELETE, OPTIONS",
    ),
    (
        "access-control-allow-headers",
        b"Content-Type, Authorization, X-Requested-With, Accept",
    ),
    ("access-control-expose-headers", b"X-Request-Id, X-Runtime"),
    ("access-control-max-age", b"7200"),
];

struct ContractFloor;

wasi::http::proxy::export!(ContractFloor);

impl Guest for ContractFloor {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        handle(request, response_out);
    }
}

fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
    let started = wasi::clocks::monotonic_clock::now();
    let _method = request.method();
    let path = request.path_with_query().unwrap_or_default();
    let headers = request.headers();
    let _headers =
        ["x-request-id", "origin", "idempotency-key"].map(|name| headers.get(&name.to_owned()));
    drop(headers);
    let _random = wasi::random::random::get_random_bytes(64);
    let _api_key = spin_sdk::variables::get("api_key");
    let _rate_limit = spin_sdk::variables::get("rate_limit_per_second");
    let _now = wasi::clocks::wall_clock::now();
    let token = path.trim_start_matches('/');
    let number = spin_sdk::variables::get("redis_url")
        .ok()
        .and_then(|url| Connection::open(&url).ok())
        .and_then(|redis| number(&redis, token));

    let (status, body) = match number {
        Some(n) => (201, format!(r#"{{"number":{n},"messages_count":0}}"#)),
        None => (503, r#"{"error":"unavailable"}"#.to_owned()),
    };
    let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
    headers.extend(CORS.iter().map(|(k, v)| ((*k).to_owned(), v.to_vec())));
    headers.push((
        "x-request-id".to_owned(),
        b"0123456789abcdef0123456789abcdef".to_vec(),
    ));
    headers.push((
        "content-length".to_owned(),
        body.len().to_string().into_bytes(),
    ));
    if let Ok(fields) = Fields::from_list(&headers) {
        let response = OutgoingResponse::new(fields);
        let _ = response.set_status_code(status);
        if let Ok(outgoing) = response.body() {
            if let Ok(stream) = outgoing.write() {
                let _ = stream.blocking_write_and_flush(body.as_bytes());
            }
            let _ = OutgoingBody::finish(outgoing, None);
        }
        ResponseOutparam::set(response_out, Ok(response));
    }

    let micros = (wasi::clocks::monotonic_clock::now() - started) / 1_000;
    let line = format!(
        "{{\"method\":\"POST\",\"route\":\"/api/v1/chat_applications/:token/chats\",\"status\":{status},\"duration_ms\":{}.{:03},\"request_id\":\"0123456789abcdef0123456789abcdef\"}}\n",
        micros / 1000,
        micros % 1000
    );
    let _ = wasi::cli::stderr::get_stderr().blocking_write_and_flush(line.as_bytes());
}

/// The numbering script's warm call, with the chat-service's arguments (see
/// `src/numbering.rs`); its number, if it issued one.
fn number(redis: &Connection, token: &str) -> Option<i64> {
    let text = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
    let mut args = vec![
        text(SCRIPT_SHA1),
        RedisParameter::Int64(0),
        text("chat"),
        text(token),
        text(""),
        text(""),
        text(""),
        text(""),
        RedisParameter::Int64(300),
        text(JOB_HEAD),
        text(""),
        text(JOB_TAIL),
        text(&format!("chat_service:v1:fill:chat:{token}")),
        text(""),
        RedisParameter::Int64(86_400),
        RedisParameter::Int64(0),
    ];
    let reply = match redis.execute("EVALSHA", &args) {
        Ok(reply) => reply,
        Err(_) => {
            // NOSCRIPT: this Redis has not seen the script yet.
            args[0] = text(SCRIPT);
            redis.execute("EVAL", &args).ok()?
        }
    };
    match reply.as_slice() {
        [RedisResult::Int64(0), RedisResult::Int64(n), _] => Some(*n),
        _ => None,
    }
}
