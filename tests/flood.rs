//! A flood of requests that all need MySQL (unknown tokens, a probe hammering `/ready`)
//! must not take the MySQL server the Rails app shares: the service holds at most
//! `mysql_max_connections` (10 by default) across all its instances, turns the rest away
//! at once with 503 and `Retry-After`, remembers an unknown token for a few seconds, and
//! checks MySQL for `/ready` at most every two seconds. Warm requests go on meanwhile.
//!
//! One test in its own binary: MariaDB's counters are server-wide, so nothing else may run.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{Stack, client, unique_token};

/// Concurrent clients of the flood, each sending [`REQUESTS_EACH`] requests.
const CLIENTS: usize = 200;
const REQUESTS_EACH: usize = 5;
/// The default of `mysql_max_connections`.
const BOUND: i64 = 10;
/// Server-side connections per lookup here: a TCP one and, MySQL being on loopback, the
/// unix-socket one mysql_async moves to (`prefer_socket`); a remote MySQL sees one.
const LOOPBACK_CONNECTIONS: i64 = 2;

fn status(stack: &Stack, name: &str) -> i64 {
    stack.sql(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))[0][1]
        .parse()
        .unwrap()
}

/// New MySQL connections and statements while `during` runs, less the harness's own.
fn mysql_cost(stack: &Stack, during: impl FnOnce()) -> (i64, i64) {
    let read = || (status(stack, "Connections"), status(stack, "Questions"));
    let (c0, q0) = read();
    let (c1, q1) = read();
    // Each `read` is two connections and their statements of the harness's own.
    let (own_c, own_q) = (c1 - c0, q1 - q0);
    during();
    let (c2, q2) = read();
    (c2 - c1 - own_c, q2 - q1 - own_q)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[test]
fn a_flood_that_needs_mysql_never_takes_more_than_the_bound() {
    let stack = Stack::start("flood", 13);
    let (_, warm_token) = stack.new_application();
    assert_eq!(stack.create_chat(&warm_token).status, 201);

    // A repeated unknown token: MySQL is asked once, then not for a few seconds.
    let unknown = unique_token();
    let first = mysql_cost(&stack, || {
        assert_eq!(stack.create_chat(&unknown).status, 404)
    });
    let (connections, statements) = mysql_cost(&stack, || {
        for _ in 0..19 {
            assert_eq!(stack.create_chat(&unknown).status, 404);
        }
    });
    println!(
        "one unknown token: the first request {first:?} MySQL (connections, statements), \
         the 19 after it {connections} connections, {statements} statements"
    );
    // One lookup: mysql_async, under Spin as in the test host, connects over TCP and,
    // the server being on loopback, moves to its unix socket (`prefer_socket`): two.
    assert!(
        first.0 <= LOOPBACK_CONNECTIONS,
        "the first request looks the token up once"
    );
    assert_eq!(
        (connections, statements),
        (0, 0),
        "the repeats cost no MySQL"
    );

    // `/ready` called 100 times at once: MySQL is checked about once, not 100 times.
    let (connections, _) = mysql_cost(&stack, || {
        let probes: Vec<_> = (0..100)
            .map(|_| {
                let addr = stack.host.addr;
                std::thread::spawn(move || client::request(addr, "GET", "/ready", &[], None).status)
            })
            .collect();
        for probe in probes {
            assert_eq!(probe.join().unwrap(), 200);
        }
    });
    println!("100 concurrent /ready: {connections} MySQL connections");
    assert!(
        connections <= 5,
        "{connections} MySQL connections for 100 /ready"
    );

    // The flood: random tokens, each a cache miss that needs MySQL.
    let connected_before = status(&stack, "Threads_connected");
    stack.sql("FLUSH STATUS"); // Max_used_connections starts again from what is connected
    let answers = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let flood: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addr, answers) = (stack.host.addr, Arc::clone(&answers));
            std::thread::spawn(move || {
                for _ in 0..REQUESTS_EACH {
                    let path = format!("/api/v1/chat_applications/{}/chats", unique_token());
                    let sent = Instant::now();
                    let response = client::request(addr, "POST", &path, &[], None);
                    let retry_after = response.header("retry-after").map(str::to_owned);
                    answers
                        .lock()
                        .unwrap()
                        .push((response.status, retry_after, sent.elapsed()));
                }
            })
        })
        .collect();
    // Warm requests meanwhile, on an application whose lookups are cached.
    let mut warm = Vec::new();
    while flood.iter().any(|t| !t.is_finished()) {
        let sent = Instant::now();
        let response = stack.create_chat(&warm_token);
        warm.push(sent.elapsed());
        assert_eq!(response.status, 201, "a warm request during the flood");
    }
    for thread in flood {
        thread.join().unwrap();
    }
    let flood_took = started.elapsed();
    let max_used = status(&stack, "Max_used_connections");

    let answers = answers.lock().unwrap();
    let count = |code: u16| answers.iter().filter(|(s, _, _)| *s == code).count();
    let mut busy: Vec<Duration> = answers
        .iter()
        .filter(|(s, _, _)| *s == 503)
        .map(|(_, _, took)| *took)
        .collect();
    busy.sort();
    warm.sort();
    println!(
        "flood of {} requests in {flood_took:?}: {} x 404, {} x 503 (median {:?}); \
         MySQL Max_used_connections {max_used} ({connected_before} connected before); \
         {} warm requests meanwhile, p50 {:?}, p99 {:?}",
        answers.len(),
        count(404),
        count(503),
        busy.get(busy.len() / 2),
        warm.len(),
        percentile(&warm, 0.50),
        percentile(&warm, 0.99),
    );
    assert_eq!(count(404) + count(503), answers.len(), "only 404s and 503s");
    assert!(
        answers
            .iter()
            .filter(|(s, _, _)| *s == 503)
            .all(|(_, retry, _)| retry.as_deref() == Some("1")),
        "every 503 says when to retry"
    );
    // The harness's own `mariadb` runs add a connection or two at most.
    assert!(
        max_used <= connected_before + BOUND * LOOPBACK_CONNECTIONS + 2,
        "MySQL saw {max_used} connections at once ({connected_before} before the flood)"
    );
}
