//! docs/openapi.yaml against the served component: schemathesis (tests/requirements.txt,
//! in the virtualenv scripts/install-deps makes) generates requests from the description
//! and checks every response against it: no 5xx, and status, content type, headers and
//! body as described. Its settings are tests/schemathesis.toml; its custom checks and the
//! per-operation figures it prints are tests/schemathesis_hooks.py.
//!
//! The fuzzer reaches the 201 paths through the README's demo application, which these
//! tests create with persisted chats 1 to 3, and the real Rails worker stores what it
//! queues: every number a 201 handed out must become a row, with no failed job. Two
//! shorter runs cover the settings that add statuses: a rate limit (429) and an API key
//! the fuzzer does not know (401); neither may take a number it did not answer 201 for.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use support::worker::{Worker, wait_for_count};
use support::{Stack, repo_root};

/// Both tests use this binary's Redis database and MySQL database, so they take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// The token tests/schemathesis.toml feeds the fuzzer (and the description's example).
const DEMO_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const PERSISTED_CHATS: i64 = 3;
const CREATE_CHAT: &str = "POST /api/v1/chat_applications/{token}/chats";
const CREATE_MESSAGE: &str = "POST /api/v1/chat_applications/{token}/chats/{number}/messages";
/// A run takes about 30 s here; past this it is hung, not slow.
const DEADLINE: Duration = Duration::from_secs(300);

/// Responses per operation and outcome: `"201"`, `"201 replayed"`, `"404 Chat not found"`.
type Summary = HashMap<String, HashMap<String, u64>>;

/// The demo application with chats 1 to 3 stored, as the Rails side would have them.
fn demo_application(stack: &Stack) -> i64 {
    stack.sql(&format!(
        "INSERT INTO chat_applications (name, token, chats_count, created_at, updated_at) \
         VALUES ('demo', '{DEMO_TOKEN}', {PERSISTED_CHATS}, NOW(6), NOW(6))"
    ));
    let id = stack.sql(&format!(
        "SELECT id FROM chat_applications WHERE token = '{DEMO_TOKEN}'"
    ))[0][0]
        .parse()
        .unwrap();
    for number in 1..=PERSISTED_CHATS {
        stack.insert_chat(id, number);
    }
    id
}

