//! The helpers every SQLite area file uses to read its own rows: each area file (`providers.rs`,
//! `tickets.rs`, ...) keeps its entity's column list (`*_COLUMNS`) beside the `*_from_row` that
//! reads those columns by position, so the two cannot drift apart; this module holds only the
//! shared conversions (times as RFC 3339 text or Unix milliseconds, ids, value sets). What is
//! stored is read back exactly; a value outside its value set means the file was edited by hand
//! and is reported, not guessed at.

use crate::domain::{format_time, Id, Timestamp};
use rusqlite::types::{Type, ValueRef};
use rusqlite::Row;

pub fn time_text(time: &Timestamp) -> String {
    format_time(time)
}

/// A time as the outbox and the leases keep it: Unix milliseconds.
pub fn millis(time: &Timestamp) -> i64 {
    time.timestamp_millis()
}

pub(super) fn time_from_millis(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let value: i64 = row.get(index)?;
    chrono::DateTime::from_timestamp_millis(value).ok_or_else(|| conversion_error(index, format!("bad time {value}")))
}

pub(super) fn optional_time_from_millis(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(_) => time_from_millis(row, index).map(Some),
    }
}

pub(super) fn conversion_error(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

/// A text column, borrowed from the row rather than copied out of it.
fn text_at<'row>(row: &'row Row<'_>, index: usize) -> rusqlite::Result<&'row str> {
    row.get_ref(index)?.as_str().map_err(|e| conversion_error(index, e.to_string()))
}

pub fn parse_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Timestamp> {
    let text = text_at(row, index)?;
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| conversion_error(index, format!("bad time {text:?}: {e}")))
}

pub(super) fn parse_optional_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get_ref(index)? {
        ValueRef::Null => Ok(None),
        _ => parse_time(row, index).map(Some),
    }
}

pub(super) fn parse_value<T>(row: &Row<'_>, index: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text = text_at(row, index)?;
    parse(text).ok_or_else(|| conversion_error(index, format!("unexpected value {text:?}")))
}

pub(super) fn id(row: &Row<'_>, index: usize) -> rusqlite::Result<Id> {
    row.get(index).map(Id::from_stored)
}

pub(super) fn optional_id(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Id>> {
    row.get::<_, Option<String>>(index).map(|v| v.map(Id::from_stored))
}

pub(super) fn percent(row: &Row<'_>, index: usize) -> rusqlite::Result<u8> {
    row.get::<_, i64>(index).map(|v| v.clamp(0, 100) as u8)
}
