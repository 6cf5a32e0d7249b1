//! Passwords taken out of text that is about to be logged.
//!
//! A host's error text may quote the address it was given (Spin's MySQL interface
//! answers `address <url> is not permitted` for a host outside `allowed_outbound_hosts`),
//! and such a text is kept for the log line, which must never hold a secret.

/// `text` with the password of `url` masked, as written in the URL and percent-decoded,
/// so that neither spelling gets through.
pub fn without_password(text: &str, url: &str) -> String {
    let Some(password) = password(url) else {
        return text.to_owned();
    };
    let mut masked = text.to_owned();
    let decoded = percent_decode(password);
    // The longer first, so that one spelling cannot leave part of the other.
    let (long, short) = if decoded.len() > password.len() {
        (decoded.as_str(), password)
    } else {
        (password, decoded.as_str())
    };
    for secret in [long, short] {
        if !secret.is_empty() {
            masked = masked.replace(secret, "***");
        }
    }
    masked
}

/// The password of `scheme://user:password@host...`. The user info ends at the last `@`,
/// as in a Go DSN, so a password written with a bare `@` is found whole.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (user_info, _) = rest.rsplit_once('@')?;
    let (_, password) = user_info.split_once(':')?;
    Some(password)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_quoted_url_loses_its_password_in_either_spelling() {
        let url = "mysql://rails:p%40ss:w0rd@db.internal:3306/chat";
        let quoted = format!("address {url} is not permitted; login p@ss:w0rd refused");
        let masked = without_password(&quoted, url);
        assert_eq!(
            masked,
            "address mysql://rails:***@db.internal:3306/chat is not permitted; login *** refused"
        );
        let bare = "redis://:hunter2@cache:6379/0";
        assert_eq!(
            without_password(&format!("cannot open {bare}"), bare),
            "cannot open redis://:***@cache:6379/0"
        );
        for no_password in ["mysql://root@db/x", "redis://cache:6379", "nonsense"] {
            assert_eq!(without_password("as it was", no_password), "as it was");
        }
    }
}
