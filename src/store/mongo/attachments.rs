//! The attachments port on MongoDB: the metadata in `attachments`, one document each, and the
//! blobs in GridFS (bucket `attachmentBlobs`), each file's `_id` being its SHA-256.
//!
//! Naming GridFS files by their hash makes a blob put idempotent: a second upload of the same bytes
//! finds the file there and stores nothing; two racing puts of the same bytes meet the unique
//! `files_id`/`n` index of the chunks, and the loser finds the winner's file and is content.
//! A blob is read with GridFS's download stream; a range start skips bytes as they come.

use super::documents::{date, Fields, ReadResult};
use super::failures::mongo_error;
use super::{collect, ids_bson, read, MongoStore};
use crate::domain::{Attachment, Id, Timestamp};
use crate::error::{AppError, AppResult};
use crate::store::attachments::{is_blob_name, BlobReader};
use crate::store::AttachmentStore;
use async_trait::async_trait;
use futures_util::io::AsyncWriteExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, GridFsErrorKind};
use mongodb::options::{GridFsBucketOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use std::path::Path;
use tokio::io::AsyncReadExt;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

const BUCKET: &str = "attachmentBlobs";

fn attachment_document(a: &Attachment) -> Document {
    doc! {
        "id": a.id.as_str(),
        "serviceProviderId": a.service_provider_id.as_str(),
        "fileName": &a.file_name,
        "contentType": &a.content_type,
        "size": a.size as i64,
        "sha256": &a.sha256,
        "width": a.width.map(i64::from),
        "height": a.height.map(i64::from),
        "thumbnailSha256": a.thumbnail_sha256.as_deref(),
        "thumbnailSize": a.thumbnail_size.map(|n| n as i64),
        "createdAt": date(&a.created_at),
        "used": a.used,
    }
}

fn attachment_from(doc: &Document) -> ReadResult<Attachment> {
    let f = Fields::new(doc, "attachment");
    let optional = |field: &str| -> ReadResult<Option<i64>> {
        match doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(_) => f.number(field).map(Some),
        }
    };
    let dimension = |field: &str| -> ReadResult<Option<u32>> {
        optional(field)?.map(|n| u32::try_from(n).map_err(|_| f.fail(field, "out of range"))).transpose()
    };
    Ok(Attachment {
        id: f.id("id")?,
        service_provider_id: f.id("serviceProviderId")?,
        file_name: f.text("fileName")?,
        content_type: f.text("contentType")?,
        size: f.number("size")?.max(0) as u64,
        sha256: f.text("sha256")?,
        width: dimension("width")?,
        height: dimension("height")?,
        thumbnail_sha256: f.optional_text("thumbnailSha256")?,
        thumbnail_size: optional("thumbnailSize")?.map(|n| n.max(0) as u64),
        created_at: f.time("createdAt")?,
        used: doc.get_bool("used").unwrap_or(false),
    })
}

fn is_file_not_found(error: &mongodb::error::Error) -> bool {
    matches!(error.kind.as_ref(), ErrorKind::GridFs(GridFsErrorKind::FileNotFound { .. }))
}

fn io_error(what: &str, error: std::io::Error) -> AppError {
    AppError::internal(format!("attachments: {what}: {error}"))
}

impl MongoStore {
    fn attachments(&self) -> Collection<Document> {
        self.database().collection("attachments")
    }

    fn blobs(&self) -> mongodb::gridfs::GridFsBucket {
        self.database().gridfs_bucket(GridFsBucketOptions::builder().bucket_name(BUCKET.to_owned()).build())
    }

    /// The indexes of the attachments' queries: by id, by blob (file and thumbnail), the unused by age.
    pub(super) async fn create_attachment_indexes(&self) -> AppResult<()> {
        let index = |name: &str, keys: Document, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).unique(unique).build())
                .build()
        };
        let models = vec![
            index("id_unique", doc! { "id": 1 }, true),
            index("provider_id", doc! { "serviceProviderId": 1, "id": 1 }, false),
            index("sha256", doc! { "sha256": 1 }, false),
            index("provider_used_by", doc! { "serviceProviderId": 1, "usedBy": 1 }, false),
            index("thumbnail_sha256", doc! { "thumbnailSha256": 1 }, false),
            index("unused_created", doc! { "used": 1, "createdAt": 1 }, false),
        ];
        self.op(self.attachments().create_indexes(models)).await.map(drop)
    }

    async fn blob_exists(&self, sha256: &str) -> AppResult<bool> {
        self.op(self.blobs().find_one(doc! { "_id": sha256 })).await.map(|found| found.is_some())
    }
}

#[async_trait]
impl AttachmentStore for MongoStore {
    async fn insert_attachment(&self, attachment: &Attachment) -> AppResult<()> {
        self.op(self.attachments().insert_one(attachment_document(attachment))).await.map(drop)
    }

