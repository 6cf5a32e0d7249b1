//! The platform floor for `bench/run`: the least a Spin component that writes Redis
//! does per request — open one connection (Spin never pools them) and send one
//! command — answering a small 201 JSON like the chat-service does.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::redis::Connection;

const KEY: &str = "bench:floor:counter";

#[http_component]
fn handle(_request: Request) -> Response {
    let result = spin_sdk::variables::get("redis_url")
        .map_err(|e| e.to_string())
        .and_then(|url| Connection::open(&url).map_err(|e| e.to_string()))
        .and_then(|redis| redis.incr(KEY).map_err(|e| e.to_string()));
    match result {
        Ok(n) => json(201, format!("{{\"number\":{n}}}")),
        Err(e) => json(503, format!("{{\"error\":{:?}}}", e)),
    }
}

fn json(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .build()
}
