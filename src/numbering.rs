//! Numbering: the next chat or message number and its job, in one Redis call.
//!
//! The counters are the Rails API's own keys (`chat_app:{id}:chat_counter`,
//! `chat:{id}:message_counter`), INCRed by both sides. The script in `numbering.lua`
//! also keeps a small cache of the MySQL lookups the Go service made on every request
//! (token → application id, application id + chat number → chat id), so a warm request
//! is one connection and one EVALSHA, and MySQL is read only on a miss.

use std::time::Duration;

use spin_sdk::redis::{RedisParameter, RedisResult};

use crate::domain::{ChatNumber, IdempotencyKey, Token};
use crate::error::{ApiError, Backend};
use crate::job::JobTemplate;
use crate::platform;
use crate::redis::Redis;
use crate::text;

const SCRIPT: &str = include_str!("numbering.lua");
/// Computed from `numbering.lua` by `build.rs`.
const SCRIPT_SHA1: &str = env!("NUMBERING_SCRIPT_SHA1");

/// How long a chat this service handed out is awaited: a message to it while its row is
/// missing is held and then 409 "still being created" for this long after its number was
/// taken, and a plain 404 after. Ten minutes covers a worker that is minutes behind; one
/// key per new chat, about 100 bytes.
pub const NEW_CHAT_SECONDS: i64 = 600;

/// How long a token MySQL does not know is remembered as unknown: a few seconds, so a
/// repeated unknown token costs no MySQL, and an application Rails creates is found at
/// most this long after a request with its token was turned away.
const UNKNOWN_SECONDS: i64 = 5;

/// How long a chat found still pending is answered 409 at once by the requests that
/// waited on that lookup: the `Retry-After` a client is given.
const PENDING_SECONDS: i64 = crate::error::RETRY_AFTER_SECONDS as i64;

/// How long a request waits in all for another one's lookup (the fill lock's holder), a
/// little past the lock's own expiry (2 s, numbering.lua) in case its holder died; then
/// 503, nothing done. The pauses between looks grow from 2 ms to 50 ms.
const FILL_WAIT_BUDGET: Duration = Duration::from_secs(3);
const FIRST_FILL_PAUSE: Duration = Duration::from_millis(2);
const LONGEST_FILL_PAUSE: Duration = Duration::from_millis(50);

/// How long what a script call writes is kept, from the operator's settings
/// ([`crate::config::Config`]); each is read only when the call needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetimes {
    /// Seconds a looked-up id is cached; used only when the call fills the cache.
    pub cache_seconds: i64,
    /// Seconds an `Idempotency-Key` is remembered; used only when the request has one.
    pub idempotency_seconds: i64,
}

/// What is being numbered.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Chat { token: &'a Token },
    Message { token: &'a Token, chat: ChatNumber },
}

impl<'a> Subject<'a> {
    pub fn token(self) -> &'a Token {
        match self {
            Self::Chat { token } | Self::Message { token, .. } => token,
        }
    }

    /// Marks a pending chat for the requests that waited on this subject's lookup
    /// ([`Numbering::remember_pending`]).
    fn pending_key(self) -> String {
        let mut key = self.fill_key();
        key.replace_range(.."chat_service:v1:fill".len(), "chat_service:v1:pending");
        key
    }

    /// The lock that elects one request to fill this subject's lookup on a miss.
    fn fill_key(self) -> String {
        let mut key = String::with_capacity(64);
        match self {
            Self::Chat { token } => {
                key.push_str("chat_service:v1:fill:chat:");
                key.push_str(token.as_str());
            }
            Self::Message { token, chat } => {
                key.push_str("chat_service:v1:fill:message:");
                key.push_str(token.as_str());
                key.push(':');
                text::push_i64(&mut key, chat.get().into());
            }
        }
        key
    }
}

/// Facts just read from MySQL, for the script to cache and use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Known {
    pub application_id: Option<i64>,
    pub chat_id: Option<i64>,
    /// `MAX(number)` of what the counter numbers: the counter's start if it is missing,
    /// and its floor if it fell behind (numbering.lua).
    pub seed: Option<i64>,
    /// The token was spelt otherwise than its row stores it: the application id is
    /// cached under that spelling only as long as an unknown token is remembered.
    pub spelt_otherwise: bool,
}

