//! Attachments: metadata stored as written and read only by its provider (except by id, for signed
//! downloads); marked used; the unused ones listed by age; blobs put once per content, read from an
//! offset, and a blob's use counted across attachments; a blob named again while the orphan job
//! deletes the attachment that named it first is kept.

use crate::contract_tests;
use crate::fixtures::*;
use async_trait::async_trait;
use provider_desk::config::UploadSettings;
use provider_desk::domain::*;
use provider_desk::error::AppResult;
use provider_desk::service::attachments::{AttachmentService, AttachmentSettings};
use provider_desk::store::*;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

contract_tests!(store: an_attachment_is_read_back_as_written_by_its_provider_only,
    marked_attachments_leave_the_unused_list_which_is_by_age_before_the_cutoff,
    a_blob_is_stored_once_per_content_and_read_whole_or_from_an_offset,
    a_blob_stays_in_use_while_any_attachment_names_it,
    what_carries_an_attachment_is_recorded_with_its_use_and_read_back_per_subject,
    bytes_uploaded_again_while_the_orphan_job_deletes_their_first_attachment_keep_their_blob);

fn attachment(provider: &Id, sha256: &str, minutes: i64) -> Attachment {
    Attachment {
        id: id("att"),
        service_provider_id: provider.clone(),
        file_name: "库存截图 1.png".to_owned(),
        content_type: "image/png".to_owned(),
        size: 1234,
        sha256: sha256.to_owned(),
        width: Some(640),
        height: Some(480),
        thumbnail_sha256: Some(hex(b"thumb")),
        thumbnail_size: Some(99),
        created_at: at(minutes),
        used: false,
    }
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A file holding `bytes`, for a blob put to consume.
fn upload_file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("upload");
    std::fs::write(&path, bytes).unwrap();
    (directory, path)
}

async fn read_blob(store: &SharedStore, sha256: &str, skip: u64) -> Option<Vec<u8>> {
    let mut reader = store.open_blob(sha256, skip).await.unwrap()?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.unwrap();
    Some(bytes)
}

pub async fn an_attachment_is_read_back_as_written_by_its_provider_only(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let other = id("sp");
    let written = attachment(&provider, &hex(b"a"), 1);
    store.insert_attachment(&written).await.unwrap();
    let mut text_file = attachment(&provider, &hex(b"b"), 2);
    (text_file.width, text_file.height, text_file.thumbnail_sha256, text_file.thumbnail_size) =
        (None, None, None, None);
    text_file.content_type = "text/plain; charset=utf-8".to_owned();
    store.insert_attachment(&text_file).await.unwrap();

    let mut found =
        store.attachments_by_ids(&provider, &[written.id.clone(), text_file.id.clone(), id("att")]).await.unwrap();
    found.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(found, vec![written.clone(), text_file.clone()]);
    assert!(
        store.attachments_by_ids(&other, std::slice::from_ref(&written.id)).await.unwrap().is_empty(),
        "another provider's"
    );
    assert!(store.attachments_by_ids(&provider, &[]).await.unwrap().is_empty());
    assert_eq!(store.attachment_by_id(&written.id).await.unwrap(), Some(written.clone()));
    assert_eq!(store.attachment_by_id(&id("att")).await.unwrap(), None);
    assert_eq!(
        store.mark_attachments_used(&other, std::slice::from_ref(&written.id)).await.unwrap(),
        0,
        "not the other's to use"
    );
    assert!(store.delete_attachment(&written.id).await.unwrap());
    assert!(!store.delete_attachment(&written.id).await.unwrap(), "deleted once");
    assert_eq!(store.attachment_by_id(&written.id).await.unwrap(), None);
}

pub async fn marked_attachments_leave_the_unused_list_which_is_by_age_before_the_cutoff(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let mut written = Vec::new();
    for minute in [3, 1, 2, 10] {
        let a = attachment(&provider, &hex(&[minute as u8]), minute);
        store.insert_attachment(&a).await.unwrap();
        written.push(a);
    }
    let unused = store.unused_attachments_before(at(5), 10).await.unwrap();
    let minutes: Vec<_> = unused.iter().map(|a| a.created_at).collect();
    assert_eq!(minutes, vec![at(1), at(2), at(3)], "oldest first, none at or after the cutoff");
    assert_eq!(store.unused_attachments_before(at(5), 2).await.unwrap().len(), 2, "limited");

    let marked = store.mark_attachments_used(&provider, &[written[1].id.clone(), id("att")]).await.unwrap();
    assert_eq!(marked, 1);
    let unused = store.unused_attachments_before(at(5), 10).await.unwrap();
    assert_eq!(unused.iter().map(|a| a.created_at).collect::<Vec<_>>(), vec![at(2), at(3)]);
    assert!(store.attachment_by_id(&written[1].id).await.unwrap().unwrap().used);
}

