//! A ticket's processing history on MongoDB: one document per entry in `ticketHistory`, not an
//! array embedded in the ticket. Embedded, the history grew the ticket document with every reply
//! until about 1,100 maximum-size replies reached MongoDB's 16 MB document limit, after which every
//! change to that ticket failed. Entries are written in the transaction that writes the ticket's
//! change and read back in the order they were written: by the ticket version their change produced,
//! then by their position in that change (a ticket's version is compare-and-set, so no two changes
//! share one).
//!
//! Databases written before this collection existed still hold the history embedded in the ticket
//! as `processingHistory`. There is no migration step: such an array is read as the first entries
//! of the history (nothing is appended to it any more), followed by the collection's entries.

use super::documents::{date, Fields, ReadResult};
use super::search::reply_search_fields;
use super::MongoStore;
use crate::domain::{HistoryEntry, Id, Ticket};
use mongodb::bson::{doc, Bson, Document};
use mongodb::ClientSession;
use std::collections::HashMap;

impl MongoStore {
    /// Stores `entries`, written by the change that brought `ticket` (of `provider`) to `version`,
    /// in `session`; a reply with its search fields.
    pub(super) async fn append_history(
        &self,
        session: &mut ClientSession,
        provider: &Id,
        ticket: &Id,
        version: u64,
        entries: &[HistoryEntry],
    ) -> mongodb::error::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let documents = entries.iter().enumerate().map(|(position, entry)| {
            let mut document = entry_document(ticket, version, position, entry);
            document.extend(reply_search_fields(provider, entry).unwrap_or_default());
            document
        });
        self.ticket_history.insert_many(documents).session(&mut *session).await?;
        Ok(())
    }

    /// Whether the history entry `id` is stored (a change that wrote it has committed).
    pub(super) async fn history_entry_exists(
        &self,
        session: &mut ClientSession,
        id: &Id,
    ) -> mongodb::error::Result<bool> {
        let found = self.ticket_history.count_documents(doc! { "id": id.as_str() }).session(&mut *session).await?;
        Ok(found > 0)
    }

    /// The stored entries of the given tickets, in the order they were written, by ticket id.
    pub(super) async fn histories(&self, tickets: &[Id]) -> mongodb::error::Result<HashMap<String, Vec<Document>>> {
        let mut by_ticket: HashMap<String, Vec<Document>> = HashMap::new();
        if tickets.is_empty() {
            return Ok(by_ticket);
        }
        let mut cursor = self.ticket_history.find(histories_query(tickets)).sort(history_order()).await?;
        while cursor.advance().await? {
            let entry = cursor.deserialize_current()?;
            let ticket = entry.get_str("ticketId").unwrap_or_default().to_owned();
            by_ticket.entry(ticket).or_default().push(entry);
        }
        Ok(by_ticket)
    }
}

/// The history of `tickets`; its order is [`history_order`].
pub(super) fn histories_query(tickets: &[Id]) -> Document {
    doc! { "ticketId": { "$in": super::ids_bson(tickets) } }
}

/// By ticket, in the order the entries were written.
pub(super) fn history_order() -> Document {
    doc! { "ticketId": 1, "ticketVersion": 1, "position": 1 }
}

/// Completes `ticket` (read from its document, with any embedded history) with its stored entries.
pub(super) fn with_history(mut ticket: Ticket, entries: &[Document]) -> ReadResult<Ticket> {
    for entry in entries {
        ticket.history.push(history_from(entry)?);
    }
    Ok(ticket)
}

fn entry_document(ticket: &Id, version: u64, position: usize, entry: &HistoryEntry) -> Document {
    let mut document = doc! {
        "ticketId": ticket.as_str(),
        "ticketVersion": version as i64,
        "position": position as i64,
    };
    document.extend(history_document(entry));
    document
}

/// An entry's own fields, as the spec's `processingHistory` entries have them.
pub(super) fn history_document(entry: &HistoryEntry) -> Document {
    doc! {
        "id": entry.id.as_str(),
        "operatorId": &entry.operator_id,
        "operatorName": &entry.operator_name,
        "action": &entry.action,
        "content": &entry.content,
        "timestamp": date(&entry.timestamp),
    }
}

pub(super) fn history_from(doc: &Document) -> ReadResult<HistoryEntry> {
    let f = Fields::new(doc, "processingHistory entry");
    Ok(HistoryEntry {
        id: f.id("id")?,
        operator_id: f.text("operatorId")?,
        operator_name: f.text("operatorName")?,
        action: f.text("action")?,
        content: f.text("content")?,
        timestamp: f.time("timestamp")?,
    })
}

/// The history embedded in a ticket document written before `ticketHistory` existed, if any.
pub(super) fn embedded_history(doc: &Document) -> ReadResult<Vec<HistoryEntry>> {
    match doc.get("processingHistory") {
        None | Some(Bson::Null) => Ok(Vec::new()),
        Some(Bson::Array(entries)) => entries
            .iter()
            .map(|entry| match entry {
                Bson::Document(entry) => history_from(entry),
                other => Err(Fields::new(doc, "ticket")
                    .fail("processingHistory", format!("expected documents, found {other:?}"))),
            })
            .collect(),
        Some(other) => {
            Err(Fields::new(doc, "ticket").fail("processingHistory", format!("expected an array, found {other:?}")))
        }
    }
}