/// What one script call did or needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The number was taken and the job queued; `parent_id` is the application id (chats)
    /// or chat id (messages) the job names.
    Issued {
        number: i64,
        parent_id: i64,
    },
    NeedApplication,
    NeedChat,
    /// The counter key is missing (new parent, or Redis lost it): nothing was taken.
    NeedSeed {
        parent_id: i64,
    },
    /// The counter is at the largest number `INT` can store.
    Exhausted,
    /// A counter or queue key holds a value of the wrong type.
    WrongType,
    /// Another request holds the fill lock for this lookup: call again shortly.
    Wait,
    /// A repeat of an earlier request with the same `Idempotency-Key`: its number.
    Replayed {
        number: i64,
    },
    /// The `Idempotency-Key` already answered a different request.
    KeyReused,
    /// The application has used up this second's `rate_limit_per_second`: nothing was taken.
    RateLimited,
    /// MySQL had no application with this token a few seconds ago
    /// ([`Numbering::remember_unknown`]).
    UnknownApplication,
}

/// The script's reply codes, named as numbering.lua names them.
mod reply_code {
    pub const ISSUED: i64 = 0;
    pub const NEED_APP: i64 = 1;
    pub const NEED_CHAT: i64 = 2;
    pub const NEED_SEED: i64 = 3;
    pub const EXHAUSTED: i64 = 4;
    pub const WRONG_TYPE: i64 = 5;
    pub const WAIT: i64 = 6;
    pub const REPLAYED: i64 = 7;
    pub const KEY_REUSED: i64 = 8;
    pub const RATE_LIMITED: i64 = 9;
    pub const UNKNOWN_APP: i64 = 10;
}

/// The script's arguments, named as numbering.lua names them and passed in the order
/// its `unpack(ARGV)` reads them.
struct ScriptArgs<'a> {
    kind: &'static str,
    token: &'a str,
    chat_number: Option<i64>,
    known_app: Option<i64>,
    known_chat: Option<i64>,
    seed: Option<i64>,
    ttl: i64,
    job_head: &'a str,
    job_args_tail: &'a str,
    job_tail: &'a str,
    fill_key: &'a str,
    idempotency_key: &'a str,
    idempotency_ttl: i64,
    rate_limit: u32,
    new_chat_ttl: i64,
    spelling_ttl: Option<i64>,
}

impl ScriptArgs<'_> {
    /// EVALSHA's parameters: the script's SHA-1 (swapped for the script itself if Redis
    /// does not know it, see [`Redis::run_script`]), no keys (see numbering.lua), then
    /// the arguments. An absent value is "" to the script.
    fn to_params(&self) -> Vec<RedisParameter> {
        let text = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
        let id = |v: Option<i64>| {
            let mut digits = String::new();
            if let Some(v) = v {
                text::push_i64(&mut digits, v);
            }
            RedisParameter::Binary(digits.into_bytes())
        };
        vec![
            text(SCRIPT_SHA1),
            RedisParameter::Int64(0),
            text(self.kind),
            text(self.token),
            id(self.chat_number),
            id(self.known_app),
            id(self.known_chat),
            id(self.seed),
            RedisParameter::Int64(self.ttl),
            text(self.job_head),
            text(self.job_args_tail),
            text(self.job_tail),
            text(self.fill_key),
            text(self.idempotency_key),
            RedisParameter::Int64(self.idempotency_ttl),
            RedisParameter::Int64(self.rate_limit.into()),
            RedisParameter::Int64(self.new_chat_ttl),
            id(self.spelling_ttl),
        ]
    }
}

