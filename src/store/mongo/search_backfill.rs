//! The search index built at start-up for documents written before search existed (no `search`
//! field): customers, chat messages, replies (which also gain their provider), then tickets, batch
//! by batch. Each update is conditional on the field still missing, so a write of this release made
//! meanwhile is kept (a ticket's grams are added to, never replaced) and a second run changes
//! nothing. Finding what is missing reads a whole collection (no index serves `$exists: false`),
//! so a completed build leaves a marker (`migrations`, `_id: "search-index"`) and a store that
//! finds it skips the search: a year's data is not re-read at every start. A database written by
//! an older release has no marker, and a release with search writes every new document with its
//! field, so nothing written after the marker lacks it.

use super::documents::Fields;
use super::search::{customer_search_of, grams_of, is_reply, text_search};
use super::ticket_history::{embedded_history, history_from};
use super::{collect, MongoStore};
use crate::domain::search::fold;
use crate::domain::{HistoryAction, Id};
use crate::error::AppResult;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use std::collections::HashMap;

/// The marker of a completed build in the `migrations` collection.
pub(super) const SEARCH_INDEX_MIGRATION: &str = "search-index";

/// How many documents one step of the backfill reads.
const BACKFILL_BATCH: i64 = 500;

impl MongoStore {
    /// Gives every document written before search existed its `search` field.
    pub(super) async fn build_search_index(&self) -> AppResult<()> {
        let migrations = self.database().collection::<Document>("migrations");
        let marker = doc! { "_id": SEARCH_INDEX_MIGRATION };
        if self.op(migrations.find_one(marker.clone())).await?.is_some() {
            return Ok(());
        }
        let customers = self.backfill(&self.customers, doc! { "search": { "$exists": false } }, |d| {
            let f = Fields::new(d, "customer");
            let text = |field| f.text(field).unwrap_or_default();
            doc! { "$set": { "search": customer_search_of(&text("name"), &text("contactPerson"), &text("phone")) } }
        });
        let chat = self.backfill(&self.chat, doc! { "search": { "$exists": false } }, |d| {
            doc! { "$set": { "search": text_search(&Fields::new(d, "chat message").text("content").unwrap_or_default()) } }
        });
        let (customers, chat) = tokio::try_join!(customers, chat)?;
        let replies = self.backfill_replies().await?;
        let tickets = self.backfill_tickets().await?;
        if customers + chat + replies + tickets > 0 {
            tracing::info!(customers, chat, replies, tickets, "search index built for documents written before search");
        }
        let done = doc! { "$set": { "at": mongodb::bson::DateTime::now() } };
        self.op(migrations.update_one(marker, done).upsert(true)).await?;
        Ok(())
    }

    /// Sets `update(document)` on every document of `missing`, batch by batch, each only if it is
    /// still missing the field; answers how many were updated.
    async fn backfill(
        &self,
        collection: &Collection<Document>,
        missing: Document,
        update: impl Fn(&Document) -> Document + Send + Sync,
    ) -> AppResult<u64> {
        let mut updated = 0;
        loop {
            let batch =
                self.op(async { collect(collection.find(missing.clone()).limit(BACKFILL_BATCH).await?).await }).await?;
            if batch.is_empty() {
                return Ok(updated);
            }
            for document in &batch {
                let Some(key) = document.get("_id") else { continue };
                let mut filter = missing.clone();
                filter.insert("_id", key.clone());
                updated += self.op(collection.update_one(filter, update(document))).await?.modified_count;
            }
            if batch.len() < BACKFILL_BATCH as usize {
                return Ok(updated);
            }
        }
    }

    /// Replies stored without their provider and `search` field.
    async fn backfill_replies(&self) -> AppResult<u64> {
        let missing = doc! { "action": HistoryAction::Reply.as_str(), "search": { "$exists": false } };
        let mut updated = 0;
        loop {
            let batch = self
                .op(async { collect(self.ticket_history.find(missing.clone()).limit(BACKFILL_BATCH).await?).await })
                .await?;
            if batch.is_empty() {
                return Ok(updated);
            }
            let tickets: Vec<Bson> = batch.iter().filter_map(|d| d.get("ticketId")).cloned().collect();
            let owners = self
                .op(async {
                    let projection = doc! { "_id": 0, "id": 1, "serviceProviderId": 1 };
                    collect(self.tickets.find(doc! { "id": { "$in": tickets } }).projection(projection).await?).await
                })
                .await?;
            let owner: HashMap<&str, &str> = owners
                .iter()
                .filter_map(|t| Some((t.get_str("id").ok()?, t.get_str("serviceProviderId").ok()?)))
                .collect();
            for entry in &batch {
                let Some(key) = entry.get("_id") else { continue };
                let content = entry.get_str("content").unwrap_or_default();
                let mut set = doc! { "search": text_search(content) };
                // A reply of a missing ticket is indexed too (so the backfill ends), under no provider.
                if let Some(provider) = entry.get_str("ticketId").ok().and_then(|t| owner.get(t)) {
                    set.insert("serviceProviderId", *provider);
                }
                let mut filter = missing.clone();
                filter.insert("_id", key.clone());
                updated += self.op(self.ticket_history.update_one(filter, doc! { "$set": set })).await?.modified_count;
            }
            if batch.len() < BACKFILL_BATCH as usize {
                return Ok(updated);
            }
        }
    }

    /// Tickets stored without their own search texts: their grams (added to any a change of this
    /// release already wrote) are of the title, the content and every reply, stored or embedded by
    /// an older release; an embedded reply's text is kept with the ticket's own, since only stored
    /// replies have documents of their own to match.
    async fn backfill_tickets(&self) -> AppResult<u64> {
        let missing = doc! { "search.texts": { "$exists": false } };
        let mut updated = 0;
        loop {
            let batch = self
                .op(async { collect(self.tickets.find(missing.clone()).limit(BACKFILL_BATCH).await?).await })
                .await?;
            if batch.is_empty() {
                return Ok(updated);
            }
            let ids: Vec<Id> =
                batch.iter().filter_map(|d| d.get_str("id").ok()).map(|id| Id::from_stored(id.to_owned())).collect();
            let mut histories = self.op(self.histories(&ids)).await?;
            for ticket in &batch {
                let Some(key) = ticket.get("_id") else { continue };
                let f = Fields::new(ticket, "ticket");
                let (title, content) = (f.text("title").unwrap_or_default(), f.text("content").unwrap_or_default());
                let embedded: Vec<String> = embedded_history(ticket)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(is_reply)
                    .map(|entry| entry.content)
                    .collect();
                let stored: Vec<String> = histories
                    .remove(f.text("id").unwrap_or_default().as_str())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|entry| history_from(entry).ok())
                    .filter(is_reply)
                    .map(|entry| entry.content)
                    .collect();
                let all = [title.as_str(), content.as_str()]
                    .into_iter()
                    .chain(embedded.iter().map(String::as_str))
                    .chain(stored.iter().map(String::as_str));
                let grams = grams_of(all);
                let texts: Vec<String> =
                    [&title, &content].into_iter().chain(embedded.iter()).map(|text| fold(text)).collect();
                let update = doc! {
                    "$set": { "search.texts": texts },
                    "$addToSet": { "search.grams": { "$each": grams } },
                };
                let mut filter = missing.clone();
                filter.insert("_id", key.clone());
                updated += self.op(self.tickets.update_one(filter, update)).await?.modified_count;
            }
            if batch.len() < BACKFILL_BATCH as usize {
                return Ok(updated);
            }
        }
    }
}
