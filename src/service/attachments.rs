//! Attachments: receiving an upload, signing and checking download URLs, the attachments a
//! message may carry, and deleting the ones nobody used.
//!
//! The design choices: an upload is streamed into a temporary file while it is hashed and counted,
//! so a file over `UPLOAD_MAX_BYTES` is refused at the first byte past the limit and nothing holds
//! a whole file in memory; its type is what [`sniff`] finds in its first bytes; images are measured
//! and thumbnailed on the blocking pool, a few at a time, decoded under [`image::Limits`] so a
//! decompression bomb is refused instead of eating memory. Download URLs carry their own
//! authorization (an expiry and an HMAC over the id, the variant and the expiry, keyed by a key
//! derived from the JWT secret), because a mini-program's `<image>` tag sends no Authorization
//! header; they are signed when read, so a URL is always fresh.

use super::blob_holds::{self, BlobHolds};
use super::canned_replies::Compose;
use super::tickets::{NewTicket, Reply, TicketService};
use super::upload_files::{clean_file_name, hex, io_error, measure_image, upload_broken, Measured, TempFile};
use super::Session;
use crate::config::UploadSettings;
use crate::domain::attachment::{sniff, FileKind, SNIFF_BYTES, THUMBNAIL_CONTENT_TYPE};
use crate::domain::{new_id, now, Attachment, Id, OutboxDraft, Text, TextLimit, Ticket, Timestamp, MAX_ATTACHMENTS};
use crate::error::{AppError, AppResult};
use crate::store::{AttachmentStore, BlobReader, LeaseStore, SharedStore};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// The chunks of an upload as the HTTP layer reads them; an error is the transport's, said for the log.
pub trait ByteChunks: futures_util::Stream<Item = Result<axum::body::Bytes, String>> + Send + Unpin {}
impl<T> ByteChunks for T where T: futures_util::Stream<Item = Result<axum::body::Bytes, String>> + Send + Unpin {}

/// The most images decoded at once (each may take up to [`MAX_DECODE_BYTES`]).
const DECODES_AT_ONCE: usize = 2;
/// Unused attachments deleted per batch by the orphan job.
const ORPHAN_BATCH: u32 = 200;

/// Which bytes of an attachment a URL serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    File,
    Thumbnail,
}

impl Variant {
    fn as_str(self) -> &'static str {
        match self {
            Variant::File => "file",
            Variant::Thumbnail => "thumbnail",
        }
    }
}

/// Why an upload was not accepted.
#[derive(Debug)]
pub enum UploadRefused {
    /// Over `UPLOAD_MAX_BYTES` (413).
    TooLarge {
        max_bytes: u64,
    },
    /// Not on the allow list, or an image that cannot be decoded within the limits (415).
    Unsupported(&'static str),
    Failed(AppError),
}

impl From<AppError> for UploadRefused {
    fn from(error: AppError) -> UploadRefused {
        UploadRefused::Failed(error)
    }
}

/// What the attachment service is built with.
#[derive(Clone)]
pub struct AttachmentSettings {
    pub uploads: UploadSettings,
    /// The key of the URL signatures: HMAC-SHA256(JWT secret, "attachment-url").
    pub url_key: Vec<u8>,
    /// Where uploads are streamed before they become blobs (`DATA_DIR/attachments/tmp`).
    pub temp_dir: PathBuf,
}

impl AttachmentSettings {
    pub fn new(uploads: UploadSettings, jwt_secret: &[u8], data_dir: &Path) -> AttachmentSettings {
        let mut mac = Hmac::<Sha256>::new_from_slice(jwt_secret).expect("HMAC takes a key of any length");
        mac.update(b"attachment-url");
        AttachmentSettings {
            uploads,
            url_key: mac.finalize().into_bytes().to_vec(),
            temp_dir: data_dir.join("attachments").join("tmp"),
        }
    }
}

impl AttachmentSettings {
    /// Settings with a random URL key and the system's temporary directory, until
    /// [`super::Services::with_attachments`] gives the configured ones.
    pub fn unconfigured() -> AttachmentSettings {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source is available");
        AttachmentSettings::new(UploadSettings::default(), &key, &std::env::temp_dir().join("provider-desk"))
    }
}

/// A download the signature allowed: what to send and how to name it.
pub struct Download {
    pub attachment: Attachment,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
}

#[derive(Clone)]
pub struct AttachmentService {
    store: Arc<dyn AttachmentStore>,
    holds: BlobHolds,
    settings: Arc<AttachmentSettings>,
    decodes: Arc<Semaphore>,
}

impl AttachmentService {
    pub fn new(store: &SharedStore, settings: AttachmentSettings) -> AttachmentService {
        AttachmentService::with_stores(store.clone(), store.clone(), settings)
    }