/// Runs schemathesis on the description against the stack; fails the test if it reports
/// any failure. Its output goes straight to the test's stdout, so the figures show.
fn fuzz(stack: &Stack, api_key: Option<&str>, extra: &[&str]) -> Summary {
    let st = repo_root().join("target/py/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run scripts/install-deps (scripts/test does)",
        st.display()
    );
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openapi");
    std::fs::create_dir_all(&scratch).unwrap();
    let summary_file = scratch.join("summary.json");
    let _ = std::fs::remove_file(&summary_file);

    let mut command = Command::new(&st);
    command
        .current_dir(repo_root())
        .args(["--config-file", "tests/schemathesis.toml", "run"])
        .arg("docs/openapi.yaml")
        .arg(format!("--url=http://{}", stack.host.addr))
        .arg("--no-color")
        .args(extra)
        .env("OPENAPI_FUZZ_SUMMARY", &summary_file)
        // Hypothesis keeps a cache in the working directory unless told otherwise.
        .env("HYPOTHESIS_STORAGE_DIRECTORY", scratch.join("hypothesis"))
        .env_remove("OPENAPI_FUZZ_API_KEY");
    if let Some(key) = api_key {
        command.env("OPENAPI_FUZZ_API_KEY", key);
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("schemathesis starts");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("schemathesis did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("schemathesis ran {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        status.success(),
        "schemathesis found responses that do not match docs/openapi.yaml ({status}); \
         its report is above"
    );
    let summary = std::fs::read(&summary_file).expect("the hooks wrote the run's figures");
    serde_json::from_slice(&summary).unwrap()
}

fn count(summary: &Summary, operation: &str, outcome: impl Fn(&str) -> bool) -> u64 {
    summary.get(operation).map_or(0, |outcomes| {
        outcomes
            .iter()
            .filter(|(o, _)| outcome(o))
            .map(|(_, n)| n)
            .sum()
    })
}

#[test]
fn every_response_matches_the_description_and_every_201_is_persisted() {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let stack = Stack::start("openapi", 6);
    let app_id = demo_application(&stack);
    let _worker = Worker::start(&stack);

    let summary = fuzz(&stack, None, &[]);

    // The dictionaries work: the fuzz took numbers, not only 4xx.
    let chats = count(&summary, CREATE_CHAT, |o| o == "201") as i64;
    let messages = count(&summary, CREATE_MESSAGE, |o| o == "201") as i64;
    assert!(
        chats >= 20 && messages >= 20,
        "the fuzz reached the 201 paths: {chats} chats, {messages} messages"
    );

    // Every 201 that was not a replay took exactly one number...
    let mut redis = stack.redis();
    let chat_counter = redis
        .get_int(&format!("chat_app:{app_id}:chat_counter"))
        .unwrap();
    assert_eq!(chat_counter, PERSISTED_CHATS + chats, "chat numbers taken");
    let message_counters: HashMap<i64, i64> = redis
        .cmd::<Vec<String>>(&["KEYS", "chat:*:message_counter"])
        .iter()
        .map(|key| {
            let chat_id = key.split(':').nth(1).unwrap().parse().unwrap();
            (chat_id, redis.get_int(key).unwrap())
        })
        .collect();
    assert_eq!(
        message_counters.values().sum::<i64>(),
        messages,
        "message numbers taken"
    );

    // ...and the worker stored each of them: rows numbered 1 to the counter, no failures.
    wait_for_count(
        &stack,
        "the fuzz's chats",
        &format!("SELECT COUNT(*) FROM chats WHERE chat_application_id = {app_id}"),
        chat_counter,
    );
    wait_for_count(
        &stack,
        "the fuzz's messages",
        "SELECT COUNT(*) FROM messages",
        messages,
    );
    let chat_rows = stack.sql(&format!(
        "SELECT COUNT(*), MAX(number) FROM chats WHERE chat_application_id = {app_id}"
    ));
    assert_eq!(
        chat_rows,
        [[chat_counter.to_string(), chat_counter.to_string()]]
    );
    for row in stack.sql(
        "SELECT c.id, COUNT(m.id), COALESCE(MAX(m.number), 0) \
         FROM chats c LEFT JOIN messages m ON m.chat_id = c.id GROUP BY c.id",
    ) {
        let chat_id: i64 = row[0].parse().unwrap();
        let counter = message_counters.get(&chat_id).copied().unwrap_or(0);
        assert_eq!(
            (
                row[1].parse::<i64>().unwrap(),
                row[2].parse::<i64>().unwrap()
            ),
            (counter, counter),
            "messages of chat id {chat_id}"
        );
    }
    assert_eq!(stack.redis().queue_len(), 0, "the queue is drained");
    assert_eq!(
        stack.redis().failed_jobs(),
        (0, 0, 0),
        "no retries, no dead jobs"
    );
}

#[test]
fn over_the_rate_limit_a_post_is_429_and_takes_nothing() {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    // One number per token and second: the fuzzer sends many more, so most of its
    // well-formed POSTs for the demo application meet the limit.
    let stack = Stack::start_with("openapi", 6, &[("rate_limit_per_second", "1")]);
    let app_id = demo_application(&stack);

    let summary = fuzz(
        &stack,
        None,
        &["--include-method=POST", "--max-examples=20"],
    );

    let limited: u64 = [CREATE_CHAT, CREATE_MESSAGE]
        .iter()
        .map(|operation| count(&summary, operation, |o| o == "429 Rate limit exceeded"))
        .sum();
    assert!(limited >= 20, "{limited} answers 429");
    // No worker runs: every number taken is still queued, one job per fresh 201.
    let chats = count(&summary, CREATE_CHAT, |o| o == "201") as i64;
    let messages = count(&summary, CREATE_MESSAGE, |o| o == "201") as i64;
    let mut redis = stack.redis();
    assert_eq!(
        redis.get_int(&format!("chat_app:{app_id}:chat_counter")),
        Some(PERSISTED_CHATS + chats)
    );
    let message_counters: Vec<String> = redis.cmd(&["KEYS", "chat:*:message_counter"]);
    let taken: i64 = message_counters
        .iter()
        .map(|key| redis.get_int(key).unwrap())
        .sum();
    assert_eq!(taken, messages, "message numbers taken");
    assert_eq!(
        redis.queue_len() as i64,
        chats + messages,
        "one job per 201"
    );
}

#[test]
fn with_an_api_key_no_request_without_it_takes_a_number() {
    let _turn = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let key = "fuzz-5d41402abc4b2a76b9719d911017c592";
    let stack = Stack::start_with("openapi", 6, &[("api_key", key)]);
    demo_application(&stack);

    // The fuzzer is not given the key: `ignored_auth` fails the run on any 2xx to a
    // POST, and the 401 answers are checked against the description like any other.
    let summary = fuzz(&stack, Some(key), &["--max-examples=30"]);

    for operation in [CREATE_CHAT, CREATE_MESSAGE] {
        let refused = count(&summary, operation, |o| {
            o == "401 Missing or invalid API key"
        });
        assert!(refused >= 20, "{operation}: {refused} answers 401");
        let created = count(&summary, operation, |o| o.starts_with("201"));
        assert_eq!(created, 0, "{operation} without the key");
    }
    let mut redis = stack.redis();
    assert_eq!(redis.queue_len(), 0, "nothing queued");
    let counters: Vec<String> = redis.cmd(&["KEYS", "chat*_counter"]);
    assert_eq!(counters, Vec::<String>::new(), "no number taken");
}
