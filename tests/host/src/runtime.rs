//! Engine, linker and the loaded application.
//!
//! Mirrors spin-core's engine setup (pooling instance allocator, component model, async)
//! and spin-trigger's loading: each component is componentized, compiled, linked against
//! exactly WASI p2 + wasi:http + the three Spin interfaces, and pre-instantiated; a
//! component importing anything else fails here with wasmtime's "matching implementation
//! was not found in the linker" error.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::HostOptions;
use crate::bindings::SpinImports;
use crate::componentize::load_component_bytes;
use crate::manifest::Manifest;
use crate::outbound_hosts::AllowedHosts;
use crate::routing::Router;
use crate::state::{ComponentContext, HostState};
use crate::stdio::Stdio;
use crate::variables::{Provider, Variables, providers_from_runtime_config};

/// One process-wide engine: the pooling allocator reserves its slots once, and compiled
/// components can be reused by every host started in the same (test) process.
pub fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e);
    }
    let mut config = Config::new();
    config.wasm_component_model(true);
    // As spin-core: component-model async on, and epoch interruption, which puts a
    // deadline check into the guest's loops and calls (the ticker thread is started below
    // and every store gets a practically endless deadline, as Spin's store builder does).
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    // Diagnostic: `SPIN_TEST_HOST_PERFMAP=1` writes /tmp/perf-<pid>.map, so `perf` can
    // name the guest's JIT-compiled functions.
    if std::env::var_os("SPIN_TEST_HOST_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // spin-core's pooling configuration (crates/core/src/lib.rs), with the same
    // SPIN_* environment overrides: every pool is sized from SPIN_MAX_INSTANCE_COUNT, and
    // core instances at four per component instance, since a wasip1 component carries
    // its module, the preview1 adapter and shims. The component-instance total is the
    // node's request concurrency; past it, instantiation fails and the request gets 500.
    let max_instances = env_or("SPIN_MAX_INSTANCE_COUNT", 1_000);
    const MB: usize = 1 << 20;
    let mut pooling = PoolingAllocationConfig::default();
    pooling
        .total_component_instances(env_or("SPIN_WASMTIME_INSTANCE_COUNT", max_instances))
        .total_memories(env_or("SPIN_WASMTIME_TOTAL_MEMORIES", max_instances))
        .total_tables(env_or("SPIN_WASMTIME_TOTAL_TABLES", 2 * max_instances))
        .total_stacks(env_or("SPIN_WASMTIME_TOTAL_STACKS", max_instances))
        .total_core_instances(env_or(
            "SPIN_WASMTIME_TOTAL_CORE_INSTANCES",
            4 * max_instances,
        ))
        .table_elements(env_or("SPIN_WASMTIME_INSTANCE_TABLE_ELEMENTS", 100_000) as usize)
        .max_component_instance_size(env_or("SPIN_WASMTIME_INSTANCE_SIZE", 10 * MB as u32) as usize)
        .max_core_instance_size(env_or("SPIN_WASMTIME_CORE_INSTANCE_SIZE", 10 * MB as u32) as usize)
        .max_core_instances_per_component(env_or("SPIN_WASMTIME_CORE_INSTANCE_COUNT", 200))
        .max_tables_per_component(env_or("SPIN_WASMTIME_INSTANCE_TABLES", 64))
        .max_memories_per_component(env_or("SPIN_WASMTIME_INSTANCE_MEMORIES", 32))
        .max_tables_per_module(env_or("SPIN_WASMTIME_MAX_TABLES_PER_MODULE", 2))
        .max_memories_per_module(env_or("SPIN_WASMTIME_MAX_MEMORIES_PER_MODULE", 2))
        .max_memory_size(4 << 30)
        // Spin keeps the first 2 MiB of every pooled linear memory (and 512 KiB of every
        // table) resident between instances: a slot is zeroed with memset on reuse
        // instead of being handed back to the kernel, so the next request's instance
        // does not page-fault on the memory it touches. Per request, that is most of
        // the difference between a component that touches a few pages and one that
        // touches many, so the test host must do the same for its figures to be Spin's.
        .linear_memory_keep_resident(env_or(
            "SPIN_WASMTIME_LINEAR_MEMORY_KEEP_RESIDENT",
            2 * MB as u32,
        ) as usize)
        .table_keep_resident(env_or("SPIN_WASMTIME_TABLE_KEEP_RESIDENT", MB as u32 / 2) as usize);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    // Spin enables wasmtime's on-disk compilation cache by default; reuse it when available.
    if let Ok(cache) = wasmtime::Cache::from_file(None) {
        config.cache(Some(cache));
    }
    let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
    let engine: &'static Engine = ENGINE.get_or_init(|| engine);
    // spin-core's epoch ticker: one tick every 10 ms for the process's lifetime.
    static TICKER: std::sync::Once = std::sync::Once::new();
    TICKER.call_once(|| {
        std::thread::spawn(move || {
            loop {
                engine.increment_epoch();
                std::thread::sleep(EPOCH_TICK);
            }
        });
    });
    Ok(engine)
}

