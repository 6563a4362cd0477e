//! Multi-row inserts: the bulk path for imports and stage results. One statement carries many
//! rows, so per-statement overhead is paid per batch instead of per row.

use crate::Backend;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection};

/// A value to bind. Dynamic because one helper serves every table.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Real(Option<f64>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Self {
        Val::Blob(Some(v))
    }
}
impl From<Option<Vec<u8>>> for Val {
    fn from(v: Option<Vec<u8>>) -> Self {
        Val::Blob(v)
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::Real(Some(v))
    }
}
impl From<Option<f64>> for Val {
    fn from(v: Option<f64>) -> Self {
        Val::Real(v)
    }
}

pub(crate) fn bind<'q>(
    q: Query<'q, Any, AnyArguments<'q>>,
    v: Val,
) -> Query<'q, Any, AnyArguments<'q>> {
    match v {
        Val::Int(x) => q.bind(x),
        Val::Text(x) => q.bind(x),
        Val::Blob(x) => q.bind(x),
        Val::Real(x) => q.bind(x),
    }
}

/// Rows for one table, with the conflict clause that makes them upserts.
#[derive(Debug)]
pub(crate) struct Insert {
    pub(crate) table: &'static str,
    pub(crate) columns: &'static [&'static str],
    pub(crate) suffix: String,
    pub(crate) rows: Vec<Vec<Val>>,
}

/// One step of a write that runs in one transaction, on either backend: through the pool
/// ([`run_steps`]) or through the native SQLite connection.
#[derive(Debug)]
pub(crate) enum Step {
    /// A statement with its bound values (`$1`, `$2`, … in order).
    Exec(String, Vec<Val>),
    /// Rows for one table.
    Insert(Insert),
    /// A query that must find no row: if it finds one, the write fails with `why` (a
    /// [`crate::StoreError::Stale`]) and nothing of it is kept.
    Refuse {
        /// The query.
        sql: &'static str,
        /// What a row it finds means, for the person who ran the write.
        why: &'static str,
    },
}

impl Step {
    /// A statement without bound values.
    pub(crate) fn sql(sql: impl Into<String>) -> Step {
        Step::Exec(sql.into(), Vec::new())
    }

    /// What the step does, short, for the debug log of a slow write.
    pub(crate) fn label(&self) -> String {
        match self {
            Step::Exec(sql, _) => sql.chars().take(60).collect(),
            Step::Refuse { sql, .. } => sql.chars().take(60).collect(),
            Step::Insert(insert) => insert.table.to_owned(),
        }
    }
}

