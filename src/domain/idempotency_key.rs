//! The `Idempotency-Key` header: the client's name for one request, so that a repeat of
//! it gets the first answer.

use super::Rejected;

/// The longest `Idempotency-Key` accepted, in bytes.
const MAX_BYTES: usize = 255;

/// A client's `Idempotency-Key` header: a repeat of a request with the same key (for the
/// same application, within a day) gets the first answer and takes no new number.
///
/// Visible ASCII only, 1 to 255 bytes: enough for a UUID or any client's scheme, and
/// nothing that could be confused with a separator in a Redis key or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `None` when the header is absent; an error when it is present but unusable.
    pub fn parse(header: Option<&[u8]>) -> Result<Option<Self>, Rejected> {
        let Some(bytes) = header else {
            return Ok(None);
        };
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_BYTES
            && bytes.iter().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(Rejected::InvalidIdempotencyKey);
        }
        // Visible ASCII is UTF-8.
        Ok(Some(Self(String::from_utf8_lossy(bytes).into_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_none_and_visible_ascii_is_a_key() {
        assert_eq!(IdempotencyKey::parse(None), Ok(None));
        let key = IdempotencyKey::parse(Some(b"8e03978e-40d5-43e8-bc93-6894a57f9324"));
        assert_eq!(
            key.unwrap().unwrap().as_str(),
            "8e03978e-40d5-43e8-bc93-6894a57f9324"
        );
        assert!(IdempotencyKey::parse(Some("k".repeat(255).as_bytes())).is_ok());
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [&b""[..], b"has space", b"tab\t", b"\xc3\xa9", b"nul\0"] {
            assert_eq!(
                IdempotencyKey::parse(Some(bad)),
                Err(Rejected::InvalidIdempotencyKey)
            );
        }
        let long = "k".repeat(256);
        assert_eq!(
            IdempotencyKey::parse(Some(long.as_bytes())),
            Err(Rejected::InvalidIdempotencyKey)
        );
    }
}
