//! The `Attachment` object that chat messages, tickets and history entries carry, and the loader
//! that reads a whole page's attachments in one store call.
//!
//! The design choice: `url` and `thumbnailUrl` are signed when the object is read (see
//! `service::attachments`), so a page fetched or a message pushed on a subscription always holds
//! URLs valid for `ATTACHMENT_URL_TTL_SECONDS` from then; the loader is scoped to the request's
//! provider like the customer loader, so a batch never crosses tenants.

use super::ContextExt;
use crate::domain::{Attachment, Id};
use crate::error::AppError;
use crate::service::attachments::{AttachmentService, Variant};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, ErrorExtensions, Object, ID};
use std::collections::HashMap;
use std::sync::Arc;

/// A file attached to a message, a ticket or a reply.
pub struct AttachmentObject {
    attachment: Attachment,
    url: String,
    thumbnail_url: Option<String>,
}

impl AttachmentObject {
    pub fn new(service: &AttachmentService, attachment: Attachment) -> AttachmentObject {
        let url = service.url(&attachment, Variant::File).unwrap_or_default();
        let thumbnail_url = service.url(&attachment, Variant::Thumbnail);
        AttachmentObject { attachment, url, thumbnail_url }
    }
}

#[Object(name = "Attachment")]
impl AttachmentObject {
    async fn id(&self) -> ID {
        ID(self.attachment.id.to_string())
    }
    async fn file_name(&self) -> &str {
        &self.attachment.file_name
    }
    /// The type found in the file's own bytes.
    async fn content_type(&self) -> &str {
        &self.attachment.content_type
    }
    /// In bytes.
    async fn size(&self) -> u64 {
        self.attachment.size
    }
    /// Images only, in pixels.
    async fn width(&self) -> Option<u32> {
        self.attachment.width
    }
    async fn height(&self) -> Option<u32> {
        self.attachment.height
    }
    /// A signed path to the file (`/files/:id?exp=&sig=`), valid for `ATTACHMENT_URL_TTL_SECONDS`;
    /// usable without a token, e.g. in an `<image>` tag.
    async fn url(&self) -> &str {
        &self.url
    }
    /// A signed path to a JPEG 320 px wide; null for files that are not images.
    async fn thumbnail_url(&self) -> Option<&str> {
        self.thumbnail_url.as_deref()
    }
}

/// Loads the attachments of one provider's messages, tickets or replies, by their ids.
pub struct AttachmentLoader {
    attachments: AttachmentService,
    provider: Id,
}

impl AttachmentLoader {
    pub fn new(attachments: AttachmentService, provider: Id) -> AttachmentLoader {
        AttachmentLoader { attachments, provider }
    }
}

impl Loader<Id> for AttachmentLoader {
    type Value = Vec<Attachment>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Id]) -> Result<HashMap<Id, Vec<Attachment>>, Self::Error> {
        self.attachments.carried_by(&self.provider, keys).await.map_err(Arc::new)
    }
}

/// The attachments `subject` carries (none when the request has no provider to scope them to).
pub(super) async fn attachments_of(ctx: &Context<'_>, subject: &Id) -> async_graphql::Result<Vec<AttachmentObject>> {
    let Some(loader) = ctx.data_opt::<DataLoader<AttachmentLoader>>() else { return Ok(Vec::new()) };
    let attachments = loader.load_one(subject.clone()).await.map_err(|error| error.extend())?.unwrap_or_default();
    let service = &ctx.services().attachments;
    Ok(attachments.into_iter().map(|attachment| AttachmentObject::new(service, attachment)).collect())
}