    /// The service on an attachments store of its own (a test's, around the real one) and the
    /// store's leases.
    pub fn with_stores(
        store: Arc<dyn AttachmentStore>,
        leases: Arc<dyn LeaseStore>,
        settings: AttachmentSettings,
    ) -> AttachmentService {
        AttachmentService {
            store,
            holds: BlobHolds::new(leases),
            settings: Arc::new(settings),
            decodes: Arc::new(Semaphore::new(DECODES_AT_ONCE)),
        }
    }

    pub fn max_bytes(&self) -> u64 {
        self.settings.uploads.max_bytes
    }

    /// A new temporary file's path under the uploads' directory, for a body to be streamed to
    /// before it is read (the signed uploads of the PC system); the caller removes it.
    pub async fn temp_file(&self) -> AppResult<PathBuf> {
        let temp = TempFile::create(&self.settings.temp_dir).await?;
        Ok(std::mem::take(&mut std::mem::ManuallyDrop::new(temp).path))
    }

    /// Receives one file for `provider`: streamed to a temporary file, typed, measured and
    /// thumbnailed if it is an image, stored.
    pub async fn upload(
        &self,
        provider: &Id,
        file_name: Option<&str>,
        mut chunks: impl ByteChunks,
    ) -> Result<Attachment, UploadRefused> {
        use futures_util::StreamExt;
        let file_name = clean_file_name(file_name);
        let temp = TempFile::create(&self.settings.temp_dir).await?;
        let mut file = tokio::fs::File::create(&temp.path).await.map_err(|e| io_error("creating an upload file", e))?;
        let (mut hasher, mut size, mut head) = (Sha256::new(), 0u64, Vec::with_capacity(SNIFF_BYTES));
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|detail| AppError::BadInput { field: None, message: upload_broken(&detail) })?;
            size += chunk.len() as u64;
            if size > self.max_bytes() {
                return Err(UploadRefused::TooLarge { max_bytes: self.max_bytes() });
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| io_error("writing an upload", e))?;
        }
        file.flush().await.map_err(|e| io_error("writing an upload", e))?;
        drop(file);
        if size == 0 {
            return Err(AppError::bad_input("file", "文件为空").into());
        }
        let kind = sniff(&head, &file_name, size <= SNIFF_BYTES as u64).ok_or(UploadRefused::Unsupported(
            "不支持的文件类型，仅支持PNG、JPEG、GIF、WebP、PDF、Excel、Word、CSV和TXT",
        ))?;
        let sha256 = hex(&hasher.finalize());
        let mut attachment = Attachment {
            id: new_id("att"),
            service_provider_id: provider.clone(),
            file_name,
            content_type: kind.content_type().to_owned(),
            size,
            sha256,
            width: None,
            height: None,
            thumbnail_sha256: None,
            thumbnail_size: None,
            created_at: now(),
            used: false,
        };
        let mut thumbnail = None;
        if kind.is_image() {
            let measured = self.measure(&temp.path, kind).await?;
            let file = TempFile::create(&self.settings.temp_dir).await?;
            tokio::fs::write(&file.path, &measured.thumbnail).await.map_err(|e| io_error("writing a thumbnail", e))?;
            attachment.width = Some(measured.width);
            attachment.height = Some(measured.height);
            attachment.thumbnail_size = Some(measured.thumbnail.len() as u64);
            attachment.thumbnail_sha256 = Some(hex(&Sha256::digest(&measured.thumbnail)));
            thumbnail = Some(file);
        }
        // Stored by a task of its own: a client that goes away mid-way cannot leave the blobs held.
        let service = self.clone();
        let stored =
            tokio::spawn(async move { service.store_upload(&attachment, temp, thumbnail).await.map(|()| attachment) });
        match stored.await {
            Ok(stored) => Ok(stored?),
            Err(_) => Err(AppError::internal("storing an upload stopped").into()),
        }
    }

    /// Puts the upload's blobs and stores the attachment naming them, holding the blobs all along
    /// (see [`super::blob_holds`]); on a failure, deletes the blobs nothing else names.
    async fn store_upload(
        &self,
        attachment: &Attachment,
        file: TempFile,
        thumbnail: Option<TempFile>,
    ) -> AppResult<()> {
        let blobs: Vec<&str> =
            std::iter::once(attachment.sha256.as_str()).chain(attachment.thumbnail_sha256.as_deref()).collect();
        let held = self.holds.hold(&blobs, blob_holds::WAIT_AT_MOST).await?.ok_or_else(|| {
            AppError::Unavailable("an upload's file stayed held by another upload or the orphan job".to_owned())
        })?;
        let stored = async {
            if let (Some(file), Some(sha256)) = (&thumbnail, &attachment.thumbnail_sha256) {
                self.store.put_blob(sha256, &file.path).await?;
            }
            self.store.put_blob(&attachment.sha256, &file.path).await?;
            self.store.insert_attachment(attachment).await
        }
        .await;
        if stored.is_err() {
            for sha256 in &blobs {
                if let Err(cleanup) = self.delete_if_unnamed(sha256).await {
                    tracing::warn!(error = %cleanup, "a blob of a failed upload was not deleted");
                }
            }
        }
        held.release().await;
        stored
    }

    /// Deletes the attachment's file and thumbnail blobs that no stored attachment names, each
    /// held while it is checked and deleted; a blob held elsewhere that long is left (whoever holds
    /// it either names it or deletes it).
    async fn delete_unnamed_blobs(&self, attachment: &Attachment) -> AppResult<()> {
        let blobs = std::iter::once(&attachment.sha256).chain(attachment.thumbnail_sha256.as_ref());
        for sha256 in blobs {
            let Some(held) = self.holds.hold(&[sha256], blob_holds::WAIT_AT_MOST).await? else {
                tracing::warn!(blob = %sha256, "a blob stayed held by another; not deleted");
                continue;
            };
            let deleted = self.delete_if_unnamed(sha256).await;
            held.release().await;
            deleted?;
        }
        Ok(())
    }

    /// Deletes the blob if no stored attachment names it; only under a hold on it.
    async fn delete_if_unnamed(&self, sha256: &str) -> AppResult<()> {
        if !self.store.blob_in_use(sha256).await? {
            self.store.delete_blob(sha256).await?;
        }
        Ok(())
    }

    /// An image's size and its thumbnail, on the blocking pool, a few at a time.
    async fn measure(&self, path: &Path, kind: FileKind) -> Result<Measured, UploadRefused> {
        let _permit = self.decodes.acquire().await.map_err(AppError::internal)?;
        let path = path.to_owned();
        let measured =
            tokio::task::spawn_blocking(move || measure_image(&path, kind)).await.map_err(AppError::internal)?;
        measured.ok_or(UploadRefused::Unsupported("图片无法解析或尺寸过大"))
    }

    /// The attachments each of the provider's `subjects` (messages, tickets, replies) carries.
    pub async fn carried_by(&self, provider: &Id, subjects: &[Id]) -> AppResult<HashMap<Id, Vec<Attachment>>> {
        let mut carried: HashMap<Id, Vec<Attachment>> = HashMap::new();
        for (subject, attachment) in self.store.attachments_of(provider, subjects).await? {
            carried.entry(subject).or_default().push(attachment);
        }
        Ok(carried)
    }

    /// A signed path (`/files/...?exp=&sig=`) valid for `ATTACHMENT_URL_TTL_SECONDS`.
    pub fn url(&self, attachment: &Attachment, variant: Variant) -> Option<String> {
        if variant == Variant::Thumbnail && attachment.thumbnail_sha256.is_none() {
            return None;
        }
        Some(self.url_expiring(&attachment.id, variant, self.expiry_from_now()))
    }

    /// When a URL signed now expires (Unix seconds).
    fn expiry_from_now(&self) -> i64 {
        now().timestamp() + self.settings.uploads.url_ttl.as_secs() as i64
    }

    /// Creates a ticket carrying the provider's attachments among `ids` (see [`usable`]): checked
    /// first, recorded on the ticket once it exists (a retry with the idempotency key records
    /// them on the first ticket, so a failure between the two is mended by retrying).
    pub async fn create_ticket(
        &self,
        tickets: &TicketService,
        session: &Session,
        new: NewTicket,
        ids: &[Id],
    ) -> AppResult<Ticket> {
        let attachments = usable(self.store.as_ref(), &session.provider_id, ids).await?;
        let ticket = tickets.create_with(session, new, |drafts| self.on_deliveries(drafts, &attachments)).await?;
        self.store.attach_to(&session.provider_id, &ticket.id, &ids_of(&attachments)).await?;
        Ok(ticket)
    }

    /// Replies to a ticket with attachments, recorded on the reply's history entry; `content`
    /// `None` (allowed with at least one attachment) stores [`ATTACHMENTS_ONLY_TEXT`].
    pub async fn reply_ticket(
        &self,
        tickets: &TicketService,
        session: &Session,
        ticket: &Id,
        content: Option<Compose>,
        ids: &[Id],
        key: Option<Id>,
    ) -> AppResult<Reply> {
        let attachments = usable(self.store.as_ref(), &session.provider_id, ids).await?;
        let content = match content {
            Some(content) => content,
            None if !attachments.is_empty() => Compose::Text(
                Text::parse(ATTACHMENTS_ONLY_TEXT, TextLimit::REPLY_CONTENT).map_err(|_| AppError::internal("fits"))?,
            ),
            None => return Err(AppError::bad_input("content", "回复内容不能为空")),
        };
        let reply = tickets
            .reply_with(session, ticket, content, key, |drafts| self.on_deliveries(drafts, &attachments))
            .await?;
        self.store.attach_to(&session.provider_id, &reply.entry.id, &ids_of(&attachments)).await?;
        Ok(reply)
    }

    /// The outbox deliveries of a message, ticket or reply with its attachments added to each payload, as the
    /// other systems read them: `attachments: [{id, fileName, contentType, size, url}]`, the URL
    /// absolute with `PUBLIC_BASE_URL`, signed again at each attempt (see [`Self::with_fresh_urls`]).
    pub fn on_deliveries(&self, mut drafts: Vec<OutboxDraft>, attachments: &[Attachment]) -> Vec<OutboxDraft> {
        let listed: Vec<serde_json::Value> = attachments
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.id.as_str(),
                    "fileName": a.file_name,
                    "contentType": a.content_type,
                    "size": a.size,
                    "url": self.absolute_file_url(&a.id),
                })
            })
            .collect();
        for draft in &mut drafts {
            if let Some(payload) = draft.payload.as_object_mut() {
                payload.insert("attachments".to_owned(), serde_json::Value::Array(listed.clone()));
            }
        }
        drafts
    }

    /// A delivery's payload with the URLs of the attachments it lists signed now, valid for
    /// `ATTACHMENT_URL_TTL_SECONDS` from this attempt: a delivery retried after its first URLs
    /// expired carries URLs that work. `None` when the payload lists no attachments.
    pub fn with_fresh_urls(&self, payload: &serde_json::Value) -> Option<serde_json::Value> {
        payload.get("attachments")?.as_array().filter(|listed| !listed.is_empty())?;
        let mut payload = payload.clone();
        for listed in payload["attachments"].as_array_mut().into_iter().flatten() {
            let Some(id) = listed.get("id").and_then(|id| id.as_str()).and_then(Id::parse) else {
                continue;
            };
            listed["url"] = self.absolute_file_url(&id).into();
        }
        Some(payload)
    }

    /// The file's signed URL as the other systems read it: absolute with `PUBLIC_BASE_URL`.
    fn absolute_file_url(&self, id: &Id) -> String {
        let base = self.settings.uploads.public_base_url.as_deref().unwrap_or_default();
        format!("{base}{}", self.url_expiring(id, Variant::File, self.expiry_from_now()))
    }

    /// A signed path expiring at `expires` (Unix seconds).
    pub fn url_expiring(&self, id: &Id, variant: Variant, expires: i64) -> String {
        let suffix = if variant == Variant::Thumbnail { "/thumbnail" } else { "" };
        format!("/files/{id}{suffix}?exp={expires}&sig={}", self.signature(id.as_str(), variant, expires))
    }

    /// How long a signed URL is cached by the client.
    pub fn url_ttl(&self) -> Duration {
        self.settings.uploads.url_ttl
    }

    fn signature(&self, id: &str, variant: Variant, expires: i64) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.mac(id, variant, expires).finalize().into_bytes())
    }

    fn mac(&self, id: &str, variant: Variant, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.settings.url_key).expect("HMAC takes a key of any length");
        mac.update(format!("{id}\n{}\n{expires}", variant.as_str()).as_bytes());
        mac
    }

    /// What a signed URL serves: FORBIDDEN when the signature does not hold or has expired,
    /// NOT_FOUND when the attachment is gone.
    pub async fn download(
        &self,
        id: &str,
        variant: Variant,
        expires: Option<&str>,
        signature: Option<&str>,
    ) -> AppResult<Download> {
        const REFUSED: AppError = AppError::Forbidden("链接无效或已过期");
        let expires: i64 = expires.and_then(|e| e.parse().ok()).ok_or(REFUSED)?;
        let signature =
            signature.and_then(|s| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()).ok_or(REFUSED)?;
        self.mac(id, variant, expires).verify_slice(&signature).map_err(|_| REFUSED)?;
        if expires < now().timestamp() {
            return Err(REFUSED);
        }
        let id = Id::parse(id).ok_or(AppError::NotFound("附件"))?;
        let attachment = self.store.attachment_by_id(&id).await?.ok_or(AppError::NotFound("附件"))?;
        let (sha256, size, content_type) = match variant {
            Variant::File => (attachment.sha256.clone(), attachment.size, attachment.content_type.clone()),
            Variant::Thumbnail => match (&attachment.thumbnail_sha256, attachment.thumbnail_size) {
                (Some(sha256), Some(size)) => (sha256.clone(), size, THUMBNAIL_CONTENT_TYPE.to_owned()),
                _ => return Err(AppError::NotFound("附件")),
            },
        };
        Ok(Download { attachment, sha256, size, content_type })
    }

    /// The bytes of a download from `skip` on.
    pub async fn open(&self, download: &Download, skip: u64) -> AppResult<BlobReader> {
        self.store.open_blob(&download.sha256, skip).await?.ok_or(AppError::NotFound("附件"))
    }

    /// Deletes the attachments never used and uploaded more than `ATTACHMENT_ORPHAN_HOURS` before
    /// `now`, and each blob no remaining attachment names; answers how many were deleted.
    pub async fn delete_orphans(&self, now: Timestamp) -> AppResult<u64> {
        let cutoff = now - chrono::Duration::from_std(self.settings.uploads.orphan_after).unwrap_or_default();
        let mut deleted = 0;
        loop {
            let batch = self.store.unused_attachments_before(cutoff, ORPHAN_BATCH).await?;
            for attachment in &batch {
                if !self.store.delete_attachment(&attachment.id).await? {
                    continue;
                }
                deleted += 1;
                self.delete_unnamed_blobs(attachment).await?;
            }
            if (batch.len() as u32) < ORPHAN_BATCH {
                return Ok(deleted);
            }
        }
    }
}

