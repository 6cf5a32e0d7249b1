//! What the component queues, the real Rails worker persists: a Sidekiq process running
//! `CreateChatJob` and `CreateMessageJob` (tests/rails/worker.rb, on Debian's sidekiq,
//! activejob, activerecord and mysql2) turns every 201 into exactly one row.
//!
//! And what the Rails side makes of a message when search is down (docs/rails.md, "What
//! a 201 cannot cover"): the Rails app's own job against the one docs/rails.md advises.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use support::worker::{Worker, wait_for_count};
use support::{Response, Stack, eventually};

const CHATS: i64 = 300;
const MESSAGE_CHATS: i64 = 4;
const MESSAGES_PER_CHAT: i64 = 50;

/// Runs `count` requests at once (one thread each, released together).
fn concurrently(
    count: usize,
    request: impl Fn(usize) -> Response + Send + Sync + 'static,
) -> Vec<Response> {
    let barrier = Arc::new(Barrier::new(count));
    let request = Arc::new(request);
    let handles: Vec<_> = (0..count)
        .map(|i| {
            let (barrier, request) = (barrier.clone(), request.clone());
            thread::spawn(move || {
                barrier.wait();
                request(i)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn numbers(responses: &[Response]) -> BTreeSet<i64> {
    responses
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{r:?}");
            r.json()["number"].as_i64().unwrap()
        })
        .collect()
}

/// A text per message that exercises what the job's JSON must carry intact.
fn text(i: usize) -> String {
    format!(
        "message {i}: héllo 👋🏽 日本語 — \"double\" 'single' `tick`\nline two\r\n\ttab \\ {}",
        "ü".repeat(i)
    )
}

#[test]
fn every_201_becomes_exactly_one_row() {
    let stack = Arc::new(Stack::start("persistence", 2));
    let (app_id, token) = stack.new_application();
    let _worker = Worker::start(&stack);

    // 300 concurrent chat creations: numbers unique and contiguous.
    let responses = {
        let (stack, token) = (stack.clone(), token.clone());
        concurrently(CHATS as usize, move |_| stack.create_chat(&token))
    };
    assert_eq!(numbers(&responses), (1..=CHATS).collect());
    wait_for_count(
        &stack,
        "chat rows",
        &format!("SELECT COUNT(*) FROM chats WHERE chat_application_id = {app_id}"),
        CHATS,
    );
    let rows = stack.sql(&format!(
        "SELECT number FROM chats WHERE chat_application_id = {app_id} ORDER BY number"
    ));
    let persisted: Vec<i64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(
        persisted,
        (1..=CHATS).collect::<Vec<_>>(),
        "exactly one row per 201"
    );
    assert_eq!(
        stack.sql(&format!(
            "SELECT chats_count FROM chat_applications WHERE id = {app_id}"
        ))[0][0],
        CHATS.to_string()
    );

    // 200 concurrent messages over four of those chats.
    let responses = {
        let (stack, token) = (stack.clone(), token.clone());
        concurrently((MESSAGE_CHATS * MESSAGES_PER_CHAT) as usize, move |i| {
            stack.create_message(&token, 1 + (i as i64 % MESSAGE_CHATS), &text(i))
        })
    };
    let mut sent: Vec<(i64, i64, String)> = Vec::new(); // (chat number, message number, text)
    for (i, response) in responses.iter().enumerate() {
        assert_eq!(response.status, 201, "{response:?}");
        sent.push((
            1 + (i as i64 % MESSAGE_CHATS),
            response.json()["number"].as_i64().unwrap(),
            text(i),
        ));
    }
    for chat in 1..=MESSAGE_CHATS {
        let got: BTreeSet<i64> = sent.iter().filter(|s| s.0 == chat).map(|s| s.1).collect();
        assert_eq!(got, (1..=MESSAGES_PER_CHAT).collect(), "chat {chat}");
    }
    let total = MESSAGE_CHATS * MESSAGES_PER_CHAT;
    let in_app = format!(
        "SELECT {{}} FROM messages m JOIN chats c ON c.id = m.chat_id WHERE c.chat_application_id = {app_id}"
    );
    wait_for_count(
        &stack,
        "message rows",
        &in_app.replace("{}", "COUNT(*)"),
        total,
    );
    let rows = stack.sql(&in_app.replace("{}", "c.number, m.number, HEX(m.body)"));
    assert_eq!(rows.len() as i64, total, "exactly one row per 201");
    for (chat, number, body) in &sent {
        let hex: String = body.bytes().map(|b| format!("{b:02X}")).collect();
        assert!(
            rows.contains(&vec![chat.to_string(), number.to_string(), hex]),
            "message {number} of chat {chat} is stored byte for byte"
        );
    }
    let counts = stack.sql(&format!(
        "SELECT number, messages_count FROM chats WHERE chat_application_id = {app_id} AND number <= {MESSAGE_CHATS} ORDER BY number"
    ));
    for row in counts {
        assert_eq!(
            row[1],
            MESSAGES_PER_CHAT.to_string(),
            "messages_count of chat {}",
            row[0]
        );
    }

    assert_eq!(
        stack.redis().failed_jobs(),
        (0, 0, 0),
        "nothing in retry or dead, no failures"
    );

    // Redis loses everything (counters, cache, queue; FLUSHDB on this test's database
    // stands in for FLUSHALL): numbering continues after MAX(number) in MySQL, instead
    // of handing out numbers that exist (fault 5), and the worker persists the new rows.
    stack.redis().flushdb();
    assert_eq!(stack.create_chat(&token).json()["number"], CHATS + 1);
    let after = stack.create_message(&token, 1, "after the flush");
    assert_eq!(after.json()["number"], MESSAGES_PER_CHAT + 1);
    let chats_in_app = format!("SELECT COUNT(*) FROM chats WHERE chat_application_id = {app_id}");
    wait_for_count(&stack, "the chat after the flush", &chats_in_app, CHATS + 1);
    let messages_in_app = in_app.replace("{}", "COUNT(*)");
    wait_for_count(
        &stack,
        "the message after the flush",
        &messages_in_app,
        total + 1,
    );
    assert_eq!(
        stack.redis().failed_jobs(),
        (0, 0, 0),
        "no retries and no dead jobs after the flush"
    );

    // A message right after its chat's 201 (fault 3 of the Go service answered `Chat not
    // found` until the worker had run): held until the worker has stored the chat.
    let chat = stack.create_chat(&token).json()["number"].as_i64().unwrap();
    let message = stack.create_message(&token, chat, "right away");
    assert_eq!(message.status, 201, "{message:?}");
    assert_eq!(message.json()["number"], 1);
    wait_for_count(
        &stack,
        "the message right away",
        &messages_in_app,
        total + 2,
    );
    assert_eq!(
        stack.redis().failed_jobs(),
        (0, 0, 0),
        "no retries and no dead jobs"
    );
}

/// A job in Sidekiq's `retry` set that failed with `error_class`, once one is there.
fn failed_with(stack: &Stack, error_class: &str) -> (String, serde_json::Value) {
    eventually(
        &format!("a job in the retry set failed with {error_class}"),
        Duration::from_secs(60),
        || {
            let retrying: Vec<String> = stack.redis().cmd(&["ZRANGE", "retry", "0", "-1"]);
            retrying.into_iter().find_map(|raw| {
                let job: serde_json::Value = serde_json::from_str(&raw).unwrap();
                (job["error_class"] == error_class).then_some((raw, job))
            })
        },
    )
}

/// Sidekiq's retry of `raw` now, rather than after its backoff: from the retry set back
/// onto the queue, as its poller does.
fn retry_now(stack: &Stack, raw: &str) {
    let mut redis = stack.redis();
    let taken: i64 = redis.cmd(&["ZREM", "retry", raw]);
    assert_eq!(taken, 1, "the job left the retry set before it was retried");
    let _: i64 = redis.cmd(&["LPUSH", "queue:default", raw]);
}

fn count(stack: &Stack, sql: &str) -> i64 {
    stack.sql(sql)[0][0].parse().unwrap()
}

/// docs/rails.md, "What a 201 cannot cover on the Rails side": with search down, the Rails
/// app's own indexing (an after-commit callback) fails `CreateMessageJob` after the row is
/// stored; the retry then fails on the stored row, and `messages_count` never counts it.
#[test]
fn with_search_down_the_apps_own_job_stores_the_message_and_never_counts_it() {
    let stack = Stack::start("search_down_app", 7);
    let _worker = Worker::start_with_env(
        &stack,
        &[("SEARCH", "down"), ("RAILS_JOBS", "as_in_the_app")],
    );
    let (application, token) = stack.new_application();
    let chat = stack.insert_chat(application, 1);
    assert_eq!(stack.host.create_message(&token, 1, "hello").status, 201);

    let (raw, job) = failed_with(&stack, "SearchUnavailable");
    assert_eq!(job["wrapped"], "CreateMessageJob");
    assert_eq!(
        count(&stack, "SELECT COUNT(*) FROM messages"),
        1,
        "the row is stored"
    );
    let counted = format!("SELECT messages_count FROM chats WHERE id = {chat}");
    assert_eq!(count(&stack, &counted), 0);

    retry_now(&stack, &raw);
    let (_, job) = failed_with(&stack, "ActiveRecord::RecordInvalid");
    assert_eq!(
        job["retry_count"], 1,
        "the retry failed on the row the first run stored"
    );
    assert_eq!(count(&stack, "SELECT COUNT(*) FROM messages"), 1);
    assert_eq!(count(&stack, &counted), 0, "the message is never counted");
}

/// docs/rails.md's advice: indexing in a job of its own, so that search being down fails
/// only that job, and the message is stored and counted.
#[test]
fn with_search_down_the_advised_indexing_job_fails_alone_and_the_message_is_counted() {
    let stack = Stack::start("search_down_advised", 14);
    let _worker = Worker::start_with_env(&stack, &[("SEARCH", "down")]);
    let (application, token) = stack.new_application();
    let chat = stack.insert_chat(application, 1);
    assert_eq!(stack.host.create_message(&token, 1, "hello").status, 201);

    let (_, job) = failed_with(&stack, "SearchUnavailable");
    assert_eq!(job["wrapped"], "IndexMessageJob");
    let counted = format!("SELECT messages_count FROM chats WHERE id = {chat}");
    assert_eq!(count(&stack, &counted), 1, "the message is counted");
    assert_eq!(count(&stack, "SELECT COUNT(*) FROM messages"), 1);
    let retrying: Vec<String> = stack.redis().cmd(&["ZRANGE", "retry", "0", "-1"]);
    assert_eq!(
        retrying.len(),
        1,
        "only the indexing job failed: {retrying:?}"
    );
}