pub async fn a_blob_is_stored_once_per_content_and_read_whole_or_from_an_offset(store: SharedStore) {
    let bytes: Vec<u8> = (0..600_000u32).map(|n| (n % 251) as u8).collect();
    let sha256 = hex(&bytes);
    assert_eq!(read_blob(&store, &sha256, 0).await, None, "not there yet");
    let (_directory, file) = upload_file(&bytes);
    store.put_blob(&sha256, &file).await.unwrap();
    assert!(!file.exists(), "the upload's file is consumed");
    assert_eq!(read_blob(&store, &sha256, 0).await.unwrap(), bytes);
    assert_eq!(read_blob(&store, &sha256, 300_001).await.unwrap(), bytes[300_001..]);

    let (_again, file) = upload_file(&bytes);
    store.put_blob(&sha256, &file).await.unwrap();
    assert!(!file.exists(), "a second put of the same bytes is consumed too");
    assert_eq!(read_blob(&store, &sha256, 0).await.unwrap(), bytes, "still whole");

    store.delete_blob(&sha256).await.unwrap();
    assert_eq!(read_blob(&store, &sha256, 0).await, None);
    store.delete_blob(&sha256).await.unwrap();
}

pub async fn a_blob_stays_in_use_while_any_attachment_names_it(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let shared = hex(b"shared");
    let first = attachment(&provider, &shared, 1);
    let second = attachment(&provider, &shared, 2);
    store.insert_attachment(&first).await.unwrap();
    store.insert_attachment(&second).await.unwrap();
    let thumbnail = first.thumbnail_sha256.clone().unwrap();
    assert!(store.blob_in_use(&shared).await.unwrap());
    assert!(store.blob_in_use(&thumbnail).await.unwrap(), "a thumbnail counts");
    store.delete_attachment(&first.id).await.unwrap();
    assert!(store.blob_in_use(&shared).await.unwrap(), "the second still names it");
    store.delete_attachment(&second.id).await.unwrap();
    assert!(!store.blob_in_use(&shared).await.unwrap());
    assert!(!store.blob_in_use(&thumbnail).await.unwrap());
}

pub async fn what_carries_an_attachment_is_recorded_with_its_use_and_read_back_per_subject(store: SharedStore) {
    let provider = stored_provider(&store).await;
    let other = id("sp");
    let (first, second) = (attachment(&provider, &hex(b"1"), 1), attachment(&provider, &hex(b"2"), 2));
    store.insert_attachment(&second).await.unwrap();
    store.insert_attachment(&first).await.unwrap();
    let (message, reply) = (id("cm"), id("r"));
    let ids = [second.id.clone(), first.id.clone(), id("att")];
    assert_eq!(store.attach_to(&provider, &message, &ids).await.unwrap(), 2, "the unknown id is not attached");
    assert_eq!(store.attach_to(&other, &reply, std::slice::from_ref(&first.id)).await.unwrap(), 0, "not the other's");
    store.attach_to(&provider, &reply, std::slice::from_ref(&first.id)).await.unwrap();
    store.attach_to(&provider, &reply, std::slice::from_ref(&first.id)).await.unwrap();

    let carried = store.attachments_of(&provider, &[message.clone(), reply.clone(), id("cm")]).await.unwrap();
    let pairs: Vec<(Id, Id)> = carried.iter().map(|(s, a)| (s.clone(), a.id.clone())).collect();
    let mut expected = vec![
        (message.clone(), first.id.clone()),
        (message.clone(), second.id.clone()),
        (reply.clone(), first.id.clone()),
    ];
    expected.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    assert_eq!(pairs, expected, "per subject, in upload order, once each");
    assert!(carried.iter().all(|(_, a)| a.used), "attached is used");
    assert!(store.attachments_of(&other, std::slice::from_ref(&message)).await.unwrap().is_empty());
    assert!(store.unused_attachments_before(at(100), 10).await.unwrap().is_empty());
    store.delete_attachment(&first.id).await.unwrap();
    let left = store.attachments_of(&provider, std::slice::from_ref(&message)).await.unwrap();
    assert_eq!(left.len(), 1, "a deleted attachment is carried no more");
}

