//! Quick replies (canned replies): the provider's saved texts, kept, listed by short code, edited
//! and deleted, and sent as a chat message or a ticket reply with their placeholders filled.
//!
//! The rules the store does not keep live here: at most [`MAX_CANNED_REPLIES`] a provider, the
//! bounds of the short code, title and content, and the placeholders a content may hold. Sending
//! goes through [`Compose`]: the chat and ticket services take either the text itself or a reply's
//! id, and [`CannedReplyService::compose`] turns the id into the filled text for one customer,
//! still bounded by the message's own limit. Everything is scoped to the session's provider:
//! another provider's reply is NOT_FOUND, exactly like a missing one.

use super::{input, Session};
use crate::domain::{
    fill, new_id, now, unknown_placeholder, CannedReply, Customer, Id, Page, PageRequest, Placeholders,
    ServiceProvider, Text, TextLimit,
};
use crate::error::{AppError, AppResult};
use crate::store::{CannedReplyStore, SharedStore};
use std::sync::Arc;

/// The most canned replies one provider keeps.
pub const MAX_CANNED_REPLIES: u64 = 200;

/// What a chat message or a ticket reply says: the text itself, or one of the provider's canned
/// replies, filled for the customer it goes to.
#[derive(Debug, Clone)]
pub enum Compose {
    Text(Text),
    CannedReply(Id),
}

impl Compose {
    /// Exactly one of `content` and `cannedReplyId`: both or neither is refused, naming the field.
    pub fn from_input(content: Option<&str>, canned_reply_id: Option<&str>, limit: TextLimit) -> AppResult<Compose> {
        match (content, canned_reply_id) {
            (Some(_), Some(_)) => {
                Err(AppError::bad_input("cannedReplyId", "content 和 cannedReplyId 只能提供一个，不能同时指定"))
            }
            (None, None) => Err(AppError::bad_input(
                limit.field,
                format!("{}不能为空：请提供 {} 或 cannedReplyId", limit.label, limit.field),
            )),
            (Some(content), None) => input::text(content, limit).map(Compose::Text),
            (None, Some(id)) => input::id(id, "cannedReplyId", "快捷短语ID").map(Compose::CannedReply),
        }
    }
}

/// A new reply as the client wrote it, already parsed.
#[derive(Debug, Clone)]
pub struct NewCannedReply {
    pub short_code: Text,
    pub title: Text,
    pub content: Text,
}

/// The fields an update changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct CannedReplyChange {
    pub short_code: Option<Text>,
    pub title: Option<Text>,
    pub content: Option<Text>,
}

#[derive(Clone)]
pub struct CannedReplyService {
    replies: Arc<dyn CannedReplyStore>,
}

impl CannedReplyService {
    pub fn new(store: &SharedStore) -> CannedReplyService {
        CannedReplyService { replies: store.clone() }
    }

    /// The provider's replies, by short code.
    pub async fn list(&self, session: &Session, page: PageRequest) -> AppResult<Page<CannedReply>> {
        self.replies.canned_replies(&session.provider_id, page).await
    }

    /// One of the provider's replies; another provider's is not found.
    pub async fn get(&self, session: &Session, id: &Id) -> AppResult<CannedReply> {
        self.replies.canned_reply(&session.provider_id, id).await?.ok_or(AppError::NotFound("快捷短语"))
    }

