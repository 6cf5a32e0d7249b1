//! End-to-end checks of the host through its public API.
//!
//! The tests that serve the chat-service component need its build,
//! `target/wasm32-wasip1/release/chat_service.wasm`, and fail without it (scripts/test
//! builds it first).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use spin_test_host::{HostOptions, component_imports, start};

fn built_component() -> PathBuf {
    required_build(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/wasm32-wasip1/release/chat_service.wasm"),
    )
}

/// The component's build, which a test serving it cannot do without: a failure that
/// says how to make it, never a test that passes unrun.
fn required_build(p: PathBuf) -> PathBuf {
    assert!(
        p.is_file(),
        "{} is missing: build the component first (cargo build --target wasm32-wasip1 --release)",
        p.display()
    );
    p
}

/// A test whose build is missing must fail, not pass without having run.
#[test]
#[should_panic(expected = "is missing: build the component first")]
fn a_test_without_the_components_build_fails_and_says_how_to_make_it() {
    required_build(scratch_dir("no-build").join("chat_service.wasm"));
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spin-test-host-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_manifest(dir: &Path, source: &Path, extra: &str) -> PathBuf {
    let m = dir.join("spin.toml");
    std::fs::write(
        &m,
        format!(
            r#"spin_manifest_version = 2
[application]
name = "smoke"
[variables]
redis_url = {{ default = "redis://127.0.0.1:6379" }}
mysql_url = {{ default = "mysql://root@127.0.0.1:3306/mysql" }}
{extra}
[[trigger.http]]
route = "/only/..."
component = "c"
[component.c]
source = "{}"
allowed_outbound_hosts = ["redis://127.0.0.1:6379", "mysql://127.0.0.1:3306"]
[component.c.variables]
redis_url = "{{{{ redis_url }}}}"
mysql_url = "{{{{ mysql_url }}}}"
"#,
            source.display()
        ),
    )
    .unwrap();
    m
}

/// Minimal HTTP/1.1 GET returning (status, body).
fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serves_routed_requests_and_404s_the_rest() {
    let wasm = built_component();
    let dir = scratch_dir("serve");
    let host = start(HostOptions::new(write_manifest(&dir, &wasm, ""))).unwrap();
    assert_eq!(host.routes()[0], ("/only/...".to_string(), "c".to_string()));
    assert_eq!(host.allowed_hosts()["c"].len(), 2);
    // Unrouted: the host's own 404 with an empty body, as Spin.
    assert_eq!(get(host.addr, "/elsewhere"), (404, String::new()));
    // Routed: the component answers, with its own JSON 404 for a path it does not serve.
    let (status, body) = get(host.addr, "/only/x");
    assert_eq!((status, body.as_str()), (404, r#"{"error":"Not found"}"#));
    assert_eq!(
        get(host.addr, "/.well-known/spin/health"),
        (200, "OK".to_string())
    );
    host.stop();
}

#[test]
fn guest_stderr_can_go_to_a_file() {
    let wasm = built_component();
    let dir = scratch_dir("stderr");
    let log = dir.join("guest.log");
    let _ = std::fs::remove_file(&log);
    let host = start(HostOptions {
        guest_stderr: Some(log.clone()),
        ..HostOptions::new(write_manifest(&dir, &wasm, ""))
    })
    .unwrap();
    // The component writes one line per request it answers.
    get(host.addr, "/only/x");
    get(host.addr, "/only/y");
    host.stop();
    let written = std::fs::read_to_string(&log).unwrap();
    assert_eq!(written.lines().count(), 2, "{written}");
    assert!(written.ends_with('\n'), "{written}");
}

#[test]
fn component_imports_are_listed() {
    let wasm = built_component();
    let imports = component_imports(&wasm).unwrap();
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:")),
        "{imports:?}"
    );
    let allowed = [
        "fermyon:spin/redis@2.0.0",
        "fermyon:spin/mysql@2.0.0",
        "fermyon:spin/rdbms-types@2.0.0",
        "fermyon:spin/variables@2.0.0",
    ];
    for i in imports.iter().filter(|i| i.starts_with("fermyon:")) {
        assert!(allowed.contains(&i.as_str()), "unexpected import {i}");
    }
}

#[test]
fn unsatisfied_import_fails_at_startup() {
    let dir = scratch_dir("mismatch");
    let wasm = dir.join("kv.wasm");
    let bytes = wat::parse_str(
        r#"(component (import "fermyon:spin/key-value@2.0.0" (instance (export "x" (func)))))"#,
    )
    .unwrap();
    std::fs::write(&wasm, bytes).unwrap();
    let err = start(HostOptions::new(write_manifest(&dir, &wasm, "")))
        .err()
        .expect("start must fail");
    let text = format!("{err:#}");
    assert!(text.contains("fermyon:spin/key-value@2.0.0"), "{text}");
}

#[test]
fn missing_required_variable_fails_at_startup() {
    let dir = scratch_dir("required");
    let wasm = dir.join("none.wasm");
    std::fs::write(&wasm, wat::parse_str("(component)").unwrap()).unwrap();
    let opts = HostOptions {
        env: Default::default(),
        ..HostOptions::new(write_manifest(&dir, &wasm, "token = { required = true }"))
    };
    let err = start(opts).err().expect("start must fail").to_string();
    assert!(
        err.contains("no provider resolved required variable \"token\""),
        "{err}"
    );
}