pub async fn bytes_uploaded_again_while_the_orphan_job_deletes_their_first_attachment_keep_their_blob(
    store: SharedStore,
) {
    let provider = stored_provider(&store).await;
    let data = tempfile::tempdir().unwrap();
    let paused = Arc::new(PausedInsert {
        store: store.clone(),
        armed: AtomicBool::new(false),
        reached: Notify::new(),
        resume: Notify::new(),
    });
    let settings = AttachmentSettings::new(UploadSettings::default(), b"contract-test-key", data.path());
    let service = AttachmentService::with_stores(paused.clone(), store.clone(), settings);
    let bytes: &'static [u8] = b"the same price list, sent again a day later";
    let chunks = move || futures_util::stream::iter([Ok(axum::body::Bytes::from_static(bytes))]);
    let first = service.upload(&provider, Some("价格表.txt"), chunks()).await.unwrap();

    paused.armed.store(true, Ordering::SeqCst);
    let again = tokio::spawn({
        let (service, provider) = (service.clone(), provider.clone());
        async move { service.upload(&provider, Some("价格表.txt"), chunks()).await.unwrap() }
    });
    // The second upload found the blob there and has not named it yet; the first upload's
    // attachment, never used, is past the orphan age.
    paused.reached.notified().await;
    let orphans = tokio::spawn({
        let service = service.clone();
        async move { service.delete_orphans(now() + chrono::Duration::hours(48)).await.unwrap() }
    });
    // Time enough for an orphan job that does not wait for the upload to delete the blob.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    paused.resume.notify_one();
    let again = again.await.unwrap();
    assert_eq!(orphans.await.unwrap(), 1, "the first attachment is deleted");
    assert!(store.attachment_by_id(&first.id).await.unwrap().is_none());
    assert_eq!(again.sha256, first.sha256);
    assert_eq!(store.attachment_by_id(&again.id).await.unwrap().map(|a| a.sha256), Some(again.sha256.clone()));
    assert_eq!(read_blob(&store, &again.sha256, 0).await.as_deref(), Some(bytes), "the second upload's bytes");
}

/// The store, except that once armed, the next attachment stored waits (after its blobs are put)
/// until the test lets it go.
struct PausedInsert {
    store: SharedStore,
    armed: AtomicBool,
    reached: Notify,
    resume: Notify,
}

#[async_trait]
impl AttachmentStore for PausedInsert {
    async fn insert_attachment(&self, attachment: &Attachment) -> AppResult<()> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.resume.notified().await;
        }
        self.store.insert_attachment(attachment).await
    }
    async fn attachments_by_ids(&self, provider: &Id, ids: &[Id]) -> AppResult<Vec<Attachment>> {
        self.store.attachments_by_ids(provider, ids).await
    }
    async fn attachment_by_id(&self, id: &Id) -> AppResult<Option<Attachment>> {
        self.store.attachment_by_id(id).await
    }
    async fn mark_attachments_used(&self, provider: &Id, ids: &[Id]) -> AppResult<u64> {
        self.store.mark_attachments_used(provider, ids).await
    }
    async fn attach_to(&self, provider: &Id, subject: &Id, ids: &[Id]) -> AppResult<u64> {
        self.store.attach_to(provider, subject, ids).await
    }
    async fn attachments_of(&self, provider: &Id, subjects: &[Id]) -> AppResult<Vec<(Id, Attachment)>> {
        self.store.attachments_of(provider, subjects).await
    }
    async fn unused_attachments_before(&self, cutoff: Timestamp, limit: u32) -> AppResult<Vec<Attachment>> {
        self.store.unused_attachments_before(cutoff, limit).await
    }
    async fn delete_attachment(&self, id: &Id) -> AppResult<bool> {
        self.store.delete_attachment(id).await
    }
    async fn blob_in_use(&self, sha256: &str) -> AppResult<bool> {
        self.store.blob_in_use(sha256).await
    }
    async fn put_blob(&self, sha256: &str, file: &Path) -> AppResult<()> {
        self.store.put_blob(sha256, file).await
    }
    async fn open_blob(&self, sha256: &str, skip: u64) -> AppResult<Option<BlobReader>> {
        self.store.open_blob(sha256, skip).await
    }
    async fn delete_blob(&self, sha256: &str) -> AppResult<()> {
        self.store.delete_blob(sha256).await
    }
}
