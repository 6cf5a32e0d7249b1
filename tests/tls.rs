//! TLS to Redis and MySQL, as managed services require it (docs/managed-backends.md).
//!
//! A lab of the test's own: a certificate authority made with openssl, a Redis that
//! speaks only TLS (`--port 0 --tls-port`, an ACL user, the default user off) and a
//! MariaDB started with `--require-secure-transport=ON`, each with a certificate from that
//! CA, and `SSL_CERT_FILE` naming the CA, as a user points Spin at a private CA. Beside
//! them, a Redis and a MariaDB whose certificates come from a CA nobody trusts.
//!
//! The component is given only `redis_url`, `redis_host`, `mysql_url` and `mysql_host`,
//! and the Rails worker connects over TLS too. Nothing may fall back to plaintext: a
//! certificate that does not verify, or a plain URL to a TLS-only server, is a 503 that
//! took nothing.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use support::ports::free_port;
use support::supervised::Supervised;
use support::worker::Worker;
use support::{Host, Redis, eventually, redis_with_url, repo_root, serve};

/// The ACL user the component and the worker log in to Redis with, and the MySQL user.
const USER: &str = "chat";
/// Its password, in both; the logs and replies are checked for it.
const PASSWORD: &str = "tls-Secret-7f3e";
/// The Rails database in the TLS MariaDB.
const DATABASE: &str = "chat_tls";

struct Lab {
    dir: PathBuf,
    /// The CA in `SSL_CERT_FILE`.
    trusted: Ca,
    redis_port: u16,
    rogue_redis_port: u16,
    mysql_port: u16,
    mysql_socket: PathBuf,
    rogue_mysql_port: u16,
    _servers: Vec<Supervised>,
}

/// The lab, started once for this test binary. Every test calls this first, so the
/// environment is set before any test has started a thread that could read it.
fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(Lab::start)
}

impl Lab {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("chat-service-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut servers = vec![Supervised::janitor(&dir)];

        let trusted = Ca::new(&dir.join("trusted"));
        let rogue = Ca::new(&dir.join("rogue"));
        // SAFETY: no other thread of this process runs yet that reads the environment:
        // every test calls `lab()` first, and the others wait on the `OnceLock`.
        unsafe { std::env::set_var("SSL_CERT_FILE", &trusted.cert) };

        let (redis_port, rogue_redis_port) = (free_port(), free_port());
        servers.push(tls_redis(&dir, "redis", &trusted, redis_port));
        servers.push(tls_redis(&dir, "rogue-redis", &rogue, rogue_redis_port));

        let (mysql_port, rogue_mysql_port) = (free_port(), free_port());
        let mysql = dir.join("mysql");
        let rogue_mysql = dir.join("rogue-mysql");
        // One after the other: two installs at once have been seen to fail.
        install_mariadb(&mysql);
        install_mariadb(&rogue_mysql);
        servers.push(tls_mariadb(&mysql, &trusted, mysql_port));
        servers.push(tls_mariadb(&rogue_mysql, &rogue, rogue_mysql_port));
        let mysql_socket = mysql.join("mysqld.sock");
        for data in [&mysql, &rogue_mysql] {
            eventually("the TLS MariaDB", Duration::from_secs(60), || {
                socket_sql(&data.join("mysqld.sock"), "", "SELECT 1").ok()
            });
        }
        // The user on the rogue server too: MariaDB refuses a client whose host matches no
        // account before TLS starts, and the test is about the certificate.
        for data in [&mysql, &rogue_mysql] {
            socket_sql(
                &data.join("mysqld.sock"),
                "",
                &format!(
                    "CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4;
                     CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL;
                     GRANT ALL ON {DATABASE}.* TO '{USER}'@'%';"
                ),
            )
            .unwrap();
        }
        let schema = repo_root().join("tests/rails/schema.sql");
        socket_sql(
            &mysql_socket,
            DATABASE,
            &format!("source {}", schema.display()),
        )
        .unwrap();

        Self {
            dir,
            trusted,
            redis_port,
            rogue_redis_port,
            mysql_port,
            mysql_socket,
            rogue_mysql_port,
            _servers: servers,
        }
    }

