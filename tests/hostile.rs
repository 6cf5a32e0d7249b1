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
fn stalled(addr: std::net::SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
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
    let mut stream = stalled(STACK.host.addr, &path);
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
/// has passed, the node answers liveness and a warm creation at once. A stack of its own:
/// while the clients stall, its node answers no one, by design of the test.
#[test]
fn a_thousand_stalled_clients_release_the_node_at_the_deadline() {
    let stack = Stack::start_with(
        "hostile_stalled",
        9,
        &[("request_body_timeout_seconds", "2")],
    );
    let (application_id, token) = stack.new_application();
    let chat_id = stack.insert_chat(application_id, 1);
    let path = format!("/api/v1/chat_applications/{token}/chats/1/messages");
    let counter = format!("chat:{chat_id}:message_counter");
    let body = r#"{"message":{"body":"warm"}}"#;
    let first = client::request(stack.host.addr, "POST", &path, &[], Some(body.as_bytes()));
    assert_eq!(first.status, 201, "{}", first.text());

    let clients: Vec<TcpStream> = (0..1_010)
        .map(|_| stalled(stack.host.addr, &path))
        .collect();
    std::thread::sleep(Duration::from_secs(BODY_TIMEOUT_SECONDS + 2));
    let health = client::request(stack.host.addr, "GET", "/health", &[], None);
    assert_eq!(health.status, 200, "{}", health.text());
    let warm = client::request(stack.host.addr, "POST", &path, &[], Some(body.as_bytes()));
    assert_eq!(warm.status, 201, "{}", warm.text());
    assert_eq!(warm.json()["number"], 2);
    drop(clients);
    let mut redis = stack.redis();
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

/// A chat numbered by the service whose row the worker has not stored (no worker runs
/// here): its message path.
fn pending_chat(token: &str) -> String {
    let created = client::request(
        STACK.host.addr,
        "POST",
        &format!("/api/v1/chat_applications/{token}/chats"),
        &[],
        None,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let number = created.json()["number"].as_i64().unwrap();
    format!("/api/v1/chat_applications/{token}/chats/{number}/messages")
}

/// Ten loops posting to chats still pending hold no MySQL while they wait for the rows:
/// another application's cold lookups, a chat creation and a message, get their 201s.
#[test]
fn clients_waiting_on_pending_chats_leave_mysql_to_everyone_else() {
    let (_, busy) = STACK.new_application();
    let paths: Vec<String> = (0..10).map(|_| pending_chat(&busy)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loops: Vec<_> = paths
        .into_iter()
        .map(|path| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let body = br#"{"message":{"body":"still there?"}}"#;
                let mut answers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = client::request(STACK.host.addr, "POST", &path, &[], Some(body));
                    answers.push(response.status);
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    for round in 0..5 {
        let (application_id, token) = STACK.new_application();
        let chat = client::request(
            STACK.host.addr,
            "POST",
            &format!("/api/v1/chat_applications/{token}/chats"),
            &[],
            None,
        );
        assert_eq!(
            chat.status,
            201,
            "round {round}, cold chat: {}",
            chat.text()
        );
        STACK.insert_chat(application_id, 7);
        let message = client::request(
            STACK.host.addr,
            "POST",
            &format!("/api/v1/chat_applications/{token}/chats/7/messages"),
            &[],
            Some(br#"{"message":{"body":"hello"}}"#),
        );
        assert_eq!(
            message.status,
            201,
            "round {round}, cold message: {}",
            message.text()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for answers in loops.into_iter().map(|l| l.join().unwrap()) {
        assert!(
            answers.iter().all(|&s| s == 409),
            "the loops' answers: {answers:?}"
        );
    }
}

/// Twenty messages at once to one pending chat: each is told 409 with Retry-After after
/// about a second (the one lookup's wait, shared), none 503 as if a backend had failed.
#[test]
fn parallel_messages_to_a_pending_chat_all_get_409() {
    let (_, token) = STACK.new_application();
    let path = pending_chat(&token);
    let answers: Vec<_> = (0..20)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let body = br#"{"message":{"body":"first!"}}"#;
                let response = client::request(STACK.host.addr, "POST", &path, &[], Some(body));
                (response, started.elapsed())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for (response, waited) in answers {
        assert_eq!(
            response.status,
            409,
            "after {waited:?}: {}",
            response.text()
        );
        assert_eq!(
            response.error(),
            "Chat is still being created, please retry"
        );
        assert_eq!(response.header("retry-after"), Some("1"));
        assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    }
}

/// MySQL matches a token whatever its case or trailing spaces: 2,000 spellings of one
/// token, replayed under one Idempotency-Key, all reach the application, and leave no
/// key per spelling behind once an unknown token would be forgotten too (5 s). A stack of
/// its own: its cold lookups would take MySQL leases from the other tests here.
#[test]
fn spellings_of_a_token_do_not_each_leave_a_key() {
    let stack = Stack::start("hostile_spellings", 8);
    let token = format!("abcdefabcdef{}", &support::unique_token()[12..]);
    stack.sql(&format!(
        "INSERT INTO chat_applications (name, token, chats_count, created_at, updated_at) \
         VALUES ('spellings', '{token}', 0, NOW(6), NOW(6))"
    ));
    let first = stack.host.create_chat_with_key(&token, "spellings-1");
    assert_eq!(first.status, 201, "{}", first.text());
    let mut redis = stack.redis();
    let keys_before: i64 = redis.cmd(&["DBSIZE"]);

    let spelling = |i: usize| -> String {
        let mut flips = i;
        let mut spelt: String = token
            .chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    let upper = flips & 1 == 1;
                    flips >>= 1;
                    if upper {
                        return c.to_ascii_uppercase();
                    }
                }
                c
            })
            .collect();
        spelt.push_str(&"%20".repeat(flips));
        spelt
    };
    std::thread::scope(|scope| {
        for t in 0..8 {
            let spellings: Vec<String> =
                (1..=2_000).filter(|i| i % 8 == t).map(&spelling).collect();
            let host = &stack.host;
            scope.spawn(move || {
                for spelt in spellings {
                    let replay = host.create_chat_with_key(&spelt, "spellings-1");
                    assert_eq!(replay.status, 201, "{spelt}: {}", replay.text());
                    assert_eq!(replay.json()["number"], 1, "{spelt}");
                }
            });
        }
    });
    std::thread::sleep(Duration::from_secs(6));
    let keys_after: i64 = redis.cmd(&["DBSIZE"]);
    assert!(
        keys_after - keys_before <= 2,
        "{} keys more after 2,000 spellings",
        keys_after - keys_before
    );
}

/// What the README promises, held deliberately: with an API key set, only the creations
/// need it (the probes carry no credentials, and 404 and 405 say nothing the published
/// API does not); with an origin list, a request without `Origin` is admitted nowhere
/// and every reply varies on `Origin`; the chat number is read percent-decoded; a key
/// given twice in the body takes its last value; a chat creation reads no body.
#[test]
fn the_documented_answers_hold() {
    let host = STACK.another_host(&[
        ("api_key", "k3y"),
        ("cors_allowed_origins", "https://a.example"),
    ]);
    let (application_id, token) = STACK.new_application();
    STACK.insert_chat(application_id, 1);
    let key = [("authorization", "Bearer k3y")];
    let request = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>| {
        client::request(host.addr, method, path, headers, body)
    };

    let ready = request("GET", "/ready", &[], None);
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(request("GET", "/nowhere", &[], None).status, 404);
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let wrong_method = request("PUT", &chats, &[], None);
    assert_eq!(wrong_method.status, 405);
    assert_eq!(request("POST", &chats, &[], None).status, 401);

    let created = request("POST", &chats, &key, None);
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.header("access-control-allow-origin"), None);
    assert_eq!(created.header("vary"), Some("Origin"));
    let listed = request(
        "POST",
        &chats,
        &[key[0], ("origin", "https://a.example")],
        None,
    );
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(listed.header("vary"), Some("Origin"));

    // A 3 MB body on a chat creation is not read: the endpoint takes none.
    let big = vec![b'x'; 3 << 20];
    let unread = request("POST", &chats, &key, Some(&big));
    assert_eq!(unread.status, 201, "{}", unread.text());

    let decoded = format!("/api/v1/chat_applications/{token}/chats/%31/messages");
    let twice = br#"{"message":{"body":"x","body":"y"}}"#;
    let message = request("POST", &decoded, &key, Some(twice));
    assert_eq!(message.status, 201, "{}", message.text());
    let mut redis = STACK.redis();
    let job = redis.queue().into_iter().find(|job| job.contains(r#""y""#));
    assert!(
        job.is_some_and(|job| !job.contains(r#""x""#)),
        "the job holds the last value"
    );
}
