//! What the other systems send in (spec 5.2.6 steps 1-3, 7.3), and binding the mini-program
//! user's WeChat account for pushes:
//!
//! - a customer's chat message from the PC customer-service system: the owning provider is found
//!   from the customer, the message stored as the customer's (idempotent by the sender's message
//!   id) and pushed live to the provider, or by WeChat when the provider is not connected;
//! - customers with their usage measures from the SaaS system: validated one by one, upserted,
//!   each reported as created, updated, unchanged or refused with its errors;
//! - `bindWechat`: the openid of the mini-program user, from the code of `wx.login`.
//!
//! The HTTP edge (`crate::http::integrations`) checks the signatures and parses the JSON; the
//! rules are here.

use super::outbound::Outbound;
use super::realtime::Realtime;
use super::Session;
use crate::domain::{
    new_id, now, usage, ChatMessage, ChatSender, ChatStatus, Customer, CustomerStatus, Id, ServiceProvider, Text,
    Timestamp, UsageMetrics,
};
use crate::error::{AppError, AppResult};
use crate::service::ports::WechatLogin;
use crate::store::{ChatStore, CustomerStore, ProviderStore, SharedStore, Written};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The most customers one sync request may carry.
pub const MAX_SYNC_RECORDS: usize = 1000;

/// A customer's message as the PC customer-service system sends it.
#[derive(Debug, Clone)]
pub struct InboundChatMessage {
    /// The sender's id of the message: a retried delivery with the same id stores nothing new.
    pub message_id: Id,
    pub customer_id: Id,
    pub content: Text,
    /// When the customer sent it; now, if not given (or if it lies in the future).
    pub sent_at: Option<Timestamp>,
    /// Files the PC system uploaded for the customer's provider (`POST /integrations/cs/uploads`).
    pub attachment_ids: Vec<Id>,
}

/// What receiving a message did.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The stored message (the first one, for a retried delivery).
    pub message: ChatMessage,
    /// Whether the message id had been received before (nothing was stored now).
    pub duplicate: bool,
}

/// What became of one record of a sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Created,
    Updated,
    /// Identical to what is stored: nothing was written.
    Unchanged,
    /// Refused, with every problem found (field, message).
    Refused(Vec<(String, String)>),
}

impl RecordOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordOutcome::Created => "created",
            RecordOutcome::Updated => "updated",
            RecordOutcome::Unchanged => "unchanged",
            RecordOutcome::Refused(_) => "refused",
        }
    }
}

/// One record's result, in the order of the request.
#[derive(Debug, Clone)]
pub struct RecordResult {
    pub index: usize,
    /// The record's `id`, if it had a usable one.
    pub id: Option<String>,
    pub outcome: RecordOutcome,
    /// The usage score the record's measures give (stored records only).
    pub usage_score: Option<u8>,
}

/// A customer record that passed validation.
#[derive(Debug, Clone)]
struct SyncedCustomer {
    id: Id,
    provider_id: Id,
    name: String,
    contact_person: String,
    phone: String,
    email: String,
    region: String,
    software_version: String,
    port_count: u32,
    purchase_date: Timestamp,
    expiry_date: Timestamp,
    usage: UsageMetrics,
    last_active_time: Option<Timestamp>,
}

#[derive(Clone)]
pub struct IntegrationService {
    chat: Arc<dyn ChatStore>,
    customers: Arc<dyn CustomerStore>,
    providers: Arc<dyn ProviderStore>,
    realtime: Arc<Realtime>,
    outbound: Arc<Outbound>,
    wechat: Option<Arc<dyn WechatLogin>>,
    attachments: Arc<dyn crate::store::AttachmentStore>,
}

impl IntegrationService {
    pub fn new(
        store: &SharedStore,
        realtime: Arc<Realtime>,
        outbound: Arc<Outbound>,
        wechat: Option<Arc<dyn WechatLogin>>,
    ) -> IntegrationService {
        IntegrationService {
            chat: store.clone(),
            customers: store.clone(),
            providers: store.clone(),
            realtime,
            outbound,
            wechat,
            attachments: store.clone(),
        }
    }

