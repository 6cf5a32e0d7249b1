//! A Redis server of a test's own: its own port ([`free_port`]), its own directory in
//! the temporary directory, started by the test and stopped with it. Every Redis the
//! suite uses is one of these (each [`Stack`](super::Stack) has one); the machine's
//! Redis on 6379 is never connected to.
//!
//! The server is this process's child (`--daemonize no`), so a test can kill it, see it
//! exit and start it again on the same port and data. It is stopped when the
//! `PrivateRedis` is dropped, and a [`Watchdog`] stops it when this process ends without
//! dropping it (a `static` stack, a panic that aborts, a crash, a kill, Ctrl-C).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::ports::free_port;
use super::supervised::Watchdog;
use super::{Redis, eventually};

/// How long a server may take to start accepting connections.
const STARTUP: Duration = Duration::from_secs(10);

/// How the server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: Redis's own shutdown (it fsyncs the append-only file and exits).
    Terminate,
    /// SIGKILL: no shutdown at all, as in a crash or an OOM kill. With `appendfsync
    /// always` nothing Redis acknowledged may be lost.
    Kill,
}

/// What the server keeps on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// Nothing, as scripts/start-backends runs the machine's Redis: a test's data lives
    /// as long as its server.
    None,
    /// The append-only file, fsynced as `appendfsync` says.
    AppendOnly(&'static str),
}

pub struct PrivateRedis {
    port: u16,
    dir: PathBuf,
    /// `None` while stopped.
    child: Option<Child>,
    /// Armed while the server runs.
    watchdog: Option<Watchdog>,
    persistence: Persistence,
}

impl PrivateRedis {
    /// Starts a server with an empty data directory named after `name` and this process.
    /// Fsyncs before every reply (`appendfsync always`): what was acknowledged is on disk.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, Persistence::AppendOnly("always"))
    }

    /// Configured as docs/operations.md has production run it (`appendfsync everysec`):
    /// for what depends on how promptly Redis answers and closes, which an fsync before
    /// every reply delays by a disk write.
    pub fn start_as_in_production(name: &str) -> Self {
        Self::start_with(name, Persistence::AppendOnly("everysec"))
    }

    /// Keeps nothing on disk, as the machine's Redis is run: a stack's Redis.
    pub fn start_in_memory(name: &str) -> Self {
        Self::start_with(name, Persistence::None)
    }

    fn start_with(name: &str, persistence: Persistence) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let dir = std::env::temp_dir().join(format!(
            "chat-service-{name}-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            port: 0,
            dir,
            child: None,
            watchdog: None,
            persistence,
        };
        // A port claimed by no other test process can still be taken by another program
        // between the check and the server's start: then the server exits, and another
        // port is tried.
        for _ in 0..5 {
            redis.port = free_port();
            match redis.launch() {
                Ok(()) => return redis,
                Err(why) => eprintln!("private Redis on port {}: {why}; another port", redis.port),
            }
        }
        panic!(
            "no private Redis would start; its log: {}",
            redis.dir.join("redis.log").display()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
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

    /// Starts the server again on the same port and data directory and waits until it
    /// accepts connections. It may still be loading its append-only file then, and answer
    /// `LOADING` for a moment: that is part of coming back.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the private Redis is already running");
        if let Err(why) = self.launch() {
            panic!("the private Redis did not start again on its port: {why}");
        }
    }

    /// Starts `redis-server` on `self.port` and waits until it is this server that
    /// answers there (its `process_id`), or says why not.
    fn launch(&mut self) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--daemonize", "no", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        match self.persistence {
            Persistence::None => command.args(["--appendonly", "no"]),
            Persistence::AppendOnly(fsync) => {
                command.args(["--appendonly", "yes", "--appendfsync", fsync])
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/install-deps installs it)");
        let watchdog = Watchdog::new(child.id(), Some(&self.dir));
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                drop(watchdog);
                return Err(format!("redis-server exited ({status}) at start"));
            }
            match answering_pid(self.port) {
                Some(pid) if pid == child.id() => break,
                Some(pid) => {
                    drop(watchdog);
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("another Redis (pid {pid}) answers on the port"));
                }
                None if started.elapsed() > STARTUP => {
                    drop(watchdog);
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("no answer within {STARTUP:?}"));
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        self.child = Some(child);
        self.watchdog = Some(watchdog);
        Ok(())
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
        drop(self.watchdog.take());
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

/// The `process_id` of the Redis answering on `port`, if one does. `INFO` is answered
/// while the server is still loading its data, too.
fn answering_pid(port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .ok()?;
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply);
        if let Some(rest) = text.split("process_id:").nth(1)
            && let Some((pid, _)) = rest.split_once("\r\n")
        {
            return pid.trim().parse().ok();
        }
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buffer[..n]);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        drop(self.watchdog.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // After a failure the append-only file is the evidence of what Redis did.
        if std::thread::panicking() && self.persistence != Persistence::None {
            eprintln!("the private Redis's data is kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
