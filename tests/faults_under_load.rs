//! Redis stopped and restarted while chats and messages are being created under load:
//! every answer is a 201 or a prompt, retryable 503, and once the real Sidekiq worker has
//! drained the queue, every 201 the clients saw is exactly one row, byte for byte, and no
//! number was handed out twice or left without its row.
//!
//! The Redis is this test's own (its own port, append-only, `appendfsync always`), stopped
//! once with SIGTERM (its clean shutdown) and once with SIGKILL (a crash), each under its
//! own chat application. A request whose script ran but whose reply the outage cut off
//! leaves a row without a 201: allowed (the client was told to retry), and counted.
//!
//! The worker runs during the load, but is stopped (SIGTERM, Sidekiq's own shutdown) just
//! before each outage and started again once Redis is back. It fetches as the Rails
//! side's Sidekiq does, with BRPOP (its basic fetch), which removes the job from Redis
//! before the worker holds it: a job Redis pops in its last moment before it stops is
//! gone from the queue (the pop is in the append-only file) and its reply never reaches
//! the worker. Sidekiq documents that loss ("it is lost forever", "Using super_fetch" in
//! https://github.com/sidekiq/sidekiq/wiki/Reliability), and it happened in about half the
//! runs that left the worker fetching through the outage. That is the Rails side's
//! worker, which this service does not choose; this test's subject is the service's
//! promise, that every 201's number and job are in Redis and survive the outage, and
//! that promise is checked whole either way. A graceful shutdown fetches nothing more,
//! and pushes back a job it popped meanwhile, so no fetch is in flight when Redis stops.
//!
//! `FAULTS_WORKER_THROUGH_OUTAGE=1` keeps the worker fetching through the outage (the
//! experiment that found this): everything is checked as usual, except that a number
//! whose job the diagnosis finds popped by the worker and never started is printed, not
//! failed on. Apart from that loss, a 201 without a row is reported as where it was lost:
//! Redis losing an acknowledged write, the worker failing its job, or a job left queued.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use support::client::{self, Response};
use support::private_redis::{PrivateRedis, Stop};
use support::worker::Worker;
use support::{Host, Stack, serve};

const CLIENTS: usize = 8;
/// Chats the message clients write to, stored before the load (as the worker would have).
const MESSAGE_CHATS: i64 = 4;
const LOAD_BEFORE_OUTAGE: Duration = Duration::from_millis(1500);
const OUTAGE: Duration = Duration::from_millis(1500);
const LOAD_AFTER_OUTAGE: Duration = Duration::from_millis(2500);
/// A 503 must come back in seconds, not at the client's timeout.
const MAX_503_LATENCY: Duration = Duration::from_secs(3);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The worker stores a row in milliseconds: with the queue empty, this long without a new
/// row means the missing ones will not come.
const STALLED: Duration = Duration::from_secs(5);

/// The experiment's switch: the worker fetches through the outage instead of being stopped
/// across it (see the module's comment).
fn worker_through_outage() -> bool {
    std::env::var("FAULTS_WORKER_THROUGH_OUTAGE").as_deref() == Ok("1")
}

const UNAVAILABLE: &str = "Service temporarily unavailable, please retry";
const PENDING: &str = "Chat is still being created, please retry";

#[derive(Debug, Clone)]
enum Op {
    Chat,
    Message { chat: i64, body: String },
}

/// One request of the load and what came back; `response` is `None` when none did
/// (connection refused or closed, or the client's 30 s timeout).
#[derive(Debug)]
struct Outcome {
    op: Op,
    started: Instant,
    elapsed: Duration,
    response: Option<Response>,
}

impl Outcome {
    fn status(&self) -> u16 {
        self.response.as_ref().map_or(0, |r| r.status)
    }

    /// The number of a well-formed 201, `None` for anything else.
    fn number(&self) -> Option<i64> {
        let response = self.response.as_ref().filter(|r| r.status == 201)?;
        json_of(response)["number"].as_i64()
    }
}

