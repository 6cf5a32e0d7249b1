//! Clients that try to hold the node or confuse the service: bodies that stop arriving,
//! framing that disagrees with itself. Each must get a prompt answer that takes nothing
//! (no number, no job), and leave the node serving everyone else.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use support::{Stack, client};

/// A short deadline, so that the tests wait little for it.
const BODY_TIMEOUT_SECONDS: u64 = 2;

static STACK: LazyLock<Stack> =
    LazyLock::new(|| Stack::start_with("hostile", 7, &[("request_body_timeout_seconds", "2")]));

/// A new application with chat 1 stored: its message path and its counter key.
fn chat() -> (String, String) {
    let (application_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(application_id, 1);
    (
        format!("/api/v1/chat_applications/{token}/chats/1/messages"),
        format!("chat:{chat_id}:message_counter"),
    )
}

/// A message request whose headers announce 40 bytes and whose body stops after 11.
fn stalled(path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(STACK.host.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 40\r\nConnection: close\r\n\r\n{{\"message\":"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

fn nothing_taken(counter: &str) {
    let mut redis = STACK.redis();
    assert_eq!(redis.get_int(counter), None, "a number was taken");
}

#[test]
fn a_body_that_stops_arriving_is_408_at_the_deadline_and_takes_nothing() {
    let (path, counter) = chat();
    let started = Instant::now();
    let mut stream = stalled(&path);
    let response = client::read_response(&mut stream);
    let waited = started.elapsed();
    assert_eq!(response.status, 408, "{}", response.text());
    assert_eq!(response.error(), "Request body was not received in time");
    assert!(
        waited >= Duration::from_secs(BODY_TIMEOUT_SECONDS)
            && waited < Duration::from_secs(BODY_TIMEOUT_SECONDS + 5),
        "answered after {waited:?}"
    );
    nothing_taken(&counter);
}

/// More stalled clients than Spin has instances (1,000 by default): once the deadline
/// has passed, the node answers liveness and a warm creation at once.
#[test]
fn a_thousand_stalled_clients_release_the_node_at_the_deadline() {
    let (path, counter) = chat();
    let body = r#"{"message":{"body":"warm"}}"#;
    let first = client::request(STACK.host.addr, "POST", &path, &[], Some(body.as_bytes()));
    assert_eq!(first.status, 201, "{}", first.text());

    let clients: Vec<TcpStream> = (0..1_010).map(|_| stalled(&path)).collect();
    std::thread::sleep(Duration::from_secs(BODY_TIMEOUT_SECONDS + 2));
    let health = client::request(STACK.host.addr, "GET", "/health", &[], None);
    assert_eq!(health.status, 200, "{}", health.text());
    let warm = client::request(STACK.host.addr, "POST", &path, &[], Some(body.as_bytes()));
    assert_eq!(warm.status, 201, "{}", warm.text());
    assert_eq!(warm.json()["number"], 2);
    drop(clients);
    let mut redis = STACK.redis();
    assert_eq!(
        redis.get_int(&counter),
        Some(2),
        "only the two 201s took numbers"
    );
}

/// `Content-Length` beside `Transfer-Encoding: chunked`: the first chunk alone is a valid
/// body of exactly that length, and garbage follows half a second later. A proxy that
/// framed by the length would forward the rest as the next request.
#[test]
fn a_body_whose_framing_disagrees_is_400_and_takes_nothing() {
    let (path, counter) = chat();
    let valid = r#"{"message":{"body":"hello"}}"#;
    let mut stream = TcpStream::connect(STACK.host.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{valid}\r\n",
        valid.len(),
        valid.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _ = stream.write_all(b"5\r\nxxxxx\r\n0\r\n\r\n");
    let response = client::read_response(&mut stream);
    assert_eq!(response.status, 400, "{}", response.text());
    nothing_taken(&counter);

    // A length the body does not reach, then the client closes its side.
    let mut stream = TcpStream::connect(STACK.host.addr).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{valid}",
        valid.len() + 10
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let response = client::read_response(&mut stream);
    assert!(
        response.status == 400 || response.status == 408,
        "{} {}",
        response.status,
        response.text()
    );
    nothing_taken(&counter);

    // Chunked alone is a body like any other.
    let response = client::raw(
        STACK.host.addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{:x}\r\n{valid}\r\n0\r\n\r\n",
            valid.len()
        )
        .as_bytes(),
    );
    assert_eq!(response.status, 201, "{}", response.text());
}
