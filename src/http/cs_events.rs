//! `POST /integrations/cs/ticket-events`: ticket changes made in the PC customer-service system,
//! signed like the other routes of [`super::integrations`] and applied by
//! [`crate::service::ticket_events`].
//!
//! The body is `{eventId, ticketId, type, operator: {id, name}, content?, assignee?: {id, name},
//! status?, occurredAt}`. It is parsed here into the service's event, every field checked (400 with
//! the field); the answer's `data` says whether the event was applied (`applied: false` for an event
//! older than the ticket's last change of its kind) and the ticket's state after it. A duplicate
//! `eventId` gets the first answer again, with `X-PD-Duplicate: true`.

use super::integrations::{envelope, failure, json_object, not_an_object, Verifier, DUPLICATE_HEADER};
use super::AppState;
use crate::domain::{TextLimit, TicketStatus};
use crate::error::AppError;
use crate::service::input;
use crate::service::ticket_events::{PcPerson, TicketEvent, TicketEventKind};
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
/// The longest operator or assignee id or name taken.
const MAX_PERSON_CHARS: usize = 64;

pub(super) fn routes(router: Router<AppState>, verifier: Arc<Verifier>) -> Router<AppState> {
    let handler = move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
        let verifier = verifier.clone();
        async move { ticket_event(state, &verifier, headers, body).await }
    };
    router
        .route("/integrations/cs/ticket-events", post(handler).layer(RequestBodyLimitLayer::new(MAX_EVENT_BODY_BYTES)))
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
    match state.services.ticket_events.apply(event).await {
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
    let occurred_at = chrono::DateTime::parse_from_rfc3339(text("occurredAt"))
        .map(|time| {
            use chrono::SubsecRound;
            time.with_timezone(&chrono::Utc).trunc_subsecs(0)
        })
        .map_err(|_| AppError::bad_input("occurredAt", "发生时间应为RFC 3339时间，如2026-01-29T10:00:00Z"))?;
    let fingerprint = Sha256::digest(body).iter().map(|b| format!("{b:02x}")).collect();
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
