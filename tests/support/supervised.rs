//! A server a test binary starts once and keeps in a `static` (never dropped) still stops
//! when the test process ends, however it ends.
//!
//! The server runs under a small `sh` that holds this process's end of a pipe on its
//! stdin and stops the server (SIGTERM, its own clean shutdown) when the pipe closes: when
//! the [`Supervised`] is dropped, or when this process exits, crashes or is killed.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to stop once told to, before it is killed.
const SHUTDOWN: Duration = Duration::from_secs(10);

pub struct Supervised {
    /// `sh`, which stops the server when `stdin` closes.
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervised {
    /// `program` under the watchdog `sh`: add the program's arguments, output, working
    /// directory and environment to it, then [`Supervised::start`] it.
    pub fn command(program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#""$@" & server=$!; exec >/dev/null; read -r _; kill -TERM "$server" 2>/dev/null; wait "$server""#)
            .arg("sh")
            .arg(program);
        command
    }

    /// Starts `program` with `args`, its output in `log`.
    pub fn spawn(program: &str, args: &[&str], log: &Path) -> Self {
        let output = || Stdio::from(File::options().create(true).append(true).open(log).unwrap());
        let mut command = Self::command(program);
        command.args(args).stdout(output()).stderr(output());
        Self::start(command)
    }

    /// Removes `dir` once this process has ended (and the servers in it have been told to
    /// stop), so that a `static` fixture's files do not pile up run after run.
    pub fn janitor(dir: &Path) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"read -r _; sleep 3; rm -rf "$1""#)
            .arg("sh")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self::start(command)
    }

    /// Spawns `command` (one of [`Supervised::command`]'s, or a watchdog of its own that
    /// waits on its stdin) with this process holding its stdin.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    /// The watchdog's stdout, when the command was given a piped one.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
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
