//! Why a parser refused a value of the request: one variant per rule the domain types
//! enforce, named for what the input was, not for the HTTP answer.

/// Input that a domain type's `parse` refused, by the rule it broke. The status and text
/// the client gets for each are `ApiError`'s, through its `From<Rejected>`
/// (`src/error.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// A token that no `chat_applications.token` (VARCHAR(255)) can hold: a malformed
    /// percent-escape, bytes that are not UTF-8, no characters or more than 255, or a
    /// control character. CONTRACT.md's tables: "treat any existing token as valid"; one
    /// that cannot exist is its "unknown token" (404 `ChatApplication not found`).
    UnstorableToken,
    /// A chat number that is not a decimal integer: CONTRACT.md's "chat number not an
    /// integer" (400 `Invalid chat number`).
    ChatNumberNotAnInteger,
    /// An integer that no `chats.number` can hold: 0, negative, or above 2,147,483,647.
    /// CONTRACT.md's tables: "`number` is a signed 32-bit INT: a number above
    /// 2,147,483,647 can never be stored", so it names a chat that cannot exist, the
    /// "unknown chat number" (404 `Chat not found`).
    ChatNumberOutOfRange,
    /// A body that Rails' `presence: true` refuses: empty, or only Unicode White_Space.
    /// CONTRACT.md's jobs: `CreateMessageJob` "validates `body` is present: not empty and
    /// not only whitespace"; its error table's "message body blank" (422
    /// `Message body can't be blank`).
    BlankMessageBody,
    /// A body over 65,535 bytes of UTF-8. CONTRACT.md's tables: "`body` is TEXT: at most
    /// 65,535 bytes of UTF-8", and "the service must not hand out a number for anything
    /// the worker would reject" (fault 4). The error table has no row for it: 422, with
    /// the text docs/openapi.yaml gives.
    MessageBodyTooLong,
    /// An `Idempotency-Key` header that is empty, over 255 bytes or not visible ASCII.
    /// Not a CONTRACT.md rule: the key is the service's answer to the Go service's fault
    /// 7 (a retry after a timeout created a second chat or message), its form is
    /// docs/openapi.yaml's (400).
    InvalidIdempotencyKey,
}