/// The body as JSON, `null` if it is not: a malformed answer is a finding to report with
/// the others, not a panic that loses them.
fn json_of(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_default()
}

/// A body per request, unique (so a row names the request it came from) and varied in
/// what the job's JSON and the worker must carry intact: multi-byte and astral
/// characters, combining marks, right-to-left text, JSON and SQL metacharacters, control
/// characters, and now and then a body of exactly the 65,535 bytes a TEXT holds.
fn body(client: usize, seq: usize) -> String {
    let id = format!("c{client}#{seq}");
    match seq % 7 {
        0 => format!("{id} héllo wörld ñ ç ß"),
        1 => format!("{id} 👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 𝄞 日本語のテキスト 中文 한국어"),
        2 => format!(
            "{id} \"quoted\" 'single' `tick` \\ backslash \\n not a newline {{\"json\":[1]}}"
        ),
        3 => format!("{id} line one\nline two\r\n\ttabbed\u{0}nul\u{7f}del\u{1b}[0m"),
        4 => format!("{id} שלום עולם مرحبا بالعالم e\u{301} a\u{308}\u{323} Z\u{200d}W\u{feff}"),
        5 => format!("{id} '); DROP TABLE messages; -- %s %d {{}} <script>alert(1)</script>"),
        _ if seq % 49 == 6 => {
            // Exactly the TEXT limit, in two-byte characters after the ASCII id.
            let mut text = format!("{id} ");
            while text.len() + 2 <= 65_535 {
                text.push('é');
            }
            while text.len() < 65_535 {
                text.push('.');
            }
            text
        }
        _ => format!("{id} {}", "ü€😀".repeat(1 + seq % 300)),
    }
}

/// What the load's clients do: mostly messages, to the stored chats in turn, and every
/// third request a chat.
fn op(client: usize, seq: usize) -> Op {
    if (client + seq).is_multiple_of(3) {
        Op::Chat
    } else {
        Op::Message {
            chat: 1 + ((client + seq) as i64 % MESSAGE_CHATS),
            body: body(client, seq),
        }
    }
}

fn send(host: &Host, token: &str, op: &Op) -> Option<Response> {
    let (path, body) = match op {
        Op::Chat => (format!("/api/v1/chat_applications/{token}/chats"), None),
        Op::Message { chat, body } => (
            format!("/api/v1/chat_applications/{token}/chats/{chat}/messages"),
            Some(json!({"message": {"body": body}}).to_string()),
        ),
    };
    // The support client panics when no HTTP response comes; here that is an outcome
    // to count, not the end of the client.
    panic::catch_unwind(AssertUnwindSafe(|| {
        client::request(
            host.addr,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            body.as_deref().map(str::as_bytes),
        )
    }))
    .ok()
}

/// Runs the clients until `running` is cleared; every request and its outcome.
fn load(host: &Arc<Host>, token: &str, running: &Arc<AtomicBool>) -> Vec<Outcome> {
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (host, token, running) = (host.clone(), token.to_owned(), running.clone());
            thread::spawn(move || {
                let mut outcomes = Vec::new();
                let mut seq = 0;
                while running.load(Ordering::Relaxed) {
                    let op = op(client, seq);
                    let started = Instant::now();
                    let response = send(&host, &token, &op);
                    outcomes.push(Outcome {
                        op,
                        started,
                        elapsed: started.elapsed(),
                        response,
                    });
                    seq += 1;
                }
                outcomes
            })
        })
        .collect();
    clients
        .into_iter()
        .flat_map(|c| c.join().expect("a client thread"))
        .collect()
}