impl Reply {
    fn decode(values: &[RedisResult]) -> Option<Self> {
        let ints: Vec<i64> = values
            .iter()
            .map(|v| match v {
                RedisResult::Int64(i) => Some(*i),
                _ => None,
            })
            .collect::<Option<_>>()?;
        use reply_code::*;
        Some(match *ints.as_slice() {
            [ISSUED, number, parent_id] => Self::Issued { number, parent_id },
            [NEED_APP] => Self::NeedApplication,
            [NEED_CHAT] => Self::NeedChat,
            [NEED_SEED, parent_id] => Self::NeedSeed { parent_id },
            [EXHAUSTED] => Self::Exhausted,
            [WRONG_TYPE] => Self::WrongType,
            [WAIT] => Self::Wait,
            [REPLAYED, number] => Self::Replayed { number },
            [KEY_REUSED] => Self::KeyReused,
            [RATE_LIMITED] => Self::RateLimited,
            [UNKNOWN_APP] => Self::UnknownApplication,
            _ => return None,
        })
    }
}

/// The numbering script's side of the request's Redis connection.
pub struct Numbering<'a> {
    redis: &'a Redis,
}

impl<'a> Numbering<'a> {
    pub fn new(redis: &'a Redis) -> Self {
        Self { redis }
    }

    /// Runs the script once. Nothing is taken unless the reply is [`Reply::Issued`].
    pub fn issue(
        &self,
        subject: Subject<'_>,
        known: Known,
        job: &JobTemplate,
        idempotency: Option<&IdempotencyKey>,
        lifetimes: Lifetimes,
        rate_limit_per_second: u32,
    ) -> Result<Reply, ApiError> {
        let (kind, chat) = match subject {
            Subject::Chat { .. } => ("chat", None),
            Subject::Message { chat, .. } => ("message", Some(chat.get().into())),
        };
        let fill_key = subject.fill_key();
        let args = ScriptArgs {
            kind,
            token: subject.token().as_str(),
            chat_number: chat,
            known_app: known.application_id,
            known_chat: known.chat_id,
            seed: known.seed,
            ttl: lifetimes.cache_seconds,
            job_head: &job.head,
            job_args_tail: &job.args_tail,
            job_tail: &job.tail,
            fill_key: &fill_key,
            idempotency_key: idempotency.map_or("", IdempotencyKey::as_str),
            idempotency_ttl: lifetimes.idempotency_seconds,
            rate_limit: rate_limit_per_second,
            new_chat_ttl: NEW_CHAT_SECONDS,
            spelling_ttl: known.spelt_otherwise.then_some(UNKNOWN_SECONDS),
        };
        let mut args = args.to_params();
        let values = self.redis.run_script(SCRIPT, &mut args)?;
        Reply::decode(&values).ok_or_else(|| {
            ApiError::unavailable(Backend::Redis, "unexpected reply from the numbering script")
        })
    }

    /// Whether this service handed chat `number` of the application out in the last
    /// [`NEW_CHAT_SECONDS`]: its row may still be on its way. Any other chat without a
    /// row is gone, or was never made.
    pub fn chat_is_new(&self, application_id: i64, number: ChatNumber) -> Result<bool, ApiError> {
        let mut key = String::from("chat_service:v1:new:");
        text::push_i64(&mut key, application_id);
        key.push(':');
        text::push_i64(&mut key, number.get().into());
        // Through `execute`, like every other command here: each distinct host function
        // the component imports is wired up again for every request's instance.
        let found = self
            .redis
            .execute("EXISTS", &[RedisParameter::Binary(key.into_bytes())])?;
        Ok(matches!(found.first(), Some(RedisResult::Int64(1))))
    }

    /// Waits while another request holds the fill lock of `subject`'s lookup: `Ok` once it
    /// is given up (or expired), when calling the script again will find the cache filled
    /// or take the lock itself. Looks at the lock alone, a few bytes, instead of calling
    /// the script again, which carries the whole job (up to 64 KiB), and looks less often
    /// the longer it waits.
    pub fn await_fill(&self, subject: Subject<'_>) -> Result<(), ApiError> {
        let key = RedisParameter::Binary(subject.fill_key().into_bytes());
        let (mut pause, mut waited) = (FIRST_FILL_PAUSE, Duration::ZERO);
        while waited < FILL_WAIT_BUDGET {
            platform::sleep(pause);
            waited += pause;
            let held = self.redis.execute("EXISTS", std::slice::from_ref(&key))?;
            if !matches!(held.first(), Some(RedisResult::Int64(1))) {
                return Ok(());
            }
            pause = (pause * 2).min(LONGEST_FILL_PAUSE);
        }
        Err(ApiError::unavailable(
            Backend::Redis,
            "another request's lookup of this application or chat did not finish",
        ))
    }

