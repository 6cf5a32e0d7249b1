//! A Redis server of a test's own (its own port, append-only file in a temporary
//! directory), so stopping and restarting it disturbs no other test binary.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{Redis, eventually};

/// How the server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: Redis's own shutdown (it fsyncs the append-only file and exits).
    Terminate,
    /// SIGKILL: no shutdown at all, as in a crash or an OOM kill. With `appendfsync
    /// always` nothing Redis acknowledged may be lost.
    Kill,
}

pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Redis's `appendfsync`.
    appendfsync: &'static str,
}

impl PrivateRedis {
    /// Starts a server with an empty data directory named after `name` and this process.
    /// Fsyncs before every reply (`appendfsync always`): what was acknowledged is on disk.
    pub fn start(port: u16, name: &str) -> Self {
        Self::start_with(port, name, "always")
    }

    /// Configured as docs/operations.md has production run it (`appendfsync everysec`):
    /// for what depends on how promptly Redis answers and closes, which an fsync before
    /// every reply delays by a disk write.
    pub fn start_as_in_production(port: u16, name: &str) -> Self {
        Self::start_with(port, name, "everysec")
    }

    fn start_with(port: u16, name: &str, appendfsync: &'static str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("chat-service-{name}-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port,
            dir,
            child: None,
            appendfsync,
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `host:port`, for `allowed_outbound_hosts`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A connection for arranging and asserting; open a new one after a restart.
    pub fn connect(&self) -> Redis {
        super::redis_with_url(&self.url())
    }

    /// Starts the server again on the same data directory and waits until it accepts
    /// connections. It may still be loading its append-only file then, and answer
    /// `LOADING` for a moment: that is part of coming back.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the private Redis is already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            // Only the append-only file, fsynced as this server was started to.
            .args(["--save", "", "--appendonly", "yes", "--appendfsync"])
            .arg(self.appendfsync)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        eventually("the private Redis", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()
        });
    }

    /// Waits until the server has loaded its data and answers commands.
    pub fn wait_ready(&self) {
        eventually("the private Redis to load", Duration::from_secs(10), || {
            let client = redis::Client::open(self.url()).ok()?;
            let mut connection = client.get_connection().ok()?;
            redis::cmd("PING")
                .query::<String>(&mut connection)
                .ok()
                .filter(|pong| pong == "PONG")
        });
    }

    /// Stops the server and waits until the process is gone (its port is closed).
    pub fn stop(&mut self, how: Stop) {
        let mut child = self.child.take().expect("the private Redis is running");
        match how {
            Stop::Terminate => {
                let status = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .expect("kill runs");
                assert!(status.success(), "kill -TERM the private Redis");
            }
            Stop::Kill => child.kill().expect("SIGKILL the private Redis"),
        }
        child.wait().expect("the private Redis exits");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // After a failure the append-only file is the evidence of what Redis did.
        if std::thread::panicking() {
            eprintln!("the private Redis's data is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
