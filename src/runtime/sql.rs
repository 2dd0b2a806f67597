//! A thin layer over Durable Object SQLite: statements with bound values, rows read as
//! plain values (no per-row deserialiser: the cursor's raw rows are converted by
//! position, which is what every query here needs).

use worker::SqlStorage;

pub use worker::SqlStorageValue as Value;

pub fn text(v: &str) -> Value {
    Value::from(v)
}

pub fn int(v: i64) -> Value {
    Value::Integer(v)
}

pub fn opt_text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::from)
}

pub fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}

/// One row, its columns in the order of the query.
pub struct Row(Vec<Value>);

impl Row {
    pub fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(Value::Integer(n)) => *n,
            Some(Value::Float(f)) => *f as i64,
            _ => 0,
        }
    }

    pub fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0.get(i) {
            Some(Value::Integer(n)) => Some(*n),
            Some(Value::Float(f)) => Some(*f as i64),
            _ => None,
        }
    }

    pub fn text(&self, i: usize) -> String {
        self.opt_text(i).unwrap_or_default()
    }

    pub fn opt_text(&self, i: usize) -> Option<String> {
        match self.0.get(i) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Runs a statement that returns nothing; the error is the runtime's message.
pub fn run(sql: &SqlStorage, query: &str, args: Vec<Value>) -> Result<(), String> {
    sql.exec(query, args)
        .map(|_| ())
        .map_err(|e| failed(query, e))
}

/// Runs an `UPDATE`/`DELETE … RETURNING` and counts the rows it changed. (The cursor's
/// `rowsWritten` is no count of rows: it includes every index entry written.)
pub fn changed(sql: &SqlStorage, query: &str, args: Vec<Value>) -> Result<usize, String> {
    let cursor = sql.exec(query, args).map_err(|e| failed(query, e))?;
    Ok(cursor.raw().count())
}

/// The runtime's message, with the statement. (Matched rather than formatted with
/// `Display`: `worker::Error`'s formatting pulls in every error type it can wrap.)
fn failed(query: &str, e: worker::Error) -> String {
    let message = match e {
        worker::Error::JsError(m) | worker::Error::RustError(m) => m,
        _ => "storage error".to_owned(),
    };
    format!("{query}: {message}")
}

/// Runs a query and reads every row.
pub fn rows(sql: &SqlStorage, query: &str, args: Vec<Value>) -> Result<Vec<Row>, String> {
    let cursor = sql.exec(query, args).map_err(|e| failed(query, e))?;
    cursor
        .raw()
        .map(|row| row.map(Row).map_err(|e| failed(query, e)))
        .collect()
}

/// The first row of a query, if any.
pub fn first(sql: &SqlStorage, query: &str, args: Vec<Value>) -> Result<Option<Row>, String> {
    Ok(rows(sql, query, args)?.into_iter().next())
}

/// A single integer (`SELECT COUNT(*)`, `SELECT MIN(x)`); `None` for NULL.
pub fn scalar(sql: &SqlStorage, query: &str, args: Vec<Value>) -> Result<Option<i64>, String> {
    Ok(first(sql, query, args)?.and_then(|row| row.opt_int(0)))
}