    /// `rediss://chat:...@127.0.0.1:PORT/db`, the URL the component is given.
    fn redis_url(&self, db: u8) -> String {
        format!(
            "rediss://{USER}:{PASSWORD}@127.0.0.1:{}/{db}",
            self.redis_port
        )
    }

    /// A connection of the test's own to the TLS Redis, for arranging and asserting.
    fn redis(&self, db: u8) -> Redis {
        redis_with_url(&self.redis_url(db))
    }

    fn mysql_url(&self) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}?ssl-mode=REQUIRED",
            self.mysql_port
        )
    }

    /// The four settings a user sets for TLS backends, and nothing else.
    fn variables(&self, db: u8) -> Vec<(&'static str, String)> {
        vec![
            ("redis_url", self.redis_url(db)),
            ("redis_host", format!("127.0.0.1:{}", self.redis_port)),
            ("mysql_url", self.mysql_url()),
            ("mysql_host", format!("127.0.0.1:{}", self.mysql_port)),
        ]
    }

    /// These variables with some replaced.
    fn variables_with(
        &self,
        db: u8,
        changes: &[(&'static str, String)],
    ) -> Vec<(&'static str, String)> {
        let mut variables = self.variables(db);
        for (name, value) in changes {
            variables.retain(|(n, _)| n != name);
            variables.push((name, value.clone()));
        }
        variables
    }

    fn sql(&self, statement: &str) -> Vec<Vec<String>> {
        socket_sql(&self.mysql_socket, DATABASE, statement)
            .unwrap()
            .lines()
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect()
    }

    /// A chat application, inserted as the Rails app would: its id and token.
    fn new_application(&self) -> (i64, String) {
        support::insert_application(|statement| self.sql(statement))
    }

    fn count(&self, statement: &str) -> i64 {
        self.sql(statement)[0][0].parse().unwrap()
    }
}

/// A certificate authority and one server certificate it signed, for 127.0.0.1.
struct Ca {
    cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let path = |name: &str| dir.join(name);
        let ca = Self {
            cert: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=chat-service test CA",
            "-keyout",
            &p(&path("ca.key")),
            "-out",
            &p(&ca.cert),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &p(&ca.server_key),
            "-out",
            &p(&path("server.csr")),
        ]);
        std::fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &p(&path("server.csr")),
            "-CA",
            &p(&ca.cert),
            "-CAkey",
            &p(&path("ca.key")),
            "-CAcreateserial",
            "-extfile",
            &p(&path("server.ext")),
            "-out",
            &p(&ca.server_cert),
        ]);
        ca
    }
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (scripts/install-deps installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Redis on TLS only, with the ACL user and the default user off, so that a connection
/// that did not log in as the user can do nothing.
fn tls_redis(dir: &Path, name: &str, ca: &Ca, port: u16) -> Supervised {
    let config = dir.join(format!("{name}.conf"));
    std::fs::write(
        &config,
        format!("user default off\nuser {USER} on >{PASSWORD} ~* &* +@all\n"),
    )
    .unwrap();
    let server = Supervised::spawn(
        "redis-server",
        &[
            &p(&config),
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &p(&ca.server_cert),
            "--tls-key-file",
            &p(&ca.server_key),
            "--tls-ca-cert-file",
            &p(&ca.cert),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &p(dir),
        ],
        &dir.join(format!("{name}.log")),
    );
    eventually(name, Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    server
}

fn install_mariadb(data: &Path) {
    let out = Command::new("mariadb-install-db")
        .args(["--no-defaults", "--user=root", "--skip-test-db"])
        .arg(format!("--datadir={}", data.display()))
        .output()
        .expect("mariadb-install-db runs");
    assert!(
        out.status.success(),
        "mariadb-install-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// MariaDB that refuses every connection but TLS and the unix socket (with which the test
/// arranges and asserts). `--user=root`: mariadbd runs as the user it is started by.
fn tls_mariadb(data: &Path, ca: &Ca, port: u16) -> Supervised {
    let d = |name: &str| p(&data.join(name));
    Supervised::spawn(
        "/usr/sbin/mariadbd",
        &[
            "--no-defaults",
            "--user=root",
            &format!("--datadir={}", p(data)),
            &format!("--socket={}", d("mysqld.sock")),
            &format!("--pid-file={}", d("mysqld.pid")),
            &format!("--log-error={}", d("error.log")),
            &format!("--port={port}"),
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            &format!("--ssl-cert={}", p(&ca.server_cert)),
            &format!("--ssl-key={}", p(&ca.server_key)),
            &format!("--ssl-ca={}", p(&ca.cert)),
            "--require-secure-transport=ON",
        ],
        &data.with_extension("log"),
    )
}

fn socket_sql(socket: &Path, database: &str, statement: &str) -> Result<String, String> {
    let out = Command::new("mariadb")
        .arg(format!("--socket={}", socket.display()))
        .args(["-uroot", "--batch", "--skip-column-names"])
        .args((!database.is_empty()).then_some(database))
        .args(["-e", statement])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The cause in the host's first log line for a failed request: no secret in it.
fn logged_cause(host: &Host) -> String {
    let lines = eventually("a log line", Duration::from_secs(5), || {
        let lines = host.log_lines();
        (!lines.is_empty()).then_some(lines)
    });
    assert!(!lines[0].contains(PASSWORD), "{}", lines[0]);
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    line["error"].as_str().unwrap_or_default().to_owned()
}

fn assert_no_secret(response: &support::Response) {
    assert!(!response.text().contains(PASSWORD));
}

/// A Redis database of the TLS Redis that nothing has written to: no number taken, no
/// job queued, nothing cached. (`/ready` shares its MySQL check through Redis, which
/// takes nothing.)
fn assert_untouched(lab: &Lab, db: u8) {
    let mut keys: Vec<String> = lab.redis(db).cmd(&["KEYS", "*"]);
    keys.retain(|key| !key.starts_with("chat_service:v1:ready:"));
    assert!(keys.is_empty(), "Redis database {db} holds {keys:?}");
}

#[test]
fn chats_and_messages_are_created_and_persisted_over_tls_only() {
    let lab = lab();
    let db = 2;
    lab.redis(db).flushdb();
    let host = serve(&lab.variables(db));
    let database_url = format!(
        "mysql2://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}?sslca={}&sslverify=true",
        lab.mysql_port,
        lab.trusted.cert.display()
    );
    let mut worker = Worker::start_on(
        &lab.redis_url(db),
        &database_url,
        lab.dir.join("worker.log"),
    );
    worker.wait_booted();

    let ready = host.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.text());

    let (app_id, token) = lab.new_application();
    let chat = host.create_chat(&token);
    assert_eq!(chat.status, 201, "{}", chat.text());
    assert_eq!(chat.json()["number"], 1);
    let message = host.create_message(&token, 1, "over TLS, both ways");
    assert_eq!(message.status, 201, "{}", message.text());
    assert_eq!(message.json()["number"], 1);

    eventually("the worker to store both", Duration::from_secs(60), || {
        let chats = lab.count(&format!(
            "SELECT COUNT(*) FROM chats WHERE chat_application_id = {app_id}"
        ));
        let messages = lab.count(&format!(
            "SELECT COUNT(*) FROM messages m JOIN chats c ON m.chat_id = c.id \
             WHERE c.chat_application_id = {app_id} AND m.body = 'over TLS, both ways'"
        ));
        (chats == 1 && messages == 1).then_some(())
    });
    let (retry, dead, failed) = lab.redis(db).failed_jobs();
    assert_eq!(
        (retry, dead, failed),
        (0, 0, 0),
        "see {}",
        lab.dir.display()
    );
    assert!(
        !std::fs::read_to_string(host.component_log())
            .unwrap_or_default()
            .contains(PASSWORD)
    );
}

#[test]
fn a_redis_certificate_from_another_ca_is_503_and_takes_nothing() {
    let lab = lab();
    let db = 3;
    lab.redis(db).flushdb();
    let rogue = format!("127.0.0.1:{}", lab.rogue_redis_port);
    let host = serve(&lab.variables_with(
        db,
        &[
            (
                "redis_url",
                format!("rediss://{USER}:{PASSWORD}@{rogue}/{db}"),
            ),
            ("redis_host", rogue.clone()),
        ],
    ));
    let (_, token) = lab.new_application();
    let response = host.create_chat(&token);
    assert_eq!(response.status, 503);
    assert_no_secret(&response);
    let cause = logged_cause(&host);
    assert!(
        cause.starts_with("redis: ") && cause.contains("certificate"),
        "{cause}"
    );
    assert_eq!(host.get("/ready").status, 503);
    // The rogue server saw a handshake fail and nothing else: no command reached it.
    let mut own = redis_with_url(&format!("rediss://{USER}:{PASSWORD}@{rogue}/{db}#insecure"));
    let keys: Vec<String> = own.cmd(&["KEYS", "*"]);
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn a_mysql_certificate_from_another_ca_is_503_and_takes_nothing() {
    let lab = lab();
    let db = 4;
    lab.redis(db).flushdb();
    let rogue = format!("127.0.0.1:{}", lab.rogue_mysql_port);
    let host = serve(&lab.variables_with(
        db,
        &[
            (
                "mysql_url",
                format!("mysql://{USER}:{PASSWORD}@{rogue}/{DATABASE}?ssl-mode=REQUIRED"),
            ),
            ("mysql_host", rogue),
        ],
    ));
    // A new application is not cached: the request needs MySQL.
    let (_, token) = lab.new_application();
    let response = host.create_chat(&token);
    assert_eq!(response.status, 503);
    assert_no_secret(&response);
    let cause = logged_cause(&host);
    assert!(
        cause.starts_with("mysql: ") && cause.contains("certificate"),
        "{cause}"
    );
    assert_eq!(host.get("/ready").status, 503);
    assert_untouched(lab, db);
}

#[test]
fn a_plain_url_to_a_tls_only_server_is_503_never_plaintext() {
    let lab = lab();
    let db = 5;
    lab.redis(db).flushdb();
    let (_, token) = lab.new_application();

    let plain_redis = serve(&lab.variables_with(
        db,
        &[(
            "redis_url",
            format!(
                "redis://{USER}:{PASSWORD}@127.0.0.1:{}/{db}",
                lab.redis_port
            ),
        )],
    ));
    let response = plain_redis.create_chat(&token);
    assert_eq!(response.status, 503);
    assert_no_secret(&response);
    assert!(logged_cause(&plain_redis).starts_with("redis: "));
    assert_eq!(plain_redis.get("/ready").status, 503);

    // MySQL without ssl-mode: the server requires TLS and refuses the login.
    let plain_mysql = serve(&lab.variables_with(
        db,
        &[(
            "mysql_url",
            format!(
                "mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
                lab.mysql_port
            ),
        )],
    ));
    let response = plain_mysql.create_chat(&token);
    assert_eq!(response.status, 503);
    assert_no_secret(&response);
    assert!(logged_cause(&plain_mysql).starts_with("mysql: "));
    assert_untouched(lab, db);
}

#[test]
fn mysql_settings_spin_cannot_honour_are_a_misconfiguration_that_opens_nothing() {
    let lab = lab();
    let db = 6;
    lab.redis(db).flushdb();
    let (_, token) = lab.new_application();
    let address = format!("127.0.0.1:{}", lab.mysql_port);
    for (mysql_url, named) in [
        (
            format!(
                "mysql://{USER}:{PASSWORD}@{address}/{DATABASE}?ssl-mode=REQUIRED&charset=utf8mb4"
            ),
            "charset",
        ),
        (
            format!("{USER}:{PASSWORD}@tcp({address})/{DATABASE}?tls=skip-verify"),
            "skip-verify",
        ),
    ] {
        let host = serve(&lab.variables_with(db, &[("mysql_url", mysql_url)]));
        let response = host.create_chat(&token);
        assert_eq!(response.status, 500);
        assert_eq!(response.error(), "Service is misconfigured");
        let cause = logged_cause(&host);
        assert!(cause.contains(named), "{cause}");
    }
    assert_untouched(lab, db);
}

#[test]
fn the_go_dsn_with_tls_true_is_verified_tls() {
    let lab = lab();
    let db = 7;
    lab.redis(db).flushdb();
    let host = serve(&lab.variables_with(
        db,
        &[(
            "mysql_url",
            format!(
                "{USER}:{PASSWORD}@tcp(127.0.0.1:{})/{DATABASE}?parseTime=true&tls=true",
                lab.mysql_port
            ),
        )],
    ));
    let (app_id, token) = lab.new_application();
    let response = host.create_chat(&token);
    assert_eq!(response.status, 201, "{}", response.text());
    assert_eq!(
        lab.redis(db)
            .get_int(&format!("chat_app:{app_id}:chat_counter")),
        Some(1)
    );
}
