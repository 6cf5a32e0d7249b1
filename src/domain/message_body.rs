//! A message's body as the Rails worker will store it: present in Rails' sense, and
//! within a TEXT column.

use super::Rejected;

/// `messages.body` is a MySQL TEXT column: at most 65,535 bytes.
pub const MAX_BYTES: usize = 65_535;

/// A message body that the Rails worker will store: present in Rails' sense and small
/// enough for TEXT.
///
/// This is where the Go service's fault of docs/contract.md §6.4 ends. Rails validates
/// `body` with `presence: true`, which calls `String#blank?` (`/\A[[:space:]]*\z/`, i.e.
/// empty or only Unicode White_Space, the same set as `char::is_whitespace`). A body the
/// worker would reject must be refused here, before a number is taken: a queued job that
/// can never succeed is retried for days and then lost, after the client was told 201.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(body: String) -> Result<Self, Rejected> {
        if body.chars().all(char::is_whitespace) {
            return Err(Rejected::BlankMessageBody);
        }
        if body.len() > MAX_BYTES {
            return Err(Rejected::MessageBodyTooLong);
        }
        Ok(Self(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_in_rails_sense_is_refused() {
        for blank in [
            "",
            " ",
            "\t\n\r",
            "\u{a0}",
            "\u{3000}",
            "\u{2028}\u{2029}",
            "\u{85}",
        ] {
            assert_eq!(
                MessageBody::parse(blank.to_owned()),
                Err(Rejected::BlankMessageBody),
                "{blank:?}"
            );
        }
    }

    #[test]
    fn invisible_but_not_whitespace_is_present() {
        // Ruby's [[:space:]] does not match ZERO WIDTH SPACE, so Rails stores it.
        assert!(MessageBody::parse("\u{200b}".to_owned()).is_ok());
        assert!(MessageBody::parse(" x ".to_owned()).is_ok());
    }

    #[test]
    fn the_limit_is_in_bytes_of_utf8() {
        assert!(MessageBody::parse("a".repeat(MAX_BYTES)).is_ok());
        assert_eq!(
            MessageBody::parse("a".repeat(MAX_BYTES + 1)),
            Err(Rejected::MessageBodyTooLong)
        );
        // 21,845 three-byte characters fit exactly; one more does not.
        assert!(MessageBody::parse("€".repeat(21_845)).is_ok());
        assert_eq!(
            MessageBody::parse("€".repeat(21_846)),
            Err(Rejected::MessageBodyTooLong)
        );
    }

    #[test]
    fn keeps_the_text_exactly() {
        let text = "héllo 👋 \"quoted\"\nnew line\\";
        assert_eq!(MessageBody::parse(text.to_owned()).unwrap().as_str(), text);
    }
}
