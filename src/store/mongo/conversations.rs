//! The inbox port on MongoDB: `conversations` keeps one summary document a conversation and
//! `inboxTotals` one document of totals a provider (`_id` the provider), both written in the
//! transaction of the chat write they follow, by the rules of [`crate::domain::conversation`].
//!
//! Each list orders by one string field, `lastKey` (or `waitingKey`): the time in seconds,
//! zero-padded, then the customer id. A page after a key is then one range of one index in its
//! order, which every planner (SecantusDB's too) serves without a sort. A summary is read, changed
//! by the domain's rule and written back inside the transaction; two writers of one conversation
//! conflict and the transaction is run again, so neither change is lost.
//!
//! A database written before the inbox existed gains its summaries at start-up, from the
//! messages, conversation by conversation; a marker (`migrations`, `_id: "conversations"`) keeps
//! later starts from reading the messages again.

use super::chat::chat_from;
use super::documents::{date, Fields, ReadResult};
use super::events::event;
use super::failures::{bad_document, mongo_error};
use super::{collect, read, MongoStore};
use crate::domain::{
    ChatMessage, ChatSender, ChatStatus, Conversation, ConversationFilter, ConversationKey, EventKind, Id, InboxTotals,
    LastMessage, Page, PageRequest,
};
use crate::error::AppResult;
use crate::store::{ConversationStore, MarkedConversation, ReadNotice};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::ClientSession;

/// The marker of a completed backfill in the `migrations` collection.
const CONVERSATIONS_MIGRATION: &str = "conversations";

/// The sortable text of a list position: seconds zero-padded, then the customer.
fn key_text(key: &ConversationKey) -> String {
    format!("{:012}|{}", key.at.timestamp().max(0), key.customer_id.as_str())
}

fn conversation_document(c: &Conversation) -> Document {
    let last = &c.last_message;
    let waiting_key = match c.waiting_since {
        Some(_) => Bson::String(key_text(&ConversationKey::of(c, ConversationFilter::Waiting))),
        None => Bson::Null,
    };
    doc! {
        "serviceProviderId": c.provider_id.as_str(),
        "customerId": c.customer_id.as_str(),
        "lastMessage": {
            "id": last.id.as_str(),
            "sender": last.sender.as_str(),
            "preview": &last.preview,
            "at": date(&last.at),
        },
        "lastKey": key_text(&ConversationKey::of(c, ConversationFilter::All)),
        "unreadMessages": c.unread_messages as i64,
        "markedUnread": c.marked_unread,
        "unread": c.is_unread(),
        "waiting": c.waiting_since.is_some(),
        "waitingSince": c.waiting_since.as_ref().map_or(Bson::Null, |at| Bson::DateTime(date(at))),
        "waitingKey": waiting_key,
    }
}

fn conversation_from(doc: &Document) -> ReadResult<Conversation> {
    let f = Fields::new(doc, "conversation");
    let last = doc.get_document("lastMessage").map_err(|e| f.fail("lastMessage", e))?;
    let l = Fields::new(last, "conversation's last message");
    Ok(Conversation {
        provider_id: f.id("serviceProviderId")?,
        customer_id: f.id("customerId")?,
        last_message: LastMessage {
            id: l.id("id")?,
            sender: l.value("sender", ChatSender::parse)?,
            preview: l.text("preview")?,
            at: l.time("at")?,
        },
        unread_messages: f.number("unreadMessages")?.max(0) as u64,
        marked_unread: doc.get_bool("markedUnread").map_err(|e| f.fail("markedUnread", e))?,
        waiting_since: f.optional_time("waitingSince")?,
    })
}

fn totals_from(doc: &Document) -> ReadResult<InboxTotals> {
    let f = Fields::new(doc, "inbox totals");
    let count = |field| f.number(field).map(|n| n.max(0) as u64);
    Ok(InboxTotals {
        conversations: count("conversations")?,
        unread_conversations: count("unreadConversations")?,
        waiting_conversations: count("waitingConversations")?,
        unread_messages: count("unreadMessages")?,
    })
}

/// One conversation of a provider.
pub(super) fn conversation_query(provider: &Id, customer: &Id) -> Document {
    doc! { "serviceProviderId": provider.as_str(), "customerId": customer.as_str() }
}

/// An inbox list's filter (after `after`, if given) and its order.
pub(super) fn conversation_page_query(
    provider: &Id,
    filter: ConversationFilter,
    after: Option<&ConversationKey>,
) -> (Document, Document) {
    let mut query = doc! { "serviceProviderId": provider.as_str() };
    let (key, order) = match filter {
        ConversationFilter::All => ("lastKey", -1),
        ConversationFilter::Unread => {
            query.insert("unread", true);
            ("lastKey", -1)
        }
        ConversationFilter::Waiting => {
            query.insert("waiting", true);
            ("waitingKey", 1)
        }
    };
    if let Some(after) = after {
        let beyond = if order < 0 { "$lt" } else { "$gt" };
        query.insert(key, doc! { beyond: key_text(after) });
    }
    (query, doc! { key: order })
}