    /// Remembers for [`PENDING_SECONDS`] that `subject`'s chat was still pending when
    /// the request that looked it up gave up waiting, for the requests that waited on its
    /// lookup: they answer the same 409 at once instead of waiting their own second each.
    pub fn remember_pending(&self, subject: Subject<'_>) {
        let _ = self.redis.execute(
            "SET",
            &[
                RedisParameter::Binary(subject.pending_key().into_bytes()),
                RedisParameter::Binary(b"1".to_vec()),
                RedisParameter::Binary(b"EX".to_vec()),
                RedisParameter::Int64(PENDING_SECONDS),
            ],
        );
    }

    /// Whether another request gave up waiting for `subject`'s chat a moment ago.
    pub fn is_pending(&self, subject: Subject<'_>) -> Result<bool, ApiError> {
        let key = RedisParameter::Binary(subject.pending_key().into_bytes());
        let found = self.redis.execute("EXISTS", &[key])?;
        Ok(matches!(found.first(), Some(RedisResult::Int64(1))))
    }

    /// Remembers for [`UNKNOWN_SECONDS`] that MySQL has no application with `token`.
    pub fn remember_unknown(&self, token: &Token) {
        let mut key = String::from("chat_service:v1:unknown:");
        key.push_str(token.as_str());
        let _ = self.redis.execute(
            "SET",
            &[
                RedisParameter::Binary(key.into_bytes()),
                RedisParameter::Binary(b"1".to_vec()),
                RedisParameter::Binary(b"EX".to_vec()),
                RedisParameter::Int64(UNKNOWN_SECONDS),
            ],
        );
    }

    /// Gives up the fill lock after a lookup that found nothing to cache (not found, or
    /// MySQL failing), so waiting requests look it up themselves at once.
    pub fn release(&self, subject: Subject<'_>) {
        // Best effort: the lock expires by itself within two seconds anyway.
        let key = RedisParameter::Binary(subject.fill_key().into_bytes());
        let _ = self.redis.execute("DEL", &[key]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_hash_is_the_scripts() {
        assert_eq!(
            SCRIPT_SHA1,
            sha1_smol::Sha1::from(SCRIPT.as_bytes())
                .digest()
                .to_string()
        );
    }

    #[test]
    fn decodes_every_reply() {
        let ints = |v: &[i64]| v.iter().map(|i| RedisResult::Int64(*i)).collect::<Vec<_>>();
        let cases = [
            (
                ints(&[0, 7, 42]),
                Some(Reply::Issued {
                    number: 7,
                    parent_id: 42,
                }),
            ),
            (ints(&[1]), Some(Reply::NeedApplication)),
            (ints(&[2]), Some(Reply::NeedChat)),
            (ints(&[3, 42]), Some(Reply::NeedSeed { parent_id: 42 })),
            (ints(&[4]), Some(Reply::Exhausted)),
            (ints(&[5]), Some(Reply::WrongType)),
            (ints(&[6]), Some(Reply::Wait)),
            (ints(&[7, 3]), Some(Reply::Replayed { number: 3 })),
            (ints(&[8]), Some(Reply::KeyReused)),
            (ints(&[9]), Some(Reply::RateLimited)),
            (ints(&[10]), Some(Reply::UnknownApplication)),
            (ints(&[]), None),
            (ints(&[0, 7]), None),
            (ints(&[11]), None),
            (vec![RedisResult::Binary(b"0".to_vec())], None),
        ];
        for (values, expected) in cases {
            assert_eq!(Reply::decode(&values), expected, "{values:?}");
        }
    }
}
