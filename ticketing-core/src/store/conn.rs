//! The seam between the use cases and the databases: a connection that is either SQLite's or
//! PostgreSQL's, with the handful of calls the use cases make (prepare a cached statement,
//! execute it, read rows) and typed values in and out.
//!
//! Every statement is written once, in the SQL both databases run: `?N` parameters (PostgreSQL
//! gets them as `$N`), `RETURNING` for new ids, `CASE` instead of the two-argument `min`/`max`,
//! `CAST(sum(…) AS BIGINT)` where a sum is read as a number. A row lock is written as
//! `FOR UPDATE` and means it: PostgreSQL takes the row lock; SQLite drops the clause, because a
//! write there already holds the database's one write lock from its first statement (`BEGIN
//! IMMEDIATE` in the writer). What differs beyond that — schema, transactions, pooling,
//! locking the contended rows first — lives in `store::sqlite` and `store::postgres`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::{Error, Result};

/// One connection inside a transaction, of either backend. Use cases take `&Conn` and never
/// know which.
pub(crate) enum Conn<'c> {
    /// SQLite: a reader's snapshot or the writer's transaction.
    Sqlite(&'c rusqlite::Connection),
    /// PostgreSQL: a pooled connection inside `BEGIN … COMMIT`.
    Postgres(&'c PgConn),
}

/// A PostgreSQL connection with its prepared statements (one round trip to prepare each
/// statement text once per connection; every later use is one round trip).
pub(crate) struct PgConn {
    client: RefCell<postgres::Client>,
    prepared: RefCell<HashMap<String, postgres::Statement>>,
    /// Rows written so far on this connection (see [`Conn::changes`]).
    changes: std::cell::Cell<u64>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client: RefCell::new(client),
            prepared: RefCell::new(HashMap::new()),
            changes: std::cell::Cell::new(0),
        }
    }

    /// Runs statements with no parameters and no rows (transaction control, schema).
    pub fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client.borrow_mut().batch_execute(sql)?)
    }

    /// One round trip that checks the connection answers.
    pub fn ping(&mut self) -> std::result::Result<(), postgres::Error> {
        self.client.get_mut().simple_query("").map(drop)
    }

    /// Waits up to `timeout` for a notification on a channel this connection listens to, then
    /// takes every other one already there: how many arrived (0 when none did in time).
    pub fn notifications(&self, timeout: std::time::Duration) -> Result<u64> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut client = self.client.borrow_mut();
        let mut notes = client.notifications();
        if notes.timeout_iter(timeout).next()?.is_none() {
            return Ok(0);
        }
        let mut count = 1;
        let mut more = notes.iter();
        while more.next()?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    /// True when the server closed the connection (it is then dropped from the pool).
    pub fn is_closed(&self) -> bool {
        self.client.borrow().is_closed()
    }

    fn count_changes(&self, rows: u64) {
        self.changes.set(self.changes.get() + rows);
    }

    fn statement(&self, sql: &str) -> Result<postgres::Statement> {
        if let Some(stmt) = self.prepared.borrow().get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.borrow_mut().prepare(&dollar_params(sql))?;
        self.prepared.borrow_mut().insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

impl<'c> Conn<'c> {
    /// A statement from this connection's cache (prepared on first use).
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'c>> {
        match *self {
            Conn::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(&sqlite_text(sql))?)),
            Conn::Postgres(c) => Ok(Stmt::Postgres {
                conn: c,
                stmt: c.statement(sql)?,
                // Rows a `RETURNING` write returns are rows it changed.
                writes: !sql.trim_start().starts_with("SELECT"),
            }),
        }
    }

    /// How many rows this connection has changed so far (inserted, updated or deleted): two
    /// readings around some work tell whether it wrote anything.
    pub fn changes(&self) -> u64 {
        match *self {
            Conn::Sqlite(c) => c.total_changes(),
            Conn::Postgres(c) => c.changes.get(),
        }
    }

    /// Runs one statement with no parameters and no rows: transaction control, savepoints.
    pub fn exec(&self, sql: &str) -> Result<()> {
        match *self {
            Conn::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute([]).map(drop)?),
            Conn::Postgres(c) => c.batch(sql),
        }
    }

    /// True on PostgreSQL, where several transactions write at once and the contended rows
    /// are locked explicitly.
    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// Tells every node, when this write commits, that the queue admitted through `through`
    /// (PostgreSQL `NOTIFY` on this schema's channel, see `postgres::listen`; this node's
    /// writer also publishes right after the commit). On SQLite the writer publishes after
    /// every commit itself, and nothing is sent.
    pub fn announce_admission(&self, through: i64) -> Result<()> {
        if let Conn::Postgres(_) = self {
            self.prepare_cached(
                "SELECT 1 FROM (SELECT pg_notify(left('ticketing_admitted.' || current_schema(), 63), ?1)) n",
            )?
            .execute(params![through.to_string()])?;
            super::mark_admitted();
        }
        Ok(())
    }
}