/// The customer's messages not yet read.
pub(super) fn unread_from_customer_query(provider: &Id, customer: &Id) -> Document {
    doc! {
        "serviceProviderId": provider.as_str(),
        "customerId": customer.as_str(),
        "senderType": ChatSender::Customer.as_str(),
        "status": { "$in": [ChatStatus::Sent.as_str(), ChatStatus::Delivered.as_str()] },
    }
}

impl MongoStore {
    /// Sums up a message just stored into its conversation, inside the caller's transaction.
    pub(super) async fn record_message(
        &self,
        session: &mut ClientSession,
        message: &ChatMessage,
    ) -> mongodb::error::Result<()> {
        let before = self.read_conversation(session, &message.service_provider_id, &message.customer_id).await?;
        let after = Conversation::with_message(before.as_ref(), message);
        self.save_conversation(session, before.as_ref(), &after).await
    }

    /// Sums up `read` customer messages of a conversation that just moved to READ.
    pub(super) async fn record_read(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        customer: &Id,
        read: u64,
    ) -> mongodb::error::Result<()> {
        if read == 0 {
            return Ok(());
        }
        match self.read_conversation(session, provider, customer).await? {
            Some(before) => self.save_conversation(session, Some(&before), &before.with_read(read)).await,
            None => Ok(()),
        }
    }

    async fn read_conversation(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        customer: &Id,
    ) -> mongodb::error::Result<Option<Conversation>> {
        let found = self.conversations.find_one(conversation_query(provider, customer)).session(session).await?;
        found.as_ref().map(conversation_from).transpose().map_err(mongodb::error::Error::custom)
    }

    /// Writes a conversation's summary and moves the provider's totals by the change from `before`.
    async fn save_conversation(
        &self,
        session: &mut ClientSession,
        before: Option<&Conversation>,
        after: &Conversation,
    ) -> mongodb::error::Result<()> {
        let query = conversation_query(&after.provider_id, &after.customer_id);
        self.conversations.replace_one(query, conversation_document(after)).upsert(true).session(&mut *session).await?;
        let [conversations, unread_conversations, waiting_conversations, unread_messages] =
            InboxTotals::change(before, after);
        let change = doc! { "$inc": {
            "conversations": conversations,
            "unreadConversations": unread_conversations,
            "waitingConversations": waiting_conversations,
            "unreadMessages": unread_messages,
        } };
        self.inbox_totals
            .update_one(doc! { "_id": after.provider_id.as_str() }, change)
            .upsert(true)
            .session(session)
            .await?;
        Ok(())
    }

    /// Gives a database written before the inbox its summaries, from the messages.
    pub(super) async fn build_conversations(&self) -> AppResult<()> {
        let migrations = self.database().collection::<Document>("migrations");
        let marker = doc! { "_id": CONVERSATIONS_MIGRATION };
        if self.op(migrations.find_one(marker.clone())).await?.is_some() {
            return Ok(());
        }
        if self.op(self.conversations.find_one(doc! {})).await?.is_none() {
            // One pass over the messages in the reverse of `conversation_time`'s order: each
            // conversation's messages together, oldest first, read from the index.
            let order = doc! { "serviceProviderId": -1, "customerId": -1, "timestamp": 1, "_id": 1 };
            let mut messages = self.op(self.chat.find(doc! {}).sort(order)).await?;
            let (mut summary, mut built) = (None::<Conversation>, 0u64);
            while self.op(messages.advance()).await? {
                let document = messages.deserialize_current().map_err(mongo_error)?;
                let message = chat_from(&document).map_err(bad_document)?;
                let same = summary.as_ref().is_some_and(|s| {
                    s.provider_id == message.service_provider_id && s.customer_id == message.customer_id
                });
                if !same {
                    if let Some(done) = summary.take() {
                        self.save_backfilled(&done).await?;
                        built += 1;
                    }
                }
                summary = Some(Conversation::with_message(summary.as_ref(), &message));
            }
            if let Some(done) = summary {
                self.save_backfilled(&done).await?;
                built += 1;
            }
            if built > 0 {
                tracing::info!(conversations = built, "inbox summaries built for messages written before the inbox");
            }
        }
        let done = doc! { "$set": { "at": mongodb::bson::DateTime::now() } };
        self.op(migrations.update_one(marker, done).upsert(true)).await?;
        Ok(())
    }

