//! Quick replies in GraphQL: the `cannedReplies` and `cannedReply` queries, the create, update and
//! delete mutations, and the `CannedReply` object.
//!
//! Kept in their own query and mutation parts, which the roots merge (`MergedObject`), so an area
//! added to the schema is a file of its own rather than more lines in the two root files. The
//! resolvers only parse their arguments and call [`CannedReplyService`](crate::service::canned_replies).

use super::scalars::DateTime;
use super::ContextExt;
use crate::domain::{CannedReply, TextLimit};
use crate::service::canned_replies::{CannedReplyChange, NewCannedReply};
use crate::service::input;
use async_graphql::{Context, Object, ResultExt, SimpleObject, ID};

type Result<T> = async_graphql::Result<T>;

pub struct CannedReplyObject(pub CannedReply);

/// A quick reply the provider saved, picked by its short code. Its content keeps the placeholders
/// `{customerName}`, `{contactPerson}` and `{providerName}` as written; sending it
/// (`sendChatMessage` or `replyTicket` with `cannedReplyId`) fills them in.
#[Object(name = "CannedReply")]
impl CannedReplyObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Unique per provider: 1 to 32 letters, digits, `_` or `-`.
    async fn short_code(&self) -> &str {
        &self.0.short_code
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The text, placeholders unfilled.
    async fn content(&self) -> &str {
        &self.0.content
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// Bumped by every update; an update names the version it was made from.
    async fn version(&self) -> u64 {
        self.0.version
    }
}

/// A page of the provider's canned replies, by short code.
#[derive(SimpleObject)]
#[graphql(name = "CannedReplyPage")]
pub struct CannedReplyPageObject {
    pub items: Vec<CannedReplyObject>,
    /// Replies over all pages (at most 200).
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// What `deleteCannedReply` answers.
#[derive(SimpleObject)]
#[graphql(name = "DeleteCannedReplyPayload")]
pub struct DeletedCannedReply {
    pub success: bool,
    /// The deleted reply's id.
    pub id: ID,
}

#[derive(Default)]
pub struct CannedReplyQuery;

#[Object]
impl CannedReplyQuery {
    /// The provider's canned replies, by short code.
    async fn canned_replies(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1)] page: i64,
        #[graphql(default = 20)] page_size: i64,
    ) -> Result<CannedReplyPageObject> {
        let session = ctx.session()?;
        let page = input::page(page, page_size).extend()?;
        let found = ctx.services().canned_replies.list(session, page).await.extend()?;
        Ok(CannedReplyPageObject {
            total: found.total,
            page: found.request.page(),
            page_size: found.request.page_size(),
            items: found.items.into_iter().map(CannedReplyObject).collect(),
        })
    }

    /// One of the provider's canned replies.
    async fn canned_reply(&self, ctx: &Context<'_>, id: ID) -> Result<CannedReplyObject> {
        let session = ctx.session()?;
        let id = input::id(&id, "id", "快捷短语ID").extend()?;
        ctx.services().canned_replies.get(session, &id).await.map(CannedReplyObject).extend()
    }
}

#[derive(Default)]
pub struct CannedReplyMutation;

#[Object]
impl CannedReplyMutation {
    /// Saves a canned reply (at most 200 a provider; the short code unique per provider).
    async fn create_canned_reply(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1 to 32 letters, digits, _ or -, unique per provider.")] short_code: String,
        #[graphql(desc = "1 to 100 characters.")] title: String,
        #[graphql(
            desc = "1 to 2,000 characters; may hold the placeholders {customerName}, {contactPerson} and {providerName}."
        )]
        content: String,
        #[graphql(
            desc = "A client-chosen key (1 to 64 letters, digits, _ or -): a retry of the same request with it gets the first answer again and changes nothing; the same key with another request is a CONFLICT. REST: the Idempotency-Key header."
        )]
        idempotency_key: Option<String>,
    ) -> Result<CannedReplyObject> {
        let session = ctx.session()?;
        let new = NewCannedReply {
            short_code: input::text(&short_code, TextLimit::CANNED_SHORT_CODE).extend()?,
            title: input::text(&title, TextLimit::CANNED_TITLE).extend()?,
            content: input::text(&content, TextLimit::CANNED_CONTENT).extend()?,
        };
        // The idempotency extension keeps the first answer for a retry with the key.
        input::idempotency_key(idempotency_key.as_deref()).extend()?;
        let reply = ctx.services().canned_replies.create(session, new).await.extend()?;
        ctx.audit_target(reply.id.as_str());
        Ok(CannedReplyObject(reply))
    }

    /// Changes a canned reply made from `version` (its current version); the fields left out keep
    /// their value. A stale version is a CONFLICT: someone changed the reply meanwhile.
    async fn update_canned_reply(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "The version the change was made from (the reply's `version`).")] version: u64,
        short_code: Option<String>,
        title: Option<String>,
        content: Option<String>,
    ) -> Result<CannedReplyObject> {
        let session = ctx.session()?;
        ctx.audit_target(&id);
        let id = input::id(&id, "id", "快捷短语ID").extend()?;
        let parse = |raw: Option<String>, limit| raw.map(|raw| input::text(&raw, limit)).transpose();
        let change = CannedReplyChange {
            short_code: parse(short_code, TextLimit::CANNED_SHORT_CODE).extend()?,
            title: parse(title, TextLimit::CANNED_TITLE).extend()?,
            content: parse(content, TextLimit::CANNED_CONTENT).extend()?,
        };
        ctx.services().canned_replies.update(session, &id, version, change).await.map(CannedReplyObject).extend()
    }

    /// Deletes a canned reply. Deleting it again is NOT_FOUND.
    async fn delete_canned_reply(&self, ctx: &Context<'_>, id: ID) -> Result<DeletedCannedReply> {
        let session = ctx.session()?;
        ctx.audit_target(&id);
        let parsed = input::id(&id, "id", "快捷短语ID").extend()?;
        ctx.services().canned_replies.delete(session, &parsed).await.extend()?;
        Ok(DeletedCannedReply { success: true, id })
    }
}
