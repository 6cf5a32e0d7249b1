//! The SpinKube deployment's runtime configuration, served: the `runtime-config.toml` of
//! `deploy/secret.example.yaml` (one static variables provider giving every variable),
//! with its placeholders replaced by this machine's backends, is all the runtime gets —
//! no `--variable`, no `SPIN_VARIABLE_*`. `tests/manifests.rs` checks the file's shape;
//! this checks that Spin reads that shape and the service runs on it.

mod support;

use std::path::PathBuf;

use support::client;
use support::runtime::serve_with_runtime_config;
use support::{Stack, repo_root};

/// The example Secret's `runtime-config.toml` block, as the pod would get it.
fn example_runtime_config() -> String {
    let path = repo_root().join("deploy/secret.example.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim() != "runtime-config.toml: |");
    assert!(
        lines.next().is_some(),
        "{} has no runtime-config.toml block",
        path.display()
    );
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.starts_with("    "))
        .collect();
    assert!(!block.is_empty(), "the runtime-config.toml block is empty");
    block
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with the value of each `name = "..."` line in `values` replaced.
fn with_values(text: &str, values: &[(&str, String)]) -> String {
    let mut replaced = 0;
    let out: Vec<String> = text
        .lines()
        .map(|line| {
            for (name, value) in values {
                if line.starts_with(&format!("{name} = ")) {
                    replaced += 1;
                    return format!("{name} = {value:?}");
                }
            }
            line.to_owned()
        })
        .collect();
    assert_eq!(
        replaced,
        values.len(),
        "the example lost a variable:\n{text}"
    );
    out.join("\n")
}

#[test]
fn the_deployments_runtime_config_alone_serves_every_endpoint() {
    let stack = Stack::start("deployment", 15);
    let key = "deployment-test-key";
    let config = with_values(
        &example_runtime_config(),
        &[
            ("redis_url", stack.redis_url()),
            ("redis_host", stack.redis_host()),
            ("mysql_url", support::mysql_url(&stack.database)),
            ("mysql_host", "127.0.0.1:3306".to_owned()),
            ("api_key", key.to_owned()),
        ],
    );
    let path: PathBuf = std::env::temp_dir().join(format!(
        "chat-service-deployment-{}.toml",
        std::process::id()
    ));
    std::fs::write(&path, config).unwrap();
    let host = serve_with_runtime_config(&path);
    let (application_id, token) = stack.new_application();
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let auth = format!("Bearer {key}");

    // The API key came from the static provider, not from spin.toml's empty default.
    let refused = host.post(&chats, None);
    assert_eq!(refused.status, 401, "{}", refused.text());

    let chat = client::request(host.addr, "POST", &chats, &[("Authorization", &auth)], None);
    assert_eq!(chat.status, 201, "{}", chat.text());
    assert_eq!(chat.json()["number"], 1);

    stack.insert_chat(application_id, 1); // as the worker would
    let message = client::request(
        host.addr,
        "POST",
        &format!("{chats}/1/messages"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(br#"{"message":{"body":"deployed"}}"#),
    );
    assert_eq!(message.status, 201, "{}", message.text());
    assert_eq!(message.json()["number"], 1);

    // Both backends reachable through the hosts the static provider named.
    let ready = client::request(
        host.addr,
        "GET",
        "/ready",
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(ready.status, 200, "{}", ready.text());
    let _ = std::fs::remove_file(path);
}