    async fn attachments_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Attachment>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let filter = doc! { "serviceProviderId": provider.as_str(), "id": { "$in": ids_bson(ids) } };
        let documents = self.op(async { collect(self.attachments().find(filter).await?).await }).await?;
        read(&documents, attachment_from)
    }

    async fn attachment_by_id(&self, id: &Id) -> AppResult<Option<Attachment>> {
        let found = self.op(self.attachments().find_one(doc! { "id": id.as_str() })).await?;
        found.map(|d| attachment_from(&d).map_err(super::failures::bad_document)).transpose()
    }

    async fn mark_attachments_used(&self, provider: &Id, ids: &[Id]) -> AppResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let filter = doc! { "serviceProviderId": provider.as_str(), "id": { "$in": ids_bson(ids) } };
        let updated = self.op(self.attachments().update_many(filter, doc! { "$set": { "used": true } })).await?;
        Ok(updated.matched_count)
    }

    async fn attach_to(&self, provider: &Id, subject: &Id, ids: &[Id]) -> AppResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let filter = doc! { "serviceProviderId": provider.as_str(), "id": { "$in": ids_bson(ids) } };
        let update = doc! { "$set": { "used": true }, "$addToSet": { "usedBy": subject.as_str() } };
        let updated = self.op(self.attachments().update_many(filter, update)).await?;
        Ok(updated.matched_count)
    }

    async fn attachments_of(&self, provider: &Id, subjects: &[Id]) -> AppResult<Vec<(Id, Attachment)>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let filter = doc! { "serviceProviderId": provider.as_str(), "usedBy": { "$in": ids_bson(subjects) } };
        let documents =
            self.op(async { collect(self.attachments().find(filter).sort(doc! { "id": 1 }).await?).await }).await?;
        let mut pairs = Vec::new();
        for document in &documents {
            let attachment = attachment_from(document).map_err(super::failures::bad_document)?;
            let used_by = document.get_array("usedBy").map(|a| a.as_slice()).unwrap_or_default();
            for subject in subjects {
                if used_by.iter().any(|s| s.as_str() == Some(subject.as_str())) {
                    pairs.push((subject.clone(), attachment.clone()));
                }
            }
        }
        pairs.sort_by(|a, b| (a.0.as_str(), a.1.id.as_str()).cmp(&(b.0.as_str(), b.1.id.as_str())));
        Ok(pairs)
    }

    async fn unused_attachments_before(&self, cutoff: Timestamp, limit: u32) -> AppResult<Vec<Attachment>> {
        let filter = doc! { "used": false, "createdAt": { "$lt": date(&cutoff) } };
        let documents = self
            .op(async {
                collect(self.attachments().find(filter).sort(doc! { "createdAt": 1 }).limit(i64::from(limit)).await?)
                    .await
            })
            .await?;
        read(&documents, attachment_from)
    }

    async fn delete_attachment(&self, id: &Id) -> AppResult<bool> {
        let deleted = self.op(self.attachments().delete_one(doc! { "id": id.as_str() })).await?;
        Ok(deleted.deleted_count > 0)
    }

    async fn blob_in_use(&self, sha256: &str) -> AppResult<bool> {
        let filter = doc! { "$or": [{ "sha256": sha256 }, { "thumbnailSha256": sha256 }] };
        self.op(self.attachments().find_one(filter)).await.map(|found| found.is_some())
    }

    async fn put_blob(&self, sha256: &str, file: &Path) -> AppResult<()> {
        if !is_blob_name(sha256) {
            return Err(AppError::internal(format!("not a blob name: {sha256:?}")));
        }
        let stored = async {
            if self.blob_exists(sha256).await? {
                return Ok(());
            }
            let source = tokio::fs::File::open(file).await.map_err(|e| io_error("opening an upload", e))?;
            let mut upload = self
                .blobs()
                .open_upload_stream(sha256)
                .id(Bson::String(sha256.to_owned()))
                .await
                .map_err(mongo_error)?;
            let copied = futures_util::io::copy(source.compat(), &mut upload).await;
            let closed = match copied {
                Ok(_) => upload.close().await,
                Err(error) => {
                    let _ = upload.abort().await;
                    Err(error)
                }
            };
            match closed {
                Ok(()) => Ok(()),
                // Another upload of the same bytes stored them first.
                Err(_) if self.blob_exists(sha256).await? => Ok(()),
                Err(error) => Err(io_error("writing to GridFS", error)),
            }
        }
        .await;
        let _ = tokio::fs::remove_file(file).await;
        stored
    }

    async fn open_blob(&self, sha256: &str, skip: u64) -> AppResult<Option<BlobReader>> {
        let stream = match self.blobs().open_download_stream(Bson::String(sha256.to_owned())).await {
            Ok(stream) => stream,
            Err(error) if is_file_not_found(&error) => return Ok(None),
            Err(error) => return Err(mongo_error(error)),
        };
        let mut reader = stream.compat();
        if skip > 0 {
            let mut skipped = (&mut reader).take(skip);
            tokio::io::copy(&mut skipped, &mut tokio::io::sink()).await.map_err(|e| io_error("skipping", e))?;
        }
        Ok(Some(Box::pin(reader)))
    }

    async fn delete_blob(&self, sha256: &str) -> AppResult<()> {
        match self.blobs().delete(Bson::String(sha256.to_owned())).await {
            Err(error) if !is_file_not_found(&error) => Err(mongo_error(error)),
            _ => Ok(()),
        }
    }
}
