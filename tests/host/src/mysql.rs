//! `fermyon:spin/mysql@2.0.0`, implemented like spin-factor-outbound-mysql (`host.rs`,
//! `client.rs`) with the same mysql_async release (0.35).
//!
//! - `open`: allow-list check first (`mysql` scheme; refused ->
//!   `connection-failed("address <url> is not permitted")`), then one new connection
//!   (failure -> `connection-failed(<anyhow Debug of the mysql_async error>)`). The
//!   connection closes when the resource or the request's store is dropped.
//! - `query`/`execute`: prepared statements with positional parameters (binary protocol);
//!   statement errors -> `query-failed(<mysql_async::Error Debug>)`.
//! - values: the column's declared type decides the variant (BIGINT -> int64, BIGINT
//!   UNSIGNED -> uint64, INT -> int32, VARCHAR/TEXT -> str, BLOB/VARBINARY -> binary,
//!   DOUBLE -> floating64, ...); NULL -> db-null; types Spin calls "other" (DECIMAL,
//!   DATE, ...) fail with `value-conversion-failed`, as in Spin.

use std::sync::Arc;

use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Opts, OptsBuilder, Params, Row, SslOpts, Value, from_value_opt};
use tokio::sync::Mutex;
use wasmtime::component::Resource;

use crate::bindings::mysql as v2;
use crate::bindings::rdbms_types::{
    self, Column, DbDataType, DbValue, Error, ParameterValue, RowSet,
};
use crate::state::HostState;

/// The host side of a `connection` resource.
pub struct MysqlConnection {
    conn: Arc<Mutex<Conn>>,
}

fn is_ssl_param(s: &str) -> bool {
    ["ssl-mode", "sslmode"].contains(&s.to_lowercase().as_str())
}

