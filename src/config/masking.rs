//! Passwords taken out of text that is about to be logged.
//!
//! A host's error text may quote the address it was given (Spin's MySQL interface
//! answers `address <url> is not permitted` for a host outside `allowed_outbound_hosts`),
//! and such a text is kept for the log line, which must never hold a secret.
//!
//! Two passes, since neither alone is enough: [`without_password`] knows the configured
//! URL and finds its password however it is spelt (even unencoded, where no parser could
//! tell where it ends); [`without_credentials`] knows no URL and takes out whatever looks
//! like credentials, from any URL or setting a backend or the host may quote.

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

/// `text` with the user info of every URL in it (`scheme://user:password@`, user names
/// count: a database user is half a login) and the value of every `password=` masked.
pub fn without_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends where a path, a query or the quoted text around it starts.
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#\"'`\\)]>,;".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_info_end) => {
                out.push_str("***");
                out.push_str(&authority[user_info_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    without_password_settings(&out)
}

/// `password=...` (any case, as in a DSN, a connection string or a query) masked up to
/// the next separator.
fn without_password_settings(text: &str) -> String {
    const NAME: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(NAME) {
        let value = from + found + NAME.len();
        let end = text[value..]
            .find(|c: char| c.is_whitespace() || "&;,\"'`)".contains(c))
            .map_or(text.len(), |len| value + len);
        out.push_str(&text[copied..value]);
        out.push_str("***");
        copied = end;
        from = end.max(value);
    }
    out.push_str(&text[copied..]);
    out
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

    #[test]
    fn any_url_loses_its_user_info_and_any_password_setting_its_value() {
        assert_eq!(
            without_credentials(
                "address mysql://rails:s3cret@db:3306/chat is not permitted; \
                 also \"rediss://default:tok@cache:6380\" and redis://cache:6379"
            ),
            "address mysql://***@db:3306/chat is not permitted; \
             also \"rediss://***@cache:6380\" and redis://cache:6379"
        );
        assert_eq!(
            without_credentials("Server=db;User=rails;Password=s3cret;Database=x"),
            "Server=db;User=rails;Password=***;Database=x"
        );
        assert_eq!(
            without_credentials("mysql://db/x?user=u&password=p%40ss&ssl-mode=REQUIRED"),
            "mysql://db/x?user=u&password=***&ssl-mode=REQUIRED"
        );
        for untouched in [
            "Access denied for user 'chat'@'127.0.0.1' (using password: YES)",
            "",
            "://",
            "password=",
        ] {
            assert_eq!(without_credentials(untouched).replace("***", ""), untouched);
        }
    }
}
