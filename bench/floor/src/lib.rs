//! The platform floor for `bench/run`: the least a Spin component that writes Redis
//! does per request — open one connection (Spin never pools them) and send one
//! command — answering a small 201 JSON like the chat-service does.
//!
//! By default it is exported and answers the way the chat-service is and does (the WASI
//! 0.2 bindings without the SDK's async executor; body written and finished before the
//! response is handed to the host, with a `Content-Length`), so the comparison measures
//! the work and not a difference in how the reply is written. Built with
//! the `sdk-reply` feature, it answers through the SDK's usual `Response` path instead:
//! what a typical component pays, which the first floor figures came from.
//! Built with the `contract` feature, it is a third reference instead: every host call a
//! chat creation must make (see `contract.rs`) and nothing else.

// The chat-service's answers to std's preview 1 calls, so that a floor needs no preview1
// adapter either and pays for what the component pays (src/preview1.rs). Not for
// `sdk-reply`, which stands for a typical component: its SDK executor needs the adapter.
#[cfg(any(feature = "contract", not(feature = "sdk-reply")))]
#[path = "../../../src/preview1.rs"]
mod preview1;
#[cfg(any(feature = "contract", not(feature = "sdk-reply")))]
#[path = "../../../src/wasi_output.rs"]
mod wasi_output;

#[cfg(not(feature = "contract"))]
use spin_sdk::redis::Connection;

#[cfg(not(feature = "contract"))]
const KEY: &str = "bench:floor:counter";

/// One connection, one command; the reply's status and JSON body.
#[cfg(not(feature = "contract"))]
fn floor() -> (u16, String) {
    let result = spin_sdk::variables::get("redis_url")
        .map_err(|e| e.to_string())
        .and_then(|url| Connection::open(&url).map_err(|e| e.to_string()))
        .and_then(|redis| redis.incr(KEY).map_err(|e| e.to_string()));
    match result {
        Ok(n) => (201, format!("{{\"number\":{n}}}")),
        Err(e) => (503, format!("{{\"error\":{e:?}}}")),
    }
}

#[cfg(feature = "contract")]
mod contract;

/// Exported as the chat-service exports its handler (the WASI 0.2 bindings, without the
/// SDK's async executor), and answering as it answers.
#[cfg(not(any(feature = "sdk-reply", feature = "contract")))]
mod direct {
    use wasi::exports::http::incoming_handler::Guest;
    use wasi::http::types::{IncomingRequest, ResponseOutparam};

    struct Floor;

    wasi::http::proxy::export!(Floor);

    impl Guest for Floor {
        fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
            let (status, body) = super::floor();
            let headers = [
                ("content-type".to_owned(), b"application/json".to_vec()),
                (
                    "content-length".to_owned(),
                    body.len().to_string().into_bytes(),
                ),
            ];
            super::reply(response_out, status, &headers, body.as_bytes());
        }
    }
}

/// Answers as the chat-service answers: the body written and finished before the
/// response is handed to the host, so headers and body leave in one write.
#[cfg(any(feature = "contract", not(feature = "sdk-reply")))]
fn reply(
    response_out: wasi::http::types::ResponseOutparam,
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
) {
    use wasi::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

    let Ok(fields) = Fields::from_list(headers) else {
        return;
    };
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(status);
    if let Ok(outgoing) = response.body() {
        if let Ok(stream) = outgoing.write() {
            let _ = stream.blocking_write_and_flush(body);
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
    ResponseOutparam::set(response_out, Ok(response));
}

#[cfg(all(feature = "sdk-reply", not(feature = "contract")))]
#[spin_sdk::http_component]
fn handle(_request: spin_sdk::http::Request) -> spin_sdk::http::Response {
    let (status, body) = floor();
    spin_sdk::http::Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .build()
}
