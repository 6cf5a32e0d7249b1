//! The body of a message creation request: `{"message": {"body": "..."}}`.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::domain::MessageBody;
use crate::error::ApiError;

/// Request bodies larger than this are refused with 413 before they are read to the end:
/// a persistable body is at most 65,535 bytes, and JSON escaping can at most sextuple it
/// (`\u0000`), so 1 MiB leaves room for any valid request.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// JSON of another shape (not an object, no `message` object, a `body` that is not a
/// string) is `Invalid request body`; a body the worker would reject is 422. Unknown
/// fields are skipped however deep (without recursing: the component runs on a small
/// stack), as Rails' strong parameters ignore them, and a key given twice takes its last
/// value, as Rails' JSON parser does.
pub fn parse_message(bytes: &[u8]) -> Result<MessageBody, ApiError> {
    let request: CreateMessage =
        serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidRequestBody)?;
    let message = request.message.ok_or(ApiError::InvalidRequestBody)?;
    Ok(MessageBody::parse(message.body.unwrap_or_default())?)
}

/// `{"message": {...}}`.
struct CreateMessage {
    message: Option<MessageParams>,
}

/// `{"body": "..."}`: absent or `null` is a blank body in Rails' eyes (422), not a
/// malformed request.
struct MessageParams {
    body: Option<String>,
}

/// Reads an object's fields in order, the value of `wanted` read as `T` (the last one
/// wins) and every other value skipped.
fn last_field<'de, A, T>(mut map: A, wanted: &str) -> Result<Option<T>, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let mut found = None;
    while let Some(key) = map.next_key::<String>()? {
        if key == wanted {
            found = map.next_value()?;
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(found)
}

impl<'de> Deserialize<'de> for CreateMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = CreateMessage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CreateMessage, A::Error> {
                Ok(CreateMessage {
                    message: last_field(map, "message")?,
                })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl<'de> Deserialize<'de> for MessageParams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = MessageParams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MessageParams, A::Error> {
                // `Option<String>`: a `null` body reads as absent.
                let body: Option<Option<String>> = last_field(map, "body")?;
                Ok(MessageParams {
                    body: body.flatten(),
                })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_body() {
        let body = parse_message(br#"{"message":{"body":"hi \ud83d\udc4b","extra":1},"x":2}"#);
        assert_eq!(body.unwrap().as_str(), "hi 👋");
    }

    #[test]
    fn malformed_json_or_shape_is_400() {
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            b"null",
            b"{}",
            br#"{"message":"hi"}"#,
            br#"{"message":null}"#,
            br#"{"message":{"body":5}}"#,
            br#"{"message":{"body":["a"]}}"#,
            br#"{"message":{"body":"\ud800"}}"#,
            b"{\"message\":{\"body\":\"\xff\"}}",
            br#"{"message":{"body":"a"}} trailing"#,
        ] {
            assert_eq!(
                parse_message(bad),
                Err(ApiError::InvalidRequestBody),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn blank_or_missing_body_is_422() {
        for blank in [
            &br#"{"message":{}}"#[..],
            br#"{"message":{"body":null}}"#,
            br#"{"message":{"body":""}}"#,
            br#"{"message":{"body":" \n\t\u3000"}}"#,
        ] {
            assert_eq!(parse_message(blank), Err(ApiError::BlankMessageBody));
        }
    }

    #[test]
    fn too_long_is_422() {
        let json = format!(r#"{{"message":{{"body":"{}"}}}}"#, "x".repeat(65_536));
        assert_eq!(
            parse_message(json.as_bytes()),
            Err(ApiError::MessageBodyTooLong)
        );
    }

    #[test]
    fn a_key_given_twice_takes_its_last_value_as_in_rails() {
        let body = parse_message(br#"{"message":{"body":"x","body":"y"}}"#).unwrap();
        assert_eq!(body.as_str(), "y");
        let body = parse_message(br#"{"message":{"body":"x"},"message":{"body":"z"}}"#);
        assert_eq!(body.unwrap().as_str(), "z");
    }
}