/// Why an outcome is not one the contract allows under a Redis outage, if it is not.
fn disallowed(outcome: &Outcome) -> Option<String> {
    let Some(response) = &outcome.response else {
        return Some("no HTTP response".to_owned());
    };
    let retryable = |text: &str| {
        response.header("retry-after") == Some("1")
            && response.header("content-type") == Some("application/json")
            && json_of(response) == json!({"error": text})
    };
    let fine = match (response.status, &outcome.op) {
        (201, Op::Chat) => {
            let body = json_of(response);
            body["number"].as_i64().is_some_and(|n| n > 0) && body["messages_count"] == 0
        }
        (201, Op::Message { .. }) => json_of(response)["number"].as_i64().is_some_and(|n| n > 0),
        (503, _) => retryable(UNAVAILABLE),
        (409, Op::Message { .. }) => retryable(PENDING),
        _ => false,
    };
    (!fine).then(|| format!("{} {response:?}", response.status))
}

/// The counts of one phase, printed in one line for the issue note.
#[derive(Debug, Default)]
struct Figures {
    requests: usize,
    created: usize,
    created_chats: usize,
    created_messages: usize,
    unavailable: usize,
    pending: usize,
    other: usize,
    rows_chats: usize,
    rows_messages: usize,
    rows_without_201_chats: usize,
    rows_without_201_messages: usize,
    /// 201s whose row never came: the promise broken.
    lost_201s: usize,
    /// Numbers handed out (the counters) that have no row, whatever their request got.
    numbers_without_row: usize,
    /// Of those, the ones whose job the worker popped from the queue and never started.
    lost_in_fetch: usize,
    max_503: Duration,
    max_201: Duration,
    /// How long the worker took to shut down before the outage and to boot after it;
    /// `None` when it fetched through the outage.
    worker_stop: Option<Duration>,
    worker_boot: Option<Duration>,
    drain: Duration,
}

impl Figures {
    fn line(&self, how: Stop) -> String {
        format!(
            "faults_under_load {how:?}: requests {} | 201 {} ({} chats, {} messages) | \
             503 {} | 409 {} | other {} | rows {} ({} chats, {} messages) | \
             rows without a 201 {} ({} chats, {} messages) | 201s without a row {} | \
             numbers without a row {} (lost in the worker's fetch {}) | \
             max 503 latency {} ms | max 201 latency {} ms | outage {} ms | {} | \
             worker drained in {} ms",
            self.requests,
            self.created,
            self.created_chats,
            self.created_messages,
            self.unavailable,
            self.pending,
            self.other,
            self.rows_chats + self.rows_messages,
            self.rows_chats,
            self.rows_messages,
            self.rows_without_201_chats + self.rows_without_201_messages,
            self.rows_without_201_chats,
            self.rows_without_201_messages,
            self.lost_201s,
            self.numbers_without_row,
            self.lost_in_fetch,
            self.max_503.as_millis(),
            self.max_201.as_millis(),
            OUTAGE.as_millis(),
            match (self.worker_stop, self.worker_boot) {
                (Some(stop), Some(boot)) => format!(
                    "worker stopped for the outage in {} ms, booted after it in {} ms",
                    stop.as_millis(),
                    boot.as_millis()
                ),
                _ => "worker fetching through the outage".to_owned(),
            },
            self.drain.as_millis(),
        )
    }
}

struct Fixture {
    stack: Stack,
    redis: PrivateRedis,
    host: Arc<Host>,
    worker: Worker,
}

impl Fixture {
    fn counter(&self, key: &str) -> i64 {
        self.redis.connect().get_int(key).unwrap_or(0)
    }

    /// Sidekiq's retry and dead sets and its failure count: a job the worker could not
    /// persist shows up in one of them.
    fn failed_jobs(&self) -> (i64, i64, i64) {
        self.redis.connect().failed_jobs()
    }

    /// The first jobs of the retry set, for the failure message.
    fn retries(&self) -> Vec<String> {
        self.redis.connect().cmd(&["ZRANGE", "retry", "0", "2"])
    }

