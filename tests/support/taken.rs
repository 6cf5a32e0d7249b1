//! What requests took from Redis: the numbers a Rails counter handed out and the jobs
//! queued with them, and the one assertion that a request took nothing.
//!
//! "Takes nothing" is the promise of every refused request (bad input, a 4xx, a 503):
//! no number is taken and no job is queued, so nothing is lost or burned.

use serde_json::Value;

use super::Redis;

/// A Rails counter, and the job each of its numbers is queued as.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    /// `chat_app:{id}:chat_counter` of the application with this id: `CreateChatJob`.
    ChatsOf(i64),
    /// `chat:{id}:message_counter` of the chat with this id: `CreateMessageJob`.
    MessagesOf(i64),
}

impl Counter {
    pub fn key(self) -> String {
        match self {
            Self::ChatsOf(application_id) => format!("chat_app:{application_id}:chat_counter"),
            Self::MessagesOf(chat_id) => format!("chat:{chat_id}:message_counter"),
        }
    }

    pub fn job_class(self) -> &'static str {
        match self {
            Self::ChatsOf(_) => "CreateChatJob",
            Self::MessagesOf(_) => "CreateMessageJob",
        }
    }

    /// The id each of the counter's jobs carries as its first argument.
    pub fn parent_id(self) -> i64 {
        match self {
            Self::ChatsOf(id) | Self::MessagesOf(id) => id,
        }
    }
}

/// What a counter has handed out so far: its value (`None` while no number was ever
/// taken) and how many of its jobs are queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    pub last: Option<i64>,
    pub queued: usize,
}

impl Taken {
    /// No number ever taken, no job queued.
    pub const NOTHING: Self = Self {
        last: None,
        queued: 0,
    };
}

impl Redis {
    /// The queued jobs of `class` whose arguments start with `parent_id` (ids of chats and
    /// applications overlap, so the class is part of the filter).
    pub fn jobs_for(&mut self, class: &str, parent_id: i64) -> Vec<Value> {
        self.queue()
            .iter()
            .map(|job| serde_json::from_str::<Value>(job).expect("every queued job is JSON"))
            .filter(|job| {
                job["wrapped"] == class
                    && job["args"][0]["arguments"][0] == serde_json::json!(parent_id)
            })
            .collect()
    }

    /// Asserts that the requests since `earlier` took nothing from `counter`: it still
    /// stands at `earlier.last`, and `earlier.queued` of its jobs are queued, no more.
    #[track_caller]
    pub fn assert_took_nothing(&mut self, counter: Counter, earlier: Taken) {
        let key = counter.key();
        assert_eq!(
            self.get_int(&key),
            earlier.last,
            "no number taken from {key}"
        );
        let (class, parent_id) = (counter.job_class(), counter.parent_id());
        assert_eq!(
            self.jobs_for(class, parent_id).len(),
            earlier.queued,
            "no {class} queued for {parent_id}"
        );
    }
}
