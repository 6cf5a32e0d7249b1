//! MySQL reads, made only when the numbering script asks for them (a cache miss or a
//! missing counter). The Rails app owns the tables; the service never writes them.
//!
//! Every statement is parameterized: the token and numbers travel as parameters.

use spin_sdk::mysql::{Connection, DbValue, MysqlError, ParameterValue};

use crate::config::ConfigError;
use crate::config::{Config, without_password};
use crate::domain::{ChatNumber, Token};
use crate::error::{ApiError, Backend};

/// An application, with the seed its chat counter needs if Redis lost it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Application {
    pub id: i64,
    pub max_chat_number: i64,
    /// The request spelt the token otherwise than the row stores it (see [`spelt_as_stored`]).
    pub spelt_otherwise: bool,
}

/// A chat, with the seed its message counter needs if Redis lost it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chat {
    pub application_id: i64,
    pub id: i64,
    pub max_message_number: i64,
    pub spelt_otherwise: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatLookup {
    NoApplication,
    /// The application exists, this chat number has no row (yet).
    NoChat {
        application_id: i64,
    },
    Found(Chat),
}

/// A MySQL connection opened on first use, so a warm request never opens one.
pub struct Lookup<'a> {
    config: &'a Config,
    connection: Option<Connection>,
}

impl<'a> Lookup<'a> {
    pub fn lazy(config: &'a Config) -> Self {
        Self {
            config,
            connection: None,
        }
    }

    /// Closes the connection, if one was opened; the next query opens another.
    pub fn close(&mut self) {
        self.connection = None;
    }

    pub fn application(&mut self, token: &Token) -> Result<Option<Application>, ApiError> {
        let rows = self.query(
            "SELECT a.id, COALESCE((SELECT MAX(c.number) FROM chats c \
             WHERE c.chat_application_id = a.id), 0), a.token \
             FROM chat_applications a WHERE a.token = ? LIMIT 1",
            &[ParameterValue::Str(token.as_str().to_owned())],
        )?;
        Ok(match rows.first() {
            None => None,
            Some(row) => Some(Application {
                id: int(row, 0)?,
                max_chat_number: int(row, 1)?,
                spelt_otherwise: !spelt_as_stored(row, 2, token),
            }),
        })
    }

    /// One statement answers both "does the application exist" and "does the chat".
    pub fn chat(&mut self, token: &Token, number: ChatNumber) -> Result<ChatLookup, ApiError> {
        let rows = self.query(
            "SELECT a.id, c.id, COALESCE((SELECT MAX(m.number) FROM messages m \
             WHERE m.chat_id = c.id), 0), a.token \
             FROM chat_applications a \
             LEFT JOIN chats c ON c.chat_application_id = a.id AND c.number = ? \
             WHERE a.token = ? LIMIT 1",
            &[
                ParameterValue::Int32(number.get()),
                ParameterValue::Str(token.as_str().to_owned()),
            ],
        )?;
        let Some(row) = rows.first() else {
            return Ok(ChatLookup::NoApplication);
        };
        if matches!(row.get(1), Some(DbValue::DbNull)) {
            return Ok(ChatLookup::NoChat {
                application_id: int(row, 0)?,
            });
        }
        Ok(ChatLookup::Found(Chat {
            application_id: int(row, 0)?,
            id: int(row, 1)?,
            max_message_number: int(row, 2)?,
            spelt_otherwise: !spelt_as_stored(row, 3, token),
        }))
    }

    pub fn max_chat_number(&mut self, application_id: i64) -> Result<i64, ApiError> {
        self.max(
            "SELECT COALESCE(MAX(number), 0) FROM chats WHERE chat_application_id = ?",
            application_id,
        )
    }

    pub fn max_message_number(&mut self, chat_id: i64) -> Result<i64, ApiError> {
        self.max(
            "SELECT COALESCE(MAX(number), 0) FROM messages WHERE chat_id = ?",
            chat_id,
        )
    }

    fn max(&mut self, statement: &str, id: i64) -> Result<i64, ApiError> {
        let rows = self.query(statement, &[ParameterValue::Int64(id)])?;
        rows.first().map_or(Ok(0), |row| int(row, 0))
    }

    fn query(
        &mut self,
        statement: &str,
        params: &[ParameterValue],
    ) -> Result<Vec<Vec<DbValue>>, ApiError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            slot => slot.insert(open(&self.config.mysql_url()?)?),
        };
        let set = connection
            .query(statement, params)
            .map_err(mysql_unavailable)?;
        Ok(set.rows)
    }
}

/// Opens a connection and runs a trivial statement, for the readiness check: it proves
/// the URL, the credentials and the server, without touching the Rails tables.
pub fn ping(config: &Config) -> Result<(), ApiError> {
    open(&config.mysql_url()?)?
        .query("SELECT 1", &[])
        .map(drop)
        .map_err(mysql_unavailable)
}

/// Opens a connection. A server at `max_connections` (error 1040) is a 503 at once, like
/// any other failure: the service's own connections are bounded already
/// (`mysql_max_connections`, [`crate::service`]), so a full server is full of someone
/// else's, and retrying would only add to its load.
fn open(url: &str) -> Result<Connection, ApiError> {
    Connection::open(url).map_err(|error| mysql_unreachable(error, url))
}