    /// Stores a customer's message for the provider the customer belongs to, and pushes it.
    #[tracing::instrument(skip_all, fields(customer = %inbound.customer_id, message = %inbound.message_id))]
    pub async fn receive_customer_message(&self, inbound: InboundChatMessage) -> AppResult<ReceivedMessage> {
        let customer = self
            .customers
            .customers_anywhere(std::slice::from_ref(&inbound.customer_id))
            .await?
            .pop()
            .ok_or(AppError::NotFound("客户"))?;
        let provider = self
            .providers
            .providers_by_ids(std::slice::from_ref(&customer.service_provider_id))
            .await?
            .pop()
            .ok_or_else(|| AppError::internal("a customer's provider is missing"))?;
        let message = ChatMessage {
            id: new_id("cm"),
            service_provider_id: provider.id,
            service_provider_name: provider.name,
            customer_id: customer.id,
            customer_name: customer.name,
            sender_type: ChatSender::Customer,
            content: inbound.content.into_string(),
            // A sender whose clock runs ahead does not put the message after every later one.
            timestamp: inbound.sent_at.map_or_else(now, |sent_at| sent_at.min(now())),
            status: ChatStatus::Sent,
        };
        let attachments = super::attachments::usable(
            self.attachments.as_ref(),
            &message.service_provider_id,
            &inbound.attachment_ids,
        )
        .await?;
        let attachment_ids: Vec<Id> = attachments.iter().map(|a| a.id.clone()).collect();
        self.attachments.attach_to(&message.service_provider_id, &message.id, &attachment_ids).await?;
        let outbox = self.outbound.wechat_chat(self.providers.as_ref(), &self.realtime, &message).await;
        // In a namespace of its own: the sender's ids never meet a provider's client keys.
        let key = Id::scoped("cs", &inbound.message_id);
        match self.chat.insert_chat_message(&message, Some(&key), &outbox).await? {
            Written::Created(message, events) => {
                self.outbound.queued(outbox.len());
                self.realtime.publish(events).await;
                Ok(ReceivedMessage { message, duplicate: false })
            }
            Written::Replayed(first) => Ok(ReceivedMessage { message: first, duplicate: true }),
        }
    }

