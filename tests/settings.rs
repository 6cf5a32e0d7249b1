//! Settings that cannot be read or used fail closed (docs/operations.md, "Configuration
//! errors"): a variables provider that is down is a 500 `Service is misconfigured` on
//! every route that reads settings, never the variable's default (which would turn the API
//! key off and admit every CORS origin), and a host Spin refuses is a misconfiguration that
//! names the variable to set, not an outage to retry. Liveness reads no settings.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use support::{client, serve};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn misconfigured(response: &client::Response, what: &str) {
    assert_eq!(response.status, 500, "{what}: {}", response.text());
    assert_eq!(response.error(), "Service is misconfigured", "{what}");
    assert_eq!(response.header("retry-after"), None, "{what}");
}

#[test]
fn a_variables_provider_that_is_down_fails_every_route_that_reads_settings() {
    let dir = std::env::temp_dir().join(format!("chat-service-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runtime_config = dir.join("runtime-config.toml");
    let vault = format!("http://127.0.0.1:{}", closed_port());
    std::fs::write(
        &runtime_config,
        format!(
            "[[variables_provider]]\ntype = \"vault\"\nurl = \"{vault}\"\n\
             token = \"vault-token-not-to-be-logged\"\nmount = \"secret\"\n"
        ),
    )
    .unwrap();
    let host = support::runtime::serve_with_runtime_config(&runtime_config);
    let origin = [("origin", "https://not-on-any-list.example")];

    let preflight = client::request(
        host.addr,
        "OPTIONS",
        "/api/v1/chat_applications/x/chats",
        &origin,
        None,
    );
    misconfigured(&preflight, "preflight");
    assert_eq!(preflight.header("access-control-allow-origin"), None);

    let chats = format!("/api/v1/chat_applications/{TOKEN}/chats");
    misconfigured(
        &client::request(host.addr, "POST", &chats, &origin, None),
        "chat",
    );
    let messages = format!("{chats}/1/messages");
    let body = r#"{"message":{"body":"hi"}}"#;
    misconfigured(
        &client::request(host.addr, "POST", &messages, &[], Some(body.as_bytes())),
        "message",
    );
    misconfigured(
        &client::request(host.addr, "GET", "/ready", &[], None),
        "ready",
    );
    misconfigured(
        &client::request(host.addr, "GET", "/nowhere", &[], None),
        "404",
    );

    // Liveness: the component runs; restarting it would not bring the store back.
    let health = client::request(host.addr, "GET", "/health", &origin, None);
    assert_eq!(health.status, 200);

    let log = support::eventually("the log lines", Duration::from_secs(5), || {
        let log = host.log_lines().join("\n");
        (host.log_lines().len() >= 6).then_some(log)
    });
    assert!(log.contains("could not be read"), "{log}");
    assert!(!log.contains("vault-token-not-to-be-logged"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_host_spin_refuses_is_a_misconfiguration_that_says_what_to_set() {
    // redis_url moved to another port without redis_host, which allowed_outbound_hosts
    // reads: Spin refuses the address.
    let port = closed_port();
    let host = serve(&[
        ("redis_url", format!("redis://127.0.0.1:{port}")),
        (
            "mysql_url",
            "mysql://chat:Pa\"ss\\W0rd@127.0.0.2:3306/chat".to_owned(),
        ),
    ]);
    let chats = format!("/api/v1/chat_applications/{TOKEN}/chats");
    misconfigured(
        &client::request(host.addr, "POST", &chats, &[], None),
        "chat",
    );

    // MySQL's host is refused too; readiness says which check is misconfigured.
    let ready = client::request(host.addr, "GET", "/ready", &[], None);
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["mysql"], "misconfigured");
    assert_eq!(ready.json()["checks"]["redis"], "misconfigured");

    // The two log lines, however late the runtime writes them out.
    let log = support::eventually("both log lines", Duration::from_secs(5), || {
        let log = host.log_lines().join("\n");
        (log.contains("redis_host") && log.contains("mysql_host")).then_some(log)
    });
    for secret in ["Pa\"ss", "Pa\\\"ss", "W0rd"] {
        assert!(!log.contains(secret), "{secret}: {log}");
    }
}
