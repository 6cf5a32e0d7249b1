//! What one warm request costs, counted by the servers themselves: new Redis connections
//! (`INFO stats`), commands the component sends (`MONITOR`), and new MySQL connections and
//! statements (`SHOW GLOBAL STATUS`). The hot path must sit at Spin's floor for a component
//! that writes Redis: one connection, one command, and no MySQL at all.
//!
//! And what a request leaves behind on the node: TIME_WAIT sockets towards Redis on the
//! service's side, each of which holds an ephemeral port for a minute.
//!
//! One test in its own binary: MariaDB's counters are server-wide, so nothing else of the
//! suite may run. Redis's are the stack's own server's, which nothing but this test and
//! the component it serves connects to.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use support::private_redis::PrivateRedis;
use support::{Stack, serve};

const REQUESTS: i64 = 20;

fn redis_stat(stack: &Stack, name: &str) -> i64 {
    let info: String = stack.redis().cmd(&["INFO", "stats"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn mysql_status(stack: &Stack) -> (i64, i64) {
    let rows = stack.sql("SHOW GLOBAL STATUS WHERE Variable_name IN ('Connections', 'Questions')");
    let get = |name: &str| -> i64 {
        rows.iter().find(|r| r[0] == name).unwrap()[1]
            .parse()
            .unwrap()
    };
    (get("Connections"), get("Questions"))
}

/// Every command the stack's Redis receives while `during` runs from clients that use its
/// database (with the `SELECT` that took them there), as `(source, command)`; the source
/// is `lua` for commands a script runs. Clients of other databases are left out: MONITOR
/// shows the whole server.
fn monitor(stack: &Stack, during: impl FnOnce()) -> Vec<(String, String)> {
    let db = stack.redis_db;
    let mut stream = TcpStream::connect(stack.redis_host()).unwrap();
    stream.write_all(b"MONITOR\r\n").unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut ok = String::new();
    reader.read_line(&mut ok).unwrap();
    assert_eq!(ok.trim(), "+OK");
    let (tx, rx) = mpsc::channel();
    let reading = std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    during();
    std::thread::sleep(Duration::from_millis(300));
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = reading.join();
    let seen: Vec<(String, String, String)> = rx
        .try_iter()
        .filter_map(|line| {
            // +1700000000.123456 [3 127.0.0.1:50000] "EVALSHA" "..." ...
            let (_, rest) = line.split_once(" [")?;
            let (at, command) = rest.split_once("] ")?;
            let (in_db, source) = at.split_once(' ')?;
            let name = command.split('"').nth(1)?.to_ascii_uppercase();
            Some((in_db.to_owned(), source.to_owned(), name))
        })
        .collect();
    let ours: std::collections::HashSet<&str> = seen
        .iter()
        .filter(|(in_db, _, _)| *in_db == db.to_string())
        .map(|(_, source, _)| source.as_str())
        .collect();
    seen.iter()
        .filter(|(_, source, _)| ours.contains(source.as_str()))
        .map(|(_, source, name)| (source.clone(), name.clone()))
        .collect()
}

/// Runs `request` REQUESTS times and returns (new Redis connections, commands the
/// component sent by name, new MySQL connections, MySQL statements) per request.
fn cost(
    stack: &Stack,
    request: impl Fn() -> support::Response,
) -> (f64, Vec<(String, f64)>, i64, i64) {
    // The harness's own status query costs one connection and some statements:
    // measure it with no request in between, and subtract it.
    let (c0, q0) = mysql_status(stack);
    let (c1, q1) = mysql_status(stack);
    let (own_connections, own_questions) = (c1 - c0, q1 - q0);

    let connections_before = redis_stat(stack, "total_connections_received");
    let (mysql_c_before, mysql_q_before) = mysql_status(stack);
    let commands = monitor(stack, || {
        for _ in 0..REQUESTS {
            assert_eq!(request().status, 201);
        }
    });
    let (mysql_c_after, mysql_q_after) = mysql_status(stack);
    // The monitor connection and the INFO connection are the harness's.
    let redis_connections =
        redis_stat(stack, "total_connections_received") - connections_before - 2;

    let mut by_name: Vec<(String, f64)> = Vec::new();
    for (_, name) in commands
        .iter()
        .filter(|(source, name)| source != "lua" && name != "INFO")
    {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1.0,
            None => by_name.push((name.clone(), 1.0)),
        }
    }
    for (_, count) in &mut by_name {
        *count /= REQUESTS as f64;
    }
    (
        redis_connections as f64 / REQUESTS as f64,
        by_name,
        mysql_c_after - mysql_c_before - own_connections,
        mysql_q_after - mysql_q_before - own_questions,
    )
}

/// Sockets in TIME_WAIT on this machine whose remote end is `port` (the service's side
/// of connections to a server on `port`) and whose local end is `port` (the server's
/// side), from `/proc/net/tcp`: state `06`, addresses as `hex_ip:hex_port`.
fn time_wait(port: u16) -> (usize, usize) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = format!(":{port:04X}");
    let mut sides = (0, 0);
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(3) != Some(&"06") {
            continue;
        }
        if fields[2].ends_with(&port) {
            sides.0 += 1;
        }
        if fields[1].ends_with(&port) {
            sides.1 += 1;
        }
    }
    sides
}