    /// Upserts customers from the SaaS system. Every record is checked on its own; the good ones
    /// are stored whatever is wrong with the others. A record identical to what is stored writes
    /// nothing, so sending the same batch again changes nothing.
    #[tracing::instrument(skip_all, fields(records = records.len()))]
    pub async fn sync_customers(&self, records: &[Value]) -> AppResult<Vec<RecordResult>> {
        if records.len() > MAX_SYNC_RECORDS {
            return Err(AppError::bad_input("customers", format!("一次最多同步{MAX_SYNC_RECORDS}个客户")));
        }
        let mut results: Vec<RecordResult> = Vec::with_capacity(records.len());
        let mut valid: Vec<(usize, SyncedCustomer)> = Vec::new();
        let mut seen = HashSet::new();
        for (index, record) in records.iter().enumerate() {
            let id = record.get("id").and_then(Value::as_str).map(str::to_owned);
            let outcome = match parse_record(record) {
                Ok(customer) if !seen.insert(customer.id.clone()) => {
                    RecordOutcome::Refused(vec![("id".into(), "同一批次中客户ID重复".into())])
                }
                Ok(customer) => {
                    valid.push((index, customer));
                    RecordOutcome::Unchanged
                }
                Err(errors) => RecordOutcome::Refused(errors),
            };
            results.push(RecordResult { index, id, outcome, usage_score: None });
        }
        let provider_ids: Vec<Id> =
            valid.iter().map(|(_, c)| c.provider_id.clone()).collect::<HashSet<_>>().into_iter().collect();
        let providers: HashMap<Id, ServiceProvider> = if provider_ids.is_empty() {
            HashMap::new()
        } else {
            self.providers.providers_by_ids(&provider_ids).await?.into_iter().map(|p| (p.id.clone(), p)).collect()
        };
        let ids: Vec<Id> = valid.iter().map(|(_, c)| c.id.clone()).collect();
        let existing: HashMap<Id, Customer> =
            self.customers.customers_anywhere(&ids).await?.into_iter().map(|c| (c.id.clone(), c)).collect();
        let at = now();
        let mut to_save: Vec<(usize, Customer, RecordOutcome)> = Vec::new();
        for (index, record) in valid {
            let refuse = |field: &str, message: &str| RecordOutcome::Refused(vec![(field.into(), message.into())]);
            let Some(provider) = providers.get(&record.provider_id) else {
                results[index].outcome = refuse("serviceProviderId", "服务商不存在");
                continue;
            };
            let score = usage::total_score(&record.usage);
            results[index].usage_score = Some(score);
            match existing.get(&record.id) {
                Some(stored) if stored.service_provider_id != record.provider_id => {
                    results[index].outcome = refuse("serviceProviderId", "该客户ID已属于其他服务商");
                    results[index].usage_score = None;
                }
                Some(stored) => {
                    if let Some(updated) = updated_customer(stored, &record, provider, at) {
                        to_save.push((index, updated, RecordOutcome::Updated));
                    }
                }
                None => to_save.push((index, new_customer(record, provider, at), RecordOutcome::Created)),
            }
        }
        let customers: Vec<Customer> = to_save.iter().map(|(_, c, _)| c.clone()).collect();
        let saved = if customers.is_empty() { Vec::new() } else { self.customers.save_customers(&customers).await? };
        for ((index, _, outcome), saved) in to_save.into_iter().zip(saved) {
            results[index].outcome = if saved {
                outcome
            } else {
                results[index].usage_score = None;
                RecordOutcome::Refused(vec![("serviceProviderId".into(), "该客户ID已属于其他服务商".into())])
            };
        }
        Ok(results)
    }

    /// Binds the WeChat account of the mini-program user signed in as the provider, from the code
    /// of `wx.login`, so that pushes reach it. `false` when WeChat pushes are off on this server.
    #[tracing::instrument(skip_all, fields(provider = %session.provider_id))]
    pub async fn bind_wechat(&self, session: &Session, code: &str) -> AppResult<bool> {
        let code = code.trim();
        if code.is_empty() || code.len() > 256 || code.chars().any(char::is_control) {
            return Err(AppError::bad_input("code", "微信登录凭证格式不正确"));
        }
        let Some(wechat) = &self.wechat else { return Ok(false) };
        let openid = wechat.openid_for_code(code).await?;
        self.providers.bind_wechat_openid(&session.provider_id, &openid, now()).await?;
        Ok(true)
    }
}

/// The stored customer with the record's fields, if any of them differs; `None` if none does.
fn updated_customer(
    stored: &Customer,
    r: &SyncedCustomer,
    provider: &ServiceProvider,
    at: Timestamp,
) -> Option<Customer> {
    let mut next = stored.clone();
    next.service_provider_name = provider.name.clone();
    next.name = r.name.clone();
    next.contact_person = r.contact_person.clone();
    next.phone = r.phone.clone();
    next.email = r.email.clone();
    next.region = r.region.clone();
    next.software_version = r.software_version.clone();
    next.port_count = r.port_count;
    next.purchase_date = r.purchase_date;
    next.expiry_date = r.expiry_date;
    next.usage = r.usage;
    if let Some(active) = r.last_active_time {
        next.last_active_time = active;
    }
    let same = next.service_provider_name == stored.service_provider_name
        && next.name == stored.name
        && next.contact_person == stored.contact_person
        && next.phone == stored.phone
        && next.email == stored.email
        && next.region == stored.region
        && next.software_version == stored.software_version
        && next.port_count == stored.port_count
        && next.purchase_date == stored.purchase_date
        && next.expiry_date == stored.expiry_date
        && next.usage == stored.usage
        && next.last_active_time == stored.last_active_time;
    if same {
        return None;
    }
    if next.usage != stored.usage {
        next.usage_updated_at = at;
    }
    next.updated_at = at;
    Some(next)
}

