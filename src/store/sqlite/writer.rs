//! The writer thread: every change to the database, committed in groups.
//!
//! Each change is a closure on a transaction. The thread takes every change waiting for it (up to
//! [`MAX_BATCH`]), runs each in a savepoint of one immediate transaction and commits once: one
//! disk flush for the group instead of one per change. A change that fails is rolled back to its
//! savepoint and answered with its error; the others still commit. Callers are answered only after
//! the commit, so an acknowledged write is on disk (`synchronous = FULL`). Waiting callers hold no
//! thread: a burst of writes queues here instead of parking a blocking thread each on a lock.
//! Idle for [`allocator::IDLE_BEFORE_GIVING_BACK`] after a commit, the thread gives back the
//! memory the allocator holds for it.

use super::{sql_error, sql_error_of};
use crate::allocator;
use crate::error::{AppError, AppResult};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, RecvTimeoutError};
use tokio::sync::oneshot;

/// The most changes committed together.
const MAX_BATCH: usize = 64;

/// The queue to the writer thread; the thread ends (closing its connection) when this is dropped.
pub struct Writer {
    queue: mpsc::Sender<Box<dyn Change>>,
}

impl Writer {
    pub fn start(connection: Connection) -> AppResult<Writer> {
        let (queue, waiting) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || commit_in_groups(connection, waiting))
            .map_err(|e| AppError::internal(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Writer { queue })
    }

    /// Runs `change` in the next group and answers once that group is committed.
    pub async fn write<T, F>(&self, change: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let pending = Pending { change: Some(change), result: None, answer };
        self.queue.send(Box::new(pending)).map_err(|_| AppError::internal("the SQLite writer thread has stopped"))?;
        answered.await.map_err(|_| AppError::internal("the SQLite writer thread dropped a change"))?
    }
}

/// A change waiting for its group, type-erased for the queue.
trait Change: Send {
    /// Runs the change in its own savepoint. False when the savepoint could not be released or
    /// rolled back, leaving the transaction in a state the group must not commit.
    fn run(&mut self, transaction: &Transaction<'_>) -> bool;
    /// Answers the caller: the change's own result if the group committed, else why it did not.
    fn answer(self: Box<Self>, committed: Result<(), &GroupFailed>);
}

/// Why a group was not committed.
enum GroupFailed {
    Sql(rusqlite::Error),
    /// A failed change could not be rolled back to its savepoint, so the whole group was.
    Undone,
}

struct Pending<T, F> {
    change: Option<F>,
    result: Option<AppResult<T>>,
    answer: oneshot::Sender<AppResult<T>>,
}

impl<T, F> Change for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
{
    fn run(&mut self, transaction: &Transaction<'_>) -> bool {
        let Some(change) = self.change.take() else { return true };
        if let Err(error) = transaction.execute_batch("SAVEPOINT change") {
            self.result = Some(Err(sql_error(error)));
            return true;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| change(transaction)));
        let (result, end) = match outcome {
            Ok(Ok(value)) => (Ok(value), "RELEASE change"),
            Ok(Err(error)) => (Err(sql_error(error)), "ROLLBACK TO change; RELEASE change"),
            Err(_) => (Err(AppError::internal("a store change panicked")), "ROLLBACK TO change; RELEASE change"),
        };
        self.result = Some(result);
        transaction.execute_batch(end).is_ok()
    }

    fn answer(self: Box<Self>, committed: Result<(), &GroupFailed>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(GroupFailed::Sql(error)), _) => Err(sql_error_of(error)),
            (Err(GroupFailed::Undone), _) => {
                Err(AppError::internal("a failed change could not be rolled back alone, so its whole group was"))
            }
            (Ok(()), None) => Err(AppError::internal("a store change was not run")),
        };
        // The caller may have gone (its request cancelled); the change stands either way.
        let _ = self.answer.send(answer);
    }
}

fn commit_in_groups(mut connection: Connection, waiting: mpsc::Receiver<Box<dyn Change>>) {
    let mut give_back = allocator::IdleGiveBack::default();
    loop {
        let first = match waiting.recv_timeout(allocator::IDLE_BEFORE_GIVING_BACK) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => {
                give_back.idle();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        give_back.worked();
        let mut group = vec![first];
        group.extend(waiting.try_iter().take(MAX_BATCH - 1));
        let committed = commit(&mut connection, &mut group);
        for change in group {
            change.answer(committed.as_ref().map(|_| ()));
        }
    }
}

fn commit(connection: &mut Connection, group: &mut [Box<dyn Change>]) -> Result<(), GroupFailed> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(GroupFailed::Sql)?;
    for change in group.iter_mut() {
        if !change.run(&transaction) {
            // Dropping the transaction rolls the whole group back.
            return Err(GroupFailed::Undone);
        }
    }
    transaction.commit().map_err(GroupFailed::Sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let connection = Connection::open(dir.path().join("writer.sqlite3")).unwrap();
        connection.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)").unwrap();
        (dir, connection)
    }

    fn pending<F>(change: F) -> (Box<dyn Change>, oneshot::Receiver<AppResult<usize>>)
    where
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<usize> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        (Box::new(Pending { change: Some(change), result: None, answer }), answered)
    }

    fn insert(t: &Transaction<'_>, x: i64) -> rusqlite::Result<usize> {
        t.execute("INSERT INTO t (x) VALUES (?)", [x])
    }

    #[test]
    fn a_failed_change_is_undone_alone_and_the_rest_of_its_group_commits() {
        let (_dir, mut connection) = database();
        let (first, first_answer) = pending(|t| insert(t, 1));
        // Writes 2, then fails on the duplicate 1: its 2 must not stay.
        let (failing, failing_answer) = pending(|t| insert(t, 2).and_then(|_| insert(t, 1)));
        let (last, last_answer) = pending(|t| insert(t, 3));
        let mut group = vec![first, failing, last];
        let committed = commit(&mut connection, &mut group);
        assert!(committed.is_ok());
        for change in group {
            change.answer(committed.as_ref().map(|_| ()));
        }
        assert_eq!(first_answer.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(failing_answer.blocking_recv().unwrap(), Err(AppError::Internal(_))));
        assert_eq!(last_answer.blocking_recv().unwrap().unwrap(), 1);
        let mut statement = connection.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let stored: Vec<i64> = statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(stored, [1, 3]);
    }

    #[tokio::test]
    async fn a_change_that_panics_is_answered_with_an_error_and_later_changes_still_commit() {
        let (_dir, connection) = database();
        let writer = Writer::start(connection).unwrap();
        let panicked = writer.write(|_| -> rusqlite::Result<()> { panic!("a bug in a change") }).await;
        assert!(matches!(panicked, Err(AppError::Internal(_))));
        let written = writer.write(|t| insert(t, 7)).await.unwrap();
        assert_eq!(written, 1);
        let count = writer.write(|t| t.query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))).await;
        assert_eq!(count.unwrap(), 1);
    }
}