const TIME_WAIT_REQUESTS: usize = 100;

#[test]
fn a_warm_request_costs_one_redis_connection_one_command_and_no_mysql() {
    let stack = Stack::start("cost", 3);
    let (app_id, token) = stack.new_application();
    stack.insert_chat(app_id, 1);
    // Cold requests fill the lookup cache and the counters.
    assert_eq!(stack.create_chat(&token).status, 201);
    assert_eq!(stack.create_message(&token, 1, "warm-up").status, 201);

    for (what, measured) in [
        ("chat creation", cost(&stack, || stack.create_chat(&token))),
        (
            "message creation",
            cost(&stack, || stack.create_message(&token, 1, "hello")),
        ),
    ] {
        let (redis_connections, commands, mysql_connections, mysql_statements) = measured;
        println!(
            "{what}: {redis_connections} Redis connections, commands {commands:?}, {mysql_connections} MySQL connections, {mysql_statements} MySQL statements per {REQUESTS} requests"
        );
        assert_eq!(
            redis_connections, 1.0,
            "{what}: new Redis connections per request"
        );
        let evalsha = commands
            .iter()
            .find(|(n, _)| n == "EVALSHA")
            .map_or(0.0, |(_, c)| *c);
        assert_eq!(evalsha, 1.0, "{what}: EVALSHA per request");
        // Connection setup (SELECT of the database, the client library's CLIENT SETINFO)
        // is the host's, as in Spin; every command the component itself sends is counted:
        // the script, and the QUIT that has Redis close the connection first.
        let quit = commands
            .iter()
            .find(|(n, _)| n == "QUIT")
            .map_or(0.0, |(_, c)| *c);
        assert_eq!(quit, 1.0, "{what}: QUIT per request");
        let component_commands: f64 = commands
            .iter()
            .filter(|(n, _)| n != "SELECT" && n != "CLIENT")
            .map(|(_, c)| c)
            .sum();
        assert_eq!(
            component_commands, 2.0,
            "{what}: commands per request {commands:?}"
        );
        assert_eq!(
            (mysql_connections, mysql_statements),
            (0, 0),
            "{what}: MySQL per {REQUESTS} requests"
        );
    }

    // What the node keeps: Redis on a port of this test's own, which nothing else uses,
    // so every TIME_WAIT socket towards it is the service's.
    let redis = PrivateRedis::start_as_in_production("cost");
    let host = serve(&[
        ("redis_url", redis.url()),
        ("redis_host", redis.host()),
        ("mysql_url", support::mysql_url(&stack.database)),
    ]);
    assert_eq!(
        host.create_chat(&token).status,
        201,
        "fills this Redis's cache"
    );
    assert_eq!(host.create_message(&token, 1, "warm-up").status, 201);
    for what in ["chat creation", "message creation"] {
        let before = time_wait(redis.port());
        for _ in 0..TIME_WAIT_REQUESTS {
            let response = match what {
                "chat creation" => host.create_chat(&token),
                _ => host.create_message(&token, 1, "hello"),
            };
            assert_eq!(response.status, 201);
        }
        // A closing side enters TIME_WAIT once the other's FIN is acknowledged.
        std::thread::sleep(Duration::from_millis(200));
        let after = time_wait(redis.port());
        let service_side = after.0.saturating_sub(before.0) as f64 / TIME_WAIT_REQUESTS as f64;
        let redis_side = after.1.saturating_sub(before.1) as f64 / TIME_WAIT_REQUESTS as f64;
        println!(
            "{what}: TIME_WAIT per request towards Redis {service_side} on the service's side, \
             {redis_side} on Redis's"
        );
        assert!(
            service_side <= 0.05,
            "{what}: {service_side} TIME_WAIT sockets per request on the service's side"
        );
    }
}