/// Whether column `column` holds `token` byte for byte. MySQL matched it under the
/// column's collation (`utf8mb4_general_ci`: case, accents and trailing spaces aside), so
/// one application answers to many spellings, as it does in Rails; only the stored one is
/// cached for `lookup_cache_seconds`, or each new spelling would leave a key behind for
/// that long (docs/operations.md, "Hostile clients").
fn spelt_as_stored(row: &[DbValue], column: usize, token: &Token) -> bool {
    match row.get(column) {
        Some(DbValue::Str(stored)) => stored == token.as_str(),
        Some(DbValue::Binary(stored)) => stored == token.as_str().as_bytes(),
        _ => false,
    }
}

/// Reads an integer column whatever integer type the server chose for it (`COALESCE`
/// over `MAX(INT)` comes back as BIGINT on MariaDB, and as DECIMAL text on some servers).
fn int(row: &[DbValue], column: usize) -> Result<i64, ApiError> {
    let value = match row.get(column) {
        Some(DbValue::Int8(v)) => Some(i64::from(*v)),
        Some(DbValue::Int16(v)) => Some(i64::from(*v)),
        Some(DbValue::Int32(v)) => Some(i64::from(*v)),
        Some(DbValue::Int64(v)) => Some(*v),
        Some(DbValue::Uint8(v)) => Some(i64::from(*v)),
        Some(DbValue::Uint16(v)) => Some(i64::from(*v)),
        Some(DbValue::Uint32(v)) => Some(i64::from(*v)),
        Some(DbValue::Uint64(v)) => i64::try_from(*v).ok(),
        Some(DbValue::Str(s)) => s.parse().ok(),
        Some(DbValue::Binary(b)) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
        _ => None,
    };
    value.ok_or_else(|| {
        ApiError::unavailable(Backend::Mysql, format!("column {column} is not an integer"))
    })
}

fn mysql_unavailable(error: MysqlError) -> ApiError {
    ApiError::unavailable(Backend::Mysql, format!("{error:?}"))
}

/// A failed `open`, whose text may quote the URL it was given: the password is masked in
/// the host's own text, before anything escapes it (a `"` or `\` in a password would
/// otherwise be spelt differently in the log than in the URL, and slip through).
///
/// Spin refuses a host outside `allowed_outbound_hosts` with `connection-failed("address
/// <url> is not permitted")`: a misconfiguration, not an outage.
fn mysql_unreachable(error: MysqlError, url: &str) -> ApiError {
    let (kind, text) = match &error {
        MysqlError::ConnectionFailed(text) => ("ConnectionFailed", text),
        MysqlError::BadParameter(text) => ("BadParameter", text),
        MysqlError::QueryFailed(text) => ("QueryFailed", text),
        MysqlError::ValueConversionFailed(text) => ("ValueConversionFailed", text),
        MysqlError::Other(text) => ("Other", text),
    };
    if kind == "ConnectionFailed" && text.ends_with("is not permitted") {
        return ConfigError::HostNotAllowed {
            url_variable: "mysql_url",
            host_variable: "mysql_host",
        }
        .into();
    }
    ApiError::unavailable(
        Backend::Mysql,
        format!("{kind}({:?})", without_password(text, url)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_every_width_are_read() {
        let row = vec![
            DbValue::Int32(7),
            DbValue::Int64(1 << 40),
            DbValue::Uint64(9),
            DbValue::Str("12".into()),
            DbValue::Binary(b"13".to_vec()),
            DbValue::DbNull,
        ];
        let read: Vec<_> = (0..5).map(|c| int(&row, c).unwrap()).collect();
        assert_eq!(read, [7, 1 << 40, 9, 12, 13]);
        assert_eq!(int(&row, 5).unwrap_err().status(), 503);
        assert_eq!(int(&row, 6).unwrap_err().status(), 503);
    }

    #[test]
    fn a_host_spin_does_not_allow_is_a_misconfiguration_that_names_the_variable() {
        let url = "mysql://chat:secret@db.internal:3306/chat";
        let refused = MysqlError::ConnectionFailed(format!("address {url} is not permitted"));
        let error = mysql_unreachable(refused, url);
        assert_eq!(error.status(), 500);
        let detail = error.log_detail().unwrap();
        assert!(
            detail.contains("mysql_host") && !detail.contains("secret"),
            "{detail}"
        );
    }

    /// Passwords with every character that escaping, URL syntax or percent-encoding
    /// treats specially, raw and percent-encoded in the URL, quoted by the host raw or
    /// decoded: none reaches the log.
    #[test]
    fn no_password_spelling_reaches_the_log() {
        const CHARS: &[&str] = &[
            "\"", "\\", "@", ":", "%", "/", "#", "?", "é", "👋", "a", "Z", "0", " ", "'", "%41",
        ];
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let length = 4 + next() % 12;
            let password: String = (0..length)
                .map(|_| CHARS[(next() % CHARS.len() as u64) as usize])
                .collect();
            let encoded: String = password
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            for in_url in [password.as_str(), encoded.as_str()] {
                let url = format!("mysql://chat:{in_url}@127.0.0.2:3306/chat");
                for quoted in [
                    url.clone(),
                    format!("mysql://chat:{password}@127.0.0.2:3306/chat"),
                ] {
                    let error =
                        MysqlError::ConnectionFailed(format!("cannot reach {quoted}: refused"));
                    let detail = mysql_unreachable(error, &url).log_detail().unwrap();
                    for spelling in [&password, &encoded] {
                        assert!(
                            !detail.contains(spelling.as_str()),
                            "{password:?}: {detail}"
                        );
                    }
                }
            }
        }
    }
}
