//! The two use cases: create a chat, create a message.
//!
//! Each is a short conversation with the numbering script: call it with what is known,
//! and when it answers that it needs a fact from MySQL (a cache miss, a missing counter),
//! read that fact and call again. A warm request ends at the first call. Until the script
//! answers `Issued`, nothing has been taken or queued, so every error on the way leaves
//! Redis as it was.

use std::time::Duration;

use crate::config::Config;
use crate::domain::{ChatNumber, IdempotencyKey, MessageBody, Token};
use crate::error::{ApiError, Backend, Numbered};
use crate::job::{JobKind, JobTemplate, Stamp};
use crate::lookup::{ChatLookup, Lookup};
use crate::mysql_leases::MysqlLease;
use crate::numbering::{Known, Lifetimes, Numbering, Reply, Subject};
use crate::platform;
use crate::redis::Redis;

/// Lookups needed at most: a cold cache and a missing counter are settled by one MySQL
/// read, which supplies ids and seed together; the extra rounds cover a counter that
/// vanishes between two calls.
const MAX_LOOKUPS: usize = 4;

/// How many times a request waits for another one's lookup ([`Numbering::await_fill`]):
/// a lock given up without a fill (the lookup found nothing, MySQL failed) is taken by
/// the next request, which may be another one than this.
const MAX_WAITS: u32 = 4;

/// How long a message to a chat that has its number but not yet its row is held, polling
/// MySQL for the row: up to 20 x 50 ms, about a second, before 409 and Retry-After.
const PENDING_POLL_STEP: Duration = Duration::from_millis(50);
const PENDING_POLLS: u32 = 20;

/// Takes the next chat number of the application and queues `CreateChatJob`.
pub fn create_chat(
    config: &Config,
    token: &Token,
    idempotency: Option<&IdempotencyKey>,
) -> Result<Issued, ApiError> {
    let job = JobTemplate::new(JobKind::CreateChat, &Stamp::fresh());
    let request = Request {
        subject: Subject::Chat { token },
        job: &job,
        idempotency,
        numbered: Numbered::Chats,
    };
    issue(config, request, |lookup, _, reply| {
        Ok(match reply {
            Reply::NeedSeed { parent_id } => Known {
                seed: Some(lookup.max_chat_number(parent_id)?),
                ..Known::default()
            },
            _ => {
                let app = lookup
                    .application(token)?
                    .ok_or(ApiError::ApplicationNotFound)?;
                Known {
                    application_id: Some(app.id),
                    chat_id: None,
                    seed: Some(app.max_chat_number),
                    spelt_otherwise: app.spelt_otherwise,
                }
            }
        })
    })
}

/// Takes the next message number of the chat and queues `CreateMessageJob`.
pub fn create_message(
    config: &Config,
    token: &Token,
    chat: ChatNumber,
    body: &MessageBody,
    idempotency: Option<&IdempotencyKey>,
) -> Result<Issued, ApiError> {
    let job = JobTemplate::new(JobKind::CreateMessage(body), &Stamp::fresh());
    let subject = Subject::Message { token, chat };
    let request = Request {
        subject,
        job: &job,
        idempotency,
        numbered: Numbered::Messages,
    };
    issue(config, request, |lookup, numbering, reply| {
        if let Reply::NeedSeed { parent_id } = reply {
            return Ok(Known {
                seed: Some(lookup.max_message_number(parent_id)?),
                ..Known::default()
            });
        }
        chat_or_its_row(lookup, numbering, token, chat)
    })
}

/// The chat's ids from MySQL. A chat this service handed out a moment ago may have its
/// number but not yet its row (docs/contract.md §6.3: the worker has not run its job):
/// that is [`ApiError::ChatPending`], which [`look_up`] polls for a while before the
/// client gets 409 with Retry-After rather than a `Chat not found` that is not true. Only
/// a chat handed out recently is awaited: one deleted, or whose job died long ago, is the
/// contract's 404 at once.
fn chat_or_its_row(
    lookup: &mut Lookup<'_>,
    numbering: &Numbering<'_>,
    token: &Token,
    chat: ChatNumber,
) -> Result<Known, ApiError> {
    match lookup.chat(token, chat)? {
        ChatLookup::NoApplication => Err(ApiError::ApplicationNotFound),
        ChatLookup::Found(found) => Ok(Known {
            application_id: Some(found.application_id),
            chat_id: Some(found.id),
            seed: Some(found.max_message_number),
            spelt_otherwise: found.spelt_otherwise,
        }),
        ChatLookup::NoChat { application_id } => {
            if numbering.chat_is_new(application_id, chat)? {
                Err(ApiError::ChatPending)
            } else {
                Err(ApiError::ChatNotFound)
            }
        }
    }
}

/// What one use case asks the numbering script for.
struct Request<'a> {
    subject: Subject<'a>,
    job: &'a JobTemplate,
    idempotency: Option<&'a IdempotencyKey>,
    numbered: Numbered,
}

/// A number handed out; `replayed` when it is the first answer to an earlier request with
/// the same `Idempotency-Key`, and nothing new was taken or queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    pub number: i64,
    pub replayed: bool,
}

