//! The values a request is made of, parsed once at the edge.
//!
//! Each type can only be built from input that the Rails side can store, so the code
//! further in (numbering, the job format) never checks them again.

mod chat_number;
mod idempotency_key;
mod message_body;
mod token;

pub use chat_number::ChatNumber;
pub use idempotency_key::IdempotencyKey;
pub use message_body::MessageBody;
pub use token::Token;
