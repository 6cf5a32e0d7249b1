//! A server a test binary starts once and keeps in a `static` (never dropped) still stops
//! when the test process ends, however it ends.
//!
//! The server runs under a small `sh` that holds this process's end of a pipe on its
//! stdin and stops the server (SIGTERM, its own clean shutdown) when the pipe closes: when
//! the [`Supervised`] is dropped, or when this process exits, crashes or is killed.
//!
//! A process the test starts itself, to watch its exit or signal it directly (a private
//! Redis, the Sidekiq worker), gets a [`Watchdog`] instead: a `sh` beside it that stops
//! it only if this process ends first.

use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
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

/// Stops a child process of the test's (SIGTERM, then SIGKILL after five seconds) and
/// removes its directory, when this process ends without having stopped it: exits,
/// panics, crashes, or is killed, Ctrl-C included (the `sh` ignores SIGINT and SIGHUP, so
/// it outlives the signal and acts once this process is gone).
///
/// Dropping the watchdog disarms it: whoever drops it stops the child themselves.
pub struct Watchdog {
    sh: Child,
}

impl Watchdog {
    /// Watches `pid`; once it has been stopped, `dir` (when given) is removed.
    pub fn new(pid: u32, dir: Option<&Path>) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(
                r#"trap '' INT HUP
read -r _
kill -TERM "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -KILL "$1" 2>/dev/null
[ -n "$2" ] && rm -rf "$2"
exit 0"#,
            )
            .arg("sh")
            .arg(pid.to_string())
            .arg(dir.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let sh = command
            .spawn()
            .unwrap_or_else(|e| panic!("the watchdog sh does not start: {e}"));
        Self { sh }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // SIGKILL before its stdin closes: it never reads the end of the pipe.
        let _ = self.sh.kill();
        let _ = self.sh.wait();
    }
}

/// Drops `database`, which this process created, once the process has ended, however it
/// ended: a `sh` (one per process) reads the names from this process's end of a pipe
/// until the pipe closes, then drops each as the project's MariaDB account. A database
/// that is already gone is passed over.
pub fn drop_database_at_exit(database: &str, user: &str, password: &str) {
    /// The `sh`, which ends after this process (never waited for), and the pipe to it.
    struct Janitor {
        _sh: Child,
        pipe: ChildStdin,
    }
    static JANITOR: OnceLock<Mutex<Janitor>> = OnceLock::new();
    let janitor = JANITOR.get_or_init(|| {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(
                r#"trap '' INT HUP
names=""
while IFS= read -r name; do names="$names $name"; done
sleep 1
for name in $names; do
  mariadb --protocol=tcp -h127.0.0.1 -P3306 -u"$1" -p"$2" -e "DROP DATABASE IF EXISTS \`$name\`"
done
exit 0"#,
            )
            .arg("sh")
            .arg(user)
            .arg(password)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut sh = command
            .spawn()
            .unwrap_or_else(|e| panic!("the database janitor does not start: {e}"));
        let pipe = sh.stdin.take().unwrap();
        Mutex::new(Janitor { _sh: sh, pipe })
    });
    use std::io::Write;
    let mut janitor = janitor.lock().unwrap_or_else(|e| e.into_inner());
    writeln!(janitor.pipe, "{database}").expect("the database janitor runs");
}
