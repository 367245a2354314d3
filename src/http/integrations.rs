//! The inbound webhooks of the integration layer, each signed (see
//! [`crate::integration::signature`]) and answered in the envelope `{code, message, data}`:
//!
//! | route | from | on when |
//! | --- | --- | --- |
//! | `POST /integrations/cs/messages` | the PC customer-service system: a customer's chat message | `CS_WEBHOOK_SECRET` is set |
//! | `POST /integrations/cs/typing` | the PC customer-service system: a customer is typing (never stored) | `CS_WEBHOOK_SECRET` is set |
//! | `POST /integrations/cs/ticket-events` | the PC customer-service system: a ticket replied, assigned, resolved, reopened or moved there ([`super::cs_events`]) | `CS_WEBHOOK_SECRET` is set |
//! | `POST /integrations/cs/receipts` | the PC customer-service system: the customer got or read the provider's messages ([`super::cs_events`]) | `CS_WEBHOOK_SECRET` is set |
//! | `POST /integrations/saas/customers` | the SaaS system: customers with their usage measures | `SAAS_WEBHOOK_SECRET` is set |
//!
//! A route that is off answers 404, like any unknown path. The signature is checked on the raw
//! body before anything else (401 when missing, wrong or stale, counted toward the sender
//! address's ban like any malformed request); then the body (400), then the rules (404 for an
//! unknown customer).

use super::AppState;
use crate::config::IntegrationSettings;
use crate::context::{note_bad_request, BadRequest};
use crate::domain::{format_time, Id};
use crate::error::AppError;
use crate::integration::signature::{verify, SignatureError, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::service::input;
use crate::service::integrations::{InboundChatMessage, RecordOutcome, MAX_SYNC_RECORDS};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;

/// Set on the answer to a retried delivery of a message already received (the body is the same
/// as the first time's).
pub const DUPLICATE_HEADER: &str = "x-pd-duplicate";
/// A customer's chat message: 2,000 characters of content and a few ids.
const MAX_MESSAGE_BODY_BYTES: usize = 64 * 1024;
/// A typing signal: a customer id.
const MAX_TYPING_BODY_BYTES: usize = 4 * 1024;
/// A sync batch: up to [`MAX_SYNC_RECORDS`] customers of about a kilobyte.
const MAX_SYNC_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Checks the signatures of one sender.
pub(super) struct Verifier {
    secret: Vec<u8>,
    tolerance: Duration,
}

impl Verifier {
    /// The 401 answer for a request whose signature does not hold, if it does not.
    pub(super) fn refusal(&self, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let now = chrono::Utc::now().timestamp();
        let error = verify(&self.secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), body, now, self.tolerance)
            .err()?;
        let message = match error {
            SignatureError::Malformed => "缺少签名或签名格式不正确（需要X-PD-Timestamp与X-PD-Signature）",
            SignatureError::Stale => "签名时间戳已过期或与服务器时间相差过大",
            SignatureError::Mismatch => "签名无效",
        };
        // Counted toward a ban like any malformed request; the guard logs the first of an
        // address's window and the ban, so a barrage of bad signatures does not flood the log.
        tracing::debug!(?error, "an inbound webhook was refused");
        note_bad_request(BadRequest::BadSignature);
        Some(envelope(StatusCode::UNAUTHORIZED, message, Value::Null))
    }
}

/// The routes of the integrations that are configured.
pub fn routes(settings: &IntegrationSettings) -> Router<AppState> {
    let mut router = Router::new();
    if let Some(secret) = &settings.cs_secret {
        let verifier =
            Arc::new(Verifier { secret: secret.as_bytes().to_vec(), tolerance: settings.signature_tolerance });
        let handler = move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
            let verifier = verifier.clone();
            async move { customer_message(state, &verifier, headers, body).await }
        };
        router = router.route(
            "/integrations/cs/messages",
            post(handler).layer(RequestBodyLimitLayer::new(MAX_MESSAGE_BODY_BYTES)),
        );
        let verifier =
            Arc::new(Verifier { secret: secret.as_bytes().to_vec(), tolerance: settings.signature_tolerance });
        let handler = move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
            let verifier = verifier.clone();
            async move { customer_typing(state, &verifier, headers, body).await }
        };
        router = router
            .route("/integrations/cs/typing", post(handler).layer(RequestBodyLimitLayer::new(MAX_TYPING_BODY_BYTES)));
        let verifier =
            Arc::new(Verifier { secret: secret.as_bytes().to_vec(), tolerance: settings.signature_tolerance });
        router = super::cs_events::routes(router, verifier);
    }
    if let Some(secret) = &settings.saas_secret {
        let verifier =
            Arc::new(Verifier { secret: secret.as_bytes().to_vec(), tolerance: settings.signature_tolerance });
        let handler = move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
            let verifier = verifier.clone();
            async move { sync_customers(state, &verifier, headers, body).await }
        };
        router = router.route(
            "/integrations/saas/customers",
            post(handler).layer(RequestBodyLimitLayer::new(MAX_SYNC_BODY_BYTES)),
        );
    }
    router
}

pub(super) fn envelope(status: StatusCode, message: &str, data: Value) -> Response {
    (status, Json(json!({ "code": status.as_u16(), "message": message, "data": data }))).into_response()
}

