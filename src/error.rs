//! The one error type every handler answers with.
//!
//! Each variant knows its HTTP status and the text of its `{"error": "..."}` body, so an
//! error reads the same whichever route produced it. The texts of the contract's error
//! table are fixed: Rails clients match on them. An input a domain parser refused
//! arrives as a [`Rejected`] and is given its status and text here, nowhere else.

use std::fmt;

use crate::config::{ConfigError, without_credentials};
use crate::domain::Rejected;

/// Seconds a client should wait before retrying a 503, 409 (chat pending) or 429.
pub const RETRY_AFTER_SECONDS: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No route has this path.
    RouteNotFound,
    /// The path is known, the method is not; `allow` lists what is.
    MethodNotAllowed {
        allow: &'static str,
    },
    /// An API key is configured and the request did not present it.
    Unauthorized,
    ApplicationNotFound,
    ChatNotFound,
    /// The chat number was handed out but the worker has not stored the chat yet (fault 3
    /// of the Go service answered `Chat not found` here): retry shortly.
    ChatPending,
    InvalidChatNumber,
    InvalidRequestBody,
    InvalidIdempotencyKey,
    /// The `Idempotency-Key` already answered a different request.
    IdempotencyKeyReused,
    BlankMessageBody,
    MessageBodyTooLong,
    /// The request body is over the cap; it was not read to the end.
    PayloadTooLarge,
    /// The request body did not arrive within `request_body_timeout_seconds`.
    RequestTimeout,
    /// The counter is at the largest number `INT` can hold: nothing more can be numbered.
    NumbersExhausted(Numbered),
    /// The application was given as many numbers this second as `rate_limit_per_second`
    /// allows. Nothing was taken; the window ends within the second.
    RateLimited,
    /// Redis or MySQL could not be reached or answered with an error. Nothing was done.
    /// `detail` goes to the log only, never to the client.
    Unavailable {
        backend: Backend,
        detail: String,
    },
    /// A variable is missing or malformed: the deployment, not the request, is wrong, so
    /// this is a 500 without `Retry-After`. `detail` goes to the log only.
    Misconfigured {
        detail: String,
    },
}

/// What a counter numbers, for the `NumbersExhausted` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbered {
    Chats,
    Messages,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Redis,
    Mysql,
}

impl ApiError {
    pub fn unavailable(backend: Backend, detail: impl fmt::Display) -> Self {
        Self::Unavailable {
            backend,
            detail: without_credentials(&without_backtrace(detail.to_string())),
        }
    }

    pub fn misconfigured(detail: impl fmt::Display) -> Self {
        Self::Misconfigured {
            detail: without_credentials(&detail.to_string()),
        }
    }

    /// What the log line says about the cause, beyond the status. Never a secret: the
    /// details are host error texts, where a host quotes the URL it was given (a failed
    /// `open`) its password is masked before the text gets here
    /// ([`crate::config::without_password`]), and any credentials left are masked when
    /// the error is made ([`without_credentials`]).
    pub fn log_detail(&self) -> Option<String> {
        match self {
            Self::Unavailable { backend, detail } => Some(format!("{backend}: {detail}")),
            Self::Misconfigured { detail } => Some(detail.clone()),
            _ => None,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidChatNumber | Self::InvalidRequestBody | Self::InvalidIdempotencyKey => 400,
            Self::RouteNotFound | Self::ApplicationNotFound | Self::ChatNotFound => 404,
            Self::Unauthorized => 401,
            Self::MethodNotAllowed { .. } => 405,
            Self::ChatPending | Self::NumbersExhausted(_) => 409,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::BlankMessageBody | Self::MessageBodyTooLong | Self::IdempotencyKeyReused => 422,
            Self::RateLimited => 429,
            Self::Misconfigured { .. } => 500,
            Self::Unavailable { .. } => 503,
        }
    }

    /// The `error` text the client sees.
    pub fn message(&self) -> &'static str {
        match self {
            Self::RouteNotFound => "Not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::Unauthorized => "Missing or invalid API key",
            Self::ApplicationNotFound => "ChatApplication not found",
            Self::ChatNotFound => "Chat not found",
            Self::ChatPending => "Chat is still being created, please retry",
            Self::InvalidChatNumber => "Invalid chat number",
            Self::InvalidRequestBody => "Invalid request body",
            Self::InvalidIdempotencyKey => {
                "Invalid Idempotency-Key header (1 to 255 visible ASCII characters)"
            }
            Self::IdempotencyKeyReused => {
                "Idempotency-Key was already used for a different request"
            }
            Self::BlankMessageBody => "Message body can't be blank",
            Self::MessageBodyTooLong => "Message body is too long (maximum is 65535 bytes)",
            Self::PayloadTooLarge => "Request body is too large (maximum is 1048576 bytes)",
            Self::RequestTimeout => "Request body was not received in time",
            Self::NumbersExhausted(Numbered::Chats) => {
                "This application has reached the maximum number of chats"
            }
            Self::NumbersExhausted(Numbered::Messages) => {
                "This chat has reached the maximum number of messages"
            }
            Self::RateLimited => "Rate limit exceeded",
            Self::Misconfigured { .. } => "Service is misconfigured",
            Self::Unavailable { .. } => "Service temporarily unavailable, please retry",
        }
    }

    /// Headers this error adds to the common ones.
    pub fn extra_headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MethodNotAllowed { allow } => vec![("allow", (*allow).to_owned())],
            Self::Unauthorized => vec![("www-authenticate", "Bearer".to_owned())],
            Self::Unavailable { .. } | Self::ChatPending | Self::RateLimited => {
                vec![("retry-after", RETRY_AFTER_SECONDS.to_string())]
            }
            _ => Vec::new(),
        }
    }
}

