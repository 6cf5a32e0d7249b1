//! What the end-to-end tests share: the built component served by the chosen runtime
//! (the test host or real Spin, see [`runtime`]), a Redis server and a MySQL database of
//! their own, a tiny HTTP client, what requests took from Redis ([`taken`]) and the Rails
//! worker.
//!
//! Every stack has a Redis server of its own ([`private_redis`], on a port no other test
//! process uses) and a MySQL database of its own (named after the test and this process),
//! so test binaries, and test runs side by side, never see each other's counters, cache
//! or queue. Tests inside one binary that share a stack run in parallel and stay apart by
//! creating their own chat application (a fresh token).
//!
//! The suite takes nothing it did not make: it never connects to the machine's Redis, and
//! in MariaDB it drops only the databases it created ([`Stack::start`]).

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod client;
pub mod ports;
pub mod private_redis;
pub mod runtime;
pub mod supervised;
pub mod taken;
pub mod worker;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

pub use client::Response;
use private_redis::PrivateRedis;
pub use runtime::{Host, serve};

/// The MariaDB account of the project's own that scripts/start-backends makes (see
/// scripts/lib.sh): the tests never log in as root.
pub const MYSQL_USER: &str = "chat_service_local";
pub const MYSQL_PASSWORD: &str = "chat-service-local";

/// `mysql_url` for a database of this machine's MariaDB, as the service is given it.
pub fn mysql_url(database: &str) -> String {
    format!("mysql://{MYSQL_USER}:{MYSQL_PASSWORD}@127.0.0.1:3306/{database}")
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `spin.toml`'s component served against a Redis server and a MySQL database of its own.
pub struct Stack {
    /// Declared first, so that it stops before its backends go.
    pub host: Host,
    /// The database number the stack uses in its Redis.
    pub redis_db: u8,
    pub database: String,
    redis_server: PrivateRedis,
}

impl Stack {
    /// Starts a stack: a fresh Redis server of its own (database `redis_db` in it) and a
    /// fresh MySQL database with the Rails schema, `chat_service_test_<name>_<pid>_<n>`.
    pub fn start(name: &str, redis_db: u8) -> Self {
        Self::start_with(name, redis_db, &[])
    }

    /// Like [`Stack::start`], with extra `--variable` overrides.
    pub fn start_with(name: &str, redis_db: u8, variables: &[(&str, &str)]) -> Self {
        assert_component_is_fresh();
        let database = create_database(name);
        let redis_server = PrivateRedis::start_in_memory(name);
        let own = vec![
            ("redis_url", format!("{}/{redis_db}", redis_server.url())),
            ("redis_host", redis_server.host()),
            ("mysql_url", mysql_url(&database)),
        ];
        Self {
            host: serve(&overridden(own, variables)),
            redis_db,
            database,
            redis_server,
        }
    }

    pub fn redis(&self) -> Redis {
        redis_with_url(&self.redis_url())
    }

    /// What the stack's host is served with: its Redis (`redis_url` and `redis_host`,
    /// which `allowed_outbound_hosts` names) and its MySQL database.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            ("redis_url", self.redis_url()),
            ("redis_host", self.redis_host()),
            ("mysql_url", mysql_url(&self.database)),
        ]
    }

    /// Another host on this stack's Redis and MySQL, with these variables on top: for
    /// settings that differ from the stack's own host (an API key, a rate limit, a
    /// backend that cannot be reached).
    pub fn another_host(&self, variables: &[(&str, &str)]) -> Host {
        serve(&overridden(self.variables(), variables))
    }

    pub fn redis_url(&self) -> String {
        format!("{}/{}", self.redis_server.url(), self.redis_db)
    }

    /// The stack's Redis as `host:port`.
    pub fn redis_host(&self) -> String {
        self.redis_server.host()
    }

    pub fn database_url(&self) -> String {
        format!(
            "mysql2://{MYSQL_USER}:{MYSQL_PASSWORD}@127.0.0.1:3306/{}",
            self.database
        )
    }

    /// Runs SQL in this stack's database and returns the output rows, tab-separated.
    pub fn sql(&self, statement: &str) -> Vec<Vec<String>> {
        sql(&self.database, statement)
    }

    /// Inserts a chat application as the Rails app would, returning its id and token.
    pub fn new_application(&self) -> (i64, String) {
        insert_application(|statement| self.sql(statement))
    }

    /// Inserts a persisted chat, as the worker would have.
    pub fn insert_chat(&self, application_id: i64, number: i64) -> i64 {
        self.sql(&format!(
            "INSERT INTO chats (chat_application_id, number, messages_count, created_at, updated_at) \
             VALUES ({application_id}, {number}, 0, NOW(6), NOW(6))"
        ));
        self.sql(&format!(
            "SELECT id FROM chats WHERE chat_application_id = {application_id} AND number = {number}"
        ))[0][0]
            .parse()
            .unwrap()
    }

    pub fn post(&self, path: &str, body: Option<&str>) -> Response {
        self.host.post(path, body)
    }

    pub fn create_chat(&self, token: &str) -> Response {
        self.host.create_chat(token)
    }

    pub fn create_message(&self, token: &str, chat: i64, text: &str) -> Response {
        self.host.create_message(token, chat, text)
    }
}

