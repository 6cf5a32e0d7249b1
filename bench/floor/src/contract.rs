//! The contract floor: every host call a warm chat creation must make, with as little
//! guest work around them as can be written, so that `bench/run` can say how much of the
//! chat-service's cost is the contract's and how much is the component's own.
//!
//! What a warm chat creation cannot do without, and why:
//! - the method and path (routing), and three request headers (`X-Request-Id`, `Origin`,
//!   `Idempotency-Key`: the request id it echoes, the origin it checks and the key that
//!   makes a retry safe, docs/contract.md §5.4; `Authorization` only matters with an API
//!   key), and for a message its `Content-Length` and its body;
//! - three variables (`redis_url`, `api_key`, `rate_limit_per_second`), one random draw
//!   (the request id and the job's two ids) and three clock readings (the job's time, the
//!   log line's duration);
//! - one Redis connection and one call of the chat-service's own numbering script with a
//!   job of the real size (lookups, INCR, SADD and LPUSH in one script, so that no
//!   number is handed out without its job: docs/contract.md §6.1);
//! - a 201 with the contract's eight headers (`Content-Type`, five CORS headers,
//!   `X-Request-Id`, `Content-Length`);
//! - one JSON log line on stderr (every request is logged);
//! - and, never called on a warm request but imported (Spin wires up every import for
//!   each request's instance): MySQL for a lookup that is not cached, and a clock to wait
//!   on another request's cache fill.
//!
//! Built with `close-first` too, it also has Redis close the connection first, as the
//! chat-service does so that no TIME_WAIT stays on Spin's side (src/redis.rs):
//! `QUIT` after the script, and after the reply a `PING` that fails once Redis's close
//! has arrived.
//!
//! It is exported and answers the way the chat-service does (WASI 0.2 bindings, no async
//! executor, headers read by name). The path is `/<token>` for a chat and
//! `/<token>/messages` for a message to chat 1, or the chat-service's own two paths;
//! `bench/run` keeps the lookups in the script's cache. The body is read, not parsed:
//! parsing is the component's own work.

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{IncomingRequest, ResponseOutparam};

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
    // `/<token>` and `/<token>/messages`, or the chat-service's own paths when the floor is
    // served from its manifest (bench/instructions' `manifest_*`).
    let route = path
        .strip_prefix("/api/v1/chat_applications")
        .unwrap_or(&path);
    let token = route
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let message = route.ends_with("/messages");
    let headers = request.headers();
    let _headers =
        ["x-request-id", "origin", "idempotency-key"].map(|name| headers.get(&name.to_owned()));
    let length = message.then(|| headers.get(&"content-length".to_owned()));
    drop(headers);
    if let Some(length) = length {
        read_body(request, length);
    }
    let _random = wasi::random::random::get_random_bytes(64);
    let _api_key = spin_sdk::variables::get("api_key");
    let _rate_limit = spin_sdk::variables::get("rate_limit_per_second");
    let _now = wasi::clocks::wall_clock::now();
    let redis = spin_sdk::variables::get("redis_url")
        .ok()
        .and_then(|url| Connection::open(&url).ok());
    let number = redis
        .as_ref()
        .and_then(|redis| number(redis, &token, message));
    #[cfg(feature = "close-first")]
    if let Some(redis) = &redis {
        let _ = redis.execute("QUIT", &[]);
    }

    let (status, body) = match number {
        Some(n) if message => (201, format!(r#"{{"number":{n}}}"#)),
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
    super::reply(response_out, status, &headers, body.as_bytes());

    let micros = (wasi::clocks::monotonic_clock::now() - started) / 1_000;
    let line = format!(
        "{{\"method\":\"POST\",\"route\":\"/api/v1/chat_applications/:token/chats\",\"status\":{status},\"duration_ms\":{}.{:03},\"request_id\":\"0123456789abcdef0123456789abcdef\"}}\n",
        micros / 1000,
        micros % 1000
    );
    let _ = wasi::cli::stderr::get_stderr().blocking_write_and_flush(line.as_bytes());
    #[cfg(feature = "close-first")]
    if let Some(redis) = &redis {
        let _ = redis.execute("PING", &[]);
    }
    drop(redis);
}

/// Reads the body up to its declared length, as the chat-service does.
fn read_body(request: IncomingRequest, length: Vec<Vec<u8>>) {
    let declared: usize = length
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.parse().ok())
        .unwrap_or(0);
    let Ok(body) = request.consume() else { return };
    let Ok(stream) = body.stream() else { return };
    let mut read = 0;
    while read < declared {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => read += chunk.len(),
            Err(_) => break,
        }
    }
}

/// The numbering script's warm call, with the chat-service's arguments (see
/// `src/numbering.rs`); its number, if it issued one.
fn number(redis: &Connection, token: &str, message: bool) -> Option<i64> {
    let text = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
    let (kind, chat, args_tail) = if message {
        ("message", "1", r#","hello from bench/run""#)
    } else {
        ("chat", "", "")
    };
    let mut args = vec![
        text(SCRIPT_SHA1),
        RedisParameter::Int64(0),
        text(kind),
        text(token),
        text(chat),
        text(""),
        text(""),
        text(""),
        RedisParameter::Int64(300),
        text(JOB_HEAD),
        text(args_tail),
        text(JOB_TAIL),
        text(&format!("chat_service:v1:fill:{kind}:{token}:{chat}")),
        text(""),
        RedisParameter::Int64(86_400),
        RedisParameter::Int64(0),
        // How long a new chat is awaited (numbering.lua's ARGV[15]).
        RedisParameter::Int64(600),
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
        // Never on a warm request, but a component must be able to do both, and Spin
        // wires up every import of a component for each request's instance: a lookup
        // that is not cached is read from MySQL (the floor only opens a connection and
        // asks it something), and a lookup another request is filling is waited for.
        [RedisResult::Int64(1 | 2)] => {
            let url = spin_sdk::variables::get("mysql_url").ok()?;
            let mysql = spin_sdk::mysql::Connection::open(&url).ok()?;
            mysql.query("SELECT 1", &[]).ok()?;
            None
        }
        [RedisResult::Int64(6)] => {
            wasi::clocks::monotonic_clock::subscribe_duration(2_000_000).block();
            None
        }
        _ => None,
    }
}
