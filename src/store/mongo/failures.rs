//! How a MongoDB failure reaches the service layer: UNAVAILABLE when the server cannot be reached
//! or cannot take writes just now (the driver keeps watching it), INTERNAL otherwise.

use crate::error::AppError;
use mongodb::error::{ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR};

pub(super) fn bad_document(detail: String) -> AppError {
    AppError::Internal(format!("mongodb: {detail}"))
}

/// Whether an error means the server cannot be reached (or cannot take writes) just now.
pub(super) fn is_unreachable(error: &mongodb::error::Error) -> bool {
    // Server codes for a server going away, stepping down, or not being primary.
    const UNAVAILABLE_CODES: [i32; 14] = [6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436, 64, 10058];
    if error.contains_label(TRANSIENT_TRANSACTION_ERROR) || error.contains_label("RetryableWriteError") {
        return true;
    }
    match error.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. } => true,
        ErrorKind::Shutdown => true,
        ErrorKind::Command(command) => UNAVAILABLE_CODES.contains(&command.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        _ => false,
    }
}

pub(super) fn mongo_error(error: mongodb::error::Error) -> AppError {
    if is_unreachable(&error) {
        AppError::Unavailable(format!("mongodb: {error}"))
    } else {
        AppError::Internal(format!("mongodb: {error}"))
    }
}

pub(super) fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == 11000,
        ErrorKind::Command(e) => e.code == 11000,
        _ => false,
    }
}