/// What a message, reply or ticket says when it may carry attachments: the text or canned reply
/// given, or nothing (`None`) when neither is given and there is at least one attachment. Without
/// attachments, the rules (and messages) of [`Compose::from_input`] apply unchanged.
pub fn compose_with_attachments(
    content: Option<&str>,
    canned_reply_id: Option<&str>,
    limit: TextLimit,
    has_attachments: bool,
) -> AppResult<Option<Compose>> {
    let blank = content.is_none_or(|text| text.trim().is_empty());
    if has_attachments && blank && canned_reply_id.is_none() {
        return Ok(None);
    }
    Compose::from_input(content, canned_reply_id, limit).map(Some)
}

/// The text of a customer's message from the PC system: as given, or [`ATTACHMENTS_ONLY_TEXT`]
/// when it is blank and the message carries attachments (the rules without attachments unchanged).
pub fn inbound_content(raw: &str, has_attachments: bool) -> AppResult<Text> {
    if has_attachments && raw.trim().is_empty() {
        return Text::parse(ATTACHMENTS_ONLY_TEXT, TextLimit::CHAT_CONTENT).map_err(|_| AppError::internal("fits"));
    }
    super::input::text(raw, TextLimit::CHAT_CONTENT)
}

/// The `attachmentIds` of a request, parsed (each must look like an id; at most
/// [`MAX_ATTACHMENTS`] are looked at by [`usable`]).
pub fn attachment_id_list<'a>(raw: impl Iterator<Item = &'a str>) -> AppResult<Vec<Id>> {
    raw.map(|id| super::input::id(id, "attachmentIds", "附件ID")).collect()
}

/// The provider's attachments named by `ids`, for a message, reply or ticket to carry: at most
/// [`MAX_ATTACHMENTS`], each `provider`'s (an unknown or another provider's id is
/// NOT_FOUND, the same answer), in the order given, duplicates dropped.
pub async fn usable(store: &dyn AttachmentStore, provider: &Id, ids: &[Id]) -> AppResult<Vec<Attachment>> {
    let mut unique: Vec<Id> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    if unique.len() > MAX_ATTACHMENTS {
        return Err(AppError::bad_input("attachmentIds", format!("附件最多{MAX_ATTACHMENTS}个")));
    }
    if unique.is_empty() {
        return Ok(Vec::new());
    }
    let found = store.attachments_by_ids(provider, &unique).await?;
    unique.iter().map(|id| found.iter().find(|a| &a.id == id).cloned().ok_or(AppError::NotFound("附件"))).collect()
}

/// What a ticket reply of attachments alone says in the ticket's history (a history entry always
/// has a text; WeChat shows `[图片]` the same way).
pub const ATTACHMENTS_ONLY_TEXT: &str = "[附件]";

fn ids_of(attachments: &[Attachment]) -> Vec<Id> {
    attachments.iter().map(|a| a.id.clone()).collect()
}
