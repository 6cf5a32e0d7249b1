//! A server a test binary starts once and keeps in a `static` (never dropped) still stops
//! when the test process ends, however it ends.
//!
//! The server runs under a small `sh` that holds this process's end of a pipe on its
//! stdin and stops the server (SIGTERM, its own clean shutdown) when the pipe closes: when
//! the [`Supervised`] is dropped, or when this process exits, crashes or is killed.

use std::fs::File;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to stop once told to, before it is killed.
const SHUTDOWN: Duration = Duration::from_secs(10);

pub struct Supervised {
    /// `sh`, which stops the server when `stdin` closes.
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervised {
    /// Starts `program` with `args`, its output in `log`.
    pub fn spawn(program: &str, args: &[&str], log: &Path) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#""$@" & server=$!; exec >/dev/null; read -r _; kill -TERM "$server" 2>/dev/null; wait "$server""#)
            .arg("sh")
            .arg(program)
            .args(args);
        Self::start(command, Some(log))
    }

    /// Removes `dir` once this process has ended (and the servers in it have been told to
    /// stop), so that a `static` fixture's files do not pile up run after run.
    pub fn janitor(dir: &Path) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"read -r _; sleep 3; rm -rf "$1""#)
            .arg("sh")
            .arg(dir);
        Self::start(command, None)
    }

    fn start(mut command: Command, log: Option<&Path>) -> Self {
        let output = || match log {
            Some(log) => Stdio::from(File::options().create(true).append(true).open(log).unwrap()),
            None => Stdio::null(),
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        let stdin = child.stdin.take();
        Self { child, stdin }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + SHUTDOWN;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
