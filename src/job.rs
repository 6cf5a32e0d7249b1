//! The Sidekiq job that carries a chat or message to the Rails worker.
//!
//! The JSON is what Sidekiq 7's own client pushes for an ActiveJob job under Rails 8.1
//! (docs/contract.md §4), complete to the field: the Go service's job had a timestamp
//! `jid`, a `job_id` that was no UUID and no `enqueued_at` (§6.6), and Rails 8.1 fails
//! every job whose `enqueued_at` does not parse with `Time.iso8601`.
//!
//! The job's arguments start with ids and a number that only the numbering script knows
//! (they come from Redis in the same atomic call that queues the job), so the component
//! serializes everything else and hands the script a [`JobTemplate`]: the JSON before the
//! arguments, the arguments after the number, and the JSON after them.

use std::time::Duration;

use crate::domain::MessageBody;
use crate::platform;
use crate::text;

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

/// Sidekiq's queue; the Rails worker listens on `default` only.
pub const QUEUE: &str = "default";

impl JobTemplate {
    /// The job Sidekiq's client would push for `perform_later` of this kind: the
    /// ActiveJob wrapper with the job data in `args`, field for field in the order
    /// Sidekiq 7 and Rails 8.1 write them. Written by hand (see [`crate::text`]); the
    /// tests compare it with the same structure serialized by serde.
    pub fn new(kind: JobKind<'_>, stamp: &Stamp) -> Self {
        let class = kind.class();
        let mut head = String::with_capacity(320);
        head.push_str(
            r#"{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":""#,
        );
        head.push_str(class);
        head.push_str(r#"","queue":""#);
        head.push_str(QUEUE);
        head.push_str(r#"","args":[{"job_class":""#);
        head.push_str(class);
        head.push_str(r#"","job_id":""#);
        push_uuid_v4(&mut head, &stamp.job_id);
        head.push_str(r#"","provider_job_id":null,"queue_name":""#);
        head.push_str(QUEUE);
        head.push_str(r#"","priority":null,"arguments":"#);

        let args_tail = match kind {
            JobKind::CreateChat => String::new(),
            JobKind::CreateMessage(body) => {
                let mut tail = String::with_capacity(body.as_str().len() + 3);
                tail.push(',');
                text::push_json_string(&mut tail, body.as_str());
                tail
            }
        };

        let mut tail = String::with_capacity(256);
        tail.push_str(r#","executions":0,"exception_executions":{},"locale":"en","timezone":"UTC","enqueued_at":""#);
        push_iso8601_nanos(&mut tail, stamp.now);
        tail.push_str(r#"","scheduled_at":null}],"retry":true,"jid":""#);
        text::push_hex(&mut tail, &stamp.jid);
        tail.push_str(r#"","created_at":"#);
        push_epoch_seconds(&mut tail, stamp.now);
        tail.push_str(r#","enqueued_at":"#);
        push_epoch_seconds(&mut tail, stamp.now);
        tail.push('}');

        Self {
            head,
            args_tail,
            tail,
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

/// RFC 4122 version 4: the random bytes with the version and variant bits set, as
/// `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
fn push_uuid_v4(out: &mut String, random: &[u8; 16]) {
    let mut b = *random;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    for (i, group) in [&b[0..4], &b[4..6], &b[6..8], &b[8..10], &b[10..16]]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            out.push('-');
        }
        text::push_hex(out, group);
    }
}

/// Seconds since the epoch as a JSON float with microseconds, as Sidekiq writes
/// `Time.now.to_f`: always with a fraction (`1795796662.0` on a whole second), so Ruby
/// reads a Float, never an Integer.
fn push_epoch_seconds(out: &mut String, since_epoch: Duration) {
    text::push_u64(out, since_epoch.as_secs());
    out.push('.');
    let mut micros = since_epoch.subsec_micros();
    let mut width = 6;
    while width > 1 && micros.is_multiple_of(10) {
        micros /= 10;
        width -= 1;
    }
    text::push_padded(out, u64::from(micros), width);
}

/// UTC time as ISO 8601 with nine fractional digits, e.g. `2026-11-27T16:24:22.346034123Z`,
/// which is what Rails 8.1 writes and what its `Time.iso8601` reads back.
fn push_iso8601_nanos(out: &mut String, since_epoch: Duration) {
    let secs = since_epoch.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    // A duration since the epoch cannot reach before 1970, so the year is never negative.
    text::push_padded(out, year.unsigned_abs(), 4);
    for (separator, value, width) in [
        ('-', u64::from(month), 2),
        ('-', u64::from(day), 2),
        ('T', rem / 3600, 2),
        (':', (rem % 3600) / 60, 2),
        (':', rem % 60, 2),
        ('.', u64::from(since_epoch.subsec_nanos()), 9),
    ] {
        out.push(separator);
        text::push_padded(out, value, width);
    }
    out.push('Z');
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
    use serde::Serialize;
    use serde_json::{Value, json};

    fn uuid_v4(random: &[u8; 16]) -> String {
        let mut out = String::new();
        push_uuid_v4(&mut out, random);
        out
    }

    fn iso8601_nanos(since_epoch: Duration) -> String {
        let mut out = String::new();
        push_iso8601_nanos(&mut out, since_epoch);
        out
    }

    /// The job as serde serializes the same structure: what the hand-written JSON must
    /// equal, field for field and in the same order.
    fn serde_reference(kind: JobKind<'_>, stamp: &Stamp, parent_id: i64, number: i64) -> String {
        #[derive(Serialize)]
        struct Wrapper {
            class: &'static str,
            wrapped: &'static str,
            queue: &'static str,
            args: [JobData; 1],
            retry: bool,
            jid: String,
            created_at: f64,
            enqueued_at: f64,
        }
        #[derive(Serialize)]
        struct JobData {
            job_class: &'static str,
            job_id: String,
            provider_job_id: Option<()>,
            queue_name: &'static str,
            priority: Option<()>,
            arguments: Vec<Value>,
            executions: u32,
            exception_executions: Empty,
            locale: &'static str,
            timezone: &'static str,
            enqueued_at: String,
            scheduled_at: Option<()>,
        }
        #[derive(Serialize)]
        struct Empty {}

        let mut arguments = vec![json!(parent_id), json!(number)];
        if let JobKind::CreateMessage(body) = kind {
            arguments.push(json!(body.as_str()));
        }
        // Sidekiq's `Time.now.to_f` has microseconds; so does the hand-written float.
        let seconds: f64 = format!("{}.{:06}", stamp.now.as_secs(), stamp.now.subsec_micros())
            .parse()
            .unwrap();
        serde_json::to_string(&Wrapper {
            class: "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper",
            wrapped: kind.class(),
            queue: QUEUE,
            args: [JobData {
                job_class: kind.class(),
                job_id: uuid_v4(&stamp.job_id),
                provider_job_id: None,
                queue_name: QUEUE,
                priority: None,
                arguments,
                executions: 0,
                exception_executions: Empty {},
                locale: "en",
                timezone: "UTC",
                enqueued_at: iso8601_nanos(stamp.now),
                scheduled_at: None,
            }],
            retry: true,
            jid: stamp.jid.iter().map(|b| format!("{b:02x}")).collect(),
            created_at: seconds,
            enqueued_at: seconds,
        })
        .unwrap()
    }

    #[test]
    fn the_hand_written_job_is_what_serde_writes() {
        let bodies = [
            "x",
            "héllo 👋 \"quoted\"\nline\\ \u{1}",
            "\u{7f}\u{2028} tab\t",
        ];
        let mut seed = 0x0123_4567_89ab_cdefu64;
        for round in 0..2_000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let stamp = Stamp {
                // Anything from 1970 to about 2200, at any nanosecond.
                now: Duration::new(seed % 7_258_118_400, (seed >> 33) as u32 % 1_000_000_000),
                jid: std::array::from_fn(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8),
                job_id: std::array::from_fn(|i| (seed >> (i % 8 * 8)) as u8 ^ (i * 7) as u8),
            };
            let body = MessageBody::parse(bodies[(round % 3) as usize].to_owned()).unwrap();
            let (parent, number) = ((seed >> 3) as i64 % 1_000_000, (round + 1) as i64);
            for kind in [JobKind::CreateChat, JobKind::CreateMessage(&body)] {
                let ours = JobTemplate::new(kind, &stamp).render(parent, number);
                let reference = serde_reference(kind, &stamp, parent, number);
                // Byte for byte up to the two floats, whose shortest spelling may differ...
                let before_floats =
                    |job: &str| job.split(r#""created_at":"#).next().map(str::to_owned);
                assert_eq!(before_floats(&ours), before_floats(&reference));
                // ...and equal as values throughout.
                let value = |job: &str| serde_json::from_str::<Value>(job).unwrap();
                assert_eq!(value(&ours), value(&reference), "{ours}");
            }
        }
    }

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