/// SQLite's text of a statement: the same, less row-lock clauses (see the module docs).
fn sqlite_text(sql: &str) -> Cow<'_, str> {
    if !sql.contains(" FOR UPDATE") {
        return Cow::Borrowed(sql);
    }
    Cow::Owned(sql.replace(" FOR UPDATE SKIP LOCKED", "").replace(" FOR UPDATE", ""))
}

/// PostgreSQL's text of a statement: `?N` parameters become `$N` (outside string literals).
pub(crate) fn dollar_params(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                quoted = !quoted;
                out.push(ch);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(ch),
        }
    }
    out
}

/// A prepared statement of either backend.
pub(crate) enum Stmt<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    Postgres {
        conn: &'c PgConn,
        stmt: postgres::Statement,
        /// Not a `SELECT`: every row it returns is a row it wrote.
        writes: bool,
    },
}

impl Stmt<'_> {
    /// Runs the statement; the number of rows it changed.
    pub fn execute(&mut self, params: &[Value<'_>]) -> Result<usize> {
        match self {
            Stmt::Sqlite(s) => Ok(s.execute(rusqlite::params_from_iter(params.iter()))?),
            Stmt::Postgres { conn, stmt, .. } => {
                let args: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(pg_arg).collect();
                let changed = conn.client.borrow_mut().execute(&*stmt, &args)?;
                conn.count_changes(changed);
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// The first row, mapped by `f`; an error when there is none.
    pub fn query_row<T>(&mut self, params: &[Value<'_>], f: impl FnOnce(&Row<'_>) -> Result<T>) -> Result<T> {
        self.query_opt(params, f)?
            .ok_or_else(|| Error::Internal("a query that always returns a row returned none".into()))
    }

    /// The first row, mapped by `f`, if there is one.
    pub fn query_opt<T>(&mut self, params: &[Value<'_>], f: impl FnOnce(&Row<'_>) -> Result<T>) -> Result<Option<T>> {
        match self {
            Stmt::Sqlite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(params.iter()))?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)).map(Some),
                    None => Ok(None),
                }
            }
            Stmt::Postgres { conn, stmt, writes } => {
                let args: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(pg_arg).collect();
                let row = conn.client.borrow_mut().query_opt(&*stmt, &args)?;
                if *writes {
                    conn.count_changes(u64::from(row.is_some()));
                }
                row.as_ref().map(|r| f(&Row::Postgres(r))).transpose()
            }
        }
    }

    /// True when the statement returns a row.
    pub fn exists(&mut self, params: &[Value<'_>]) -> Result<bool> {
        Ok(self.query_opt(params, |_| Ok(()))?.is_some())
    }

    /// Every row, each mapped by `f`.
    pub fn query_map<T>(&mut self, params: &[Value<'_>], mut f: impl FnMut(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
        match self {
            Stmt::Sqlite(s) => {
                let mut rows = s.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Stmt::Postgres { conn, stmt, writes } => {
                let args: Vec<&(dyn postgres::types::ToSql + Sync)> = params.iter().map(pg_arg).collect();
                let rows = conn.client.borrow_mut().query(&*stmt, &args)?;
                if *writes {
                    conn.count_changes(rows.len() as u64);
                }
                rows.iter().map(|r| f(&Row::Postgres(r))).collect()
            }
        }
    }
}

/// One result row of either backend.
pub(crate) enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `idx` (0-based) as a `T`. (The unused first type parameter keeps rusqlite's
    /// `get::<_, T>` spelling.)
    pub fn get<I: ColumnIndex, T: Column>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        match self {
            Row::Sqlite(r) => T::from_sqlite(r, idx),
            Row::Postgres(r) => T::from_postgres(r, idx),
        }
    }
}

/// A column's place in a row (a `usize`; the trait lets a literal `0` infer as one).
pub(crate) trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A type a column can be read as, from either backend.
pub(crate) trait Column: Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self>;
    fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self>;
}

