//! What serves the built component in an end-to-end test: the project's Spin-compatible
//! test host (`tests/host`, inside the test process) or a real Spin binary, started the
//! way a user starts it (`spin up --from spin.toml --listen ... --variable ...`).
//!
//! The environment chooses, so the same tests prove both (`scripts/test` runs them twice):
//!
//! | `TEST_RUNTIME` | served by |
//! | --- | --- |
//! | `host` | the test host |
//! | `spin` | Spin at `SPIN_BIN`, else `spin` on `PATH` |
//! | unset | Spin if `SPIN_BIN` is set, else the test host |
//!
//! Where the two differ, Spin is right: the test host is mended, never the component.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::repo_root;
use super::supervised::Supervised;

/// How long a runtime may take to start serving: Spin compiles the component on its
/// first start on a machine (later starts find it in wasmtime's cache).
const STARTUP: Duration = Duration::from_secs(120);
/// The component's id in `spin.toml`, which names Spin's log files.
const COMPONENT: &str = "chat-service";

pub enum Runtime {
    TestHost,
    Spin {
        binary: PathBuf,
        /// What `spin --version` printed, e.g. `spin 4.0.2 (bfc7543b 2026-06-23)`.
        version: String,
    },
}

impl Runtime {
    /// The runtime this test process serves with, chosen once from the environment.
    /// The first call says which on stderr, past the test harness's capture, so CI's
    /// log shows what each test binary ran under.
    pub fn get() -> &'static Runtime {
        static CHOSEN: OnceLock<Runtime> = OnceLock::new();
        CHOSEN.get_or_init(|| {
            let runtime = Self::from_env();
            let _ = writeln!(
                std::io::stderr().lock(),
                "end-to-end runtime: {}",
                runtime.describe()
            );
            runtime
        })
    }

    fn from_env() -> Self {
        let spin_bin = std::env::var_os("SPIN_BIN")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match std::env::var("TEST_RUNTIME").as_deref() {
            Ok("host") => Self::TestHost,
            Ok("spin") => Self::spin(spin_bin.or_else(|| on_path("spin")).unwrap_or_else(|| {
                panic!("TEST_RUNTIME=spin, but SPIN_BIN is not set and no spin is on PATH")
            })),
            Ok(other) => panic!("TEST_RUNTIME={other:?}: `host` or `spin`"),
            Err(_) => spin_bin.map_or(Self::TestHost, Self::spin),
        }
    }

    fn spin(binary: PathBuf) -> Self {
        let out = Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", binary.display()));
        assert!(
            out.status.success(),
            "{} --version failed: {}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self::Spin { binary, version }
    }

    pub fn is_spin(&self) -> bool {
        matches!(self, Self::Spin { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::TestHost => "the test host (tests/host)".to_owned(),
            Self::Spin { binary, version } => format!("{version} at {}", binary.display()),
        }
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The component being served: where to send requests and where its log lines go.
/// Dropping it stops the runtime.
pub struct Host {
    /// The address it listens on (a free port the runtime picked).
    pub addr: SocketAddr,
    log: PathBuf,
    _serving: Serving,
}

enum Serving {
    TestHost(spin_test_host::RunningHost),
    Spin(Supervised),
}

impl Host {
    /// The file the component's stderr (its one JSON line per request) is written to.
    /// Each host has its own.
    pub fn component_log(&self) -> &Path {
        &self.log
    }

    /// The component's log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Serves `spin.toml` under the chosen runtime with these `--variable` settings. The
/// process environment's `SPIN_VARIABLE_*` and a `.env` file are not consulted, so a
/// developer's shell cannot change a test.
pub fn serve(variables: &[(&str, String)]) -> Host {
    serve_in(Runtime::get(), variables)
}

/// Like [`serve`], under `runtime` rather than the chosen one: for a test that sets the
/// two side by side.
pub fn serve_in(runtime: &Runtime, variables: &[(&str, String)]) -> Host {
    serve_in_with(runtime, variables, None)
}

/// Serves `spin.toml` under the chosen runtime with no `--variable` at all, every
/// variable from the runtime configuration file (`--runtime-config-file`), as the
/// SpinKube deployment serves it.
pub fn serve_with_runtime_config(runtime_config: &Path) -> Host {
    serve_in_with(Runtime::get(), &[], Some(runtime_config))
}

fn serve_in_with(
    runtime: &Runtime,
    variables: &[(&str, String)],
    runtime_config: Option<&Path>,
) -> Host {
    let dir = scratch_dir();
    match runtime {
        Runtime::TestHost => serve_in_test_host(&dir, variables, runtime_config),
        Runtime::Spin { binary, .. } => serve_in_spin(binary, &dir, variables, runtime_config),
    }
}

/// A directory of this host's own under `target/test-logs/<test binary>-<pid>/`.
fn scratch_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let binary = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.file_stem()?.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let dir = repo_root()
        .join("target/test-logs")
        .join(format!("{binary}-{}", std::process::id()))
        .join(format!("host-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn serve_in_test_host(
    dir: &Path,
    variables: &[(&str, String)],
    runtime_config: Option<&Path>,
) -> Host {
    let log = dir.join(format!("{COMPONENT}_stderr.txt"));
    let mut options = spin_test_host::HostOptions::new(repo_root().join("spin.toml"));
    options.env = Default::default();
    options.guest_stderr = Some(log.clone());
    options.variables = variables
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    options.runtime_config = runtime_config.map(Path::to_path_buf);
    let host = spin_test_host::start(options).expect("the test host starts");
    Host {
        addr: host.addr,
        log,
        _serving: Serving::TestHost(host),
    }
}

/// `spin up` as a user runs it, with its log folder and state folder in `dir`, and
/// `--quiet` so that its own output holds only Spin's messages.
///
/// It runs under a small `sh` that holds this process's end of a pipe on its stdin and
/// stops Spin (SIGTERM, which Spin passes on to its trigger process) when the pipe
/// closes: when the [`Host`] is dropped, and also when this process ends without
/// dropping it (a `static` stack, a crash, a test killed by a timeout). A SIGKILL to
/// `spin up` would leave its `spin trigger http` child serving on.
fn serve_in_spin(
    binary: &Path,
    dir: &Path,
    variables: &[(&str, String)],
    runtime_config: Option<&Path>,
) -> Host {
    let spin_stderr = dir.join("spin.stderr");
    let mut command = Supervised::command(binary);
    command
        .arg("up")
        .arg("--from")
        .arg(repo_root().join("spin.toml"))
        .args(["--listen", "127.0.0.1:0", "--quiet"])
        .arg("--log-dir")
        .arg(dir.join("logs"))
        .arg("--state-dir")
        .arg(dir.join("state"));
    for (name, value) in variables {
        command.arg("--variable").arg(format!("{name}={value}"));
    }
    if let Some(path) = runtime_config {
        command.arg("--runtime-config-file").arg(path);
    }
    // The working directory holds no `.env`; these would override the arguments above
    // or add settings of a developer's own.
    command.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("SPIN_VARIABLE_")
            || matches!(
                name.as_ref(),
                "SPIN_LOG_DIR"
                    | "SPIN_STATE_DIR"
                    | "SPIN_HTTP_LISTEN_ADDR"
                    | "SPIN_ALWAYS_BUILD"
                    | "RUNTIME_CONFIG_FILE"
            )
        {
            command.env_remove(name.as_ref());
        }
    }
    command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&spin_stderr).unwrap());
    let mut process = Supervised::start(command);
    let stdout = process.take_stdout().unwrap();

    // `Serving http://127.0.0.1:PORT` once the listener is bound; the rest of Spin's
    // stdout (its routes) is read and dropped so that it never blocks on a full pipe.
    let (serving, listening) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.trim().strip_prefix("Serving http://") {
                let _ = serving.send(addr.parse::<SocketAddr>());
            }
        }
    });
    let started = Instant::now();
    let addr = match listening.recv_timeout(STARTUP) {
        Ok(Ok(addr)) => addr,
        outcome => {
            drop(process);
            let said = std::fs::read_to_string(&spin_stderr).unwrap_or_default();
            panic!(
                "spin up did not start serving ({}; after {:.1} s): {said}",
                match outcome {
                    Ok(Err(e)) => format!("unreadable address: {e}"),
                    Err(mpsc::RecvTimeoutError::Timeout) => "timed out".to_owned(),
                    Err(mpsc::RecvTimeoutError::Disconnected) => "it exited".to_owned(),
                    Ok(Ok(_)) => unreachable!(),
                },
                started.elapsed().as_secs_f64()
            );
        }
    };
    Host {
        addr,
        log: dir.join("logs").join(format!("{COMPONENT}_stderr.txt")),
        _serving: Serving::Spin(process),
    }
}