/// A customer new to the store. Its stored status starts `active`: the status job then announces
/// it (a customer that arrives expiring gets its alert like one that becomes expiring).
fn new_customer(r: SyncedCustomer, provider: &ServiceProvider, at: Timestamp) -> Customer {
    Customer {
        id: r.id,
        service_provider_id: provider.id.clone(),
        service_provider_name: provider.name.clone(),
        name: r.name,
        contact_person: r.contact_person,
        phone: r.phone,
        email: r.email,
        region: r.region,
        software_version: r.software_version,
        port_count: r.port_count,
        purchase_date: r.purchase_date,
        expiry_date: r.expiry_date,
        stored_status: CustomerStatus::Active,
        usage: r.usage,
        usage_updated_at: at,
        unresolved_issues: 0,
        last_active_time: r.last_active_time.unwrap_or(at),
        created_at: at,
        updated_at: at,
    }
}

/// Checks one record, collecting every problem rather than stopping at the first.
fn parse_record(record: &Value) -> Result<SyncedCustomer, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let Some(fields) = record.as_object() else {
        return Err(vec![("".into(), "每个客户应为一个JSON对象".into())]);
    };
    let mut fail = |field: &str, message: String| errors.push((field.to_owned(), message));
    let text = |field: &str, label: &str, max: usize, fail: &mut dyn FnMut(&str, String)| -> String {
        match fields.get(field) {
            Some(Value::String(value)) if !value.trim().is_empty() && value.trim().chars().count() <= max => {
                value.trim().to_owned()
            }
            Some(Value::String(value)) if !value.trim().is_empty() => {
                fail(field, format!("{label}不能超过{max}个字符"));
                String::new()
            }
            _ => {
                fail(field, format!("{label}不能为空"));
                String::new()
            }
        }
    };
    let id_of = |field: &str, label: &str, fail: &mut dyn FnMut(&str, String)| -> Option<Id> {
        let parsed = fields.get(field).and_then(Value::as_str).and_then(Id::parse);
        if parsed.is_none() {
            fail(field, format!("{label}格式不正确：应为1到64个字母、数字、下划线或连字符"));
        }
        parsed
    };
    let time = |field: &str, label: &str, required: bool, fail: &mut dyn FnMut(&str, String)| -> Option<Timestamp> {
        match fields.get(field) {
            None | Some(Value::Null) if !required => None,
            Some(Value::String(text)) => match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(time) => {
                    use chrono::SubsecRound;
                    Some(time.with_timezone(&chrono::Utc).trunc_subsecs(0))
                }
                Err(_) => {
                    fail(field, format!("{label}应为RFC 3339时间，如2026-01-29T10:00:00Z"));
                    None
                }
            },
            _ => {
                fail(field, format!("{label}应为RFC 3339时间，如2026-01-29T10:00:00Z"));
                None
            }
        }
    };
    let id = id_of("id", "客户ID", &mut fail);
    let provider_id = id_of("serviceProviderId", "服务商ID", &mut fail);
    let name = text("name", "客户名称", 100, &mut fail);
    let contact_person = text("contactPerson", "联系人", 50, &mut fail);
    let phone = text("phone", "联系电话", 30, &mut fail);
    if !phone.is_empty() && !phone.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c)) {
        fail("phone", "联系电话只能包含数字、空格和+-()".into());
    }
    let email = text("email", "邮箱", 100, &mut fail);
    let email_ok = email.split_once('@').is_some_and(|(user, host)| {
        !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.') && !host.contains('@')
    });
    if !email.is_empty() && (!email_ok || email.chars().any(char::is_whitespace)) {
        fail("email", "邮箱格式不正确".into());
    }
    let region = text("region", "地区", 50, &mut fail);
    let software_version = text("softwareVersion", "软件版本", 50, &mut fail);
    let port_count = match fields.get("portCount").and_then(Value::as_u64) {
        Some(n) if n <= 1_000_000 => n as u32,
        _ => {
            fail("portCount", "端口数应为0到1000000之间的整数".into());
            0
        }
    };
    let purchase_date = time("purchaseDate", "购买日期", true, &mut fail);
    let expiry_date = time("expiryDate", "到期日期", true, &mut fail);
    if let (Some(purchase), Some(expiry)) = (purchase_date, expiry_date) {
        if expiry <= purchase {
            fail("expiryDate", "到期日期应晚于购买日期".into());
        }
    }
    let last_active_time = time("lastActiveTime", "最近活跃时间", false, &mut fail);
    let usage = match fields.get("usageMetrics").and_then(Value::as_object) {
        None => {
            fail("usageMetrics", "使用指标不能为空".into());
            None
        }
        Some(metrics) => {
            let mut measure = |name: &str| match metrics.get(name).and_then(Value::as_u64) {
                Some(score) if score <= 100 => score as u8,
                _ => {
                    fail(&format!("usageMetrics.{name}"), "使用指标应为0到100之间的整数".into());
                    0
                }
            };
            Some(UsageMetrics {
                login_frequency: measure("loginFrequency"),
                feature_usage: measure("featureUsage"),
                data_input: measure("dataInput"),
                training_completion: measure("trainingCompletion"),
            })
        }
    };
    match (id, provider_id, purchase_date, expiry_date, usage) {
        (Some(id), Some(provider_id), Some(purchase_date), Some(expiry_date), Some(usage)) if errors.is_empty() => {
            Ok(SyncedCustomer {
                id,
                provider_id,
                name,
                contact_person,
                phone,
                email,
                region,
                software_version,
                port_count,
                purchase_date,
                expiry_date,
                usage,
                last_active_time,
            })
        }
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({
            "id": "c900", "serviceProviderId": "sp001", "name": "杭州新零售", "contactPerson": "王五",
            "phone": "+86 138-0000-0000", "email": "wang@example.com", "region": "浙江", "softwareVersion": "专业版",
            "portCount": 10, "purchaseDate": "2025-03-01T00:00:00.250Z", "expiryDate": "2026-03-01T00:00:00+08:00",
            "usageMetrics": { "loginFrequency": 90, "featureUsage": 80, "dataInput": 85, "trainingCompletion": 95 }
        })
    }

    #[test]
    fn a_good_record_parses_with_times_in_whole_utc_seconds() {
        let parsed = parse_record(&record()).unwrap();
        assert_eq!(parsed.id.as_str(), "c900");
        assert_eq!(crate::domain::format_time(&parsed.purchase_date), "2025-03-01T00:00:00Z");
        assert_eq!(crate::domain::format_time(&parsed.expiry_date), "2026-02-28T16:00:00Z");
        assert_eq!(usage::total_score(&parsed.usage), 85);
    }

    #[test]
    fn every_problem_of_a_record_is_reported() {
        let mut bad = record();
        bad["email"] = json!("not-an-email");
        bad["portCount"] = json!(-1);
        bad["expiryDate"] = json!("2024-01-01T00:00:00Z");
        bad["usageMetrics"]["dataInput"] = json!(101);
        bad.as_object_mut().unwrap().remove("name");
        let fields: Vec<String> = parse_record(&bad).unwrap_err().into_iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["name", "email", "portCount", "expiryDate", "usageMetrics.dataInput"]);
        assert_eq!(parse_record(&json!([1])).unwrap_err().len(), 1);
    }
}
