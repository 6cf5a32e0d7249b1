//! `spin-test-host`: TEST INFRASTRUCTURE, not product code.
//!
//! A small Spin-compatible host (wasmtime 44, as Spin 4.0.2 embeds) that runs the
//! chat-service component from `spin.toml` the way `spin up` does, so integration tests
//! and benchmarks can run without the Spin CLI. See README.md for what it does and does
//! not implement, and where it differs from Spin.

mod bindings;
pub mod componentize;
pub mod manifest;
mod mysql;
pub mod outbound_hosts;
mod redis;
pub mod routing;
mod runtime;
mod server;
mod state;
mod stdio;
pub mod variables;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

pub use componentize::{ModuleInterfaces, component_imports, module_interfaces};

/// How to run the application; mirrors the `spin up` options the tests need.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Path of `spin.toml`.
    pub manifest: PathBuf,
    /// Address to listen on; port 0 picks a free port (see `RunningHost::addr`).
    pub listen: SocketAddr,
    /// `--variable name=value` overrides (highest priority).
    pub variables: Vec<(String, String)>,
    /// Environment for the default `SPIN_VARIABLE_*` provider and for `type = "env"`
    /// runtime-config providers. Defaults to the process environment.
    pub env: HashMap<String, String>,
    /// `--runtime-config-file`.
    pub runtime_config: Option<PathBuf>,
    /// Dotenv file consulted by the default env provider after `env`. `spin up` uses
    /// `.env` in its working directory; the library default is `None` (hermetic tests),
    /// the CLI passes `./.env`.
    pub dotenv_path: Option<PathBuf>,
    /// Where the components' stderr goes: the host process's own (`None`, the default,
    /// as `spin up` without a log directory), or appended to this file, created if
    /// missing.
    pub guest_stderr: Option<PathBuf>,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            manifest: PathBuf::from("spin.toml"),
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            variables: Vec::new(),
            env: std::env::vars().collect(),
            runtime_config: None,
            dotenv_path: None,
            guest_stderr: None,
        }
    }
}

impl HostOptions {
    /// Options for `manifest` on 127.0.0.1 with a free port.
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Self::default()
        }
    }
}

/// A host serving on a background thread (own multi-threaded tokio runtime).
/// Dropping it, or calling `stop`, shuts the server down and joins the thread.
pub struct RunningHost {
    /// The bound address (the real port when `listen` used port 0).
    pub addr: SocketAddr,
    routes: Vec<(String, String)>,
    allowed_hosts: BTreeMap<String, Vec<String>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningHost {
    /// `http://<addr>`, for building request URLs.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// (route with base, component id), in manifest order.
    pub fn routes(&self) -> &[(String, String)] {
        &self.routes
    }

    /// Resolved `allowed_outbound_hosts` (templates substituted) per component id.
    pub fn allowed_hosts(&self) -> &BTreeMap<String, Vec<String>> {
        &self.allowed_hosts
    }

    /// Stop accepting connections and wait for the server thread to exit.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningHost {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// Load the app (failing like `spin up` would on a bad manifest, missing required
/// variable, invalid allow-list or a component whose imports cannot be satisfied), bind
/// `opts.listen`, and serve on a background thread. Returns once listening.
pub fn start(opts: HostOptions) -> Result<RunningHost> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr>>();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let (info_tx, info_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("spin-test-host".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let setup = async {
                    let app = Arc::new(runtime::load(&opts)?);
                    let listener = tokio::net::TcpListener::bind(opts.listen)
                        .await
                        .with_context(|| format!("failed to listen on {}", opts.listen))?;
                    anyhow::Ok((app, listener))
                };
                match setup.await {
                    Ok((app, listener)) => {
                        let _ = info_tx.send((app.router.routes().to_vec(), app.allowed_hosts()));
                        let addr = listener.local_addr().map_err(Into::into);
                        let _ = ready_tx.send(addr);
                        server::serve(listener, app, async {
                            let _ = shutdown_rx.await;
                        })
                        .await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Dropping the runtime cancels in-flight requests and closes their connections.
            rt.shutdown_background();
        })?;
    let addr = match ready_rx.recv() {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            anyhow::bail!("spin-test-host thread exited during startup");
        }
    };
    let (routes, allowed_hosts) = info_rx.recv().unwrap_or_default();
    Ok(RunningHost {
        addr,
        routes,
        allowed_hosts,
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
    })
}
