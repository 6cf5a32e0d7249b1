//! The test host against real Spin, byte for byte: the same raw requests sent to both,
//! the answers compared once the parts that differ by nature are masked (the date, a
//! generated request id, the number a counter gave).
//!
//! The cases are those where an HTTP server has a choice to make (headers that are not
//! UTF-8, a missing or contradicting `Host`, raw bytes in the path, odd framing), each of
//! which once differed between the two, and the service's own answers for comparison.
//! Where they differ, Spin is right: the test host is mended.
//!
//! Runs in the Spin pass of `scripts/test` only: it needs real Spin beside the test host.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::Stack;
use support::runtime::{Runtime, serve_in};

/// What a server sent back before it closed, or how the connection ended.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A server may answer and close before reading all of a large request.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    if let Err(e) = stream.read_to_end(&mut answer) {
        answer.extend_from_slice(format!("<{:?}>", e.kind()).as_bytes());
    }
    answer
}

/// The answer with what may rightly differ between two runs masked.
fn masked(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    text.split("\r\n")
        .map(|line| {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("date:") {
                "date: <masked>".to_owned()
            } else if lower.starts_with("x-request-id:")
                && line[13..].trim().len() == 32
                && line[13..].trim().bytes().all(|b| b.is_ascii_hexdigit())
            {
                "x-request-id: <generated>".to_owned()
            } else if let Some(rest) = line.strip_prefix(r#"{"number":"#) {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                format!(r#"{{"number":N{}"#, &rest[digits..])
            } else if lower.starts_with("content-length:") && text.contains(r#"{"number":"#) {
                // The number's digits change the length of a 201's body.
                "content-length: <masked>".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn post(path: &str, headers: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}").into_bytes();
    if let Some(body) = body {
        request.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body.unwrap_or_default());
    request
}

fn get(target: &[u8], headers: &[u8]) -> Vec<u8> {
    [
        b"GET ".as_slice(),
        target,
        b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
        headers,
        b"\r\n",
    ]
    .concat()
}

/// The requests, for an application whose token is `token` and which has a chat 1.
fn cases(token: &str) -> Vec<(&'static str, Vec<u8>)> {
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let messages = format!("{chats}/1/messages");
    let message = br#"{"message":{"body":"hello"}}"#;
    vec![
        // Headers: Spin fails a request whose header value is not UTF-8.
        ("a header value that is not UTF-8", [
            format!("POST {chats} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").into_bytes(),
            b"Idempotency-Key: a\xe9b\r\n\r\n".to_vec(),
        ].concat()),
        ("a header value in UTF-8", post(&chats, "X-Foo: é\r\n", None)),
        ("a client's own spin-* header", get(b"/health", b"spin-full-url: elsewhere\r\n")),
        ("two request ids", get(b"/health", b"X-Request-Id: one\r\nX-Request-Id: two\r\n")),
        ("a request id in UTF-8", get(b"/health", "X-Request-Id: é\r\n".as_bytes())),
        ("an origin", get(b"/health", b"Origin: http://a.example\r\n")),
        ("a long header", get(b"/health", format!("X-Big: {}\r\n", "a".repeat(70_000)).as_bytes())),
        ("too many headers", get(b"/health", &(0..120).map(|i| format!("X-H{i}: v\r\n")).collect::<String>().into_bytes())),
        // The authority: Spin needs one, from `Host` or the URI, and the two must agree.
        ("HTTP/1.0 without Host", b"GET /health HTTP/1.0\r\n\r\n".to_vec()),
        ("HTTP/1.1 without Host", b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec()),
        ("HTTP/1.0 with Host", b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n".to_vec()),
        ("a Host that is no authority", b"GET /health HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n".to_vec()),
        ("an empty Host", b"GET /health HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n".to_vec()),
        ("two Hosts", b"GET /health HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n".to_vec()),
        ("an absolute URI that names another host", get(b"http://other:99/health", b"")),
        ("an absolute URI that names the Host", get(b"http://x/health", b"")),
        // The request target.
        ("raw UTF-8 in the path", post(&chats.replace(token, "é"), "", None)),
        ("a raw 0xff in the path", get(b"/\xff", b"")),
        ("a space in the path", get(b"/a b", b"")),
        ("a percent-encoded path", get(b"/heal%74h", b"")),
        ("a path with ..", get(b"/api/../health", b"")),
        ("a path with //", get(b"//health", b"")),
        ("a path with a trailing /", get(b"/health/", b"")),
        ("a query", get(b"/health?x=1", b"")),
        ("a long path", get(format!("/{}", "a".repeat(5000)).as_bytes(), b"")),
        ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        ("a lower-case method", format!("post {chats} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()),
        ("a method of its own", b"FOO /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        ("HEAD", b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec()),
        // Spin's own paths.
        ("Spin's health check", get(b"/.well-known/spin/health", b"")),
        ("Spin's app info", get(b"/.well-known/spin/info", b"")),
        ("another well-known path", get(b"/.well-known/spin/nope", b"")),
        // Framing.
        ("a chunked message", [
            format!("POST {messages} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").into_bytes(),
            b"5\r\n{\"mes\r\n17\r\nsage\":{\"body\":\"hello\"}}\r\n0\r\n\r\n".to_vec(),
        ].concat()),
        ("Transfer-Encoding and Content-Length", format!("POST {messages} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n").into_bytes()),
        ("Expect: 100-continue", post(&messages, "Expect: 100-continue\r\n", Some(message))),
        ("a declared length over the cap", post(&messages, "Content-Length: 99999999\r\n", None)),
        ("a body over the cap", post(&messages, "", Some(format!(r#"{{"message":{{"body":"{}"}}}}"#, "a".repeat(1_100_000)).as_bytes()))),
        ("two requests on one connection", [
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ].concat()),
        // The service's own answers.
        ("a chat", post(&chats, "", None)),
        ("a message", post(&messages, "", Some("{\"message\":{\"body\":\"hi é\"}}".as_bytes()))),
        ("a blank message", post(&messages, "", Some(br#"{"message":{"body":"  "}}"#))),
        ("a message over 65,535 bytes", post(&messages, "", Some(format!(r#"{{"message":{{"body":"{}"}}}}"#, "a".repeat(70_000)).as_bytes()))),
        ("a body that is not JSON", post(&messages, "", Some(b"{nope"))),
        ("an unknown token", post("/api/v1/chat_applications/nope/chats", "", None)),
        ("a chat number that is no integer", post(&chats.replace("/chats", "/chats/x/messages"), "", Some(b"{}"))),
        ("an unknown chat", post(&format!("{chats}/999/messages"), "", Some(message))),
        ("another method", format!("PUT {chats} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()),
        ("readiness", get(b"/ready", b"")),
    ]
}

#[test]
fn the_test_host_answers_every_request_as_spin_does() {
    if !Runtime::get().is_spin() {
        // Past the harness's capture, so that the log says why this passed.
        let _ = writeln!(
            std::io::stderr(),
            "parity: needs real Spin beside the test host, so it runs in the Spin pass only"
        );
        return;
    }
    let stack = Stack::start("parity", 10);
    let (application, token) = stack.new_application();
    stack.insert_chat(application, 1);
    let test_host = serve_in(&Runtime::TestHost, &stack.variables());
    let spin = &stack.host;

    let mut differences = Vec::new();
    let cases = cases(&token);
    for (case, request) in &cases {
        let (ours, theirs) = (
            masked(&exchange(test_host.addr, request)),
            masked(&exchange(spin.addr, request)),
        );
        if ours != theirs {
            differences.push(format!(
                "{case}:\n  test host: {ours:?}\n  Spin:      {theirs:?}"
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}
