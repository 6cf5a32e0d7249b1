//! The chat number in a message creation's path: a value MySQL's signed 32-bit
//! `chats.number` can hold.

use super::Rejected;
use super::percent::percent_decode;

/// A chat number from the URL: a positive value of MySQL's signed 32-bit `chats.number`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatNumber(i32);

impl ChatNumber {
    /// Text that is not a decimal integer is [`Rejected::ChatNumberNotAnInteger`]; an
    /// integer that no `chats.number` can hold (0, negative, or above 2,147,483,647) is
    /// [`Rejected::ChatNumberOutOfRange`]: it names a chat that cannot exist.
    /// Parses the raw (still percent-encoded) path segment.
    pub fn parse(segment: &str) -> Result<Self, Rejected> {
        // Decoded only when escaped: a plain number, the usual case, is read as it is.
        let decoded;
        let segment = if segment.contains('%') {
            decoded = percent_decode(segment).ok_or(Rejected::ChatNumberNotAnInteger)?;
            decoded.as_str()
        } else {
            segment
        };
        let digits = segment
            .strip_prefix(['-', '+'])
            .unwrap_or(segment)
            .as_bytes();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Rejected::ChatNumberNotAnInteger);
        }
        match segment.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(Self(n as i32)),
            // Well-formed but out of range, including integers too long for an i64.
            _ => Err(Rejected::ChatNumberOutOfRange),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_storable_number() {
        assert_eq!(ChatNumber::parse("1").unwrap().get(), 1);
        assert_eq!(ChatNumber::parse("+7").unwrap().get(), 7);
        assert_eq!(ChatNumber::parse("007").unwrap().get(), 7);
        assert_eq!(ChatNumber::parse("2147483647").unwrap().get(), i32::MAX);
    }

    #[test]
    fn integers_no_row_can_hold_are_out_of_range() {
        for n in ["0", "-0", "-1", "2147483648", "99999999999999999999999"] {
            assert_eq!(
                ChatNumber::parse(n),
                Err(Rejected::ChatNumberOutOfRange),
                "{n}"
            );
        }
    }

    #[test]
    fn anything_else_is_not_an_integer() {
        for n in [
            "", "-", "+", "abc", "1a", "1.0", "1e3", " 1", "0x10", "--1", "١",
        ] {
            assert_eq!(
                ChatNumber::parse(n),
                Err(Rejected::ChatNumberNotAnInteger),
                "{n:?}"
            );
        }
    }

    #[test]
    fn the_segment_is_read_percent_decoded_as_rails_reads_it() {
        assert_eq!(ChatNumber::parse("%31").map(ChatNumber::get), Ok(1));
        assert_eq!(ChatNumber::parse("1%32").map(ChatNumber::get), Ok(12));
        assert_eq!(
            ChatNumber::parse("%"),
            Err(Rejected::ChatNumberNotAnInteger)
        );
        assert_eq!(
            ChatNumber::parse("%2D1"),
            Err(Rejected::ChatNumberOutOfRange)
        );
    }
}