/// Runs `steps` on a pooled connection (inside the caller's transaction).
pub(crate) async fn run_steps(
    conn: &mut AnyConnection,
    backend: Backend,
    steps: Vec<Step>,
) -> crate::Result<()> {
    for step in steps {
        let (started, what) = (std::time::Instant::now(), step.label());
        match step {
            Step::Exec(sql, vals) => {
                let mut q = sqlx::query(&sql);
                for v in vals {
                    q = bind(q, v);
                }
                q.execute(&mut *conn).await?;
            }
            Step::Insert(i) => {
                insert(conn, backend, i.table, i.columns, &i.suffix, i.rows).await?;
            }
            Step::Refuse { sql, why } => {
                if sqlx::query(sql).fetch_optional(&mut *conn).await?.is_some() {
                    return Err(crate::StoreError::Stale(why.to_owned()));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::debug!(step = %what, seconds, "write step");
    }
    Ok(())
}

/// Stays under SQLite's 32,766 and PostgreSQL's 65,535 bound-parameter limits.
const MAX_PARAMS: usize = 30_000;

/// Inserts `rows` into `table (columns)` with `suffix` (an `ON CONFLICT` clause, or empty)
/// appended to each statement. Every row must have one value per column.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    backend: Backend,
    table: &str,
    columns: &[&str],
    suffix: &str,
    rows: Vec<Vec<Val>>,
) -> sqlx::Result<u64> {
    if backend == Backend::Postgres && columns.len() <= 8 {
        return insert_json(conn, table, columns, suffix, rows).await;
    }
    let per_chunk = (MAX_PARAMS / columns.len()).max(1);
    let mut affected = 0;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(per_chunk).collect();
        let sql = statement(backend, table, columns, chunk.len(), suffix);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            debug_assert_eq!(row.len(), columns.len());
            for v in row {
                q = bind(q, v);
            }
        }
        affected += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}

/// Rows a PostgreSQL insert carries in one JSON document, at most.
const JSON_ROWS: usize = 20_000;

/// Bytes of JSON after which a PostgreSQL insert sends what it has.
const JSON_BYTES: usize = 8 << 20;

/// PostgreSQL: [`insert`] with each batch of rows sent as one JSON parameter and unpacked by
/// `json_to_recordset`, instead of a `VALUES` list of thousands of parameters, each parsed,
/// typed and bound on its own: an import of 294,166 order lines took 7.6–8.0 s against
/// 8.5–9.0 s. Only narrow rows: wide ones with sealed values (hex in JSON) were slower.
/// Each column's type is its values' [`Val`] variant, as a bound parameter's would be.
async fn insert_json(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    suffix: &str,
    rows: Vec<Vec<Val>>,
) -> sqlx::Result<u64> {
    use std::io::Write;
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let types: Vec<&str> = first
        .iter()
        .map(|v| match v {
            Val::Int(_) => "bigint",
            Val::Real(_) => "float8",
            Val::Text(_) => "text",
            Val::Blob(_) => "bytea",
        })
        .collect();
    let keys: Vec<String> = (0..columns.len()).map(|c| format!("c{c}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT {} FROM json_to_recordset($1::json) AS r({}) {suffix}",
        columns.join(", "),
        keys.join(", "),
        keys.iter()
            .zip(&types)
            .map(|(k, t)| format!("{k} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut affected = 0;
    let mut json: Vec<u8> = Vec::new();
    let mut in_json = 0;
    let last = rows.len() - 1;
    for (i, row) in rows.into_iter().enumerate() {
        // A short row would leave columns NULL here, where a `VALUES` list fails.
        assert_eq!(
            row.len(),
            columns.len(),
            "a row of {table} has a value per column"
        );
        json.push(if in_json == 0 { b'[' } else { b',' });
        for (c, v) in row.into_iter().enumerate() {
            json.extend_from_slice(if c == 0 { b"{\"c" } else { b",\"c" });
            write!(json, "{c}\":").expect("writing to memory");
            match v {
                Val::Int(Some(x)) => write!(json, "{x}").expect("writing to memory"),
                // JSON has no NaN or infinity; PostgreSQL reads them from their names.
                Val::Real(Some(x)) if !x.is_finite() => {
                    write!(json, "\"{}\"", x.to_string().replace("inf", "Infinity"))
                        .expect("writing to memory")
                }
                Val::Real(Some(x)) => {
                    serde_json::to_writer(&mut json, &x).expect("writing to memory")
                }
                Val::Text(Some(x)) => {
                    serde_json::to_writer(&mut json, &x).expect("writing to memory")
                }
                // bytea's hex input form.
                Val::Blob(Some(x)) => {
                    json.extend_from_slice(b"\"\\\\x");
                    json.extend_from_slice(hex::encode(x).as_bytes());
                    json.push(b'"');
                }
                Val::Int(None) | Val::Real(None) | Val::Text(None) | Val::Blob(None) => {
                    json.extend_from_slice(b"null")
                }
            }
        }
        json.push(b'}');
        in_json += 1;
        if in_json == JSON_ROWS || json.len() >= JSON_BYTES || i == last {
            json.push(b']');
            let doc =
                String::from_utf8(std::mem::take(&mut json)).expect("JSON made of UTF-8 text");
            affected += sqlx::query(&sql)
                .bind(doc)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            in_json = 0;
        }
    }
    Ok(affected)
}

/// The `n`th (1-based) bound parameter: `$n` for PostgreSQL, `?` for SQLite, which resolves
/// named ones by a linear search per parameter, making a statement with thousands of them
/// quadratic to prepare and bind. SQLite's `?`s must therefore appear in binding order.
pub(crate) fn placeholder(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `$1, $2, …, $n`: the parameters of a short `IN (…)` list.
pub(crate) fn numbered_list(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQLite gets anonymous `?` placeholders: it resolves named ones (`$N`) by a linear search
/// per parameter, which makes a 30,000-parameter statement quadratic to prepare and bind.
pub(crate) fn statement(
    backend: Backend,
    table: &str,
    columns: &[&str],
    rows: usize,
    suffix: &str,
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns.len() {
            n += 1;
            sql.push_str(if c == 0 { "" } else { ", " });
            sql.push_str(&placeholder(backend, n));
        }
        sql.push(')');
    }
    if !suffix.is_empty() {
        sql.push(' ');
        sql.push_str(suffix);
    }
    sql
}

/// Which of `ids` (distinct) are in `table`'s `column`, looked up a few hundred at a time so
/// no statement outgrows a backend's limit on parameters.
pub(crate) async fn existing(
    conn: &mut AnyConnection,
    table: &str,
    column: &str,
    ids: Vec<i64>,
) -> crate::Result<std::collections::HashSet<i64>> {
    let mut found = std::collections::HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT {column} FROM {table} WHERE {column} IN ({})",
            numbered_list(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.insert(sqlx::Row::try_get::<i64, _>(&row, 0)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_numbered_placeholders() {
        use crate::Backend;
        assert_eq!(
            super::statement(
                Backend::Postgres,
                "t",
                &["a", "b"],
                2,
                "ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            super::statement(Backend::Sqlite, "t", &["a", "b"], 2, ""),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
    }
}