/// One lookup in MySQL for the numbering script, on one of the MySQL connections the
/// service may hold across all instances (`mysql_max_connections`): with none free, a 503
/// at once, so that a flood of cache misses (unknown tokens, say) never takes the
/// connections of the Rails app that shares the database. The fill lock is given up on
/// every failure, and a token MySQL does not know is remembered for a few seconds.
///
/// A pending chat is polled for about a second, each poll on a lease and a connection of
/// its own, given back before the pause: a request that waits for a row holds no MySQL
/// while it waits, and polls never hold more than half of the leases, so clients posting
/// to pending chats cannot take MySQL from everyone else's lookups.
fn look_up(
    config: &Config,
    redis: &Redis,
    numbering: &Numbering<'_>,
    lookup: &mut Lookup<'_>,
    subject: Subject<'_>,
    mut resolve: impl FnMut(&mut Lookup<'_>) -> Result<Known, ApiError>,
) -> Result<Known, ApiError> {
    let limit = config.mysql_max_connections()?;
    let mut polls = 0;
    let resolved = loop {
        // Polls share at most half of the leases, so that however many clients wait on
        // pending chats, the other half stays free for everyone else's lookups; a poll
        // that finds its half taken is skipped, not failed.
        let cap = if polls == 0 { limit } else { limit.div_ceil(2) };
        let resolved = match MysqlLease::take(redis, cap)? {
            Some(lease) => {
                let resolved = resolve(lookup);
                // The connection goes with the lease: a later round opens its own.
                lookup.close();
                lease.end(redis);
                resolved
            }
            None if polls == 0 => {
                numbering.release(subject);
                return Err(ApiError::unavailable(
                    Backend::Mysql,
                    "all of the service's MySQL connections (mysql_max_connections) are in use",
                ));
            }
            None => Err(ApiError::ChatPending),
        };
        match resolved {
            Err(ApiError::ChatPending) if polls < PENDING_POLLS => {
                polls += 1;
                platform::sleep(PENDING_POLL_STEP);
            }
            resolved => break resolved,
        }
    };
    resolved.inspect_err(|error| {
        match error {
            ApiError::ApplicationNotFound => numbering.remember_unknown(subject.token()),
            // Before the lock is given up, so that every request waiting on it sees it.
            ApiError::ChatPending => numbering.remember_pending(subject),
            _ => {}
        }
        numbering.release(subject);
    })
}

/// The conversation shared by both use cases; `resolve` reads from MySQL what a
/// `Need*` reply asks for.
fn issue(
    config: &Config,
    request: Request<'_>,
    mut resolve: impl FnMut(&mut Lookup<'_>, &Numbering<'_>, Reply) -> Result<Known, ApiError>,
) -> Result<Issued, ApiError> {
    let Request {
        subject,
        job,
        idempotency,
        numbered,
    } = request;
    let redis = Redis::open(&config.redis_url)?;
    let numbering = Numbering::new(&redis);
    let mut lookup = Lookup::lazy(config);
    let mut known = Known::default();
    // Each lifetime is a variable read only when this call writes what it governs, so a
    // warm request without a key reads neither.
    let idempotency_seconds = match idempotency {
        Some(_) => config.idempotency_seconds()?,
        None => 0,
    };
    let (mut lookups, mut waits) = (0, 0);
    while lookups < MAX_LOOKUPS && waits < MAX_WAITS {
        let fills = known.application_id.is_some() || known.chat_id.is_some();
        let lifetimes = Lifetimes {
            cache_seconds: if fills { config.cache_seconds()? } else { 0 },
            idempotency_seconds,
        };
        match numbering.issue(
            subject,
            known,
            job,
            idempotency,
            lifetimes,
            config.rate_limit_per_second,
        )? {
            Reply::Issued { number, .. } => {
                return Ok(Issued {
                    number,
                    replayed: false,
                });
            }
            Reply::Replayed { number } => {
                return Ok(Issued {
                    number,
                    replayed: true,
                });
            }
            Reply::KeyReused => return Err(ApiError::IdempotencyKeyReused),
            Reply::RateLimited => return Err(ApiError::RateLimited),
            Reply::Exhausted => return Err(ApiError::NumbersExhausted(numbered)),
            Reply::WrongType => {
                return Err(ApiError::unavailable(
                    Backend::Redis,
                    "a counter or queue key holds a value of the wrong type",
                ));
            }
            Reply::Wait => {
                waits += 1;
                numbering.await_fill(subject)?;
                // The lookup waited on found the chat still pending after its second:
                // this request would find the same.
                if matches!(subject, Subject::Message { .. }) && numbering.is_pending(subject)? {
                    return Err(ApiError::ChatPending);
                }
            }
            Reply::UnknownApplication => return Err(ApiError::ApplicationNotFound),
            need => {
                lookups += 1;
                known = look_up(config, &redis, &numbering, &mut lookup, subject, |lookup| {
                    resolve(lookup, &numbering, need)
                })?;
            }
        }
    }
    Err(ApiError::unavailable(
        Backend::Redis,
        "numbering did not settle: the lookup or the counter kept missing",
    ))
}