/// An integer column of PostgreSQL, whatever its width (`count(*)` is BIGINT, a comparison is
/// BOOLEAN; the schema's integers are BIGINT).
fn pg_int(row: &postgres::Row, idx: usize) -> Result<Option<i64>> {
    use postgres::types::Type;
    let ty = row.columns().get(idx).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::INT4) => row.try_get::<_, Option<i32>>(idx)?.map(i64::from),
        Some(Type::INT2) => row.try_get::<_, Option<i16>>(idx)?.map(i64::from),
        Some(Type::BOOL) => row.try_get::<_, Option<bool>>(idx)?.map(i64::from),
        _ => row.try_get::<_, Option<i64>>(idx)?,
    })
}

fn null_column(idx: usize) -> Error {
    Error::Internal(format!("column {idx} is NULL where a value was expected"))
}

impl Column for Option<i64> {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self> {
        Ok(row.get(idx)?)
    }
    fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self> {
        pg_int(row, idx)
    }
}

impl Column for i64 {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self> {
        Ok(row.get(idx)?)
    }
    fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self> {
        pg_int(row, idx)?.ok_or_else(|| null_column(idx))
    }
}

/// Counts and settings read as narrower integers; a value out of range is an error, never
/// a wrap.
macro_rules! narrow_int_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self> {
                let v: i64 = row.get(idx)?;
                <$t>::try_from(v).map_err(|_| Error::Internal(format!("column {idx}: {v} is out of range")))
            }
            fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self> {
                let v = i64::from_postgres(row, idx)?;
                <$t>::try_from(v).map_err(|_| Error::Internal(format!("column {idx}: {v} is out of range")))
            }
        }
    )*};
}
narrow_int_column!(u32, u64, usize);

impl Column for bool {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self> {
        Ok(row.get(idx)?)
    }
    fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self> {
        Ok(i64::from_postgres(row, idx)? != 0)
    }
}

impl Column for Option<String> {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self> {
        Ok(row.get(idx)?)
    }
    fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self> {
        Ok(row.try_get(idx)?)
    }
}

impl Column for String {
    fn from_sqlite(row: &rusqlite::Row<'_>, idx: usize) -> Result<Self> {
        Ok(row.get(idx)?)
    }
    fn from_postgres(row: &postgres::Row, idx: usize) -> Result<Self> {
        Option::<String>::from_postgres(row, idx)?.ok_or_else(|| null_column(idx))
    }
}

/// A statement parameter. PostgreSQL types every parameter from its use; a value is sent in
/// the type the server asks for (BIGINT, INTEGER, TEXT, BOOLEAN), so one `Int` serves every
/// integer column and expression.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

/// Borrows a value as a statement parameter (what [`params!`] calls on each argument).
pub(crate) trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_value!(i64, i32, u32, u64, usize);

impl ToValue for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// `params![a, b, …]`: the parameters of one statement, borrowed.
macro_rules! params {
    () => { &[] as &[$crate::store::Value<'_>] };
    ($($p:expr),+ $(,)?) => {
        &[$($crate::store::ToValue::to_value(&$p)),+] as &[$crate::store::Value<'_>]
    };
}
pub(crate) use params;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

fn pg_arg<'a>(v: &'a Value<'_>) -> &'a (dyn postgres::types::ToSql + Sync) {
    v
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        match *self {
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_dollars_outside_literals() {
        assert_eq!(
            dollar_params("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn sqlite_drops_row_locks() {
        assert_eq!(
            sqlite_text("SELECT a FROM t WHERE id = ?1 FOR UPDATE"),
            "SELECT a FROM t WHERE id = ?1"
        );
        assert_eq!(
            sqlite_text("UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t WHERE b FOR UPDATE SKIP LOCKED)"),
            "UPDATE t SET a = 1 WHERE id IN (SELECT id FROM t WHERE b)"
        );
    }
}
