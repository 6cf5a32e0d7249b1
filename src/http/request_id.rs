//! `X-Request-Id`: one id per request, in the response header and the log line, so a
//! client's report and an operator's log can be matched.
//!
//! An id that came in is kept, so a request keeps the id a proxy or the Rails front end
//! gave it; the contract's CORS headers already expose `X-Request-Id` to browsers.

use crate::platform;
use crate::text;

/// The longest incoming id kept; longer ones are replaced. Proxies' ids (UUIDs, AWS trace
/// ids, Heroku's) fit well within it.
const MAX_BYTES: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The incoming header if it is 1 to 128 visible ASCII characters (nothing that could
    /// split a header or forge a log field); otherwise a new id.
    pub fn from_header(header: Option<&[u8]>) -> Self {
        match header {
            Some(bytes)
                if !bytes.is_empty()
                    && bytes.len() <= MAX_BYTES
                    && bytes.iter().all(u8::is_ascii_graphic) =>
            {
                Self(String::from_utf8_lossy(bytes).into_owned())
            }
            _ => Self::generate(),
        }
    }

    /// 128 random bits as 32 lowercase hex characters.
    fn generate() -> Self {
        let random: [u8; 16] = platform::random_bytes();
        let mut id = String::with_capacity(32);
        text::push_hex(&mut id, &random);
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_incoming_id_is_kept() {
        for id in [
            "abc",
            "7f3c9a52-1d2e-4b8f-9c1a-5e6d7f8a9b0c",
            &"x".repeat(128),
        ] {
            assert_eq!(RequestId::from_header(Some(id.as_bytes())).as_str(), id);
        }
    }

    #[test]
    fn a_missing_or_unusable_id_is_replaced_by_a_fresh_one() {
        let long = "x".repeat(129);
        for header in [
            None,
            Some(&b""[..]),
            Some(b"two words"),
            Some(b"line\nbreak"),
            Some("caf\u{e9}".as_bytes()),
            Some(long.as_bytes()),
        ] {
            let id = RequestId::from_header(header);
            assert_eq!(id.as_str().len(), 32, "{header:?}");
            assert!(
                id.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        assert_ne!(RequestId::from_header(None), RequestId::from_header(None));
    }
}