/// Spin's `build_opts`: mysql_async refuses `ssl-mode`, so it is taken out of the URL, and
/// any value but `DISABLED` turns on TLS with mysql_async's default `SslOpts`: the
/// certificate chain and the host name verified against the system's roots (OpenSSL's,
/// so `SSL_CERT_FILE` points elsewhere). No other TLS setting can be passed.
pub fn build_opts(address: &str) -> anyhow::Result<Opts> {
    let url = url::Url::parse(address)?;
    let use_ssl = url
        .query_pairs()
        .any(|(k, v)| is_ssl_param(&k) && v.to_lowercase() != "disabled");
    let rest: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_ssl_param(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut cleaned = url.clone();
    cleaned.set_query(None);
    if !rest.is_empty() {
        cleaned.query_pairs_mut().extend_pairs(rest);
    }
    Ok(OptsBuilder::from_opts(Opts::from_url(cleaned.as_str())?)
        .ssl_opts(use_ssl.then(SslOpts::default))
        .into())
}

fn to_sql_parameter(value: ParameterValue) -> Value {
    match value {
        ParameterValue::Boolean(v) => Value::from(v),
        ParameterValue::Int8(v) => Value::from(v),
        ParameterValue::Int16(v) => Value::from(v),
        ParameterValue::Int32(v) => Value::from(v),
        ParameterValue::Int64(v) => Value::from(v),
        ParameterValue::Uint8(v) => Value::from(v),
        ParameterValue::Uint16(v) => Value::from(v),
        ParameterValue::Uint32(v) => Value::from(v),
        ParameterValue::Uint64(v) => Value::from(v),
        ParameterValue::Floating32(v) => Value::from(v),
        ParameterValue::Floating64(v) => Value::from(v),
        ParameterValue::Str(v) => Value::from(v),
        ParameterValue::Binary(v) => Value::from(v),
        ParameterValue::DbNull => Value::NULL,
    }
}

fn params(values: Vec<ParameterValue>) -> Params {
    Params::Positional(values.into_iter().map(to_sql_parameter).collect())
}

/// Spin's `convert_data_type` (numeric by signedness, character by the BINARY flag).
pub fn data_type(column_type: ColumnType, flags: ColumnFlags) -> DbDataType {
    use ColumnType::*;
    let signed = !flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = flags.contains(ColumnFlags::BINARY_FLAG);
    if column_type.is_numeric_type() {
        match (column_type, signed) {
            (MYSQL_TYPE_DOUBLE, _) => DbDataType::Floating64,
            (MYSQL_TYPE_FLOAT, _) => DbDataType::Floating32,
            (MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG, true) => DbDataType::Int32,
            (MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG, false) => DbDataType::Uint32,
            (MYSQL_TYPE_LONGLONG, true) => DbDataType::Int64,
            (MYSQL_TYPE_LONGLONG, false) => DbDataType::Uint64,
            (MYSQL_TYPE_SHORT, true) => DbDataType::Int16,
            (MYSQL_TYPE_SHORT, false) => DbDataType::Uint16,
            (MYSQL_TYPE_TINY, true) => DbDataType::Int8,
            (MYSQL_TYPE_TINY, false) => DbDataType::Uint8,
            _ => DbDataType::Other,
        }
    } else if column_type.is_character_type() {
        match (column_type, binary) {
            (MYSQL_TYPE_BLOB, false) => DbDataType::Str,
            (MYSQL_TYPE_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_MEDIUM_BLOB, _) => {
                DbDataType::Binary
            }
            (MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING, true) => DbDataType::Binary,
            (MYSQL_TYPE_STRING | MYSQL_TYPE_VAR_STRING, false) => DbDataType::Str,
            _ => DbDataType::Other,
        }
    } else {
        DbDataType::Other
    }
}

fn convert_to<T: FromValue>(value: Value) -> Result<T, Error> {
    from_value_opt::<T>(value).map_err(|e| Error::ValueConversionFailed(e.to_string()))
}

/// Spin's `convert_value`: NULL -> db-null, otherwise by the column's data type.
pub fn convert_value(value: Value, column: &Column) -> Result<DbValue, Error> {
    if value == Value::NULL {
        return Ok(DbValue::DbNull);
    }
    Ok(match column.data_type {
        DbDataType::Binary => DbValue::Binary(convert_to(value)?),
        DbDataType::Boolean => DbValue::Boolean(convert_to(value)?),
        DbDataType::Floating32 => DbValue::Floating32(convert_to(value)?),
        DbDataType::Floating64 => DbValue::Floating64(convert_to(value)?),
        DbDataType::Int8 => DbValue::Int8(convert_to(value)?),
        DbDataType::Int16 => DbValue::Int16(convert_to(value)?),
        DbDataType::Int32 => DbValue::Int32(convert_to(value)?),
        DbDataType::Int64 => DbValue::Int64(convert_to(value)?),
        DbDataType::Str => DbValue::Str(convert_to(value)?),
        DbDataType::Uint8 => DbValue::Uint8(convert_to(value)?),
        DbDataType::Uint16 => DbValue::Uint16(convert_to(value)?),
        DbDataType::Uint32 => DbValue::Uint32(convert_to(value)?),
        DbDataType::Uint64 => DbValue::Uint64(convert_to(value)?),
        DbDataType::Other => {
            return Err(Error::ValueConversionFailed(format!(
                "Cannot convert value {:?} in column {} data type {:?}",
                value, column.name, column.data_type
            )));
        }
    })
}

fn convert_row(mut row: Row, columns: &[Column]) -> Result<Vec<DbValue>, Error> {
    (0..row.len())
        .map(|i| match (row.take::<Value, _>(i), columns.get(i)) {
            (None, _) => Ok(DbValue::DbNull),
            (_, None) => Err(Error::Other(format!("Can't get column at index {i}"))),
            (Some(v), Some(c)) => convert_value(v, c),
        })
        .collect()
}

impl HostState {
    fn mysql(&mut self, c: &Resource<MysqlConnection>) -> Result<Arc<Mutex<Conn>>, Error> {
        self.table
            .get(c)
            .map(|c| c.conn.clone())
            .map_err(|_| Error::ConnectionFailed("no connection found".into()))
    }
}

impl rdbms_types::Host for HostState {}
impl v2::Host for HostState {}

impl v2::HostConnection for HostState {
    async fn open(&mut self, address: String) -> Result<Resource<MysqlConnection>, Error> {
        let allowed = match &self.component.allowed_hosts {
            Ok(allowed) => allowed,
            Err(unresolved) => return Err(Error::Other(unresolved.clone())),
        };
        if !allowed.check_url(&address, "mysql") {
            crate::state::report_disallowed(&self.component.id, &address);
            return Err(Error::ConnectionFailed(format!(
                "address {address} is not permitted"
            )));
        }
        // As Spin renders it: anyhow's `{:?}`, the message and its "Caused by:" chain, and a
        // backtrace when RUST_BACKTRACE or RUST_LIB_BACKTRACE asks for one.
        let fail = |e: anyhow::Error| Error::ConnectionFailed(format!("{e:?}"));
        let opts = build_opts(&address).map_err(fail)?;
        let conn = Conn::new(opts)
            .await
            .map_err(|e| fail(anyhow::Error::from(e)))?;
        self.table
            .push(MysqlConnection {
                conn: Arc::new(Mutex::new(conn)),
            })
            .map_err(|_| Error::ConnectionFailed("too many connections".into()))
    }

    async fn query(
        &mut self,
        c: Resource<MysqlConnection>,
        statement: String,
        values: Vec<ParameterValue>,
    ) -> Result<RowSet, Error> {
        let conn = self.mysql(&c)?;
        let mut conn = conn.lock().await;
        let mut result = conn
            .exec_iter(statement.as_str(), params(values))
            .await
            .map_err(|e| Error::QueryFailed(format!("{e:?}")))?;
        let columns: Vec<Column> = result
            .columns()
            .map(|cols| {
                cols.iter()
                    .map(|c| Column {
                        name: c.name_str().into_owned(),
                        data_type: data_type(c.column_type(), c.flags()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows: Vec<Row> = result
            .collect()
            .await
            .map_err(|e| Error::Other(e.to_string()))?;
        let rows = rows
            .into_iter()
            .map(|r| convert_row(r, &columns))
            .collect::<Result<_, _>>()?;
        Ok(RowSet { columns, rows })
    }

    async fn execute(
        &mut self,
        c: Resource<MysqlConnection>,
        statement: String,
        values: Vec<ParameterValue>,
    ) -> Result<(), Error> {
        let conn = self.mysql(&c)?;
        let mut conn = conn.lock().await;
        conn.exec_batch(statement.as_str(), [params(values)])
            .await
            .map_err(|e| Error::QueryFailed(format!("{e:?}")))
    }

    async fn drop(&mut self, c: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        // Dropping a Conn without `disconnect` closes the socket (no pool to return to).
        self.table.delete(c)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_map_like_spin() {
        let none = ColumnFlags::empty();
        assert_eq!(
            data_type(ColumnType::MYSQL_TYPE_LONGLONG, none),
            DbDataType::Int64
        );
        assert_eq!(
            data_type(ColumnType::MYSQL_TYPE_LONGLONG, ColumnFlags::UNSIGNED_FLAG),
            DbDataType::Uint64
        );
        assert_eq!(
            data_type(ColumnType::MYSQL_TYPE_LONG, none),
            DbDataType::Int32
        );
        assert_eq!(
            data_type(ColumnType::MYSQL_TYPE_VAR_STRING, none),
            DbDataType::Str
        );
        assert_eq!(
            data_type(ColumnType::MYSQL_TYPE_BLOB, ColumnFlags::BINARY_FLAG),
            DbDataType::Binary
        );
        assert_eq!(
            data_type(ColumnType::MYSQL_TYPE_NEWDECIMAL, none),
            DbDataType::Other
        );
    }

    #[test]
    fn values_convert_and_null_is_db_null() {
        let col = Column {
            name: "n".into(),
            data_type: DbDataType::Int64,
        };
        assert_eq!(
            convert_value(Value::Int(7), &col).unwrap(),
            DbValue::Int64(7)
        );
        // Text protocol values arrive as bytes and still convert by column type.
        assert_eq!(
            convert_value(Value::Bytes(b"42".to_vec()), &col).unwrap(),
            DbValue::Int64(42)
        );
        assert_eq!(convert_value(Value::NULL, &col).unwrap(), DbValue::DbNull);
        let other = Column {
            name: "d".into(),
            data_type: DbDataType::Other,
        };
        assert!(matches!(
            convert_value(Value::Bytes(b"1.5".to_vec()), &other),
            Err(Error::ValueConversionFailed(_))
        ));
    }

    #[test]
    fn ssl_mode_turns_verified_tls_on_unless_disabled() {
        let tls = |url: &str| build_opts(url).unwrap().ssl_opts().cloned();
        assert_eq!(tls("mysql://u:p@127.0.0.1/db"), None);
        assert_eq!(tls("mysql://u:p@127.0.0.1/db?ssl-mode=DISABLED"), None);
        for mode in [
            "sslMode=VERIFY_CA",
            "ssl-mode=REQUIRED",
            "SSL-MODE=preferred",
        ] {
            let opts = tls(&format!("mysql://u:p@127.0.0.1/db?{mode}")).expect(mode);
            assert!(!opts.skip_domain_validation() && !opts.accept_invalid_certs());
        }
        assert!(build_opts("not a url").is_err());
    }

    mod live {
        use super::super::*;
        use crate::bindings::mysql::HostConnection;
        use crate::state::test_support::{require_service, state};

        #[tokio::test]
        async fn disallowed_host_is_connection_failed_not_permitted() {
            let mut st = state(&["mysql://db:3306"]);
            let r = HostConnection::open(&mut st, "mysql://root@127.0.0.1/x".into()).await;
            assert_eq!(
                r.err(),
                Some(Error::ConnectionFailed(
                    "address mysql://root@127.0.0.1/x is not permitted".into()
                ))
            );
        }

        #[tokio::test]
        async fn refused_is_connection_failed() {
            let mut st = state(&["mysql://127.0.0.1:1"]);
            match HostConnection::open(&mut st, "mysql://root@127.0.0.1:1/x".into()).await {
                Err(Error::ConnectionFailed(m)) => {
                    assert!(m.contains("Connection refused"), "{m}");
                }
                other => panic!("expected connection-failed, got {:?}", other.map(|_| ())),
            }
        }

        #[tokio::test]
        async fn query_converts_values_like_spin() {
            require_service(3306, "MariaDB");
            let mut st = state(&["mysql://127.0.0.1"]);
            let c = HostConnection::open(&mut st, "mysql://root@127.0.0.1:3306/mysql".into())
                .await
                .unwrap();
            let rep = || Resource::<MysqlConnection>::new_borrow(c.rep());
            let rs = HostConnection::query(
                &mut st,
                rep(),
                "SELECT CAST(? AS SIGNED) AS n, ? AS s, NULL AS z".into(),
                vec![ParameterValue::Int64(41), ParameterValue::Str("x".into())],
            )
            .await
            .unwrap();
            assert_eq!(rs.columns[0].data_type, DbDataType::Int64);
            assert_eq!(
                rs.rows,
                vec![vec![
                    DbValue::Int64(41),
                    DbValue::Str("x".into()),
                    DbValue::DbNull
                ]]
            );
            let err = HostConnection::query(&mut st, rep(), "SELEKT".into(), vec![])
                .await
                .unwrap_err();
            assert!(matches!(err, Error::QueryFailed(_)), "{err:?}");
            HostConnection::drop(&mut st, c).await.unwrap();
        }
    }
}
