//! The contract's HTTP tables and job format, end to end: the built component in the
//! Spin-compatible test host, against real Redis and MariaDB with the Rails schema.
//!
//! No worker runs here, so every job the component queued can be read back from
//! `queue:default` and checked field by field.

mod support;

use std::sync::LazyLock;

use serde_json::{Value, json};
use support::client::{self, Response};
use support::taken::{Counter, Taken};
use support::{Stack, serve};

static STACK: LazyLock<Stack> = LazyLock::new(|| Stack::start("contract", 1));

const CORS: [(&str, &str); 5] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-methods",
        "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    ),
    (
        "access-control-allow-headers",
        "Content-Type, Authorization, X-Requested-With, Accept",
    ),
    ("access-control-expose-headers", "X-Request-Id, X-Runtime"),
    ("access-control-max-age", "7200"),
];

fn assert_json_with_cors(response: &Response) {
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    for (name, value) in CORS {
        assert_eq!(response.header(name), Some(value), "{name} on {response:?}");
    }
}

/// The queued jobs of `class` whose arguments start with `parent_id`.
fn jobs_for(class: &str, parent_id: i64) -> Vec<Value> {
    STACK.redis().jobs_for(class, parent_id)
}

/// Every field of the contract's wire format.
fn assert_job_format(job: &Value, class: &str, arguments: Value) {
    assert_eq!(
        job["class"],
        "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
    );
    assert_eq!(job["wrapped"], class);
    assert_eq!(job["queue"], "default");
    assert_eq!(job["retry"], true);
    let jid = job["jid"].as_str().unwrap();
    assert!(
        jid.len() == 24 && jid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "jid {jid}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for field in ["created_at", "enqueued_at"] {
        let at = job[field].as_f64().unwrap();
        assert!(
            job[field].is_f64() && (now - at).abs() < 120.0,
            "{field} {at}"
        );
    }
    let args = job["args"].as_array().unwrap();
    assert_eq!(args.len(), 1);
    let data = &args[0];
    assert_eq!(data["job_class"], class);
    let job_id = data["job_id"].as_str().unwrap();
    let groups: Vec<usize> = job_id.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "job_id {job_id}");
    assert_eq!(&job_id[14..15], "4", "a version 4 UUID: {job_id}");
    assert!(
        matches!(&job_id[19..20], "8" | "9" | "a" | "b"),
        "RFC 4122 variant: {job_id}"
    );
    assert_eq!(data["provider_job_id"], Value::Null);
    assert_eq!(data["queue_name"], "default");
    assert_eq!(data["priority"], Value::Null);
    assert_eq!(data["arguments"], arguments);
    assert_eq!(data["executions"], 0);
    assert_eq!(data["exception_executions"], json!({}));
    assert_eq!(data["locale"], "en");
    assert_eq!(data["timezone"], "UTC");
    assert_eq!(data["scheduled_at"], Value::Null);
    let enqueued = data["enqueued_at"].as_str().unwrap();
    // UTC ISO 8601 with nine fractional digits, as Rails 8.1's Time.iso8601 reads it.
    let shape: String = enqueued
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-ddTdd:dd:dd.dddddddddZ", "{enqueued}");
    assert_ne!(jobs_with_jid(jid), 0);
}

fn jobs_with_jid(jid: &str) -> usize {
    STACK
        .redis()
        .queue()
        .iter()
        .filter(|j| j.contains(jid))
        .count()
}

#[test]
fn health_is_200_healthy_json_with_cors() {
    let response = client::request(STACK.host.addr, "GET", "/health", &[], None);
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"status": "healthy"}));
    assert_json_with_cors(&response);
}

