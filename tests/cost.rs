//! What one warm request costs: new Redis connections (`INFO stats`) and commands the
//! component sends (`MONITOR`), counted by the stack's own Redis server, which nothing but
//! this test and the component connects to; and new MySQL connections and the commands
//! sent on them, counted by a proxy of the test's own in front of MariaDB, which only the
//! component is pointed at (MariaDB's own counters are server-wide: anything else on the
//! machine using it, another test run included, would be counted too). The hot path must
//! sit at Spin's floor for a component that writes Redis: one connection, one command,
//! and no MySQL at all.
//!
//! And what a request leaves behind on the node: TIME_WAIT sockets towards Redis on the
//! service's side, each of which holds an ephemeral port for a minute.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
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

/// A TCP proxy to MariaDB (127.0.0.1:3306) on a port of its own, counting the
/// connections made through it and the commands clients send on them. Any MySQL use of a
/// component whose `mysql_url` names the proxy starts with a connection through it
/// (mysql_async may then move to MariaDB's unix socket, whose path it asks on that
/// connection), so no connection through it means no MySQL at all.
struct MysqlProxy {
    port: u16,
    /// Connections accepted, and client commands seen: each command starts a new packet
    /// sequence, so it is a client packet with sequence id 0.
    counts: Arc<[AtomicI64; 2]>,
}

impl MysqlProxy {
    fn start() -> Self {
        // Bound here and held: no other process can take the port.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts: Arc<[AtomicI64; 2]> = Arc::new([AtomicI64::new(0), AtomicI64::new(0)]);
        let counting = Arc::clone(&counts);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect("127.0.0.1:3306") else {
                    continue;
                };
                counting[0].fetch_add(1, Ordering::SeqCst);
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let commands = Arc::clone(&counting);
                std::thread::spawn(move || forward_client(client_in, server_out, &commands[1]));
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { port, counts }
    }

    /// `(connections, commands)` so far.
    fn counts(&self) -> (i64, i64) {
        (
            self.counts[0].load(Ordering::SeqCst),
            self.counts[1].load(Ordering::SeqCst),
        )
    }
}

/// Copies the client's packets to the server, counting those that start a command.
fn forward_client(mut from: TcpStream, mut to: TcpStream, commands: &AtomicI64) {
    let mut header = [0u8; 4];
    while from.read_exact(&mut header).is_ok() {
        let length = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        if header[3] == 0 {
            commands.fetch_add(1, Ordering::SeqCst);
        }
        let mut payload = vec![0; length];
        if from.read_exact(&mut payload).is_err()
            || to.write_all(&header).is_err()
            || to.write_all(&payload).is_err()
        {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
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

/// Runs `request` REQUESTS times and returns (new Redis connections per request, commands
/// the component sent by name per request, MySQL connections and MySQL commands in all).
fn cost(
    stack: &Stack,
    mysql: &MysqlProxy,
    request: impl Fn() -> support::Response,
) -> (f64, Vec<(String, f64)>, i64, i64) {
    let connections_before = redis_stat(stack, "total_connections_received");
    let (mysql_c_before, mysql_q_before) = mysql.counts();
    let commands = monitor(stack, || {
        for _ in 0..REQUESTS {
            assert_eq!(request().status, 201);
        }
    });
    let (mysql_c_after, mysql_q_after) = mysql.counts();
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
        mysql_c_after - mysql_c_before,
        mysql_q_after - mysql_q_before,
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
    let mysql = MysqlProxy::start();
    let measured = stack.another_host(&[
        (
            "mysql_url",
            &support::mysql_url(&stack.database).replace(":3306/", &format!(":{}/", mysql.port)),
        ),
        ("mysql_host", &format!("127.0.0.1:{}", mysql.port)),
    ]);
    let (app_id, token) = stack.new_application();
    stack.insert_chat(app_id, 1);
    // Cold requests fill the lookup cache and the counters, through the proxy.
    assert_eq!(measured.create_chat(&token).status, 201);
    assert_eq!(measured.create_message(&token, 1, "warm-up").status, 201);
    assert!(
        mysql.counts().0 > 0,
        "the cold requests' lookups went through the proxy"
    );

    for (what, measured) in [
        (
            "chat creation",
            cost(&stack, &mysql, || measured.create_chat(&token)),
        ),
        (
            "message creation",
            cost(&stack, &mysql, || {
                measured.create_message(&token, 1, "hello")
            }),
        ),
    ] {
        let (redis_connections, commands, mysql_connections, mysql_statements) = measured;
        println!(
            "{what}: {redis_connections} Redis connections, commands {commands:?}, {mysql_connections} MySQL connections, {mysql_statements} MySQL commands per {REQUESTS} requests"
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