/// The one place a rule the domain types enforce becomes the contract's answer: the
/// edge maps a refused input with `?`, and every route answers it alike.
impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        match rejected {
            Rejected::UnstorableToken => Self::ApplicationNotFound,
            Rejected::ChatNumberNotAnInteger => Self::InvalidChatNumber,
            // A number no row can hold names a chat that cannot exist.
            Rejected::ChatNumberOutOfRange => Self::ChatNotFound,
            Rejected::BlankMessageBody => Self::BlankMessageBody,
            Rejected::MessageBodyTooLong => Self::MessageBodyTooLong,
            Rejected::InvalidIdempotencyKey => Self::InvalidIdempotencyKey,
        }
    }
}

/// Every settings error is the same answer: the deployment is wrong (500, no
/// `Retry-After`), with what to fix in the log.
impl From<ConfigError> for ApiError {
    fn from(error: ConfigError) -> Self {
        Self::misconfigured(error)
    }
}

/// Spin renders a MySQL connection failure with anyhow's `{:?}`, which ends in a
/// backtrace of Spin's own frames (fifty lines of `<unknown>`) whenever `RUST_BACKTRACE`
/// is set where Spin runs: noise in a log line, cut here. The text arrives either as it
/// is or inside the `Debug` form of the SDK's error (newlines escaped, a closing `")`),
/// whose closing is kept.
fn without_backtrace(mut detail: String) -> String {
    for (marker, closing) in [
        ("\\n\\nStack backtrace:", "\")"),
        ("\n\nStack backtrace:", ""),
    ] {
        if let Some(start) = detail.find(marker) {
            // The backtrace runs to the end, or to the closing of the `Debug` form.
            let end = match detail.strip_suffix(closing) {
                Some(kept) => kept.len(),
                None => detail.len(),
            };
            detail.replace_range(start..end.max(start), "");
        }
    }
    detail
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redis => "redis",
            Self::Mysql => "mysql",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_error_table() {
        let rows = [
            (
                ApiError::ApplicationNotFound,
                404,
                "ChatApplication not found",
            ),
            (ApiError::ChatNotFound, 404, "Chat not found"),
            (ApiError::InvalidChatNumber, 400, "Invalid chat number"),
            (ApiError::InvalidRequestBody, 400, "Invalid request body"),
            (
                ApiError::BlankMessageBody,
                422,
                "Message body can't be blank",
            ),
        ];
        for (error, status, text) in rows {
            assert_eq!((error.status(), error.message()), (status, text));
        }
    }

    #[test]
    fn each_refused_input_gets_the_contracts_status_and_text() {
        let rows = [
            (Rejected::UnstorableToken, 404, "ChatApplication not found"),
            (Rejected::ChatNumberNotAnInteger, 400, "Invalid chat number"),
            (Rejected::ChatNumberOutOfRange, 404, "Chat not found"),
            (
                Rejected::BlankMessageBody,
                422,
                "Message body can't be blank",
            ),
            (
                Rejected::MessageBodyTooLong,
                422,
                "Message body is too long (maximum is 65535 bytes)",
            ),
            (
                Rejected::InvalidIdempotencyKey,
                400,
                "Invalid Idempotency-Key header (1 to 255 visible ASCII characters)",
            ),
        ];
        for (rejected, status, text) in rows {
            let error = ApiError::from(rejected);
            assert_eq!(
                (error.status(), error.message()),
                (status, text),
                "{rejected:?}"
            );
        }
    }

    #[test]
    fn unavailable_hides_its_detail_and_asks_for_a_retry() {
        let error = ApiError::unavailable(Backend::Mysql, "Access denied for user 'rails'");
        assert_eq!(error.status(), 503);
        assert!(!error.message().contains("rails"));
        assert_eq!(error.extra_headers(), vec![("retry-after", "1".to_owned())]);
    }

    #[test]
    fn a_backtrace_spin_appends_is_cut_from_the_detail() {
        let escaped = r#"Error::ConnectionFailed("Server error: `ERROR 1049`\n\nCaused by:\n    ERROR 1049\n\nStack backtrace:\n   0: <unknown>\n  47: clone3")"#;
        let error = ApiError::unavailable(Backend::Mysql, escaped);
        assert_eq!(
            error.log_detail().unwrap(),
            r#"mysql: Error::ConnectionFailed("Server error: `ERROR 1049`\n\nCaused by:\n    ERROR 1049")"#
        );
        let plain = "refused\n\nStack backtrace:\n   0: <unknown>";
        let error = ApiError::unavailable(Backend::Mysql, plain);
        assert_eq!(error.log_detail().unwrap(), "mysql: refused");
        let error = ApiError::unavailable(Backend::Redis, "Connection refused (os error 111)");
        assert_eq!(
            error.log_detail().unwrap(),
            "redis: Connection refused (os error 111)"
        );
    }
}