#[test]
fn chat_creation_numbers_and_queues_a_complete_job() {
    let (app_id, token) = STACK.new_application();
    for expected in 1..=3 {
        let response = STACK.create_chat(&token);
        assert_eq!(response.status, 201, "{response:?}");
        assert_eq!(
            response.body,
            format!(r#"{{"number":{expected},"messages_count":0}}"#).as_bytes()
        );
        assert_json_with_cors(&response);
    }
    let mut redis = STACK.redis();
    assert_eq!(
        redis.get_int(&format!("chat_app:{app_id}:chat_counter")),
        Some(3)
    );
    let members: Vec<String> = redis.cmd(&["SMEMBERS", "queues"]);
    assert_eq!(members, ["default"]);

    // LPUSH: the newest job is at the head, so the worker (BRPOP) takes the oldest first.
    let jobs = jobs_for("CreateChatJob", app_id);
    let numbers: Vec<i64> = jobs
        .iter()
        .map(|j| j["args"][0]["arguments"][1].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);
    for job in &jobs {
        let number = job["args"][0]["arguments"][1].clone();
        assert_job_format(job, "CreateChatJob", json!([app_id, number]));
    }
    let jids: std::collections::HashSet<_> = jobs.iter().map(|j| j["jid"].clone()).collect();
    assert_eq!(jids.len(), 3, "jids are unique");
}

#[test]
fn message_creation_numbers_and_queues_a_complete_job() {
    let (app_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(app_id, 1);
    let text = "héllo wörld 👋🏽 — \"quoted\" 'single'\nnew line\ttab \\ backslash";
    for expected in 1..=2 {
        let response = STACK.create_message(&token, 1, text);
        assert_eq!(response.status, 201, "{response:?}");
        assert_eq!(
            response.body,
            format!(r#"{{"number":{expected}}}"#).as_bytes()
        );
        assert_json_with_cors(&response);
    }
    assert_eq!(
        STACK
            .redis()
            .get_int(&format!("chat:{chat_id}:message_counter")),
        Some(2)
    );
    let jobs = jobs_for("CreateMessageJob", chat_id);
    assert_eq!(jobs.len(), 2);
    assert_job_format(&jobs[0], "CreateMessageJob", json!([chat_id, 2, text]));
    assert_job_format(&jobs[1], "CreateMessageJob", json!([chat_id, 1, text]));
}

/// The contract's error table, and the edges the issue adds. Each must take no number
/// and queue nothing.
#[test]
fn bad_input_gets_its_contract_error_and_takes_nothing() {
    let (app_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(app_id, 1);
    // Take one number of each so the counters exist and any change would show. The chat
    // counter starts after the persisted chat 1 (seeded from MAX(number)), so chat 2 is
    // handed out but never stored here, and chat 3 does not exist at all.
    assert_eq!(STACK.create_chat(&token).json()["number"], 2);
    assert_eq!(STACK.create_message(&token, 1, "first").status, 201);

    let messages = |chat: &str| format!("/api/v1/chat_applications/{token}/chats/{chat}/messages");
    // A well-formed body, for the cases where something else is wrong.
    let valid = || Some(r#"{"message":{"body":"x"}}"#.to_owned());
    let too_long = json!({"message": {"body": "é".repeat(32_768)}}).to_string();
    let cases: Vec<(String, Option<String>, u16, &str)> = vec![
        (
            format!(
                "/api/v1/chat_applications/{}/chats",
                support::unique_token()
            ),
            None,
            404,
            "ChatApplication not found",
        ),
        (
            format!(
                "/api/v1/chat_applications/{}/chats/1/messages",
                support::unique_token()
            ),
            valid(),
            404,
            "ChatApplication not found",
        ),
        (
            format!("/api/v1/chat_applications/{}/chats", "t".repeat(256)),
            None,
            404,
            "ChatApplication not found",
        ),
        (messages("3"), valid(), 404, "Chat not found"),
        (messages("0"), valid(), 404, "Chat not found"),
        (messages("-1"), valid(), 404, "Chat not found"),
        (messages("2147483648"), valid(), 404, "Chat not found"),
        (messages("abc"), valid(), 400, "Invalid chat number"),
        (messages("1.5"), valid(), 400, "Invalid chat number"),
        (
            messages("1"),
            Some("not json".into()),
            400,
            "Invalid request body",
        ),
        (messages("1"), None, 400, "Invalid request body"),
        (
            messages("1"),
            Some(r#"{"message":"x"}"#.into()),
            400,
            "Invalid request body",
        ),
        (
            messages("1"),
            Some(r#"{"message":{"body":5}}"#.into()),
            400,
            "Invalid request body",
        ),
        (
            messages("1"),
            Some(format!(r#"{{"message":{}}}"#, "[".repeat(100_000))),
            400,
            "Invalid request body",
        ),
        (
            messages("1"),
            Some(r#"{"message":{"body":""}}"#.into()),
            422,
            "Message body can't be blank",
        ),
        (
            messages("1"),
            Some(r#"{"message":{"body":" \n\t\u00a0\u3000"}}"#.into()),
            422,
            "Message body can't be blank",
        ),
        (
            messages("1"),
            Some(r#"{"message":{}}"#.into()),
            422,
            "Message body can't be blank",
        ),
        (
            messages("1"),
            Some(too_long),
            422,
            "Message body is too long (maximum is 65535 bytes)",
        ),
    ];
    for (path, body, status, error) in cases {
        let response = STACK.post(&path, body.as_deref());
        assert_eq!(
            (response.status, response.error().as_str()),
            (status, error),
            "POST {path}"
        );
        assert_json_with_cors(&response);
    }

    // What the two requests above took, and nothing more.
    let mut redis = STACK.redis();
    let first_chat = Taken {
        last: Some(2),
        queued: 1,
    };
    redis.assert_took_nothing(Counter::ChatsOf(app_id), first_chat);
    let first_message = Taken {
        last: Some(1),
        queued: 1,
    };
    redis.assert_took_nothing(Counter::MessagesOf(chat_id), first_message);
}

/// The component runs on a 256 KiB stack (build.rs). Nested input is what a parser could
/// recurse on, so 100,000 levels of it, in every place a body can hold it, must get an
/// answer rather than exhaust the stack and trap the instance.
#[test]
fn deeply_nested_bodies_are_answered_not_trapped() {
    let (app_id, token) = STACK.new_application();
    STACK.insert_chat(app_id, 1);
    let path = format!("/api/v1/chat_applications/{token}/chats/1/messages");
    let deep = |open: &str, close: &str| (open.repeat(100_000), close.repeat(100_000));
    let (arrays, arrays_end) = deep("[", "]");
    let (objects, objects_end) = deep(r#"{"a":"#, "}");
    // Unknown fields are ignored, however deep, as Rails' strong parameters ignore them.
    for (open, close) in [(&arrays, &arrays_end), (&objects, &objects_end)] {
        let body = format!(r#"{{"message":{{"body":"deep","extra":{open}1{close}}}}}"#);
        let response = STACK.post(&path, Some(&body));
        assert_eq!(response.status, 201, "{:?}", response.text());
    }
    // Where the message or its body must be, nesting is the wrong shape; an object
    // holding only an unknown field is a message without a body.
    let cases = [
        (
            format!(r#"{{"message":{arrays}1{arrays_end}}}"#),
            400,
            "Invalid request body",
        ),
        (
            format!(r#"{{"message":{objects}1{objects_end}}}"#),
            422,
            "Message body can't be blank",
        ),
        (
            format!(r#"{{"message":{{"body":{arrays}1{arrays_end}}}}}"#),
            400,
            "Invalid request body",
        ),
        (
            format!(r#"{{"message":{{"body":{objects}1{objects_end}}}}}"#),
            400,
            "Invalid request body",
        ),
    ];
    for (body, status, error) in cases {
        let response = STACK.post(&path, Some(&body));
        assert_eq!(
            (response.status, response.error().as_str()),
            (status, error)
        );
    }
}

#[test]
fn a_body_over_the_cap_is_413_and_takes_nothing() {
    let (app_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(app_id, 1);
    let body = format!(
        r#"{{"message":{{"body":"{}"}}}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let path = format!("/api/v1/chat_applications/{token}/chats/1/messages");
    let response = STACK.post(&path, Some(&body));
    assert_eq!(response.status, 413);
    assert_eq!(
        response.error(),
        "Request body is too large (maximum is 1048576 bytes)"
    );
    assert_json_with_cors(&response);
    STACK
        .redis()
        .assert_took_nothing(Counter::MessagesOf(chat_id), Taken::NOTHING);
}

#[test]
fn preflight_answers_204_with_cors_on_every_route() {
    for path in [
        "/health".to_owned(),
        format!(
            "/api/v1/chat_applications/{}/chats",
            support::unique_token()
        ),
        format!(
            "/api/v1/chat_applications/{}/chats/1/messages",
            support::unique_token()
        ),
        "/anything/else".to_owned(),
    ] {
        let response = client::request(STACK.host.addr, "OPTIONS", &path, &[], None);
        assert_eq!(response.status, 204, "{path}");
        assert!(response.body.is_empty());
        assert_json_with_cors(&response);
    }
}

#[test]
fn unknown_paths_are_404_json_and_other_methods_405_with_allow() {
    let response = client::request(STACK.host.addr, "GET", "/nope", &[], None);
    assert_eq!(
        (response.status, response.error().as_str()),
        (404, "Not found")
    );
    assert_json_with_cors(&response);

    let chats = format!(
        "/api/v1/chat_applications/{}/chats",
        support::unique_token()
    );
    for (method, path, allow) in [
        ("GET", chats.as_str(), "POST, OPTIONS"),
        ("DELETE", chats.as_str(), "POST, OPTIONS"),
        ("POST", "/health", "GET, OPTIONS"),
    ] {
        let response = client::request(STACK.host.addr, method, path, &[], None);
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.header("allow"), Some(allow));
        assert_eq!(response.error(), "Method not allowed");
        assert_json_with_cors(&response);
    }
}

/// The Rails API INCRs the same counters; whatever it took is never handed out again.
#[test]
fn numbers_taken_outside_the_component_are_never_reissued() {
    let (app_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(app_id, 1);
    assert_eq!(STACK.create_chat(&token).json()["number"], 2);
    assert_eq!(STACK.create_message(&token, 1, "a").json()["number"], 1);

    let mut redis = STACK.redis();
    let _: i64 = redis.cmd(&["INCR", &format!("chat_app:{app_id}:chat_counter")]);
    let _: i64 = redis.cmd(&["INCRBY", &format!("chat:{chat_id}:message_counter"), "5"]);

    assert_eq!(STACK.create_chat(&token).json()["number"], 4);
    assert_eq!(STACK.create_message(&token, 1, "b").json()["number"], 7);
}

#[test]
fn a_full_counter_is_409_and_takes_nothing() {
    let (app_id, token) = STACK.new_application();
    let key = format!("chat_app:{app_id}:chat_counter");
    let _: () = STACK.redis().cmd(&["SET", &key, "2147483646"]);
    assert_eq!(
        STACK.create_chat(&token).json()["number"],
        2_147_483_647_i64
    );
    let response = STACK.create_chat(&token);
    assert_eq!(response.status, 409);
    assert_eq!(
        response.error(),
        "This application has reached the maximum number of chats"
    );
    let full = Taken {
        last: Some(2_147_483_647),
        queued: 1,
    };
    STACK
        .redis()
        .assert_took_nothing(Counter::ChatsOf(app_id), full);
}

/// A Redis that cannot be reached: 503 with Retry-After, and no internals in the body.
#[test]
fn unreachable_redis_is_503_with_retry_after() {
    let host = serve(&[
        ("redis_url", "redis://:hunter2@127.0.0.1:1/0".to_owned()),
        ("redis_host", "127.0.0.1:1".to_owned()),
    ]);
    let (_, token) = STACK.new_application();
    let response = host.create_chat(&token);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(
        response.error(),
        "Service temporarily unavailable, please retry"
    );
    assert_json_with_cors(&response);
    let text = response.text();
    assert!(
        !text.contains("hunter2") && !text.contains("127.0.0.1"),
        "{text}"
    );
}

/// Spin lets a component open only the hosts in `allowed_outbound_hosts`; a URL that
/// points elsewhere is refused before any connection, and the request changes nothing.
/// The deployment is wrong, not the backend down: 500 without Retry-After.
#[test]
fn an_outbound_host_not_allowed_is_500_and_takes_nothing() {
    let (app_id, token) = STACK.new_application();
    let host = STACK.another_host(&[("redis_host", "127.0.0.2:6379")]);
    let response = host.create_chat(&token);
    assert_eq!(response.status, 500);
    assert_eq!(response.error(), "Service is misconfigured");
    assert_eq!(response.header("retry-after"), None);
    STACK
        .redis()
        .assert_took_nothing(Counter::ChatsOf(app_id), Taken::NOTHING);
}

/// `wit/` declares the world the component targets; the component must import exactly
/// its Spin interfaces, and otherwise only WASI.
#[test]
fn the_component_imports_exactly_the_world_in_wit() {
    let world = std::fs::read_to_string(support::repo_root().join("wit/world.wit")).unwrap();
    let declared: std::collections::BTreeSet<String> = world
        .lines()
        .filter_map(|l| l.trim().strip_prefix("import "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    let wasm = support::repo_root().join("target/wasm32-wasip1/release/chat_service.wasm");
    let imports = spin_test_host::component_imports(&wasm).unwrap();
    let spin: std::collections::BTreeSet<String> = imports
        .iter()
        .filter(|i| !i.starts_with("wasi:"))
        .cloned()
        .collect();
    assert_eq!(
        spin, declared,
        "non-WASI imports must be exactly wit/world.wit's"
    );
    for import in imports.iter().filter(|i| i.starts_with("wasi:")) {
        let allowed = [
            "wasi:cli/",
            "wasi:io/",
            "wasi:clocks/",
            "wasi:random/",
            "wasi:filesystem/",
            "wasi:sockets/",
            "wasi:http/types@",
        ];
        assert!(
            allowed.iter().any(|p| import.starts_with(p)),
            "unexpected import {import}"
        );
    }
}

/// SpinKube's containerd-shim-spin 0.24 embeds Spin 3.6.3, so every interface the module
/// itself imports or exports must be one Spin 3.6 provides (a preview1 adapter's own
/// imports would be Spin's business: it applies the adapter it ships). These are the versions
/// checked against it: Spin 3.x's platform world includes `fermyon:spin/platform@2.0.0`
/// (`wit/deps/spin@3.5.0/world.wit` in spinframework/spin), every Spin since 2.0 links
/// WASI 0.2.0 and calls `wasi:http/incoming-handler@0.2.0`. A newer version (a newer
/// `wasi` or `spin-sdk` crate brings one) must first be checked against Spin 3.6.3's WIT,
/// then added here.
#[test]
fn nothing_the_module_uses_is_newer_than_spin_3_6_provides() {
    const SPIN_3_6: [(&str, &str); 2] = [("fermyon:spin/", "2.0.0"), ("wasi:", "0.2.0")];
    let wasm = support::repo_root().join("target/wasm32-wasip1/release/chat_service.wasm");
    let used = spin_test_host::module_interfaces(&wasm).unwrap();
    assert!(
        used.exports.contains("wasi:http/incoming-handler@0.2.0"),
        "the handler Spin 3.6's HTTP trigger calls: {:?}",
        used.exports
    );
    for interface in used.imports.iter().chain(&used.exports) {
        let (name, version) = interface
            .rsplit_once('@')
            .unwrap_or_else(|| panic!("{interface} has no version"));
        let checked = SPIN_3_6
            .iter()
            .find(|(package, _)| name.starts_with(package))
            .map(|(_, version)| *version);
        assert_eq!(
            checked,
            Some(version),
            "{interface}: not a version checked against Spin 3.6.3"
        );
    }
}

/// The module answers std's few preview 1 calls itself (src/preview1.rs), so Spin has no
/// preview1 adapter to instantiate and wire up for every request.
#[test]
fn the_module_needs_no_preview1_adapter() {
    let wasm = support::repo_root().join("target/wasm32-wasip1/release/chat_service.wasm");
    let used = spin_test_host::module_interfaces(&wasm).unwrap();
    assert!(
        used.preview1.is_empty(),
        "preview 1 imported: {:?}",
        used.preview1
    );
    let imports = spin_test_host::component_imports(&wasm).unwrap();
    assert!(
        !imports.iter().any(|i| i.starts_with("wasi:filesystem/")),
        "the adapter's imports are back: {imports:?}"
    );
}

/// After a Redis restart (or `SCRIPT FLUSH`) the script is gone: EVALSHA answers NOSCRIPT,
/// and the component runs it with EVAL, which loads it again. Nothing is done twice.
#[test]
fn a_flushed_script_cache_is_reloaded() {
    let (app_id, token) = STACK.new_application();
    let _: () = STACK.redis().cmd(&["SCRIPT", "FLUSH"]);
    assert_eq!(STACK.create_chat(&token).json()["number"], 1);
    assert_eq!(STACK.create_chat(&token).json()["number"], 2);
    assert_eq!(jobs_for("CreateChatJob", app_id).len(), 2);
}

/// Fault 1 of the Go service: a failure between INCR and LPUSH burned a number. The script
/// pushes the job before it touches the counter and undoes what it wrote when the push
/// fails, so a queue it cannot push to leaves the counter as it was, and the next request
/// gets the number that was not handed out.
#[test]
fn a_failed_enqueue_takes_no_number() {
    // A Redis database of its own: this test breaks the queue on purpose.
    let stack = Stack::start("atomic", 4);
    let (app_id, token) = stack.new_application();
    let mut redis = stack.redis();
    let _: () = redis.cmd(&["SET", "queue:default", "not a list"]);
    let response = stack.create_chat(&token);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    let counter = format!("chat_app:{app_id}:chat_counter");
    assert_eq!(redis.get_int(&counter), None, "no number was taken");

    let _: () = redis.cmd(&["DEL", "queue:default"]);
    assert_eq!(stack.create_chat(&token).json()["number"], 1);
    assert_eq!(redis.queue_len(), 1);
}

/// The same for Sidekiq's set of queue names: the script finds out only when SADD fails,
/// and then has written nothing else, so the counter and the queue are as they were.
#[test]
fn a_queue_set_of_the_wrong_type_takes_no_number_and_queues_nothing() {
    let stack = Stack::start("atomic_queues", 10);
    let (app_id, token) = stack.new_application();
    let mut redis = stack.redis();
    let _: () = redis.cmd(&["SET", "queues", "not a set"]);
    let response = stack.create_chat(&token);
    assert_eq!(response.status, 503);
    let counter = format!("chat_app:{app_id}:chat_counter");
    assert_eq!(redis.get_int(&counter), None, "no number was taken");
    assert_eq!(redis.queue_len(), 0, "no job was queued");
    let queues: String = redis.cmd(&["GET", "queues"]);
    assert_eq!(queues, "not a set");

    let _: () = redis.cmd(&["DEL", "queues"]);
    assert_eq!(stack.create_chat(&token).json()["number"], 1);
    let names: Vec<String> = redis.cmd(&["SMEMBERS", "queues"]);
    assert_eq!(names, ["default"]);
}

/// A queue that is not a list fails the LPUSH after SADD has run: the script takes the
/// queue name back out of a set it had just created, so Redis is left exactly as it was.
#[test]
fn a_failed_push_leaves_no_queue_name_behind() {
    let stack = Stack::start("atomic_push", 11);
    let (_, token) = stack.new_application();
    let mut redis = stack.redis();
    let _: () = redis.cmd(&["SET", "queue:default", "not a list"]);
    assert_eq!(stack.create_chat(&token).status, 503);
    let exists: i64 = redis.cmd(&["EXISTS", "queues"]);
    assert_eq!(exists, 0, "the SADD was undone");
}

/// "I could not check" is not "it does not exist": with MySQL unreachable, a lookup that
/// needs it answers 503, never 404, and takes nothing.
#[test]
fn unreachable_mysql_is_503_not_404() {
    let host = STACK.another_host(&[
        ("mysql_url", "mysql://root:hunter2@127.0.0.1:1/x"),
        ("mysql_host", "127.0.0.1:1"),
    ]);
    let (app_id, token) = STACK.new_application();
    let path = format!("/api/v1/chat_applications/{token}/chats");
    let response = client::request(host.addr, "POST", &path, &[], None);
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(!response.text().contains("hunter2"));
    STACK
        .redis()
        .assert_took_nothing(Counter::ChatsOf(app_id), Taken::NOTHING);
}

/// Fault 3 of the Go service: a chat created a moment ago has its number before the
/// worker has stored it. A message to it is held briefly for the row, then answered 409
/// with Retry-After, never `Chat not found`, and takes nothing.
#[test]
fn a_message_to_a_chat_not_yet_stored_is_409_with_retry_after() {
    let (_, token) = STACK.new_application();
    assert_eq!(STACK.create_chat(&token).json()["number"], 1);
    let started = std::time::Instant::now();
    let response = STACK.create_message(&token, 1, "too early");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "held first"
    );
    assert_eq!(response.status, 409);
    assert_eq!(
        response.error(),
        "Chat is still being created, please retry"
    );
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_json_with_cors(&response);
    // A number nobody handed out is still simply not found.
    assert_eq!(
        STACK.create_message(&token, 2, "x").error(),
        "Chat not found"
    );
}

#[test]
fn a_message_waits_for_a_chat_being_stored() {
    let (app_id, token) = STACK.new_application();
    assert_eq!(STACK.create_chat(&token).json()["number"], 1);
    // The worker stores the chat a moment after the message request arrives.
    let worker = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        STACK.insert_chat(app_id, 1)
    });
    let response = STACK.create_message(&token, 1, "just in time");
    let chat_id = worker.join().unwrap();
    assert_eq!(response.status, 201, "{response:?}");
    assert_eq!(response.json()["number"], 1);
    assert_eq!(jobs_for("CreateMessageJob", chat_id).len(), 1);
}

/// Fault 7 of the Go service: a client retrying after a timeout created a second chat or
/// message. With an `Idempotency-Key`, a repeat gets the first answer, takes no number
/// and queues nothing; the same key on a different request is 422.
#[test]
fn a_repeat_with_the_same_idempotency_key_gets_the_first_answer() {
    let (app_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(app_id, 1);
    let post = |path: &str, key: &str, body: Option<&str>| {
        let headers = [("Idempotency-Key", key)];
        client::request(
            STACK.host.addr,
            "POST",
            path,
            &headers,
            body.map(str::as_bytes),
        )
    };
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let messages = format!("/api/v1/chat_applications/{token}/chats/1/messages");
    let hello = r#"{"message":{"body":"hello"}}"#;
    // The first chat and the first message take a number each (the chat counter starts
    // after the persisted chat 1); a repeat, a reused key and an invalid one take nothing.
    let (chats_of, messages_of) = (Counter::ChatsOf(app_id), Counter::MessagesOf(chat_id));
    let one_chat = Taken {
        last: Some(2),
        queued: 1,
    };
    let one_message = Taken {
        last: Some(1),
        queued: 1,
    };

    let first = post(&chats, "chat-key-1", None);
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = post(&chats, "chat-key-1", None);
    assert_eq!(
        (again.status, again.body.clone()),
        (201, first.body.clone())
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_json_with_cors(&again);
    STACK.redis().assert_took_nothing(chats_of, one_chat);

    let first = post(&messages, "message-key-1", Some(hello));
    let again = post(&messages, "message-key-1", Some(hello));
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(again.body, first.body);
    STACK.redis().assert_took_nothing(messages_of, one_message);

    for (path, body) in [
        (&messages, Some(r#"{"message":{"body":"something else"}}"#)),
        (&chats, None),
    ] {
        let reused = post(path, "message-key-1", body);
        assert_eq!(reused.status, 422, "{path}");
        assert_eq!(
            reused.error(),
            "Idempotency-Key was already used for a different request"
        );
    }
    let mut redis = STACK.redis();
    redis.assert_took_nothing(messages_of, one_message);
    redis.assert_took_nothing(chats_of, one_chat);

    // Another application may use the same key for its own request.
    let (_, other) = STACK.new_application();
    let path = format!("/api/v1/chat_applications/{other}/chats");
    assert_eq!(
        post(&path, "chat-key-1", None).header("idempotent-replayed"),
        None
    );

    let invalid = post(&chats, "has space", None);
    assert_eq!(invalid.status, 400);
    STACK.redis().assert_took_nothing(chats_of, one_chat);
}

/// With MySQL down, a request whose lookups are cached still succeeds; only a lookup that
/// needs MySQL gets 503.
#[test]
fn cached_lookups_survive_a_mysql_outage() {
    let (app_id, token) = STACK.new_application();
    STACK.insert_chat(app_id, 1);
    // Warm the cache through the healthy host.
    assert_eq!(STACK.create_chat(&token).status, 201);
    assert_eq!(STACK.create_message(&token, 1, "warm").status, 201);

    // The same Redis, and a MySQL that cannot be reached.
    let host = STACK.another_host(&[
        ("mysql_url", "mysql://root@127.0.0.1:1/x"),
        ("mysql_host", "127.0.0.1:1"),
    ]);
    let post = |path: String, body: Option<&str>| {
        client::request(host.addr, "POST", &path, &[], body.map(str::as_bytes))
    };
    let chat = post(format!("/api/v1/chat_applications/{token}/chats"), None);
    assert_eq!(
        (chat.status, chat.json()["number"].as_i64()),
        (201, Some(3))
    );
    let message = post(
        format!("/api/v1/chat_applications/{token}/chats/1/messages"),
        Some(r#"{"message":{"body":"still works"}}"#),
    );
    assert_eq!(
        (message.status, message.json()["number"].as_i64()),
        (201, Some(2))
    );

    let (_, cold) = STACK.new_application();
    let response = post(format!("/api/v1/chat_applications/{cold}/chats"), None);
    assert_eq!(
        response.status, 503,
        "a lookup that needs MySQL cannot be answered"
    );
}

/// The optional API key: off by default (every other test runs without one); when set,
/// requests need `Authorization: Bearer <key>` and get 401 otherwise, taking nothing.
#[test]
fn a_configured_api_key_is_required_and_a_401_takes_nothing() {
    let (app_id, token) = STACK.new_application();
    let host = STACK.another_host(&[("api_key", "s3cret-key")]);
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    for authorization in [None, Some("Bearer wrong"), Some("s3cret-key")] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        let response = client::request(host.addr, "POST", &chats, &headers, None);
        assert_eq!(response.status, 401, "{authorization:?}");
        assert_eq!(response.error(), "Missing or invalid API key");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
        assert_json_with_cors(&response);
    }
    STACK
        .redis()
        .assert_took_nothing(Counter::ChatsOf(app_id), Taken::NOTHING);

    let headers = [("Authorization", "Bearer s3cret-key")];
    let response = client::request(host.addr, "POST", &chats, &headers, None);
    assert_eq!(response.status, 201);
    // Liveness and preflight stay open.
    assert_eq!(
        client::request(host.addr, "GET", "/health", &[], None).status,
        200
    );
    assert_eq!(
        client::request(host.addr, "OPTIONS", &chats, &[], None).status,
        204
    );
}

/// CORS origins: `*` by default (the Go service's), or a configured list, where a listed
/// origin is echoed and any other gets no `Access-Control-Allow-Origin` at all.
#[test]
fn configured_cors_origins_echo_a_listed_origin_and_admit_no_other() {
    let host = STACK.another_host(&[(
        "cors_allowed_origins",
        "https://app.example, https://admin.example",
    )]);
    let request = |origin: &str| {
        client::request(host.addr, "OPTIONS", "/health", &[("Origin", origin)], None)
    };
    let listed = request("https://admin.example");
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("https://admin.example")
    );
    assert_eq!(listed.header("vary"), Some("Origin"));
    let other = request("https://evil.example");
    assert_eq!(other.status, 204);
    assert_eq!(other.header("access-control-allow-origin"), None);

    let default = client::request(
        STACK.host.addr,
        "OPTIONS",
        "/health",
        &[("Origin", "https://any.example")],
        None,
    );
    assert_eq!(default.header("access-control-allow-origin"), Some("*"));
}

/// Every response carries `X-Request-Id`: the client's own when it sent a usable one,
/// else a fresh 32-hex id, so a client's report can be matched with the log line.
#[test]
fn every_response_carries_a_request_id() {
    let (_, token) = STACK.new_application();
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let fresh = |response: &Response| {
        let id = response
            .header("x-request-id")
            .unwrap_or_default()
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        id
    };
    let first = fresh(&client::request(
        STACK.host.addr,
        "GET",
        "/health",
        &[],
        None,
    ));
    let second = fresh(&client::request(STACK.host.addr, "POST", &chats, &[], None));
    assert_ne!(first, second);
    fresh(&client::request(
        STACK.host.addr,
        "GET",
        "/nowhere",
        &[],
        None,
    ));

    for (method, path) in [
        ("POST", chats.as_str()),
        ("GET", "/nowhere"),
        ("OPTIONS", "/health"),
    ] {
        let sent = [("X-Request-Id", "req-7f3c9a52/edge")];
        let response = client::request(STACK.host.addr, method, path, &sent, None);
        assert_eq!(
            response.header("x-request-id"),
            Some("req-7f3c9a52/edge"),
            "{method} {path}"
        );
    }
    // Not visible ASCII, or too long: replaced rather than echoed into headers and logs.
    let long = "x".repeat(129);
    for unusable in ["two words", long.as_str()] {
        let sent = [("X-Request-Id", unusable)];
        fresh(&client::request(
            STACK.host.addr,
            "GET",
            "/health",
            &sent,
            None,
        ));
    }
}

/// `/ready` opens Redis and MySQL as a request would; `/health` touches neither. A
/// failed check is 503 with Retry-After, names the backend, and leaks no URL or secret.
#[test]
fn ready_is_200_when_both_backends_answer_and_503_naming_the_one_that_fails() {
    let response = client::request(STACK.host.addr, "GET", "/ready", &[], None);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json(),
        json!({"status": "ready", "checks": {"redis": "ok", "mysql": "ok"}})
    );
    assert_json_with_cors(&response);

    let no_mysql = STACK.another_host(&[
        ("mysql_url", "mysql://root:hunter2@127.0.0.1:1/x"),
        ("mysql_host", "127.0.0.1:1"),
    ]);
    let no_redis = STACK.another_host(&[
        ("redis_url", "redis://:hunter2@127.0.0.1:1/0"),
        ("redis_host", "127.0.0.1:1"),
    ]);
    for (host, checks) in [
        (&no_mysql, json!({"redis": "ok", "mysql": "unavailable"})),
        (&no_redis, json!({"redis": "unavailable", "mysql": "ok"})),
    ] {
        let response = client::request(host.addr, "GET", "/ready", &[], None);
        assert_eq!(response.status, 503);
        assert_eq!(
            response.json(),
            json!({"status": "unavailable", "checks": checks})
        );
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_json_with_cors(&response);
        assert!(!response.text().contains("hunter2"));
        // Liveness does not depend on the backends.
        assert_eq!(
            client::request(host.addr, "GET", "/health", &[], None).status,
            200
        );
    }
}

/// The optional rate limit per application (off everywhere else): over the limit, 429
/// with Retry-After, and nothing taken or queued; other applications are not affected,
/// and the application is served again in the next second.
#[test]
fn the_rate_limit_is_per_application_and_a_429_takes_nothing() {
    const LIMIT: usize = 5;
    const SENT: usize = 20;
    let host = STACK.another_host(&[("rate_limit_per_second", "5")]);
    let (app_id, token) = STACK.new_application();
    STACK.insert_chat(app_id, 1);
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let messages = format!("/api/v1/chat_applications/{token}/chats/1/messages");
    let body = br#"{"message":{"body":"hi"}}"#;

    let (mut created, mut limited) = (0, 0);
    for i in 0..SENT {
        // Chats and messages count against the same per-token limit.
        let response = if i % 2 == 0 {
            client::request(host.addr, "POST", &chats, &[], None)
        } else {
            client::request(host.addr, "POST", &messages, &[], Some(body))
        };
        match response.status {
            201 => created += 1,
            429 => {
                limited += 1;
                assert_eq!(response.error(), "Rate limit exceeded");
                assert_eq!(response.header("retry-after"), Some("1"));
                assert_json_with_cors(&response);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    // The window is one second of Redis's clock; a burst this short spans at most two.
    assert!((LIMIT..=2 * LIMIT).contains(&created), "{created} created");
    assert_eq!(created + limited, SENT);
    let chat_counter = STACK
        .redis()
        .get_int(&format!("chat_app:{app_id}:chat_counter"));
    let chat_id: i64 = STACK.sql(&format!(
        "SELECT id FROM chats WHERE chat_application_id = {app_id}"
    ))[0][0]
        .parse()
        .unwrap();
    let message_counter = STACK
        .redis()
        .get_int(&format!("chat:{chat_id}:message_counter"));
    let taken = chat_counter.unwrap_or(1) - 1 + message_counter.unwrap_or(0);
    assert_eq!(taken as usize, created, "numbers taken");
    let queued =
        jobs_for("CreateChatJob", app_id).len() + jobs_for("CreateMessageJob", chat_id).len();
    assert_eq!(queued, created, "jobs queued");

    let (_, other) = STACK.new_application();
    let response = client::request(
        host.addr,
        "POST",
        &format!("/api/v1/chat_applications/{other}/chats"),
        &[],
        None,
    );
    assert_eq!(response.status, 201, "another token has its own limit");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_eq!(
        client::request(host.addr, "POST", &chats, &[], None).status,
        201
    );
}

/// MySQL matches tokens regardless of case and trailing spaces, so several spellings of
/// a token reach one application: they share its rate limit (found by the schemathesis
/// run: each spelling used to get a limit of its own).
#[test]
fn every_spelling_of_a_token_shares_the_applications_rate_limit() {
    let host = STACK.another_host(&[("rate_limit_per_second", "1")]);
    let (app_id, token) = STACK.new_application();
    let spellings = [
        token.clone(),
        token.to_uppercase(),
        format!("{token}%20"),
        format!("{token}%20%20"),
        format!("{}{}", &token[..16], token[16..].to_uppercase()),
        token.clone(),
    ];
    let created = spellings
        .iter()
        .map(|t| {
            let path = format!("/api/v1/chat_applications/{t}/chats");
            client::request(host.addr, "POST", &path, &[], None).status
        })
        .filter(|status| *status == 201)
        .count();
    // One per second of Redis's clock; a burst this short spans at most two.
    assert!((1..=2).contains(&created), "{created} created");
    let counter = STACK
        .redis()
        .get_int(&format!("chat_app:{app_id}:chat_counter"));
    assert_eq!(counter, Some(created as i64));
}

/// An `Idempotency-Key` belongs to the application, not to the text of the token: a
/// token and a key that contain `:` can never make one application's request replay
/// another's answer (found by reading the script during the schemathesis work).
#[test]
fn idempotency_keys_of_two_applications_never_meet() {
    let (_, token) = STACK.new_application();
    let colon_token = format!("{token}:y");
    STACK.sql(&format!(
        "INSERT INTO chat_applications (name, token, chats_count, created_at, updated_at) \
         VALUES ('colon', '{colon_token}', 0, NOW(6), NOW(6))"
    ));
    let other_id: i64 = STACK.sql(&format!(
        "SELECT id FROM chat_applications WHERE token = '{colon_token}'"
    ))[0][0]
        .parse()
        .unwrap();
    let post = |token: &str, key: &str| STACK.host.create_chat_with_key(token, key);
    let first = post(&token, "y:k");
    assert_eq!(first.status, 201);
    let second = post(&colon_token, "k");
    assert_eq!(second.status, 201);
    assert_eq!(second.header("idempotent-replayed"), None, "not a replay");
    assert_eq!(jobs_for("CreateChatJob", other_id).len(), 1);
    assert_eq!(
        STACK
            .redis()
            .get_int(&format!("chat_app:{other_id}:chat_counter")),
        Some(1)
    );
}

/// One JSON line per request on the component's stderr: method, the route template (never
/// the token), status, duration and the request id the response carried; for a server-side
/// failure its cause, with no secret in it.
#[test]
fn each_request_logs_one_json_line_with_its_request_id() {
    let host = STACK.another_host(&[]);
    let dead = STACK.another_host(&[
        ("redis_url", "redis://:hunter2@127.0.0.1:1/0"),
        ("redis_host", "127.0.0.1:1"),
    ]);
    let (_, token) = STACK.new_application();
    let chats = format!("/api/v1/chat_applications/{token}/chats");
    let created = client::request(
        host.addr,
        "POST",
        &chats,
        &[("X-Request-Id", "log-test-1")],
        None,
    );
    assert_eq!(created.status, 201);
    let failed = client::request(dead.addr, "POST", &chats, &[], None);
    assert_eq!(failed.status, 503);
    let failed_id = failed.header("x-request-id").unwrap().to_owned();

    let one_line = |host: &support::Host| -> Value {
        let lines = support::eventually("a log line", std::time::Duration::from_secs(5), || {
            let lines = host.log_lines();
            (!lines.is_empty()).then_some(lines)
        });
        assert_eq!(lines.len(), 1, "one line per request: {lines:?}");
        assert!(
            !lines[0].contains(&token) && !lines[0].contains("hunter2"),
            "{}",
            lines[0]
        );
        serde_json::from_str(&lines[0]).unwrap()
    };
    let ok = one_line(&host);
    assert_eq!(ok["request_id"], "log-test-1");
    assert_eq!(ok["method"], "POST");
    assert_eq!(ok["route"], "/api/v1/chat_applications/:token/chats");
    assert_eq!(ok["status"], 201);
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(ok.get("error"), None);
    let bad = one_line(&dead);
    assert_eq!(bad["request_id"], failed_id.as_str());
    assert_eq!(bad["status"], 503);
    assert!(
        bad["error"].as_str().unwrap().starts_with("redis: "),
        "{bad}"
    );
}

/// A MySQL URL whose host is not in `allowed_outbound_hosts`: Spin refuses to open it with
/// a text that quotes the whole URL, password and all. The request is a prompt 500 (a
/// misconfiguration) and `/ready` a 503, and their log lines say what to set, with no
/// part of the URL's user info.
#[test]
fn a_refused_mysql_address_is_logged_without_its_credentials() {
    let host = STACK.another_host(&[
        (
            "mysql_url",
            "mysql://rails_app:hunter2@127.0.0.1:3306/elsewhere",
        ),
        ("mysql_host", "127.0.0.2:3306"),
    ]);
    // A new application is not cached: the request needs MySQL.
    let (_, token) = STACK.new_application();
    let response = host.create_chat(&token);
    assert_eq!(response.status, 500);
    assert!(!response.text().contains("hunter2"));
    let lines = support::eventually("a log line", std::time::Duration::from_secs(5), || {
        let lines = host.log_lines();
        (!lines.is_empty()).then_some(lines)
    });
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    let cause = line["error"].as_str().unwrap();
    assert!(cause.contains("mysql_host"), "{cause}");
    assert_eq!(host.get("/ready").status, 503);
    let lines = support::eventually("two log lines", std::time::Duration::from_secs(5), || {
        let lines = host.log_lines();
        (lines.len() >= 2).then_some(lines)
    });
    for line in &lines {
        // The whole user info: a database user name is half a login.
        assert!(
            !line.contains("hunter2") && !line.contains("rails_app") && line.contains("mysql_host"),
            "{line}"
        );
    }
}

/// Spin hands a component only header values that are UTF-8 and answers any other request
/// itself, with an empty 500, before the service runs (HTTP allows other bytes, as
/// obsolete text; Spin's `prepare_request_headers` fails on them). Such a request takes
/// no number and queues nothing; docs/openapi.yaml says so.
#[test]
fn a_header_value_spin_cannot_read_is_its_empty_500_and_takes_nothing() {
    let (app_id, token) = STACK.new_application();
    let request = [
        format!(
            "POST /api/v1/chat_applications/{token}/chats HTTP/1.1\r\nHost: x\r\n\
             Connection: close\r\nIdempotency-Key: caf"
        )
        .into_bytes(),
        // "é" in Latin-1, as an HTTP client that writes header text in ISO-8859-1 sends it.
        b"\xe9\r\n\r\n".to_vec(),
    ]
    .concat();
    let response = client::raw(STACK.host.addr, &request);
    assert_eq!(response.status, 500);
    assert!(response.body.is_empty(), "{response:?}");
    assert_eq!(response.header("content-type"), None);
    STACK
        .redis()
        .assert_took_nothing(Counter::ChatsOf(app_id), Taken::NOTHING);
    // The same key in UTF-8 reaches the service, which refuses it as it should.
    let utf8 = client::request(
        STACK.host.addr,
        "POST",
        &format!("/api/v1/chat_applications/{token}/chats"),
        &[("Idempotency-Key", "café")],
        None,
    );
    assert_eq!(utf8.status, 400);
    assert_json_with_cors(&utf8);
}
