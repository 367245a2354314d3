//! Multi-document transactions: a change that touches two documents runs in one, started again on
//! a transient error and committed again when the commit's outcome is unknown (see the adapter's
//! module documentation, "Atomicity").

/// How often a transaction is tried when it keeps failing with transient errors (a write conflict
/// with a concurrent transaction on a provider's counters or inbox totals), each retry after a
/// jittered, doubling pause; the operation timeout bounds them all.
pub(super) const TRANSACTION_ATTEMPTS: usize = 10;

/// The pause before attempt `attempt + 1` of a transaction that conflicted: 5 ms doubling, at
/// most 320 ms, half of it random, so two conflicting writers do not meet again.
pub(super) fn conflict_pause(attempt: usize) -> std::time::Duration {
    use std::time::Duration;
    let random = crate::domain::outbox::random_fraction();
    crate::domain::outbox::backoff(attempt as u32, Duration::from_millis(5), Duration::from_millis(320), random)
}

/// Runs `$body` in a transaction on a session named `$session`: started again from the top on a
/// transient error (but not when no server could be selected at all: the caller hears UNAVAILABLE
/// after one server-selection timeout, not three), its commit repeated when the outcome is unknown
/// (commit is idempotent), and aborted on any other error. A macro rather than a function taking a closure, because an async
/// closure borrowing the session cannot yet be proven `Send` for the trait's futures.
macro_rules! in_transaction {
    ($store:expr, |$session:ident| $body:block) => {
        async {
            let mut $session = $store.client.start_session().await?;
            let mut attempt = 0;
            'attempts: loop {
                attempt += 1;
                $session.start_transaction().await?;
                let outcome: mongodb::error::Result<_> = async { $body }.await;
                let value = match outcome {
                    Ok(value) => value,
                    Err(error) => {
                        let _ = $session.abort_transaction().await;
                        if error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
                            && !matches!(*error.kind, mongodb::error::ErrorKind::ServerSelection { .. })
                            && attempt < super::transactions::TRANSACTION_ATTEMPTS
                        {
                            tokio::time::sleep(super::transactions::conflict_pause(attempt)).await;
                            continue 'attempts;
                        }
                        break 'attempts Err(error);
                    }
                };
                loop {
                    match $session.commit_transaction().await {
                        Ok(()) => break 'attempts Ok(value),
                        Err(error) if attempt < super::transactions::TRANSACTION_ATTEMPTS => {
                            attempt += 1;
                            if error.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT) {
                                continue;
                            }
                            if error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) {
                                continue 'attempts;
                            }
                            break 'attempts Err(error);
                        }
                        Err(error) => break 'attempts Err(error),
                    }
                }
            }
        }
    };
}
