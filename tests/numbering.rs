//! How numbers are taken, where a deployment's first weeks test it: a counter that fell
//! behind the stored numbers, the fill lock that one cache miss takes, and the lifetime of
//! idempotency records in a Redis that must not evict.

mod support;

use std::sync::LazyLock;

use support::{Stack, client};

static STACK: LazyLock<Stack> =
    LazyLock::new(|| Stack::start_with("numbering", 12, &[("idempotency_key_seconds", "3600")]));

fn chat_counter(app_id: i64) -> String {
    format!("chat_app:{app_id}:chat_counter")
}

fn fill_lock(token: &str) -> String {
    format!("chat_service:v1:fill:chat:{token}")
}

/// A Redis restored from an old snapshot (or a replica that lagged when it took over)
/// holds a counter behind `MAX(number)`. Every cache fill reads that MAX, and the script
/// raises the counter to it in the same step, so the next number is one no row has.
#[test]
fn a_counter_behind_the_stored_numbers_is_raised_on_the_next_fill() {
    let (app_id, token) = STACK.new_application();
    for number in 1..=5 {
        STACK.insert_chat(app_id, number);
    }
    let mut redis = STACK.redis();
    let _: () = redis.cmd(&["SET", &chat_counter(app_id), "2"]);
    // The application has never been looked up: its first request fills the cache.
    let response = STACK.create_chat(&token);
    assert_eq!(response.status, 201);
    assert_eq!(
        response.json()["number"],
        6,
        "not 3, which is stored already"
    );
    assert_eq!(redis.get_int(&chat_counter(app_id)), Some(6));
}

/// The other way round, a counter ahead of MAX (numbers handed out whose jobs have not
/// run, or taken by the Rails API) is never lowered.
#[test]
fn a_counter_ahead_of_the_stored_numbers_is_never_lowered() {
    let (app_id, token) = STACK.new_application();
    STACK.insert_chat(app_id, 1);
    let mut redis = STACK.redis();
    let _: () = redis.cmd(&["SET", &chat_counter(app_id), "9"]);
    assert_eq!(STACK.create_chat(&token).json()["number"], 10);
}

/// A call that filled the cache and then answered without a number (an idempotent
/// replay, a key reused for another request) gives the fill lock up at once, rather than
/// leaving every concurrent request for that lookup waiting until it expires.
#[test]
fn the_fill_lock_is_given_up_whatever_the_filling_call_answers() {
    let (app_id, token) = STACK.new_application();
    STACK.insert_chat(app_id, 1);
    let mut redis = STACK.redis();
    assert_eq!(
        STACK.host.create_chat_with_key(&token, "fill-1").status,
        201
    );
    let message = client::request(
        STACK.host.addr,
        "POST",
        &format!("/api/v1/chat_applications/{token}/chats/1/messages"),
        &[("Idempotency-Key", "fill-2")],
        Some(br#"{"message":{"body":"hello"}}"#),
    );
    assert_eq!(message.status, 201);
    for (key, status) in [("fill-1", 201), ("fill-2", 422)] {
        // Cold again: this request is the one that looks the application up.
        let _: () = redis.cmd(&["DEL", &format!("chat_service:v1:app:{token}")]);
        let response = STACK.host.create_chat_with_key(&token, key);
        assert_eq!(response.status, status, "{key}");
        let left: i64 = redis.cmd(&["PTTL", &fill_lock(&token)]);
        assert_eq!(
            left, -2,
            "{key}: the lock is gone (-2), not held for {left} ms"
        );
    }
    assert_eq!(
        redis.get_int(&chat_counter(app_id)),
        Some(2),
        "one chat taken"
    );
}

/// Idempotency records live in Sidekiq's Redis, which must not evict: their lifetime is
/// the `idempotency_key_seconds` variable (here 3600), not a fixed day.
#[test]
fn idempotency_records_live_as_long_as_the_variable_says() {
    let (app_id, token) = STACK.new_application();
    assert_eq!(
        STACK.host.create_chat_with_key(&token, "lifetime-1").status,
        201
    );
    let key = format!("chat_service:v1:idem:{app_id}:lifetime-1");
    let mut redis = STACK.redis();
    let ttl: i64 = redis.cmd(&["TTL", &key]);
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
    let bytes: i64 = redis.cmd(&["MEMORY", "USAGE", &key]);
    println!("one idempotency record: {bytes} bytes (MEMORY USAGE)");
}

/// A chat number handed out long ago that has no row (its job died, or Rails deleted it)
/// is the contract's 404 at once. Only a chat this service handed out recently is held
/// for its row (and then 409): here the counter says 5, chats 1..3 are stored, and 4 was
/// never handed out by this service.
#[test]
fn a_chat_number_without_a_row_that_is_not_new_is_a_prompt_404() {
    let (app_id, token) = STACK.new_application();
    for number in 1..=3 {
        STACK.insert_chat(app_id, number);
    }
    let _: () = STACK.redis().cmd(&["SET", &chat_counter(app_id), "5"]);
    let started = std::time::Instant::now();
    let response = STACK.create_message(&token, 4, "to a chat long gone");
    let took = started.elapsed();
    println!(
        "message to a long-gone chat: {} in {took:?}",
        response.status
    );
    assert_eq!(response.status, 404);
    assert_eq!(response.error(), "Chat not found");
    // Held, it would take a second: 20 polls of 50 ms.
    assert!(
        took < std::time::Duration::from_millis(900),
        "held for {took:?}"
    );
    assert!(
        STACK
            .redis()
            .queue()
            .iter()
            .all(|job| !job.contains("to a chat long gone"))
    );
}

/// Rails deleting an application marks its id gone with one command, whatever spelling
/// of the token filled the cache (MySQL matches tokens without regard to case), and
/// every spelling is a 404 at once; deleting a chat likewise by the chat's id.
#[test]
fn a_deleted_application_or_chat_marked_gone_is_404_for_every_spelling() {
    let (app_id, token) = STACK.new_application();
    let chat_id = STACK.insert_chat(app_id, 1);
    let upper = token.to_uppercase();
    for spelling in [&token, &upper] {
        assert_eq!(
            STACK.create_chat(spelling).status,
            201,
            "{spelling} is cached"
        );
    }
    assert_eq!(STACK.create_message(&token, 1, "before").status, 201);

    // What docs/rails.md has Rails run when it destroys the chat, then the application.
    STACK.sql(&format!("DELETE FROM chats WHERE id = {chat_id}"));
    let mut redis = STACK.redis();
    let _: () = redis.cmd(&[
        "SET",
        &format!("chat_service:v1:gone:chat:{chat_id}"),
        "1",
        "EX",
        "300",
    ]);
    let response = STACK.create_message(&upper, 1, "after the chat");
    assert_eq!(
        (response.status, response.error().as_str()),
        (404, "Chat not found")
    );

    STACK.sql(&format!(
        "DELETE FROM chats WHERE chat_application_id = {app_id}"
    ));
    STACK.sql(&format!(
        "DELETE FROM chat_applications WHERE id = {app_id}"
    ));
    let _: () = redis.cmd(&[
        "SET",
        &format!("chat_service:v1:gone:app:{app_id}"),
        "1",
        "EX",
        "300",
    ]);
    for spelling in [&token, &upper] {
        let response = STACK.create_chat(spelling);
        assert_eq!(
            (response.status, response.error().as_str()),
            (404, "ChatApplication not found"),
            "{spelling}"
        );
    }
    assert_eq!(
        redis.get_int(&chat_counter(app_id)),
        Some(3),
        "no number taken after"
    );
}