    fn numbers(&self, sql: &str) -> Vec<i64> {
        self.stack
            .sql(sql)
            .iter()
            .map(|row| row[0].parse().unwrap())
            .collect()
    }
}

/// The jobs the worker started, one `Class arguments` line each, as ActiveJob logs them
/// ("Performing CreateChatJob (Job ID: ...) ... with arguments: 1, 5").
fn performed(log: &Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let mut started = String::new();
    for line in log.lines() {
        let Some((_, job)) = line.split_once("INFO: Performing ") else {
            continue;
        };
        let (Some((class, _)), Some((_, arguments))) =
            (job.split_once(' '), job.split_once(" with arguments: "))
        else {
            continue;
        };
        started.push_str(&format!("{class} {arguments}\n"));
    }
    started
}

/// Where the job of a number without its row was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// The counter came back below the number.
    AcknowledgedWrite { counter: i64 },
    /// Jobs are still in the queue.
    Queued(usize),
    /// The worker logged that it started the job.
    InWorker,
    /// Neither queued nor started: popped by the worker's fetch and never run.
    InFetch,
}

impl Lost {
    fn why(self) -> String {
        match self {
            Self::AcknowledgedWrite { counter } => format!(
                "the counter is {counter} after the restart: Redis lost a write it had \
                 acknowledged"
            ),
            Self::Queued(queued) => {
                format!("{queued} jobs are still queued: the worker did not take them")
            }
            Self::InWorker => {
                "the worker started its job and stored nothing (see its log)".to_owned()
            }
            Self::InFetch => "its number survived in the counter, so its job was queued with \
                 it; the queue is empty and the worker never started the job: it was taken \
                 from the queue and lost on its way to the worker (Sidekiq's BRPOP fetch, \
                 cut off by the stop)"
                .to_owned(),
        }
    }
}

/// Where the job of a number without a row was lost. A number at or below the counter
/// that survived the restart was handed out by the script that also queued its job, and
/// that script's effects are in the append-only file all together or not at all; if the
/// queue is empty, the job left it. `job` starts the worker's line for it.
fn lost(number: i64, counter: i64, queued: usize, performed: &str, job: &str) -> Lost {
    if number > counter {
        return Lost::AcknowledgedWrite { counter };
    }
    if queued > 0 {
        return Lost::Queued(queued);
    }
    if performed
        .lines()
        .any(|line| format!("{line}\n").starts_with(job))
    {
        return Lost::InWorker;
    }
    Lost::InFetch
}

/// The numbers of `1..=last` without a row that [`lost`] finds lost in the worker's
/// fetch; `job` gives the start of the worker's line for a number.
fn lost_in_fetch(
    rows: &BTreeSet<i64>,
    last: i64,
    queued: usize,
    performed: &str,
    job: impl Fn(i64) -> String,
) -> BTreeSet<i64> {
    (1..=last)
        .filter(|n| !rows.contains(n))
        .filter(|&n| lost(n, last, queued, performed, &job(n)) == Lost::InFetch)
        .collect()
}

/// When a request was answered, relative to the stop signal.
fn when(outcome: &Outcome, down: Instant) -> String {
    let answered = outcome.started + outcome.elapsed;
    match answered.checked_duration_since(down) {
        Some(after) => format!("{} ms after Redis stopped", after.as_millis()),
        None => format!("{} ms before Redis stopped", (down - answered).as_millis()),
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02X}")).collect()
}

/// How many of the numbers `1..=last` have no row.
fn unstored(rows: &BTreeSet<i64>, last: i64) -> usize {
    (1..=last).filter(|n| !rows.contains(n)).count()
}

/// What is missing from and extra in `got` against `1..=last`, briefly.
fn gaps(got: &BTreeSet<i64>, last: i64) -> Option<String> {
    let expected: BTreeSet<i64> = (1..=last).collect();
    let missing: Vec<_> = expected.difference(got).take(10).collect();
    let extra: Vec<_> = got.difference(&expected).take(10).collect();
    (!missing.is_empty() || !extra.is_empty())
        .then(|| format!("missing {missing:?}, extra {extra:?}"))
}

