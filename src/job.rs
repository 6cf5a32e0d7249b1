//! The Sidekiq job that carries a chat or message to the Rails worker.
//!
//! The JSON is what Sidekiq 7's own client pushes for an ActiveJob job under Rails 8.1
//! (the contract's "wire format"), complete to the field: fault 6 of the Go service was a
//! timestamp `jid`, a `job_id` that was no UUID and a missing `enqueued_at`, and Rails 8.1
//! fails every job whose `enqueued_at` does not parse with `Time.iso8601`.
//!
//! The job's arguments start with ids and a number that only the numbering script knows
//! (they come from Redis in the same atomic call that queues the job), so the component
//! serializes everything else and hands the script a [`JobTemplate`]: the JSON before the
//! arguments, the arguments after the number, and the JSON after them.

use serde::Serialize;
use std::time::Duration;

use crate::domain::MessageBody;
use crate::platform;

/// The ActiveJob classes of the Rails app, and the arguments each takes after
/// `(parent id, number)`.
#[derive(Debug, Clone, Copy)]
pub enum JobKind<'a> {
    /// `CreateChatJob(chat_application_id, chat_number)`
    CreateChat,
    /// `CreateMessageJob(chat_id, message_number, message_body)`
    CreateMessage(&'a MessageBody),
}

impl JobKind<'_> {
    fn class(self) -> &'static str {
        match self {
            Self::CreateChat => "CreateChatJob",
            Self::CreateMessage(_) => "CreateMessageJob",
        }
    }
}

/// What makes one job unique: when it was enqueued and its random ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Time since the Unix epoch.
    pub now: Duration,
    /// Sidekiq's job id: 12 random bytes, written as 24 lowercase hex characters.
    pub jid: [u8; 12],
    /// ActiveJob's job id: 16 random bytes, written as a version 4 UUID.
    pub job_id: [u8; 16],
}

impl Stamp {
    /// A stamp from the host's wall clock and random source.
    pub fn fresh() -> Self {
        let random: [u8; 28] = platform::random_bytes();
        let mut jid = [0u8; 12];
        let mut job_id = [0u8; 16];
        jid.copy_from_slice(&random[..12]);
        job_id.copy_from_slice(&random[12..]);
        Self {
            now: platform::since_epoch(),
            jid,
            job_id,
        }
    }
}

/// A job's JSON, cut where the numbering script splices in `parent_id,number`.
///
/// The script builds `head .. "[" .. parent_id .. "," .. number .. args_tail .. "]" .. tail`;
/// [`JobTemplate::render`] is the same formula, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTemplate {
    pub head: String,
    pub args_tail: String,
    pub tail: String,
}

/// Stands in for the arguments array while the rest is serialized. It cannot occur
/// elsewhere in the JSON: every other value is fixed or generated here.
const ARGUMENTS_MARKER: &str = "\u{1}arguments\u{1}";

impl JobTemplate {
    pub fn new(kind: JobKind<'_>, stamp: &Stamp) -> Self {
        let class = kind.class();
        let data = JobData {
            job_class: class,
            job_id: uuid_v4(&stamp.job_id),
            provider_job_id: None,
            queue_name: QUEUE,
            priority: None,
            arguments: ARGUMENTS_MARKER,
            executions: 0,
            exception_executions: Empty {},
            locale: "en",
            timezone: "UTC",
            enqueued_at: iso8601_nanos(stamp.now),
            scheduled_at: None,
        };
        let seconds = stamp.now.as_secs_f64();
        let wrapper = Wrapper {
            class: "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
            wrapped: class,
            queue: QUEUE,
            args: [data],
            retry: true,
            jid: hex(&stamp.jid),
            created_at: seconds,
            enqueued_at: seconds,
        };
        let json = serde_json::to_string(&wrapper).expect("a job always serializes");
        let marker = serde_json::to_string(ARGUMENTS_MARKER).expect("a string always serializes");
        let (head, tail) = json
            .split_once(&marker)
            .expect("the marker is in the serialized job");
        let args_tail = match kind {
            JobKind::CreateChat => String::new(),
            JobKind::CreateMessage(body) => {
                let body =
                    serde_json::to_string(body.as_str()).expect("a string always serializes");
                format!(",{body}")
            }
        };
        Self {
            head: head.to_owned(),
            args_tail,
            tail: tail.to_owned(),
        }
    }

    /// The job as the numbering script writes it to `queue:default`.
    pub fn render(&self, parent_id: i64, number: i64) -> String {
        format!(
            "{}[{parent_id},{number}{}]{}",
            self.head, self.args_tail, self.tail
        )
    }
}

/// Sidekiq's queue; the Rails worker listens on `default` only.
pub const QUEUE: &str = "default";

#[derive(Serialize)]
struct Wrapper<'a> {
    class: &'static str,
    wrapped: &'static str,
    queue: &'static str,
    args: [JobData<'a>; 1],
    retry: bool,
    jid: String,
    created_at: f64,
    enqueued_at: f64,
}

