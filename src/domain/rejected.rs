//! Why a parser refused a value of the request: one variant per rule the domain types
//! enforce, named for what the input was, not for the HTTP answer.

/// Input that a domain type's `parse` refused, by the rule it broke. The status and text
/// the client gets for each are `ApiError`'s, through its `From<Rejected>`
/// (`src/error.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// A token that no `chat_applications.token` (VARCHAR(255)) can hold: a malformed
    /// percent-escape, bytes that are not UTF-8, no characters or more than 255, or a
    /// control character. Any existing token is valid (docs/contract.md §1); one that
    /// cannot exist is an "unknown token" (§5.2: 404 `ChatApplication not found`).
    UnstorableToken,
    /// A chat number that is not a decimal integer: "chat number not an integer"
    /// (docs/contract.md §5.2: 400 `Invalid chat number`).
    ChatNumberNotAnInteger,
    /// An integer that no `chats.number` can hold: 0, negative, or above 2,147,483,647.
    /// `number` is a signed 32-bit INT, so such a number can never be stored
    /// (docs/contract.md §1): it names a chat that cannot exist, an "unknown chat number"
    /// (§5.2: 404 `Chat not found`).
    ChatNumberOutOfRange,
    /// A body that Rails' `presence: true` refuses: empty, or only Unicode White_Space.
    /// The worker's `CreateMessageJob` validates that `body` is present: not empty and
    /// not only whitespace (docs/contract.md §3); "message body blank" (§5.2: 422
    /// `Message body can't be blank`).
    BlankMessageBody,
    /// A body over 65,535 bytes of UTF-8: `body` is TEXT (docs/contract.md §1), and no
    /// number may be handed out for anything the worker would reject (§3, §6.4). The
    /// contract's error table has no row for it: 422, with the text docs/openapi.yaml
    /// gives (§5.4).
    MessageBodyTooLong,
    /// An `Idempotency-Key` header that is empty, over 255 bytes or not visible ASCII.
    /// Not a rule of the contract: the key is the service's answer to a retry after a
    /// timeout creating a second chat or message (docs/contract.md §6.7); its form is
    /// docs/openapi.yaml's (400).
    InvalidIdempotencyKey,
}
