//! Redis going away and coming back, with a Redis server of this test's own (port 16390,
//! append-only file in a temporary directory), so stopping it disturbs nothing else.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Stack, client, eventually, serve};

const PORT: u16 = 16390;

struct PrivateRedis {
    child: Child,
}

impl PrivateRedis {
    /// Starts (or restarts, keeping its data) the private Redis and waits for it.
    fn start(dir: &std::path::Path) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &PORT.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        eventually("the private Redis", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", PORT)).ok()
        });
        Self { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn redis_down_is_a_prompt_503_and_service_resumes_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("chat-service-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // MySQL of its own (the schema); Redis is the private one.
    let stack = Stack::start("faults", 5);
    let (_, token) = stack.new_application();
    let redis = PrivateRedis::start(&dir);
    let host = serve(&[
        ("redis_url", format!("redis://127.0.0.1:{PORT}")),
        ("redis_host", format!("127.0.0.1:{PORT}")),
        (
            "mysql_url",
            format!("mysql://root@127.0.0.1:3306/{}", stack.database),
        ),
    ]);
    let path = format!("/api/v1/chat_applications/{token}/chats");
    let create = || client::request(host.addr, "POST", &path, &[], None);
    assert_eq!(create().json()["number"], 1);

    redis.stop();
    let started = Instant::now();
    let response = create();
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    // Back up, with its data: the same host serves again and numbering continues.
    let _redis = PrivateRedis::start(&dir);
    assert_eq!(create().json()["number"], 2);
    let _ = std::fs::remove_dir_all(&dir);
}
