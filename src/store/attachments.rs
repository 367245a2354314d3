//! The attachments port: each uploaded file's metadata (owned by its provider), and the blobs that
//! hold the bytes, named by their SHA-256.
//!
//! The design choice: blobs are content-addressed and apart from the metadata, so the same
//! screenshot uploaded twice is stored once, and deleting an attachment deletes its blob only when
//! no other attachment names it ([`AttachmentStore::blob_in_use`]; the service holds the blob
//! meanwhile, `service::blob_holds`). Blobs move as streams: a blob is put from a file the upload
//! was streamed into (the SQLite adapter renames it into `DATA_DIR/attachments`, the MongoDB one
//! copies it into GridFS) and read as a stream, never as one buffer. The metadata reads are scoped by provider, except [`AttachmentStore::attachment_by_id`],
//! which serves downloads whose signed URL already proves who it was issued to.
//!
//! What carries an attachment is recorded here too ([`AttachmentStore::attach_to`]), not in the
//! chat, ticket and reply rows: one write records the use and keeps the attachment from the orphan
//! job, and the areas that carry attachments need no change of their own tables.

use crate::domain::{Attachment, Id, Timestamp};
use crate::error::AppResult;
use async_trait::async_trait;
use std::path::Path;
use std::pin::Pin;

/// A blob's bytes, read as they are needed.
pub type BlobReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

#[async_trait]
pub trait AttachmentStore: Send + Sync + 'static {
    /// Stores a new attachment's metadata (its blobs are put first).
    async fn insert_attachment(&self, attachment: &Attachment) -> AppResult<()>;
    /// The provider's attachments among `ids` (another provider's are simply not there), in no
    /// particular order.
    async fn attachments_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Attachment>>;
    /// An attachment whoever uploaded it: only for a download whose URL signature was checked.
    async fn attachment_by_id(&self, id: &Id) -> AppResult<Option<Attachment>>;
    /// Marks the provider's attachments among `ids` used, so the orphan job keeps them; answers
    /// how many there were.
    async fn mark_attachments_used(&self, provider: &Id, ids: &[Id]) -> AppResult<u64>;
    /// Records that `subject` (a chat message, a ticket, a reply) carries the provider's
    /// attachments among `ids`, and marks them used, in one write; answers how many there were.
    async fn attach_to(&self, provider: &Id, subject: &Id, ids: &[Id]) -> AppResult<u64>;
    /// The attachments the provider's `subjects` carry, as `(subject, attachment)` pairs, each
    /// subject's in upload order (ids are time-ordered).
    async fn attachments_of(&self, provider: &Id, subjects: &[Id]) -> AppResult<Vec<(Id, Attachment)>>;
    /// Up to `limit` attachments never used and uploaded before `cutoff`, oldest first.
    async fn unused_attachments_before(&self, cutoff: Timestamp, limit: u32) -> AppResult<Vec<Attachment>>;
    /// Whether an attachment with that id was there to delete (its blobs are left alone).
    async fn delete_attachment(&self, id: &Id) -> AppResult<bool>;
    /// Whether any attachment names the blob, as its file or its thumbnail.
    async fn blob_in_use(&self, sha256: &str) -> AppResult<bool>;
    /// Stores the bytes of `file` as the blob `sha256` (their hash), unless it is already there;
    /// `file` is consumed either way.
    async fn put_blob(&self, sha256: &str, file: &Path) -> AppResult<()>;
    /// The blob's bytes from offset `skip` on; `None` if there is no such blob.
    async fn open_blob(&self, sha256: &str, skip: u64) -> AppResult<Option<BlobReader>>;
    /// Deletes the blob; nothing if it is not there.
    async fn delete_blob(&self, sha256: &str) -> AppResult<()>;
}

/// Whether a blob name is a hex SHA-256 (so it is safe as a file name).
pub fn is_blob_name(sha256: &str) -> bool {
    sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
