//! Per-request store state, and the `fermyon:spin/variables` host.
//!
//! Like Spin, every request gets a fresh `Store` (and component instance); everything
//! in it — WASI context, the resource table, redis/mysql connections — is dropped with the
//! store when the request ends.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_http::p2::{WasiHttpCtxView, WasiHttpView};

use crate::bindings::variables;
use crate::outbound_hosts::AllowedHosts;
use crate::stdio::Stdio;
use crate::variables::{VariableError, Variables};

/// What every instance of one component shares: its id, resolved allow-list, variables.
pub struct ComponentContext {
    pub id: String,
    /// `Err` when a variable its templates name could not be resolved: every outbound
    /// connection then fails with that error, as in Spin.
    pub allowed_hosts: Result<AllowedHosts, String>,
    pub variables: Arc<Variables>,
    pub environment: Vec<(String, String)>,
    /// Where the guest's stderr goes (see `HostOptions::guest_stderr`).
    pub stderr: Stdio,
}

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) component: Arc<ComponentContext>,
}

impl HostState {
    pub fn new(component: Arc<ComponentContext>) -> Self {
        // Spin gives the guest its `environment`, no args, no preopens (no `files` here),
        // and forwards guest stdout/stderr to its own (the component logs to stderr).
        let mut wasi = WasiCtx::builder();
        wasi.stdout(Stdio::Stdout).stderr(component.stderr.clone());
        for (k, v) in &component.environment {
            wasi.env(k, v);
        }
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            component,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// Spin CLI's disallowed-host handler prints a hint to stderr; the guest only sees the error.
pub fn report_disallowed(component_id: &str, address: &str) {
    eprintln!(
        "A component tried to make an outbound network connection to disallowed destination '{address}'.\n\
         To allow this request, add it to 'allowed_outbound_hosts' of component '{component_id}'."
    );
}

impl variables::Host for HostState {
    async fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.component
            .variables
            .get(&self.component.id, &name)
            .map_err(|e| match e {
                VariableError::InvalidName(m) => variables::Error::InvalidName(m),
                VariableError::Undefined(m) => variables::Error::Undefined(m),
                VariableError::Provider(m) => variables::Error::Provider(m),
                VariableError::Other(m) => variables::Error::Other(m),
            })
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::manifest::Manifest;

    /// A store state for calling host functions directly, without a guest.
    pub fn state(allowed: &[&str]) -> HostState {
        let manifest = Manifest::parse(
            "spin_manifest_version = 2\n[component.c]\nsource = \"x.wasm\"\n",
            std::path::Path::new("/"),
        )
        .unwrap();
        let entries: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        HostState::new(Arc::new(ComponentContext {
            id: "c".into(),
            allowed_hosts: Ok(AllowedHosts::parse(&entries, &Default::default()).unwrap()),
            variables: Arc::new(Variables::new(&manifest, vec![]).unwrap()),
            environment: vec![],
            stderr: Stdio::Stderr,
        }))
    }

    /// A Redis server of a live test's own on a free port, so that the tests never
    /// connect to the machine's Redis (6379). Stopped when dropped; a `sh` beside it
    /// stops it if the test process ends first (a crash, a kill, Ctrl-C).
    pub struct PrivateRedis {
        pub port: u16,
        server: std::process::Child,
        watchdog: std::process::Child,
    }

    impl PrivateRedis {
        pub fn start() -> Self {
            use std::process::{Command, Stdio};
            use std::time::{Duration, Instant};
            for _ in 0..5 {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|listener| listener.local_addr())
                    .unwrap()
                    .port();
                let server = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--daemonize", "no", "--save", "", "--appendonly", "no"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("redis-server starts (scripts/install-deps installs it)");
                let watchdog = Command::new("sh")
                    .args(["-c", r#"trap '' INT HUP; read -r _; kill -TERM "$1""#, "sh"])
                    .arg(server.id().to_string())
                    .stdin(Stdio::piped())
                    .spawn()
                    .expect("sh starts");
                let mut redis = Self {
                    port,
                    server,
                    watchdog,
                };
                // Ours once it answers with its own process id; another program may
                // have taken the port meanwhile, and then another port is tried.
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline && matches!(redis.server.try_wait(), Ok(None)) {
                    match answering_pid(port) {
                        Some(pid) if pid == redis.server.id() => return redis,
                        Some(_) => break,
                        None => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            panic!("no private redis-server would start");
        }

        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}", self.port)
        }
    }

    fn answering_pid(port: u16) -> Option<u32> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .ok()?;
        stream.write_all(b"INFO server\r\n").ok()?;
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
            let _ = self.watchdog.kill();
            let _ = self.watchdog.wait();
            let _ = self.server.kill();
            let _ = self.server.wait();
        }
    }

    /// Live-service tests need `what` on `port` locally, and fail (never pass unrun)
    /// when it is not there.
    pub fn require_service(port: u16, what: &str) {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "{what} is not listening on 127.0.0.1:{port}: start it (scripts/start-backends)"
        );
    }

    /// A live-service test whose backend is down fails and says what to start: one that
    /// returned early would pass without having checked anything.
    #[test]
    #[should_panic(expected = "Redis is not listening on 127.0.0.1:")]
    fn a_live_test_without_its_backend_fails_and_names_what_to_start() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port(); // free again once the listener is dropped
        require_service(port, "Redis");
    }
}
