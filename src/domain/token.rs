//! A chat application's token from the path, percent-decoded: any text a
//! `chat_applications.token` row could hold.

use super::Rejected;
use super::percent::percent_decode;

/// The longest token `chat_applications.token` (VARCHAR(255)) can hold, in characters.
const MAX_CHARS: usize = 255;

/// A chat application's token, as it appears (percent-decoded) in the URL.
///
/// Rails makes tokens of 32 lowercase hex characters, but the contract says to treat any
/// existing token as valid, so this only rejects what no row can hold: more than 255
/// characters, control characters, or bytes that are not UTF-8. Such a token cannot
/// exist, so it is refused ([`Rejected::UnstorableToken`], the contract's unknown token)
/// without touching Redis or MySQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Parses the raw (still percent-encoded) path segment.
    pub fn parse(segment: &str) -> Result<Self, Rejected> {
        let decoded = percent_decode(segment).ok_or(Rejected::UnstorableToken)?;
        let chars = decoded.chars().count();
        if chars == 0 || chars > MAX_CHARS || decoded.chars().any(char::is_control) {
            return Err(Rejected::UnstorableToken);
        }
        Ok(Self(decoded))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_rails_token() {
        let token = Token::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(token.as_str(), "0123456789abcdef0123456789abcdef");
    }

    #[test]
    fn accepts_any_printable_token_that_a_row_could_hold() {
        assert_eq!(Token::parse("My-Token_1").unwrap().as_str(), "My-Token_1");
        assert_eq!(Token::parse("caf%C3%A9").unwrap().as_str(), "café");
        assert_eq!(
            Token::parse(&"é".repeat(255))
                .unwrap()
                .as_str()
                .chars()
                .count(),
            255
        );
    }

    #[test]
    fn rejects_what_no_row_can_hold() {
        for bad in [
            "",
            "%",
            "%4",
            "%zz",
            "a%00b",
            "tab%09",
            "%FF%FE",
            &"a".repeat(256),
        ] {
            assert_eq!(Token::parse(bad), Err(Rejected::UnstorableToken), "{bad:?}");
        }
    }
}
