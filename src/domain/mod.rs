//! The values a request is made of, parsed once at the edge.
//!
//! Each type can only be built from input that the Rails side can store, so the code
//! further in (numbering, the job format) never checks them again.
//!
//! A parser that refuses its input says which rule the input broke ([`Rejected`]), not
//! what HTTP answers: the domain types know the rules (the columns and limits of
//! docs/contract.md §1), not the statuses. The contract's status and text for each rule
//! (§5.2) are mapped in one place, `ApiError`'s `From<Rejected>` in `src/error.rs`, so
//! the edge (`src/http/`) maps with `?` and nothing in `domain/` depends on HTTP. This
//! is the way of zero-to-production's domain parsers, and it says more than the HTTP
//! error did: an out-of-range chat number is `ChatNumberOutOfRange`, which the contract
//! answers as it answers a chat that does not exist. The mapping is one `match` on a
//! `Copy` enum, so it costs the hot path nothing.

mod chat_number;
mod idempotency_key;
mod message_body;
mod percent;
mod rejected;
mod token;

pub use chat_number::ChatNumber;
pub use idempotency_key::IdempotencyKey;
pub use message_body::MessageBody;
pub use rejected::Rejected;
pub use token::Token;
