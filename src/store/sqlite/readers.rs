//! The reader threads: every read of the database, on one of a fixed set of threads, each with
//! its own connection (WAL mode lets them read beside the writer).
//!
//! Reads wait in one queue and the first free thread takes the next. A fixed set of threads keeps
//! each connection's prepared statements and page cache warm, and keeps the process from growing
//! a thread (and an allocator arena that outlives it) for every burst of concurrent reads.

use super::sql_error;
use crate::error::{AppError, AppResult};
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

type Read = Box<dyn FnOnce(&Connection) + Send>;

/// The queue to the reader threads; they end (closing their connections) when this is dropped.
pub struct Readers {
    queue: mpsc::Sender<Read>,
}

impl Readers {
    /// One thread for each connection.
    pub fn start(connections: Vec<Connection>) -> AppResult<Readers> {
        let (queue, waiting) = mpsc::channel::<Read>();
        let waiting = Arc::new(Mutex::new(waiting));
        for (number, connection) in connections.into_iter().enumerate() {
            let waiting = Arc::clone(&waiting);
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{number}"))
                .spawn(move || serve(connection, &waiting))
                .map_err(|e| AppError::internal(format!("cannot start a SQLite reader thread: {e}")))?;
        }
        Ok(Readers { queue })
    }

    /// Runs `query` on the first free reader.
    pub async fn read<T, F>(&self, query: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let read: Read = Box::new(move |connection| {
            let result = match catch_unwind(AssertUnwindSafe(|| query(connection))) {
                Ok(result) => result.map_err(sql_error),
                Err(_) => Err(AppError::internal("a store read panicked")),
            };
            // The caller may have gone (its request cancelled); nothing to undo for a read.
            let _ = answer.send(result);
        });
        self.queue.send(read).map_err(|_| AppError::internal("the SQLite reader threads have stopped"))?;
        answered.await.map_err(|_| AppError::internal("a SQLite reader thread dropped a read"))?
    }
}

fn serve(connection: Connection, waiting: &Mutex<mpsc::Receiver<Read>>) {
    loop {
        // The lock is held while waiting for the next read, and released before running it.
        let next = match waiting.lock() {
            Ok(waiting) => waiting.recv(),
            Err(_) => return,
        };
        match next {
            Ok(read) => read(&connection),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_that_panics_is_answered_with_an_error_and_every_reader_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readers.sqlite3");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (5);")
            .unwrap();
        let readers = Readers::start((0..2).map(|_| Connection::open(&path).unwrap()).collect()).unwrap();
        for _ in 0..2 {
            let panicked = readers.read(|_| -> rusqlite::Result<()> { panic!("a bug in a read") }).await;
            assert!(matches!(panicked, Err(AppError::Internal(_))));
        }
        let reads = (0..4).map(|_| readers.read(|c| c.query_row("SELECT x FROM t", [], |row| row.get::<_, i64>(0))));
        for read in futures_util::future::join_all(reads).await {
            assert_eq!(read.unwrap(), 5);
        }
    }
}
