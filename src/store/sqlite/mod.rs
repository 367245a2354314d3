//! The embedded store: one SQLite file under `DATA_DIR`.
//!
//! SQLite calls block, so none runs on the async runtime. Writes go to one writer thread with its
//! own connection (SQLite allows one writer at a time anyway), which commits the changes waiting
//! for it together ([`writer`]); reads go to a fixed set of reader threads, each with its own
//! connection, which WAL mode lets run beside the writer ([`readers`]). One call of the port is one
//! closure on one connection, which is what [`StoreHealth::round_trips`](crate::store::StoreHealth::round_trips) counts.
//!
//! Each area file (`providers.rs`, `tickets.rs`, ...) reads its own rows, with the shared
//! conversions in [`rows`].

pub mod attachments;
mod audit;
mod canned_replies;
mod chat;
mod conversations;
mod customers;
mod events;
mod expiry_days;
mod health;
mod idempotency;
mod leases;
mod notifications;
mod outbox;
mod providers;
pub mod query_plans;
mod readers;
mod retention;
mod rows;
mod search;
mod sql;
mod ticket_sla;
mod tickets;
mod tokens;
mod totals;
mod writer;

use self::sql::{sql_error, sql_error_of};
use crate::error::{AppError, AppResult};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const SCHEMA: &str = include_str!("schema.sql");

const DATABASE_FILE: &str = "provider-desk.sqlite3";

/// Reader threads: enough to keep every core busy while some reads wait on the disk.
fn reader_count() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| (cores.get() * 2).max(4))
}

pub struct SqliteStore {
    path: PathBuf,
    writer: writer::Writer,
    readers: readers::Readers,
    round_trips: AtomicU64,
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> AppResult<SqliteStore> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| AppError::internal(format!("cannot create data directory {}: {e}", data_dir.display())))?;
        let path = data_dir.join(DATABASE_FILE);
        let mut writer = open_connection(&path).map_err(sql_error)?;
        writer.execute_batch(SCHEMA).map_err(sql_error)?;
        idempotency::add_answer_columns(&writer).map_err(sql_error)?;
        outbox::add_expiry_column(&writer).map_err(sql_error)?;
        ticket_sla::install(&writer).map_err(sql_error)?;
        totals::install(&mut writer).map_err(sql_error)?;
        expiry_days::install(&mut writer).map_err(sql_error)?;
        conversations::install(&mut writer).map_err(sql_error)?;
        attachments::install(&writer).map_err(sql_error)?;
        let indexed = search::build_missing_index(&mut writer).map_err(sql_error)?;
        if indexed > 0 {
            tracing::info!(rows = indexed, "built the search index of the rows already stored");
        }
        let readers =
            (0..reader_count()).map(|_| open_connection(&path)).collect::<Result<_, _>>().map_err(sql_error)?;
        Ok(SqliteStore {
            path,
            writer: writer::Writer::start(writer)?,
            readers: readers::Readers::start(readers)?,
            round_trips: AtomicU64::new(0),
        })
    }

    /// The database file of a data directory.
    pub fn database_path(data_dir: &Path) -> PathBuf {
        data_dir.join(DATABASE_FILE)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T, F>(&self, query: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.readers.read(query).await;
        record_call(started, &result);
        result
    }

    async fn write<T, F>(&self, change: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = self.writer.write(change).await;
        record_call(started, &result);
        result
    }
}

/// Records one call's latency (waiting for a connection included) in `store_call_duration_seconds`.
fn record_call<T>(started: Instant, result: &AppResult<T>) {
    let labels = [("adapter", "sqlite"), ("outcome", crate::metrics::outcome(result))];
    crate::metrics::histogram("store_call_duration_seconds", &labels).observe(started.elapsed());
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    // WAL lets readers run beside the writer; synchronous=FULL makes every acknowledged write durable.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;",
    )?;
    // The query planner stability guarantee: a statement keeps the plan it was prepared with,
    // whatever values are bound to it later, so a read runs the plan the plan checks explained
    // (tests/contract/query_plans.rs). (It was first set for the keyword filter's `LIKE ?`, which made
    // SQLite re-prepare at every run; that filter now reads the search index.)
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(connection)
}
