//! The plumbing every MongoDB area file uses to convert its own documents: each area file
//! (`providers.rs`, `tickets.rs`, ...) writes and reads its entity's documents, with the spec's
//! field names (section 4: `serviceProviderId`, `contactPerson`, `processingHistory`, `readStatus`,
//! ...); this module holds only what they share. Times are BSON dates. What is stored is read back
//! exactly; a value outside its value set means the document was written by something else and is
//! reported, not guessed at, by [`Fields`], which names the field in every error.

use crate::domain::{Id, Timestamp};
use mongodb::bson::{Bson, DateTime, Document};

/// A document that could not be read back, with what was wrong.
pub type ReadResult<T> = Result<T, String>;

pub fn date(time: &Timestamp) -> DateTime {
    DateTime::from_millis(time.timestamp_millis())
}

pub fn optional_date(time: &Option<Timestamp>) -> Bson {
    time.as_ref().map_or(Bson::Null, |t| Bson::DateTime(date(t)))
}

pub(super) fn optional_text(text: &Option<String>) -> Bson {
    text.as_ref().map_or(Bson::Null, |t| Bson::String(t.clone()))
}

pub(super) fn optional_id(id: &Option<Id>) -> Bson {
    id.as_ref().map_or(Bson::Null, |t| Bson::String(t.to_string()))
}

/// Typed access to the fields of one stored document, naming the field in every error.
pub(super) struct Fields<'a> {
    doc: &'a Document,
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(doc: &'a Document, what: &'static str) -> Fields<'a> {
        Fields { doc, what }
    }

    pub(super) fn fail(&self, field: &str, problem: impl std::fmt::Display) -> String {
        format!("{} document {:?}: field {field}: {problem}", self.what, self.doc.get("id"))
    }

    pub(super) fn text(&self, field: &str) -> ReadResult<String> {
        match self.doc.get(field) {
            Some(Bson::String(text)) => Ok(text.clone()),
            other => Err(self.fail(field, format!("expected a string, found {other:?}"))),
        }
    }

    pub(super) fn optional_text(&self, field: &str) -> ReadResult<Option<String>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(Bson::String(text)) => Ok(Some(text.clone())),
            other => Err(self.fail(field, format!("expected a string or null, found {other:?}"))),
        }
    }

    pub(super) fn id(&self, field: &str) -> ReadResult<Id> {
        self.text(field).map(Id::from_stored)
    }

    pub(super) fn optional_id(&self, field: &str) -> ReadResult<Option<Id>> {
        self.optional_text(field).map(|v| v.map(Id::from_stored))
    }

    pub(super) fn time(&self, field: &str) -> ReadResult<Timestamp> {
        match self.doc.get(field) {
            Some(Bson::DateTime(time)) => chrono::DateTime::from_timestamp_millis(time.timestamp_millis())
                .ok_or_else(|| self.fail(field, "a date out of range")),
            other => Err(self.fail(field, format!("expected a date, found {other:?}"))),
        }
    }

    pub(super) fn optional_time(&self, field: &str) -> ReadResult<Option<Timestamp>> {
        match self.doc.get(field) {
            None | Some(Bson::Null) => Ok(None),
            Some(_) => self.time(field).map(Some),
        }
    }

    /// A number, however the writer typed it (mongoose writes doubles).
    pub(super) fn number(&self, field: &str) -> ReadResult<i64> {
        match self.doc.get(field) {
            Some(Bson::Int32(n)) => Ok(i64::from(*n)),
            Some(Bson::Int64(n)) => Ok(*n),
            Some(Bson::Double(n)) if n.fract() == 0.0 && n.is_finite() => Ok(*n as i64),
            other => Err(self.fail(field, format!("expected a whole number, found {other:?}"))),
        }
    }

    pub(super) fn value<T>(&self, field: &str, parse: fn(&str) -> Option<T>) -> ReadResult<T> {
        let text = self.text(field)?;
        parse(&text).ok_or_else(|| self.fail(field, format!("unexpected value {text:?}")))
    }

    pub(super) fn percent(&self, usage: &Document, field: &str) -> ReadResult<u8> {
        Fields::new(usage, self.what).number(field).map(|n| n.clamp(0, 100) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn numbers_written_as_doubles_are_read() {
        let stored = doc! { "portCount": 5.0, "bad": 1.5 };
        let f = Fields::new(&stored, "customer");
        assert_eq!(f.number("portCount"), Ok(5));
        assert!(f.number("bad").is_err());
    }
}