    async fn save_backfilled(&self, summary: &Conversation) -> AppResult<()> {
        self.op(in_transaction!(self, |session| { self.save_conversation(&mut session, None, summary).await })).await
    }
}

#[async_trait]
impl ConversationStore for MongoStore {
    async fn conversations(
        &self,
        provider: &Id,
        filter: ConversationFilter,
        after: Option<&ConversationKey>,
        page: PageRequest,
    ) -> AppResult<Page<Conversation>> {
        let (query, order) = conversation_page_query(provider, filter, after);
        let skip = if after.is_some() { 0 } else { page.offset() };
        let totals = self.inbox_totals.find_one(doc! { "_id": provider.as_str() });
        let items = async {
            collect(self.conversations.find(query).sort(order).skip(skip).limit(i64::from(page.page_size())).await?)
                .await
        };
        let (totals, documents) = self.op(async { tokio::try_join!(totals, items) }).await?;
        let totals = totals.as_ref().map(totals_from).transpose().map_err(bad_document)?.unwrap_or_default();
        Ok(Page { items: read(&documents, conversation_from)?, total: totals.of(filter), request: page })
    }

    async fn conversation(&self, provider: &Id, customer: &Id) -> AppResult<Option<Conversation>> {
        let found = self.op(self.conversations.find_one(conversation_query(provider, customer))).await?;
        found.as_ref().map(conversation_from).transpose().map_err(bad_document)
    }

    async fn inbox_totals(&self, provider: &Id) -> AppResult<InboxTotals> {
        let found = self.op(self.inbox_totals.find_one(doc! { "_id": provider.as_str() })).await?;
        Ok(found.as_ref().map(totals_from).transpose().map_err(bad_document)?.unwrap_or_default())
    }

    async fn mark_conversation_read(
        &self,
        provider: &Id,
        customer: &Id,
        notice: ReadNotice,
    ) -> AppResult<Option<MarkedConversation>> {
        let at = crate::domain::now();
        let write_id = format!("read:{}", crate::domain::new_id("w"));
        let _queued = self.queue_event_write(provider).await;
        let marked = self
            .op(in_transaction!(self, |session| {
                let Some(before) = self.read_conversation(&mut session, provider, customer).await? else {
                    return Ok(None);
                };
                let unread = unread_from_customer_query(provider, customer);
                let mut found = self.chat.find(unread.clone()).session(&mut session).await?;
                let mut documents = Vec::new();
                while found.advance(&mut session).await? {
                    documents.push(found.deserialize_current()?);
                }
                if !documents.is_empty() {
                    let read = doc! { "$set": { "status": ChatStatus::Read.as_str() } };
                    self.chat.update_many(unread, read).session(&mut session).await?;
                }
                let mut drafts = Vec::new();
                for document in &documents {
                    let id = Id::from_stored(document.get_str("id").unwrap_or_default().to_owned());
                    drafts.push(event(provider, EventKind::ChatStatus, &id, Some(customer), at));
                }
                if documents.is_empty() && before.marked_unread {
                    drafts.push(event(provider, EventKind::Inbox, customer, Some(customer), at));
                }
                let after = before.with_read(documents.len() as u64).marked(false);
                self.save_conversation(&mut session, Some(&before), &after).await?;
                let events = self.log_events(&mut session, &write_id, drafts).await?;
                let mut read: Vec<ChatMessage> = documents
                    .iter()
                    .map(chat_from)
                    .collect::<ReadResult<_>>()
                    .map_err(mongodb::error::Error::custom)?;
                for message in &mut read {
                    message.status = ChatStatus::Read;
                }
                if !read.is_empty() {
                    self.queue_outbox(&mut session, notice(&read).as_slice(), &events).await?;
                }
                Ok(Some(MarkedConversation { conversation: after, read, events }))
            }))
            .await?;
        Ok(marked)
    }

    async fn mark_conversation_unread(&self, provider: &Id, customer: &Id) -> AppResult<Option<MarkedConversation>> {
        let at = crate::domain::now();
        let write_id = format!("unread:{}", crate::domain::new_id("w"));
        let _queued = self.queue_event_write(provider).await;
        let marked = self
            .op(in_transaction!(self, |session| {
                let Some(before) = self.read_conversation(&mut session, provider, customer).await? else {
                    return Ok(None);
                };
                let after = before.marked(true);
                let mut events = Vec::new();
                if after != before {
                    self.save_conversation(&mut session, Some(&before), &after).await?;
                    let drafts = vec![event(provider, EventKind::Inbox, customer, Some(customer), at)];
                    events = self.log_events(&mut session, &write_id, drafts).await?;
                }
                Ok(Some(MarkedConversation { conversation: after, read: Vec::new(), events }))
            }))
            .await?;
        Ok(marked)
    }
}