pub(super) fn failure(error: AppError) -> Response {
    if error.code().is_server_fault() {
        let detail = error.operator_detail();
        tracing::error!(code = error.code().as_str(), %detail, "an inbound webhook failed");
    }
    envelope(error.http_status(), &error.to_string(), Value::Null)
}

pub(super) fn json_object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

pub(super) fn not_an_object() -> Response {
    failure(AppError::BadInput { field: None, message: "请求体应为JSON对象".to_owned() })
}

/// `POST /integrations/cs/messages` `{messageId, customerId, content, sentAt?, attachmentIds?}`.
async fn customer_message(state: AppState, verifier: &Verifier, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = verifier.refusal(&headers, &body) {
        return refused;
    }
    let Some(fields) = json_object(&body) else { return not_an_object() };
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
    let parsed = (|| {
        let message_id = input::id(text("messageId"), "messageId", "消息ID")?;
        let customer_id = input::id(text("customerId"), "customerId", "客户ID")?;
        let attachment_ids = match fields.get("attachmentIds") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => {
                crate::service::attachments::attachment_id_list(ids.iter().map(|id| id.as_str().unwrap_or_default()))?
            }
            Some(_) => return Err(AppError::bad_input("attachmentIds", "attachmentIds 应为附件ID数组")),
        };
        let content = crate::service::attachments::inbound_content(text("content"), !attachment_ids.is_empty())?;
        let sent_at = match fields.get("sentAt") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_str()
                    .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
                    .map(|time| {
                        use chrono::SubsecRound;
                        time.with_timezone(&chrono::Utc).trunc_subsecs(0)
                    })
                    .ok_or_else(|| AppError::bad_input("sentAt", "发送时间应为RFC 3339时间，如2026-01-29T10:00:00Z"))?,
            ),
        };
        Ok::<_, AppError>(InboundChatMessage { message_id, customer_id, content, sent_at, attachment_ids })
    })();
    let inbound = match parsed {
        Ok(inbound) => inbound,
        Err(error) => return failure(error),
    };
    let sender_id: Id = inbound.message_id.clone();
    match state.services.integrations.receive_customer_message(inbound).await {
        Ok(received) => {
            let message = &received.message;
            let data = json!({
                "messageId": sender_id.as_str(),
                "chatMessageId": message.id.as_str(),
                "customerId": message.customer_id.as_str(),
                "serviceProviderId": message.service_provider_id.as_str(),
                "timestamp": format_time(&message.timestamp),
            });
            let mut response = envelope(StatusCode::OK, "接收成功", data);
            if received.duplicate {
                response.headers_mut().insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
            }
            response
        }
        Err(error) => failure(error),
    }
}

/// `POST /integrations/cs/typing` `{customerId}`: handed to the `typing` subscription of the
/// customer's provider, at most once a second per customer (`forwarded` says whether this one
/// was); never stored.
async fn customer_typing(state: AppState, verifier: &Verifier, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = verifier.refusal(&headers, &body) {
        return refused;
    }
    let Some(fields) = json_object(&body) else { return not_an_object() };
    let raw = fields.get("customerId").and_then(Value::as_str).unwrap_or_default();
    let customer = match input::id(raw, "customerId", "客户ID") {
        Ok(customer) => customer,
        Err(error) => return failure(error),
    };
    match state.services.typing.customer_typing(&customer).await {
        Ok(typing) => {
            let data = json!({
                "customerId": customer.as_str(),
                "serviceProviderId": typing.provider_id.as_str(),
                "forwarded": typing.forwarded,
            });
            envelope(StatusCode::OK, "接收成功", data)
        }
        Err(error) => failure(error),
    }
}

/// `POST /integrations/saas/customers` `{customers: [...]}`.
async fn sync_customers(state: AppState, verifier: &Verifier, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = verifier.refusal(&headers, &body) {
        return refused;
    }
    let Some(fields) = json_object(&body) else { return not_an_object() };
    let Some(records) = fields.get("customers").and_then(Value::as_array) else {
        return failure(AppError::bad_input("customers", "customers应为客户数组"));
    };
    if records.len() > MAX_SYNC_RECORDS {
        return failure(AppError::bad_input("customers", format!("一次最多同步{MAX_SYNC_RECORDS}个客户")));
    }
    let results = match state.services.integrations.sync_customers(records).await {
        Ok(results) => results,
        Err(error) => return failure(error),
    };
    let count = |kind: &str| results.iter().filter(|r| r.outcome.as_str() == kind).count();
    let items: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut item = json!({ "index": r.index, "id": r.id, "result": r.outcome.as_str() });
            if let Some(score) = r.usage_score {
                item["usageScore"] = json!(score);
            }
            if let RecordOutcome::Refused(errors) = &r.outcome {
                item["errors"] =
                    errors.iter().map(|(field, message)| json!({ "field": field, "message": message })).collect();
            }
            item
        })
        .collect();
    let data = json!({
        "received": results.len(),
        "created": count("created"),
        "updated": count("updated"),
        "unchanged": count("unchanged"),
        "refused": count("refused"),
        "results": items,
    });
    envelope(StatusCode::OK, "同步完成", data)
}