/// `variables` with each of `overrides` in place of its namesake.
fn overridden<'a>(
    mut variables: Vec<(&'a str, String)>,
    overrides: &[(&'a str, &str)],
) -> Vec<(&'a str, String)> {
    for (name, value) in overrides {
        variables.retain(|(k, _)| k != name);
        variables.push((name, (*value).to_owned()));
    }
    variables
}

/// The contract's two requests, to any host (a stack's own, or another one on it).
impl Host {
    pub fn get(&self, path: &str) -> Response {
        client::request(self.addr, "GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: Option<&str>) -> Response {
        client::request(self.addr, "POST", path, &[], body.map(str::as_bytes))
    }

    pub fn create_chat(&self, token: &str) -> Response {
        self.post(&format!("/api/v1/chat_applications/{token}/chats"), None)
    }

    /// A chat creation with an `Idempotency-Key`.
    pub fn create_chat_with_key(&self, token: &str, key: &str) -> Response {
        client::request(
            self.addr,
            "POST",
            &format!("/api/v1/chat_applications/{token}/chats"),
            &[("Idempotency-Key", key)],
            None,
        )
    }

    pub fn create_message(&self, token: &str, chat: i64, text: &str) -> Response {
        let body = serde_json::json!({"message": {"body": text}}).to_string();
        self.post(
            &format!("/api/v1/chat_applications/{token}/chats/{chat}/messages"),
            Some(&body),
        )
    }
}

/// Inserts a chat application as the Rails app would through `sql` (a database's
/// statement runner), returning its id and its fresh token.
pub fn insert_application(sql: impl Fn(&str) -> Vec<Vec<String>>) -> (i64, String) {
    let token = unique_token();
    sql(&format!(
        "INSERT INTO chat_applications (name, token, chats_count, created_at, updated_at) \
         VALUES ('test', '{token}', 0, NOW(6), NOW(6))"
    ));
    let id = sql(&format!(
        "SELECT id FROM chat_applications WHERE token = '{token}'"
    ))[0][0]
        .parse()
        .unwrap();
    (id, token)
}

/// A Rails-style token (32 lowercase hex characters), unique across runs.
pub fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:08x}{:08x}", nanos, std::process::id(), n)
}

/// Runs SQL in `database` (none when empty) as the project's MariaDB account.
pub fn sql(database: &str, statement: &str) -> Vec<Vec<String>> {
    let out = run(Command::new("mariadb")
        .args(["--protocol=tcp", "-h127.0.0.1", "-P3306"])
        .arg(format!("-u{MYSQL_USER}"))
        .arg(format!("-p{MYSQL_PASSWORD}"))
        .args(["--batch", "--skip-column-names"])
        .args((!database.is_empty()).then_some(database))
        .arg("-e")
        .arg(statement));
    out.lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// Runs a command to its end; its stdout, or a failure that shows its stderr.
pub fn run(command: &mut Command) -> String {
    let out = command.output().expect("the command runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Creates a fresh database with the Rails schema, named after `name`, this process and a
/// count, and has it dropped when this process ends. `CREATE DATABASE` without `IF NOT
/// EXISTS`: a database of that name that is already there is not this run's, and is
/// neither used nor dropped.
fn create_database(name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let database = format!(
        "chat_service_test_{name}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    sql(
        "",
        &format!("CREATE DATABASE `{database}` CHARACTER SET utf8mb4"),
    );
    supervised::drop_database_at_exit(&database, MYSQL_USER, MYSQL_PASSWORD);
    run(Command::new(repo_root().join("scripts/create-db")).arg(&database));
    database
}

/// A synchronous Redis connection to one database, for arranging and asserting.
pub struct Redis(redis::Connection);

pub fn redis_with_url(url: &str) -> Redis {
    let client = redis::Client::open(url).unwrap();
    Redis(client.get_connection().expect("Redis is running"))
}

impl Redis {
    pub fn cmd<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> T {
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command
            .query(&mut self.0)
            .expect("the Redis command succeeds")
    }

    pub fn flushdb(&mut self) {
        let _: () = self.cmd(&["FLUSHDB"]);
    }

    /// Sidekiq's retry and dead sets and its failure count, `(retry, dead, failed)`: a job
    /// the worker could not persist shows up in one of them.
    pub fn failed_jobs(&mut self) -> (i64, i64, i64) {
        let retry: i64 = self.cmd(&["ZCARD", "retry"]);
        let dead: i64 = self.cmd(&["ZCARD", "dead"]);
        let failed: Option<i64> = self.cmd(&["GET", "stat:failed"]);
        (retry, dead, failed.unwrap_or(0))
    }

    pub fn get_int(&mut self, key: &str) -> Option<i64> {
        self.cmd(&["GET", key])
    }

    pub fn queue(&mut self) -> Vec<String> {
        self.cmd(&["LRANGE", "queue:default", "0", "-1"])
    }

    pub fn queue_len(&mut self) -> usize {
        self.cmd(&["LLEN", "queue:default"])
    }
}

/// Polls `check` until it returns `Some`, or fails the test after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end-to-end tests run the built `.wasm`, as Spin would. Building it is the test
/// command's first step (`scripts/test`); a stale build would test old code, so fail.
///
/// Only the component's sources count. Cargo rebuilds when one of them changes, so the
/// advice below always clears the failure; it does not when `Cargo.toml` changes in a
/// way that leaves the component as it was (another crate's profile, a comment), and a
/// manifest's mtime would then fail every end-to-end test until a forced rebuild.
fn assert_component_is_fresh() {
    let wasm = repo_root().join("target/wasm32-wasip1/release/chat_service.wasm");
    let built = std::fs::metadata(&wasm)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `cargo build --target wasm32-wasip1 --release` first \
                 (scripts/test does)",
                wasm.display()
            )
        });
    let mut sources: Vec<PathBuf> = vec!["build.rs".into()];
    collect_files(&repo_root().join("src"), &mut sources);
    for source in sources {
        let path = repo_root().join(&source);
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap();
        assert!(
            modified <= built,
            "{} is newer than the built component: run \
             `cargo build --target wasm32-wasip1 --release` (scripts/test does)",
            path.display()
        );
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}
