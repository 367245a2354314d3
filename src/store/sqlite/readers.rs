//! The reader threads: every read of the database, on one of a fixed set of threads, each with
//! its own connection (WAL mode lets them read beside the writer).
//!
//! Reads wait in one queue and the first free thread takes the next. A fixed set of threads keeps
//! each connection's prepared statements and page cache warm, and keeps the process from growing
//! a thread (and an allocator arena that outlives it) for every burst of concurrent reads. A thread
//! idle for [`allocator::IDLE_BEFORE_GIVING_BACK`] after reading gives back the memory the
//! allocator holds for it (the rows it built were freed by the threads that took them).

use super::sql_error;
use crate::allocator;
use crate::error::{AppError, AppResult};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;

type Read = Box<dyn FnOnce(&Connection) + Send>;

/// The queue to the reader threads; they end (closing their connections) when this is dropped.
pub struct Readers {
    queue: Arc<Queue>,
}

impl Readers {
    /// One thread for each connection. If one cannot start, those started end as `readers` drops.
    pub fn start(connections: Vec<Connection>) -> AppResult<Readers> {
        let readers = Readers { queue: Arc::new(Queue::default()) };
        for (number, connection) in connections.into_iter().enumerate() {
            let queue = Arc::clone(&readers.queue);
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{number}"))
                .spawn(move || serve(connection, &queue))
                .map_err(|e| AppError::internal(format!("cannot start a SQLite reader thread: {e}")))?;
        }
        Ok(readers)
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
        self.queue.push(read);
        answered.await.map_err(|_| AppError::internal("a SQLite reader thread dropped a read"))?
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The reads waiting for a thread. Each idle thread waits on the condition variable with the lock
/// released, so every one of them notices on its own when it has been idle long enough.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    arrived: Condvar,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<Read>,
    closed: bool,
}

/// What a reader thread gets from the queue.
enum Next {
    Read(Read),
    Idle,
    Closed,
}

impl Queue {
    /// The state holds no invariant a panic could break (reads run outside the lock).
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, read: Read) {
        self.lock().waiting.push_back(read);
        self.arrived.notify_one();
    }

    /// Ends the threads once the reads already queued are done.
    fn close(&self) {
        self.lock().closed = true;
        self.arrived.notify_all();
    }

    /// The next read, or `Idle` when none came for `idle`.
    fn next(&self, idle: Duration) -> Next {
        let mut state = self.lock();
        loop {
            if let Some(read) = state.waiting.pop_front() {
                return Next::Read(read);
            }
            if state.closed {
                return Next::Closed;
            }
            let (woken, waited) = self.arrived.wait_timeout(state, idle).unwrap_or_else(PoisonError::into_inner);
            state = woken;
            if waited.timed_out() && state.waiting.is_empty() && !state.closed {
                return Next::Idle;
            }
        }
    }
}

fn serve(connection: Connection, queue: &Queue) {
    let mut give_back = allocator::IdleGiveBack::default();
    loop {
        match queue.next(allocator::IDLE_BEFORE_GIVING_BACK) {
            Next::Read(read) => {
                read(&connection);
                give_back.worked();
            }
            Next::Idle => give_back.idle(),
            Next::Closed => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_thread_is_told_it_is_idle_then_takes_the_next_read_and_ends_once_closed() {
        let queue = Queue::default();
        assert!(matches!(queue.next(Duration::from_millis(20)), Next::Idle));
        queue.push(Box::new(|_| {}));
        queue.close();
        assert!(matches!(queue.next(Duration::from_secs(60)), Next::Read(_)), "a queued read is still run");
        assert!(matches!(queue.next(Duration::from_secs(60)), Next::Closed));
    }

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