/// What a phase found: its figures, every problem (so a failing run still reports all
/// of them), and what the experiment reports without failing on it.
struct Findings {
    figures: Figures,
    problems: Vec<String>,
    notes: Vec<String>,
}

/// One phase: a new application with stored chats, the load with an outage of `how` in
/// its middle, the worker's drain, the reconciliation.
fn phase(fixture: &mut Fixture, how: Stop) -> Findings {
    let through_outage = worker_through_outage();
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let (app_id, token) = fixture.stack.new_application();
    let chat_ids: BTreeMap<i64, i64> = (1..=MESSAGE_CHATS)
        .map(|n| (n, fixture.stack.insert_chat(app_id, n)))
        .collect();
    fixture.stack.sql(&format!(
        "UPDATE chat_applications SET chats_count = {MESSAGE_CHATS} WHERE id = {app_id}"
    ));

    let running = Arc::new(AtomicBool::new(true));
    let clients = {
        let (host, running, token) = (fixture.host.clone(), running.clone(), token.clone());
        thread::spawn(move || load(&host, &token, &running))
    };
    thread::sleep(LOAD_BEFORE_OUTAGE);
    // Sidekiq's basic fetch loses a job that Redis pops just before it stops (see the
    // module's comment and https://github.com/sidekiq/sidekiq/wiki/Reliability): that
    // is the Rails worker's limit, not the service's, and it made this test fail in
    // about half its runs. So, unless the experiment asks otherwise, the worker is shut
    // down gracefully (no fetch in flight, a job it popped meanwhile pushed back) before
    // Redis stops, and started after it is back. The clients' load goes on throughout;
    // what is tested is that every 201's number and job are in Redis and survive.
    let worker_stop = (!through_outage).then(|| fixture.worker.stop());
    let down = Instant::now();
    fixture.redis.stop(how);
    thread::sleep(OUTAGE);
    fixture.redis.restart();
    let up = Instant::now();
    let worker_boot = (!through_outage).then(|| {
        // Sidekiq exits if Redis is not answering while it boots.
        fixture.redis.wait_ready();
        fixture.worker.restart();
        fixture.worker.wait_booted()
    });
    thread::sleep(LOAD_AFTER_OUTAGE.saturating_sub(up.elapsed()));
    running.store(false, Ordering::Relaxed);
    let outcomes = clients.join().expect("the load");

    let mut figures = Figures {
        requests: outcomes.len(),
        worker_stop,
        worker_boot,
        ..Figures::default()
    };
    for outcome in &outcomes {
        match outcome.status() {
            201 => {
                figures.created += 1;
                figures.max_201 = figures.max_201.max(outcome.elapsed);
                match outcome.op {
                    Op::Chat => figures.created_chats += 1,
                    Op::Message { .. } => figures.created_messages += 1,
                }
            }
            503 => {
                figures.unavailable += 1;
                figures.max_503 = figures.max_503.max(outcome.elapsed);
            }
            409 => figures.pending += 1,
            _ => figures.other += 1,
        }
        if let Some(why) = disallowed(outcome) {
            problems.push(format!("{:?}: {why}", outcome.op));
        }
        if outcome.status() == 503 && outcome.elapsed >= MAX_503_LATENCY {
            problems.push(format!("a 503 took {:?}", outcome.elapsed));
        }
    }
    // The outage must have been seen, and the same host must have served again after
    // it: a run where neither happened proves nothing.
    if !outcomes
        .iter()
        .any(|o| o.status() == 503 && o.started >= down)
    {
        problems.push("no request was answered 503 during the outage".to_owned());
    }
    for (what, op_is) in [("chat", true), ("message", false)] {
        let after = outcomes
            .iter()
            .any(|o| o.status() == 201 && o.started >= up && matches!(o.op, Op::Chat) == op_is);
        if !after {
            problems.push(format!("no {what} was created after Redis came back"));
        }
    }

    // The drain: every number handed out comes with its job, so the worker is done when
    // the rows reach the counters and the queue is empty. An empty queue with rows
    // missing and no row stored for a while means jobs left the queue and were lost.
    fixture.redis.wait_ready();
    let drain_started = Instant::now();
    let chat_counter = format!("chat_app:{app_id}:chat_counter");
    let message_counter = |chat_id: i64| format!("chat:{chat_id}:message_counter");
    let chats_sql = format!("SELECT number FROM chats WHERE chat_application_id = {app_id}");
    let ids = chat_ids.values().map(i64::to_string).collect::<Vec<_>>();
    let stored_sql = format!(
        "SELECT (SELECT COUNT(*) FROM chats WHERE chat_application_id = {app_id}) + \
         (SELECT COUNT(*) FROM messages WHERE chat_id IN ({}))",
        ids.join(", ")
    );
    let (mut stored_before, mut progressed) = (-1, Instant::now());
    loop {
        let queued = fixture.redis.connect().queue_len();
        let issued = fixture.counter(&chat_counter).max(MESSAGE_CHATS)
            + chat_ids
                .values()
                .map(|&id| fixture.counter(&message_counter(id)))
                .sum::<i64>();
        let stored = fixture.numbers(&stored_sql)[0];
        if queued == 0 && stored == issued {
            break;
        }
        if fixture.failed_jobs() != (0, 0, 0) {
            break;
        }
        if stored != stored_before {
            (stored_before, progressed) = (stored, Instant::now());
        } else if queued == 0 && progressed.elapsed() > STALLED {
            // With the worker fetching through the outage this is expected when its
            // fetch lost jobs; each missing number is then checked for that below.
            (if through_outage {
                &mut notes
            } else {
                &mut problems
            })
            .push(format!(
                "the queue is empty and no row was stored for {STALLED:?}: {} of {issued} \
                 numbers handed out have no row",
                issued - stored
            ));
            break;
        }
        if drain_started.elapsed() > DRAIN_TIMEOUT {
            problems.push(format!(
                "the worker did not drain within {DRAIN_TIMEOUT:?}: {queued} jobs queued, \
                 {stored} rows of {issued}"
            ));
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    figures.drain = drain_started.elapsed();
    if !fixture.worker.is_running() {
        problems.push("the worker exited".to_owned());
    }
    let queued = fixture.redis.connect().queue_len();
    // A job run twice (or any late failure) would show up in the retry set shortly after.
    thread::sleep(Duration::from_secs(1));
    let failed = fixture.failed_jobs();
    if failed != (0, 0, 0) {
        problems.push(format!(
            "failed jobs (retry, dead, stat:failed) {failed:?}: {:?}; worker log {}",
            fixture.retries(),
            Worker::log_path(&fixture.stack).display()
        ));
    }

    // What the worker ran, to tell where a job without its row was lost.
    let worker_log = performed(&Worker::log_path(&fixture.stack));

    // Chats: numbers 1..=counter, each one row; every 201 among them. A number the
    // worker's fetch lost is excused only in the experiment, and reported there.
    let chat_row_list = fixture.numbers(&chats_sql);
    let chat_rows: BTreeSet<i64> = chat_row_list.iter().copied().collect();
    if chat_rows.len() != chat_row_list.len() {
        problems.push("a chat number has two rows".to_owned());
    }
    let last_chat = fixture.counter(&chat_counter).max(MESSAGE_CHATS);
    let chats_lost_in_fetch = lost_in_fetch(&chat_rows, last_chat, queued, &worker_log, |n| {
        format!("CreateChatJob {app_id}, {n}\n")
    });
    figures.lost_in_fetch += chats_lost_in_fetch.len();
    let excused: BTreeSet<i64> = if through_outage {
        chats_lost_in_fetch.clone()
    } else {
        BTreeSet::new()
    };
    if let Some(gaps) = gaps(&(&chat_rows | &excused), last_chat) {
        problems.push(format!("chat rows against the counter {last_chat}: {gaps}"));
    }
    for number in &excused {
        notes.push(format!("chat {number} has no row: {}", Lost::InFetch.why()));
    }
    figures.numbers_without_row += unstored(&chat_rows, last_chat);
    let mut chat_201s = BTreeSet::new();
    for outcome in outcomes.iter().filter(|o| matches!(o.op, Op::Chat)) {
        let Some(number) = outcome.number() else {
            continue;
        };
        if !chat_201s.insert(number) {
            problems.push(format!("chat number {number} was answered twice"));
        }
        if !chat_rows.contains(&number) {
            figures.lost_201s += 1;
            let why = lost(
                number,
                last_chat,
                queued,
                &worker_log,
                &format!("CreateChatJob {app_id}, {number}\n"),
            );
            (if excused.contains(&number) {
                &mut notes
            } else {
                &mut problems
            })
            .push(format!(
                "chat {number} was answered 201 {} and has no row: {}",
                when(outcome, down),
                why.why()
            ));
        }
    }
    figures.rows_chats = chat_rows.len() - MESSAGE_CHATS as usize;
    figures.rows_without_201_chats = chat_rows
        .iter()
        .filter(|n| **n > MESSAGE_CHATS && !chat_201s.contains(n))
        .count();
    let chats_count = fixture.numbers(&format!(
        "SELECT chats_count FROM chat_applications WHERE id = {app_id}"
    ))[0];
    if chats_count != chat_rows.len() as i64 {
        problems.push(format!(
            "chats_count {chats_count} for {} chat rows",
            chat_rows.len()
        ));
    }

    // Messages: per chat, numbers 1..=counter, each one row; every 201 is its row with
    // its body byte for byte; a row without a 201 came from a request told to retry.
    let sent: HashMap<String, &Outcome> = outcomes
        .iter()
        .filter_map(|o| match &o.op {
            Op::Message { body, .. } => Some((hex(body), o)),
            Op::Chat => None,
        })
        .collect();
    let mut stored_bodies = BTreeSet::new();
    for (&chat, &chat_id) in &chat_ids {
        let rows: BTreeMap<i64, String> = fixture
            .stack
            .sql(&format!(
                "SELECT number, HEX(body) FROM messages WHERE chat_id = {chat_id}"
            ))
            .into_iter()
            .map(|row| (row[0].parse().unwrap(), row[1].clone()))
            .collect();
        let last = fixture.counter(&message_counter(chat_id));
        let numbers: BTreeSet<i64> = rows.keys().copied().collect();
        figures.numbers_without_row += unstored(&numbers, last);
        let fetch_lost = lost_in_fetch(&numbers, last, queued, &worker_log, |n| {
            format!("CreateMessageJob {chat_id}, {n}, ")
        });
        figures.lost_in_fetch += fetch_lost.len();
        let excused: BTreeSet<i64> = if through_outage {
            fetch_lost
        } else {
            BTreeSet::new()
        };
        if let Some(gaps) = gaps(&(&numbers | &excused), last) {
            problems.push(format!(
                "chat {chat}: message rows against the counter {last}: {gaps}"
            ));
        }
        for number in &excused {
            notes.push(format!(
                "chat {chat}: message {number} has no row: {}",
                Lost::InFetch.why()
            ));
        }
        let mut answered = BTreeSet::new();
        for outcome in &outcomes {
            let (Op::Message { chat: to, body }, Some(number)) = (&outcome.op, outcome.number())
            else {
                continue;
            };
            if *to != chat {
                continue;
            }
            if !answered.insert(number) {
                problems.push(format!(
                    "chat {chat}: message number {number} was answered twice"
                ));
            }
            match rows.get(&number) {
                None => {
                    figures.lost_201s += 1;
                    let why = lost(
                        number,
                        last,
                        queued,
                        &worker_log,
                        &format!("CreateMessageJob {chat_id}, {number}, "),
                    );
                    (if excused.contains(&number) {
                        &mut notes
                    } else {
                        &mut problems
                    })
                    .push(format!(
                        "chat {chat}: message {number} was answered 201 {} and has no row: {}",
                        when(outcome, down),
                        why.why()
                    ));
                }
                Some(stored) if *stored != hex(body) => problems.push(format!(
                    "chat {chat}: message {number} is not stored byte for byte"
                )),
                Some(_) => {}
            }
        }
        for (number, stored) in &rows {
            if !stored_bodies.insert(stored.clone()) {
                problems.push(format!(
                    "chat {chat}: message {number}'s body is stored twice"
                ));
            }
            if answered.contains(number) {
                continue;
            }
            figures.rows_without_201_messages += 1;
            match sent.get(stored) {
                Some(o) if matches!(o.status(), 503 | 0) => {}
                Some(o) => problems.push(format!(
                    "chat {chat}: message {number} has a row without its 201; its request got {}",
                    o.status()
                )),
                None => problems.push(format!(
                    "chat {chat}: message {number} has a row no client sent"
                )),
            }
        }
        figures.rows_messages += rows.len();
        let messages_count = fixture.numbers(&format!(
            "SELECT messages_count FROM chats WHERE id = {chat_id}"
        ))[0];
        if messages_count != rows.len() as i64 {
            problems.push(format!(
                "chat {chat}: messages_count {messages_count} for {} rows",
                rows.len()
            ));
        }
    }
    Findings {
        figures,
        problems,
        notes,
    }
}

#[test]
fn every_201_is_one_row_when_redis_stops_under_load() {
    // MySQL of its own (the schema); Redis is the private one, for the component and
    // the worker alike.
    let stack = Stack::start("faultload", 8);
    let redis = PrivateRedis::start("faultload");
    // One log line per request, thousands of them: kept in the host's log file, named
    // on failure.
    let host = Arc::new(serve(&[
        ("redis_url", redis.url()),
        ("redis_host", redis.host()),
        ("mysql_url", support::mysql_url(&stack.database)),
    ]));
    let mut worker = Worker::start_with(&redis.url(), &stack);
    // Sidekiq exits if Redis is down while it boots, so the first outage must not come
    // before it is up.
    worker.wait_booted();
    let mut fixture = Fixture {
        stack,
        redis,
        host,
        worker,
    };
    let mut problems = Vec::new();
    for how in [Stop::Terminate, Stop::Kill] {
        let found = phase(&mut fixture, how);
        // Straight to stderr, past the test harness's capture: the figures are wanted
        // from passing runs too (they go into the note), and so are the
        // experiment's findings.
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{}", found.figures.line(how));
        for note in &found.notes {
            let _ = writeln!(
                stderr,
                "  {how:?}, not failed on (worker through the outage): {note}"
            );
        }
        problems.extend(found.problems.into_iter().map(|p| format!("{how:?}: {p}")));
    }
    // Sidekiq adds a failure to stat:failed in memory and writes it at its next
    // heartbeat (every 5 s); a job that failed while Redis was down (so that even its
    // retry could not be recorded) shows only there.
    thread::sleep(Duration::from_secs(6));
    let failed = fixture.failed_jobs();
    if failed != (0, 0, 0) {
        problems.push(format!(
            "after Sidekiq's heartbeat: failed jobs (retry, dead, stat:failed) {failed:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems (component log {}, worker log {}):\n{}",
        problems.len(),
        fixture.host.component_log().display(),
        Worker::log_path(&fixture.stack).display(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
