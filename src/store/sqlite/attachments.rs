//! The attachments port on SQLite: the metadata in the `attachments` table, the blobs as files
//! under `DATA_DIR/attachments/<first two hex digits>/<sha256>`.
//!
//! A blob is put by renaming the file the upload was streamed into (the service writes it under
//! `DATA_DIR/attachments/tmp`, on the same file system), so a blob file is either whole or absent,
//! never half-written; an fsync before the rename makes it durable like the rows.

use super::rows::{conversion_error, millis, time_from_millis};
use super::SqliteStore;
use crate::domain::{Attachment, Id, Timestamp};
use crate::error::{AppError, AppResult};
use crate::store::attachments::{is_blob_name, BlobReader};
use crate::store::AttachmentStore;
use async_trait::async_trait;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use tokio::io::AsyncSeekExt;

const ATTACHMENT_COLUMNS: &str = "id, service_provider_id, file_name, content_type, size, sha256, width, height,
     thumbnail_sha256, thumbnail_size, created_at_ms, used";

/// Creates the table and its indexes if they are missing.
pub(super) fn install(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS attachments (
             id TEXT PRIMARY KEY,
             service_provider_id TEXT NOT NULL,
             file_name TEXT NOT NULL,
             content_type TEXT NOT NULL,
             size INTEGER NOT NULL,
             sha256 TEXT NOT NULL,
             width INTEGER,
             height INTEGER,
             thumbnail_sha256 TEXT,
             thumbnail_size INTEGER,
             created_at_ms INTEGER NOT NULL,
             used INTEGER NOT NULL DEFAULT 0
         );
         CREATE INDEX IF NOT EXISTS attachments_by_sha256 ON attachments (sha256);
         CREATE INDEX IF NOT EXISTS attachments_by_thumbnail ON attachments (thumbnail_sha256);
         CREATE INDEX IF NOT EXISTS attachments_unused ON attachments (used, created_at_ms);
         CREATE TABLE IF NOT EXISTS attachment_uses (
             subject_id TEXT NOT NULL,
             attachment_id TEXT NOT NULL,
             service_provider_id TEXT NOT NULL,
             PRIMARY KEY (subject_id, attachment_id)
         );
         CREATE INDEX IF NOT EXISTS attachment_uses_by_attachment ON attachment_uses (attachment_id);",
    )
}

/// Where the blobs of a data directory live (the temporary files of uploads under `tmp`).
pub fn blob_directory(data_dir: &Path) -> PathBuf {
    data_dir.join("attachments")
}

fn attachment_from_row(row: &Row<'_>) -> rusqlite::Result<Attachment> {
    attachment_from_row_at(row, 0)
}

/// An attachment whose columns start at `first`.
fn attachment_from_row_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Attachment> {
    let number = |index: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(first + index)?.map(|n| n.max(0) as u64))
    };
    let dimension = |index: usize| -> rusqlite::Result<Option<u32>> {
        let index = first + index;
        row.get::<_, Option<i64>>(index)?
            .map(|n| u32::try_from(n).map_err(|_| conversion_error(index, format!("bad dimension {n}"))))
            .transpose()
    };
    Ok(Attachment {
        id: Id::from_stored(row.get(first)?),
        service_provider_id: Id::from_stored(row.get(first + 1)?),
        file_name: row.get(first + 2)?,
        content_type: row.get(first + 3)?,
        size: number(4)?.unwrap_or_default(),
        sha256: row.get(first + 5)?,
        width: dimension(6)?,
        height: dimension(7)?,
        thumbnail_sha256: row.get(first + 8)?,
        thumbnail_size: number(9)?,
        created_at: time_from_millis(row, first + 10)?,
        used: row.get::<_, i64>(first + 11)? != 0,
    })
}

fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

impl SqliteStore {
    fn blob_path(&self, sha256: &str) -> AppResult<PathBuf> {
        if !is_blob_name(sha256) {
            return Err(AppError::internal(format!("not a blob name: {sha256:?}")));
        }
        let data_dir = self.path().parent().unwrap_or(Path::new("."));
        Ok(blob_directory(data_dir).join(&sha256[..2]).join(sha256))
    }
}

fn io_error(what: &str, error: std::io::Error) -> AppError {
    AppError::internal(format!("attachments: {what}: {error}"))
}

#[async_trait]
impl AttachmentStore for SqliteStore {
    async fn insert_attachment(&self, attachment: &Attachment) -> AppResult<()> {
        let a = attachment.clone();
        self.write(move |t| {
            t.prepare_cached(&format!(
                "INSERT INTO attachments ({ATTACHMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))?
            .execute(params![
                a.id.as_str(),
                a.service_provider_id.as_str(),
                a.file_name,
                a.content_type,
                a.size as i64,
                a.sha256,
                a.width,
                a.height,
                a.thumbnail_sha256,
                a.thumbnail_size.map(|n| n as i64),
                millis(&a.created_at),
                i64::from(a.used),
            ])
        })
        .await
        .map(drop)
    }

    async fn attachments_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Attachment>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut values = vec![provider.to_string()];
        values.extend(ids.iter().map(Id::to_string));
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE service_provider_id = ? AND id IN ({})",
            placeholders(ids.len())
        );
        self.read(move |c| c.prepare(&sql)?.query_map(params_from_iter(values), attachment_from_row)?.collect()).await
    }