/// ActiveJob's `serialize` output, as Rails 8.1 writes it.
#[derive(Serialize)]
struct JobData<'a> {
    job_class: &'static str,
    job_id: String,
    provider_job_id: Option<()>,
    queue_name: &'static str,
    priority: Option<()>,
    arguments: &'a str,
    executions: u32,
    exception_executions: Empty,
    locale: &'static str,
    timezone: &'static str,
    enqueued_at: String,
    scheduled_at: Option<()>,
}

/// Serializes as `{}`.
#[derive(Serialize)]
struct Empty {}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4122 version 4: the random bytes with the version and variant bits set.
fn uuid_v4(random: &[u8; 16]) -> String {
    let mut b = *random;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{}-{}-{}-{}-{}",
        hex(&b[0..4]),
        hex(&b[4..6]),
        hex(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..16])
    )
}

/// UTC time as ISO 8601 with nine fractional digits, e.g. `2026-11-27T16:24:22.346034123Z`,
/// which is what Rails 8.1 writes and what its `Time.iso8601` reads back.
fn iso8601_nanos(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since_epoch.subsec_nanos()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, which is exact for every day an `i64` second count can name).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn stamp() -> Stamp {
        Stamp {
            // 2026-11-27T16:24:22.346034123Z
            now: Duration::new(1_795_796_662, 346_034_123),
            jid: [0xab; 12],
            job_id: [0x11; 16],
        }
    }

    #[test]
    fn chat_job_golden() {
        let job = JobTemplate::new(JobKind::CreateChat, &stamp()).render(42, 7);
        let expected = concat!(
            r#"{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","#,
            r#""wrapped":"CreateChatJob","queue":"default","args":[{"job_class":"CreateChatJob","#,
            r#""job_id":"11111111-1111-4111-9111-111111111111","provider_job_id":null,"#,
            r#""queue_name":"default","priority":null,"arguments":[42,7],"executions":0,"#,
            r#""exception_executions":{},"locale":"en","timezone":"UTC","#,
            r#""enqueued_at":"2026-11-27T16:24:22.346034123Z","scheduled_at":null}],"#,
            r#""retry":true,"jid":"abababababababababababab","#,
            r#""created_at":1795796662.346034,"enqueued_at":1795796662.346034}"#
        );
        assert_eq!(job, expected);
    }

    #[test]
    fn message_job_carries_the_body_as_a_plain_json_string() {
        let text = "héllo 👋 \"quoted\"\nline\\ \u{1}";
        let body = MessageBody::parse(text.to_owned()).unwrap();
        let job = JobTemplate::new(JobKind::CreateMessage(&body), &stamp()).render(9, 3);
        let job: Value = serde_json::from_str(&job).unwrap();
        assert_eq!(job["wrapped"], "CreateMessageJob");
        assert_eq!(job["args"][0]["job_class"], "CreateMessageJob");
        assert_eq!(job["args"][0]["arguments"], json!([9, 3, text]));
    }

    #[test]
    fn every_contract_field_has_its_type() {
        let job = JobTemplate::new(JobKind::CreateChat, &stamp()).render(1, 1);
        let job: Value = serde_json::from_str(&job).unwrap();
        assert_eq!(
            job["class"],
            "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
        );
        assert_eq!(job["queue"], "default");
        assert_eq!(job["retry"], true);
        assert!(job["created_at"].is_f64() && job["enqueued_at"].is_f64());
        let jid = job["jid"].as_str().unwrap();
        assert!(
            jid.len() == 24
                && jid
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(job["args"].as_array().unwrap().len(), 1);
        let data = &job["args"][0];
        for (field, value) in [
            ("provider_job_id", Value::Null),
            ("queue_name", json!("default")),
            ("priority", Value::Null),
            ("executions", json!(0)),
            ("exception_executions", json!({})),
            ("locale", json!("en")),
            ("timezone", json!("UTC")),
            ("scheduled_at", Value::Null),
        ] {
            assert_eq!(data[field], value, "{field}");
        }
        assert!(data["arguments"][0].is_i64() && data["arguments"][1].is_i64());
    }

    #[test]
    fn created_at_stays_a_float_on_a_whole_second() {
        let whole = Stamp {
            now: Duration::from_secs(1_795_796_662),
            ..stamp()
        };
        let job = JobTemplate::new(JobKind::CreateChat, &whole).render(1, 1);
        assert!(job.contains(r#""created_at":1795796662.0,"#), "{job}");
    }

    #[test]
    fn job_id_is_a_version_4_uuid() {
        assert_eq!(uuid_v4(&[0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_v4(&[0x00; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn iso8601_edges() {
        assert_eq!(
            iso8601_nanos(Duration::ZERO),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            iso8601_nanos(Duration::new(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            iso8601_nanos(Duration::new(4_102_444_799, 999_999_999)),
            "2099-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn fresh_stamps_differ() {
        let (a, b) = (Stamp::fresh(), Stamp::fresh());
        assert_ne!(a.jid, b.jid);
        assert_ne!(a.job_id, b.job_id);
    }
}
