//! Redis going away and coming back, with a Redis server of this test's own (a port of
//! its own, append-only file in a temporary directory), so stopping it disturbs nothing
//! else.

mod support;

use std::time::{Duration, Instant};

use support::private_redis::{PrivateRedis, Stop};
use support::{Stack, client, serve};

#[test]
fn redis_down_is_a_prompt_503_and_service_resumes_without_a_restart() {
    // MySQL of its own (the schema); Redis is the private one.
    let stack = Stack::start("faults", 5);
    let (_, token) = stack.new_application();
    let mut redis = PrivateRedis::start("faults");
    let host = serve(&[
        ("redis_url", redis.url()),
        ("redis_host", redis.host()),
        ("mysql_url", support::mysql_url(&stack.database)),
    ]);
    let path = format!("/api/v1/chat_applications/{token}/chats");
    let create = || client::request(host.addr, "POST", &path, &[], None);
    assert_eq!(create().json()["number"], 1);

    redis.stop(Stop::Kill);
    let started = Instant::now();
    let response = create();
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    // Back up, with its data: the same host serves again and numbering continues. Redis
    // accepts connections before it has loaded its append-only file, and answers LOADING
    // meanwhile (long enough to be seen on a busy machine): until then each request is a
    // prompt, retryable 503 that takes no number.
    redis.restart();
    let served = support::eventually(
        "a 201 once Redis has loaded",
        Duration::from_secs(10),
        || {
            let response = create();
            if response.status != 201 {
                assert_eq!(
                    response.status,
                    503,
                    "while Redis loads: {}",
                    response.text()
                );
                assert_eq!(response.header("retry-after"), Some("1"));
                return None;
            }
            Some(response)
        },
    );
    assert_eq!(served.json()["number"], 2);
}