    /// Keeps a new reply, unless the provider already keeps [`MAX_CANNED_REPLIES`] or uses its
    /// short code (CONFLICT).
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id))]
    pub async fn create(&self, session: &Session, new: NewCannedReply) -> AppResult<CannedReply> {
        let short_code = short_code(new.short_code)?;
        let content = content(new.content)?;
        if self.replies.count_canned_replies(&session.provider_id).await? >= MAX_CANNED_REPLIES {
            return Err(AppError::Conflict(format!(
                "快捷短语已达上限（每个服务商最多{MAX_CANNED_REPLIES}条），请先删除不用的快捷短语"
            )));
        }
        let at = now();
        let reply = CannedReply {
            id: new_id("cr"),
            service_provider_id: session.provider_id.clone(),
            short_code,
            title: new.title.into_string(),
            content,
            created_at: at,
            updated_at: at,
            version: 0,
        };
        self.replies.insert_canned_reply(&reply).await?;
        Ok(reply)
    }

    /// Changes a reply if it still has `version` (compare-and-set): an update computed from an
    /// older version is a CONFLICT, so two editors never silently overwrite each other.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, reply = %id))]
    pub async fn update(
        &self,
        session: &Session,
        id: &Id,
        version: u64,
        change: CannedReplyChange,
    ) -> AppResult<CannedReply> {
        let short_code = change.short_code.map(short_code).transpose()?;
        let content = change.content.map(content).transpose()?;
        let stored = self.get(session, id).await?;
        if stored.version != version {
            return Err(stale(stored.version));
        }
        let next = CannedReply {
            short_code: short_code.unwrap_or(stored.short_code),
            title: change.title.map_or(stored.title, Text::into_string),
            content: content.unwrap_or(stored.content),
            updated_at: now(),
            ..stored
        };
        match self.replies.update_canned_reply(&next).await? {
            Some(updated) => Ok(updated),
            // Changed or deleted between the read and the write: tell which.
            None => match self.replies.canned_reply(&session.provider_id, id).await? {
                Some(current) => Err(stale(current.version)),
                None => Err(AppError::NotFound("快捷短语")),
            },
        }
    }

    /// Deletes one of the provider's replies; another provider's (or a deleted one) is not found.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id, reply = %id))]
    pub async fn delete(&self, session: &Session, id: &Id) -> AppResult<()> {
        match self.replies.delete_canned_reply(&session.provider_id, id).await? {
            true => Ok(()),
            false => Err(AppError::NotFound("快捷短语")),
        }
    }

    /// The text a chat message or ticket reply sends: the given text, or the provider's canned
    /// reply filled for this customer, which must then fit the message's `limit` too.
    pub async fn compose(
        &self,
        session: &Session,
        compose: Compose,
        customer: &Customer,
        provider: &ServiceProvider,
        limit: TextLimit,
    ) -> AppResult<Text> {
        let id = match compose {
            Compose::Text(text) => return Ok(text),
            Compose::CannedReply(id) => id,
        };
        let reply = self.get(session, &id).await?;
        let values = Placeholders {
            customer_name: &customer.name,
            contact_person: &customer.contact_person,
            provider_name: &provider.name,
        };
        Text::parse(&fill(&reply.content, &values), limit).map_err(|_| {
            AppError::bad_input(
                "cannedReplyId",
                format!("快捷短语填入后的内容为空或超过{}的上限（{}个字符）", limit.label, limit.max_chars),
            )
        })
    }
}

/// Whether a short code may hold `c`: the ASCII letters and digits, `_` and `-`.
pub fn is_short_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A short code: 1 to 32 letters, digits, `_` or `-`, kept in the case it was written in.
fn short_code(code: Text) -> AppResult<String> {
    let valid = code.as_str().chars().all(is_short_code_char);
    match valid {
        true => Ok(code.into_string()),
        false => Err(AppError::bad_input("shortCode", "快捷短语编码只能包含字母、数字、下划线或连字符")),
    }
}

/// A content whose every `{...}` is a known placeholder.
fn content(content: Text) -> AppResult<String> {
    match unknown_placeholder(content.as_str()) {
        None => Ok(content.into_string()),
        Some(unknown) => Err(AppError::bad_input(
            "content",
            format!(
                "快捷短语内容中的占位符{unknown}不受支持，可用：{{customerName}}、{{contactPerson}}、{{providerName}}"
            ),
        )),
    }
}

fn stale(current: u64) -> AppError {
    AppError::Conflict(format!("快捷短语已被修改（当前版本为{current}），请刷新后重试"))
}