    async fn attachment_by_id(&self, id: &Id) -> AppResult<Option<Attachment>> {
        let id = id.clone();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?"))?
                .query_row([id.as_str()], attachment_from_row)
                .optional()
        })
        .await
    }

    async fn mark_attachments_used(&self, provider: &Id, ids: &[Id]) -> AppResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut values = vec![provider.to_string()];
        values.extend(ids.iter().map(Id::to_string));
        let sql = format!(
            "UPDATE attachments SET used = 1 WHERE service_provider_id = ? AND id IN ({})",
            placeholders(ids.len())
        );
        self.write(move |t| t.prepare(&sql)?.execute(params_from_iter(values))).await.map(|n| n as u64)
    }

    async fn attach_to(&self, provider: &Id, subject: &Id, ids: &[Id]) -> AppResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let (provider, subject, ids) = (provider.clone(), subject.clone(), ids.to_vec());
        self.write(move |t| {
            let mut attached = 0;
            for id in &ids {
                let used = t
                    .prepare_cached("UPDATE attachments SET used = 1 WHERE service_provider_id = ? AND id = ?")?
                    .execute([provider.as_str(), id.as_str()])?;
                if used > 0 {
                    t.prepare_cached(
                        "INSERT OR IGNORE INTO attachment_uses (subject_id, attachment_id, service_provider_id)
                         VALUES (?, ?, ?)",
                    )?
                    .execute([subject.as_str(), id.as_str(), provider.as_str()])?;
                    attached += 1;
                }
            }
            Ok(attached)
        })
        .await
    }

    async fn attachments_of(&self, provider: &Id, subjects: &[Id]) -> AppResult<Vec<(Id, Attachment)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let mut values = vec![provider.to_string()];
        values.extend(subjects.iter().map(Id::to_string));
        let columns: String =
            ATTACHMENT_COLUMNS.split(',').map(|c| format!("a.{}", c.trim())).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT u.subject_id, {columns} FROM attachment_uses u JOIN attachments a ON a.id = u.attachment_id
             WHERE u.service_provider_id = ? AND u.subject_id IN ({}) ORDER BY u.subject_id, a.id",
            placeholders(subjects.len())
        );
        self.read(move |c| {
            c.prepare(&sql)?
                .query_map(params_from_iter(values), |row| {
                    let subject = Id::from_stored(row.get(0)?);
                    let attachment = attachment_from_row_at(row, 1)?;
                    Ok((subject, attachment))
                })?
                .collect()
        })
        .await
    }

    async fn unused_attachments_before(&self, cutoff: Timestamp, limit: u32) -> AppResult<Vec<Attachment>> {
        let cutoff = millis(&cutoff);
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE used = 0 AND created_at_ms < ?
                 ORDER BY created_at_ms LIMIT ?"
            ))?
            .query_map(params![cutoff, i64::from(limit)], attachment_from_row)?
            .collect()
        })
        .await
    }

    async fn delete_attachment(&self, id: &Id) -> AppResult<bool> {
        let id = id.clone();
        self.write(move |t| {
            t.prepare_cached("DELETE FROM attachment_uses WHERE attachment_id = ?")?.execute([id.as_str()])?;
            t.prepare_cached("DELETE FROM attachments WHERE id = ?")?.execute([id.as_str()])
        })
        .await
        .map(|n| n > 0)
    }

    async fn blob_in_use(&self, sha256: &str) -> AppResult<bool> {
        let sha256 = sha256.to_owned();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?1)
                     OR EXISTS (SELECT 1 FROM attachments WHERE thumbnail_sha256 = ?1)",
            )?
            .query_row([sha256], |row| row.get::<_, bool>(0))
        })
        .await
    }

    async fn put_blob(&self, sha256: &str, file: &Path) -> AppResult<()> {
        let target = self.blob_path(sha256)?;
        let (file, sha256) = (file.to_owned(), sha256.to_owned());
        tokio::task::spawn_blocking(move || {
            if target.exists() {
                return std::fs::remove_file(&file).map_err(|e| io_error("removing a duplicate upload", e));
            }
            let directory = target.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(directory).map_err(|e| io_error("creating the blob directory", e))?;
            std::fs::File::open(&file).and_then(|f| f.sync_all()).map_err(|e| io_error("syncing an upload", e))?;
            if std::fs::rename(&file, &target).is_err() {
                // Another file system: copied beside the target first, so the target still
                // appears whole or not at all.
                let beside = directory.join(format!(".{sha256}.partial"));
                std::fs::copy(&file, &beside).map_err(|e| io_error("copying an upload", e))?;
                std::fs::File::open(&beside).and_then(|f| f.sync_all()).map_err(|e| io_error("syncing a copy", e))?;
                std::fs::rename(&beside, &target).map_err(|e| io_error("moving an upload into place", e))?;
                let _ = std::fs::remove_file(&file);
            }
            // The rename itself is durable once the directory is synced.
            std::fs::File::open(directory).and_then(|d| d.sync_all()).map_err(|e| io_error("syncing a directory", e))
        })
        .await
        .map_err(AppError::internal)?
    }

    async fn open_blob(&self, sha256: &str, skip: u64) -> AppResult<Option<BlobReader>> {
        let path = self.blob_path(sha256)?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("opening a blob", error)),
        };
        if skip > 0 {
            file.seek(std::io::SeekFrom::Start(skip)).await.map_err(|e| io_error("seeking in a blob", e))?;
        }
        Ok(Some(Box::pin(file)))
    }

    async fn delete_blob(&self, sha256: &str) -> AppResult<()> {
        let path = self.blob_path(sha256)?;
        match tokio::fs::remove_file(&path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io_error("deleting a blob", error)),
            _ => Ok(()),
        }
    }
}