/// spin-core's default epoch tick interval.
const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// A numeric setting from the environment, as spin-core reads its pooling overrides.
fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Compile (or reuse) a component from its bytes.
fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    static CACHE: OnceLock<Mutex<HashMap<u64, Component>>> = OnceLock::new();
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    let key = h.finish();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().unwrap().get(&key) {
        return Ok(c.clone());
    }
    let component = Component::new(engine, bytes).map_err(anyhow::Error::from)?;
    cache.lock().unwrap().insert(key, component.clone());
    Ok(component)
}

/// The linker every component is instantiated with: nothing more than Spin would give
/// this world.
pub fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)?;
    SpinImports::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(anyhow::Error::from)?;
    Ok(linker)
}

pub struct LoadedComponent {
    pub pre: ProxyPre<HostState>,
    pub context: Arc<ComponentContext>,
}

/// Everything needed to serve: routes and pre-instantiated components.
pub struct App {
    pub router: Router,
    pub components: HashMap<String, LoadedComponent>,
    /// The body of `/.well-known/spin/info`: Spin's `AppInfo` of a local app, the
    /// application's name and version as pretty-printed JSON.
    pub info: Vec<u8>,
}

impl App {
    /// Resolved `allowed_outbound_hosts` per component id.
    pub fn allowed_hosts(&self) -> BTreeMap<String, Vec<String>> {
        self.components
            .iter()
            .map(|(id, c)| {
                let entries = c.context.allowed_hosts.as_ref().map(AllowedHosts::entries);
                (id.clone(), entries.unwrap_or_default())
            })
            .collect()
    }
}

/// Build the variable providers in Spin's order (see `variables.rs`).
fn providers(opts: &HostOptions) -> Result<Vec<Provider>> {
    let mut providers = Vec::new();
    if !opts.variables.is_empty() {
        providers.push(Provider::Static(opts.variables.iter().cloned().collect()));
    }
    if let Some(rc) = &opts.runtime_config {
        providers.extend(
            providers_from_runtime_config(rc, &opts.env)
                .with_context(|| format!("invalid runtime config {}", rc.display()))?,
        );
    }
    providers.push(Provider::env(
        None,
        opts.env.clone(),
        opts.dotenv_path.as_deref(),
    ));
    Ok(providers)
}

/// Load the manifest and prepare every routed component.
pub fn load(opts: &HostOptions) -> Result<App> {
    let manifest = Manifest::from_file(&opts.manifest)?;
    let variables = Arc::new(Variables::new(&manifest, providers(opts)?)?);
    variables.ensure_required_resolvable()?;
    // Spin starts even when a provider cannot answer, and resolves the templates of
    // `allowed_outbound_hosts` at the first outbound connection, which then fails.
    let prepared = variables.prepared().map_err(|e| e.to_string());
    let router = Router::build(&manifest.http_base, &manifest.http_triggers)?;
    let engine = engine()?;
    let linker = linker(engine)?;
    let stderr = match &opts.guest_stderr {
        None => Stdio::Stderr,
        Some(path) => Stdio::File(Arc::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {} for guest stderr", path.display()))?,
        )),
    };
    let mut components = HashMap::new();
    for (id, c) in &manifest.components {
        let allowed_hosts = match &prepared {
            Ok(prepared) => Ok(AllowedHosts::parse(&c.allowed_outbound_hosts, prepared)
                .with_context(|| format!("invalid allowed_outbound_hosts of component {id:?}"))?),
            Err(unresolved) => Err(unresolved.clone()),
        };
        let bytes = load_component_bytes(&c.source)?;
        let component = compile(engine, &bytes)
            .with_context(|| format!("failed to compile component {id:?}"))?;
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component {id:?} cannot be instantiated by the test host (its imports do not match what Spin provides)"))?;
        let pre = ProxyPre::new(instance_pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!("component {id:?} does not export wasi:http/incoming-handler@0.2.0")
            })?;
        let context = Arc::new(ComponentContext {
            id: id.clone(),
            allowed_hosts,
            variables: variables.clone(),
            environment: c
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stderr: stderr.clone(),
        });
        components.insert(id.clone(), LoadedComponent { pre, context });
    }
    let mut info = serde_json::json!({ "name": manifest.name });
    if let Some(version) = &manifest.version {
        info["version"] = version.clone().into();
    }
    let info = serde_json::to_vec_pretty(&info)?;
    Ok(App {
        router,
        components,
        info,
    })
}
