//! `POST /integrations/cs/ticket-events`: ticket changes made in the PC customer-service system,
//! signed like the other routes of [`super::integrations`] and applied by
//! [`crate::service::ticket_events`]; and `POST /integrations/cs/receipts`, delivery and read
//! receipts of the provider's chat messages ([`crate::service::receipts`]).
//!
//! Both parse their body here, every field checked (400 with the field), and answer a duplicate
//! `eventId` with the first answer and `X-PD-Duplicate: true`.
//!
//! The body is `{eventId, ticketId, type, operator: {id, name}, content?, assignee?: {id, name},
//! status?, occurredAt}`. It is parsed here into the service's event, every field checked (400 with
//! the field); the answer's `data` says whether the event was applied (`applied: false` for an event
//! older than the ticket's last change of its kind) and the ticket's state after it. A duplicate
//! `eventId` gets the first answer again, with `X-PD-Duplicate: true`.

use super::integrations::{envelope, failure, json_object, not_an_object, Verifier, DUPLICATE_HEADER};
use super::AppState;
use crate::domain::{ChatStatus, TextLimit, TicketStatus};
use crate::error::{AppError, AppResult};
use crate::service::input;
use crate::service::receipts::Receipt;
use crate::service::ticket_events::{EventOutcome, PcPerson, TicketEvent, TicketEventKind};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tower_http::limit::RequestBodyLimitLayer;

/// A reply of at most the reply limit and a few ids.
const MAX_EVENT_BODY_BYTES: usize = 64 * 1024;
/// The most messages one receipt names.
const MAX_RECEIPT_MESSAGES: usize = 500;
/// The longest operator or assignee id or name taken.
const MAX_PERSON_CHARS: usize = 64;

pub(super) fn routes(router: Router<AppState>, verifier: Arc<Verifier>) -> Router<AppState> {
    let receipts = {
        let verifier = verifier.clone();
        move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
            let verifier = verifier.clone();
            async move { receipt(state, &verifier, headers, body).await }
        }
    };
    let handler = move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
        let verifier = verifier.clone();
        async move { ticket_event(state, &verifier, headers, body).await }
    };
    router
        .route("/integrations/cs/ticket-events", post(handler).layer(RequestBodyLimitLayer::new(MAX_EVENT_BODY_BYTES)))
        .route("/integrations/cs/receipts", post(receipts).layer(RequestBodyLimitLayer::new(MAX_EVENT_BODY_BYTES)))
}

/// `POST /integrations/cs/receipts` `{eventId, messageIds, status: delivered | read, at}`.
async fn receipt(state: AppState, verifier: &Verifier, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = verifier.refusal(&headers, &body) {
        return refused;
    }
    let Some(fields) = json_object(&body) else { return not_an_object() };
    let parsed = (|| {
        let event_id =
            input::id(fields.get("eventId").and_then(Value::as_str).unwrap_or_default(), "eventId", "事件ID")?;
        let raw_ids = fields.get("messageIds").and_then(Value::as_array).filter(|ids| !ids.is_empty());
        let raw_ids = raw_ids.filter(|ids| ids.len() <= MAX_RECEIPT_MESSAGES).ok_or_else(|| {
            AppError::bad_input("messageIds", format!("messageIds应为1到{MAX_RECEIPT_MESSAGES}个消息ID的数组"))
        })?;
        let message_ids = raw_ids
            .iter()
            .map(|id| input::id(id.as_str().unwrap_or_default(), "messageIds", "消息ID"))
            .collect::<Result<Vec<_>, _>>()?;
        let status = match fields.get("status").and_then(Value::as_str) {
            Some("delivered") => ChatStatus::Delivered,
            Some("read") => ChatStatus::Read,
            _ => return Err(AppError::bad_input("status", "status应为delivered或read")),
        };
        let at = time(&fields, "at")?;
        Ok(Receipt { event_id, message_ids, status, at, fingerprint: fingerprint(&body) })
    })();
    let receipt = match parsed {
        Ok(receipt) => receipt,
        Err(error) => return failure(error),
    };
    answer(state.services.receipts.apply(receipt).await)
}

/// The answer to an event: its `data`, marked when the event id was seen before.
fn answer(outcome: AppResult<EventOutcome>) -> Response {
    match outcome {
        Ok(outcome) => {
            let mut response = envelope(StatusCode::OK, "接收成功", outcome.data);
            if outcome.duplicate {
                response.headers_mut().insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
            }
            response
        }
        Err(error) => failure(error),
    }
}

/// An RFC 3339 time field, in whole UTC seconds.
fn time(fields: &Map<String, Value>, field: &'static str) -> Result<crate::domain::Timestamp, AppError> {
    let text = fields.get(field).and_then(Value::as_str).unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| {
            use chrono::SubsecRound;
            time.with_timezone(&chrono::Utc).trunc_subsecs(0)
        })
        .map_err(|_| AppError::bad_input(field, "时间应为RFC 3339时间，如2026-01-29T10:00:00Z"))
}

fn fingerprint(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

async fn ticket_event(state: AppState, verifier: &Verifier, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = verifier.refusal(&headers, &body) {
        return refused;
    }
    let Some(fields) = json_object(&body) else { return not_an_object() };
    let event = match parse(&fields, &body) {
        Ok(event) => event,
        Err(error) => return failure(error),
    };
    answer(state.services.ticket_events.apply(event).await)
}

fn parse(fields: &Map<String, Value>, body: &[u8]) -> Result<TicketEvent, AppError> {
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
    let event_id = input::id(text("eventId"), "eventId", "事件ID")?;
    let ticket_id = input::id(text("ticketId"), "ticketId", "工单ID")?;
    let kind = TicketEventKind::parse(text("type"))
        .ok_or_else(|| AppError::bad_input("type", "type应为reply、assign、resolve、reopen或status"))?;
    let operator = person(fields.get("operator"), "operator", "操作人")?
        .ok_or_else(|| AppError::bad_input("operator", "缺少操作人（operator的id与name）"))?;
    let content = match fields.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(content)) => Some(input::text(content, TextLimit::REPLY_CONTENT)?.into_string()),
        Some(_) => return Err(AppError::bad_input("content", "content应为字符串")),
    };
    let assignee = person(fields.get("assignee"), "assignee", "分配对象")?;
    let status = match fields.get("status") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_str()
                .and_then(TicketStatus::parse)
                .filter(|s| *s != TicketStatus::Resolved)
                .ok_or_else(|| AppError::bad_input("status", "status应为open或processing"))?,
        ),
    };
    let occurred_at = time(fields, "occurredAt")?;
    let fingerprint = fingerprint(body);
    Ok(TicketEvent { event_id, ticket_id, kind, operator, content, assignee, status, occurred_at, fingerprint })
}

/// `{id, name}` of someone in the PC system, if given.
fn person(value: Option<&Value>, field: &'static str, label: &str) -> Result<Option<PcPerson>, AppError> {
    let Some(value) = value.filter(|v| !v.is_null()) else { return Ok(None) };
    let part = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty() && text.chars().count() <= MAX_PERSON_CHARS)
            .map(str::to_owned)
    };
    match (part("id"), part("name")) {
        (Some(id), Some(name)) => Ok(Some(PcPerson { id, name })),
        _ => Err(AppError::bad_input(field, format!("{label}应为{{id, name}}，各1到{MAX_PERSON_CHARS}个字符"))),
    }
}
