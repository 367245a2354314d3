//! The integration layer against the real server and a real HTTP receiver the tests start (an axum
//! server on a port of its own that records every request, checks the signatures independently,
//! can answer errors on demand and can go down and come back on the same port; it also plays the
//! WeChat API):
//! - inbound customer messages from the PC customer-service system: signatures accepted, wrong or
//!   stale ones refused, a retried delivery stored once, the message live at the provider's
//!   subscription;
//! - the SaaS system's customer sync: every record checked on its own, idempotent;
//! - outbound webhooks: signed, one per event, in order per conversation; with the receiver down
//!   and the server restarted (into two processes sharing the store) every event still arrives,
//!   duplicates only with the same delivery id; dead letters after the attempt limit, replayed
//!   with the CLI;
//! - WeChat subscribe messages only for a provider who is not connected;
//! - the scheduled jobs, run twice with the CLI: the second run changes nothing.

use crate::outbound_tls::TlsReceiver;
use crate::support::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpSocket;

pub(crate) const CS_SECRET: &str = "cs-shared-secret-for-tests";
const SAAS_SECRET: &str = "saas-shared-secret-for-tests";
/// How long a test waits for anything that should happen soon.
const WAIT: Duration = Duration::from_secs(20);

// --- signing, independently of the server's code ---

fn hmac_hex(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` to `path`, signed with `secret` at `timestamp`; answers the status, the
/// `x-pd-duplicate` header and the JSON body.
pub(crate) async fn post_signed_at(
    app: &TestApp,
    path: &str,
    secret: &str,
    timestamp: i64,
    body: &[u8],
) -> (u16, bool, Value) {
    let timestamp = timestamp.to_string();
    let signature = format!("sha256={}", hmac_hex(secret, &timestamp, body));
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .header("x-pd-timestamp", &timestamp)
        .header("x-pd-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let duplicate = response.headers().get("x-pd-duplicate").is_some_and(|v| v == "true");
    let body = response.json().await.unwrap_or(Value::Null);
    (status, duplicate, body)
}

pub(crate) async fn post_signed(app: &TestApp, path: &str, secret: &str, body: &Value) -> (u16, bool, Value) {
    post_signed_at(app, path, secret, unix_now(), body.to_string().as_bytes()).await
}

pub(crate) async fn customer_says(app: &TestApp, message_id: &str, customer: &str, content: &str) -> Value {
    let body = json!({ "messageId": message_id, "customerId": customer, "content": content });
    let (status, _, answer) = post_signed(app, "/integrations/cs/messages", CS_SECRET, &body).await;
    assert_eq!(status, 200, "{answer}");
    answer["data"].clone()
}

// --- the receiver ---

/// A request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) query: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    /// Whether `X-PD-Signature` holds for the body and `X-PD-Timestamp` (checked with the test's
    /// own HMAC).
    pub(crate) signed: bool,
    /// The status the receiver answered.
    pub(crate) status: u16,
}

impl Received {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn delivery(&self) -> String {
        self.headers.get("x-pd-delivery").cloned().unwrap_or_default()
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answer every webhook with this status instead of 200.
    fail_all: Mutex<Option<u16>>,
    /// Take (record) this many more webhooks, but answer them 500, as a receiver that processed a
    /// request and crashed before answering: the sender must send them again.
    take_then_fail: Mutex<usize>,
}

pub(crate) struct Receiver {
    port: u16,
    state: Arc<ReceiverState>,
    running: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// Serve `https://` with this certificate (see `crate::outbound_tls`).
    tls: Option<TlsReceiver>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let mut receiver = Receiver { port: 0, state: Arc::default(), running: None, tls: None };
        receiver.up().await;
        receiver
    }

    /// A receiver that speaks `https://` only, with the certificate of `tls`.
    pub(crate) async fn start_tls(tls: TlsReceiver) -> Receiver {
        let mut receiver = Receiver { port: 0, state: Arc::default(), running: None, tls: Some(tls) };
        receiver.up().await;
        receiver
    }

    /// Starts listening (again, on the same port after the first time).
    async fn up(&mut self) {
        assert!(self.running.is_none(), "the receiver is already up");
        let socket = TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(([127, 0, 0, 1], self.port).into()).expect("the receiver's port is free");
        let listener = socket.listen(128).expect("the receiver listens");
        self.port = listener.local_addr().expect("an address").port();
        let router = axum::Router::new().fallback(receive).with_state(self.state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = async {
            let _ = stopped.await;
        };
        let task = match &self.tls {
            None => tokio::spawn(async move {
                axum::serve(listener, router).with_graceful_shutdown(stopped).await.expect("the receiver runs");
            }),
            Some(tls) => {
                let listener = tls.listener(listener);
                tokio::spawn(async move {
                    axum::serve(listener, router).with_graceful_shutdown(stopped).await.expect("the receiver runs");
                })
            }
        };
        self.running = Some((stop, task));
    }

    /// Stops listening: connections are refused until [`Receiver::up`].
    async fn down(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The webhooks received (not the WeChat API calls).
    pub(crate) fn webhooks(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == "/hooks/cs").collect()
    }

    fn fail_all(&self, status: Option<u16>) {
        *self.state.fail_all.lock().unwrap() = status;
    }

    pub(crate) fn take_then_fail(&self, count: usize) {
        *self.state.take_then_fail.lock().unwrap() = count;
    }

    /// Waits until `done` holds for what was received; answers it.
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            if tokio::time::Instant::now() > deadline {
                let summary: Vec<String> =
                    received.iter().map(|r| format!("{} {} {}", r.path, r.status, r.delivery())).collect();
                panic!("the receiver never saw {what}; it saw: {summary:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The outbox's counts once nothing is pending. The receiver sees a webhook before its sender
/// records the answer, so a test that has seen every delivery arrive waits for the records.
async fn outbox_once_nothing_pending(app: &TestApp) -> provider_desk::store::OutboxCounts {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let counts = app.services.store.outbox_counts().await.unwrap();
        if counts.pending == 0 || tokio::time::Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every request: recorded, then answered as WeChat would, or as the webhook's plan says.
async fn receive(State(state): State<Arc<ReceiverState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let signed =
        header("x-pd-signature") == format!("sha256={}", hmac_hex(CS_SECRET, &header("x-pd-timestamp"), &body));
    let query = uri.query().unwrap_or_default().to_owned();
    let (status, answer) = match uri.path() {
        "/cgi-bin/token" => (200, json!({ "access_token": "wx-token-1", "expires_in": 7200 })),
        "/sns/jscode2session" => {
            let code = query.split('&').find_map(|pair| pair.strip_prefix("js_code=")).unwrap_or_default();
            (200, json!({ "openid": format!("openid-{code}"), "session_key": "k" }))
        }
        "/cgi-bin/message/subscribe/send" => (200, json!({ "errcode": 0, "errmsg": "ok" })),
        _ => {
            let mut take = state.take_then_fail.lock().unwrap();
            let status = match *state.fail_all.lock().unwrap() {
                Some(status) => status,
                None if *take > 0 => {
                    *take -= 1;
                    500
                }
                None => 200,
            };
            (status, json!({ "ok": status == 200 }))
        }
    };
    let recorded = Received {
        path: uri.path().to_owned(),
        query,
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
        signed,
        status,
    };
    state.received.lock().unwrap().push(recorded);
    (StatusCode::from_u16(status).unwrap(), Json(answer)).into_response()
}

// --- the servers ---

/// The settings of a server that talks to the receiver, with fast retries.
pub(crate) fn integrated(receiver: &Receiver, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut settings: Vec<(String, String)> = [
        ("CS_WEBHOOK_SECRET", CS_SECRET),
        ("SAAS_WEBHOOK_SECRET", SAAS_SECRET),
        ("OUTBOX_BASE_DELAY_MS", "50"),
        ("OUTBOX_MAX_DELAY_MS", "300"),
        ("OUTBOX_POLL_INTERVAL_MS", "100"),
        ("OUTBOX_MAX_ATTEMPTS", "1000"),
        ("WEBHOOK_TIMEOUT_MS", "2000"),
        ("OUTBOX_LEASE_SECONDS", "5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    settings.push(("CS_WEBHOOK_URL".into(), receiver.url("/hooks/cs")));
    for (name, value) in extra {
        settings.retain(|(n, _)| n != name);
        settings.push((name.to_string(), value.to_string()));
    }
    settings
}

pub(crate) fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs the CLI (`provider-desk ARGS`) against the app's store; answers its JSON lines.
pub(crate) async fn cli(app: &TestApp, args: &[&str]) -> Vec<Value> {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_provider-desk"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", &app.data_dir)
        .env("JWT_SECRET", TEST_JWT_SECRET)
        .env("SEED_DEMO", "false")
        .env("RUST_LOG", "warn")
        .current_dir(&app.data_dir);
    if let Backend::Mongo { mongodb_uri, redis_url } = &app.backend {
        command
            .env("MONGODB_URI", mongodb_uri)
            .env("MONGODB_DB", database_name(&app.data_dir))
            .env("REDIS_URL", redis_url);
    }
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "provider-desk {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("a JSON line: {line}"))).collect()
}

const SEND: &str = "mutation($customerId: ID!, $content: String!) {
    sendChatMessage(customerId: $customerId, content: $content) { id }
}";
const CONVERSATION: &str = "query($customerId: ID!) {
    chatMessages(customerId: $customerId, pageSize: 100) { total items { id senderType content } }
}";

pub(crate) async fn send(app: &TestApp, token: &str, customer: &str, content: &str) -> String {
    let data = app.data(token, SEND, json!({ "customerId": customer, "content": content })).await;
    str_of(&data["sendChatMessage"], "id").to_owned()
}

async fn conversation(app: &TestApp, token: &str, customer: &str) -> Vec<Value> {
    let data = app.data(token, CONVERSATION, json!({ "customerId": customer })).await;
    items(&data["chatMessages"]).clone()
}

async fn latest_cursor(app: &TestApp, provider: &str) -> String {
    let provider = provider_desk::domain::Id::parse(provider).expect("a provider id");
    app.services.store.latest_cursor(&provider).await.expect("the store answers").to_string()
}

const CHAT_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessages(customerId: $customerId, after: $after) {
        cursor message { id customerId senderType content status }
    }
}";

// --- the tests ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_are_off_unless_configured() {
    let app = TestApp::spawn().await;
    let body = json!({ "messageId": "pc-1", "customerId": "c001", "content": "你好" });
    for path in ["/integrations/cs/messages", "/integrations/saas/customers"] {
        let (status, _, _) = post_signed(&app, path, CS_SECRET, &body).await;
        assert_eq!(status, 404, "{path} is off without its secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_message_sent_days_ago_is_stored_once_when_its_delivery_is_retried_after_the_key_prune() {
    let app = TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET)]).await;
    // Sent ten days ago by the PC system's clock (a backlog delivered late).
    let sent_at = (chrono::Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%dT%H:%M:%S.000Z").to_string();
    let body = json!({ "messageId": "pc-late-1", "customerId": "c001", "content": "积压的消息", "sentAt": sent_at });
    let (status, duplicate, answer) = post_signed(&app, "/integrations/cs/messages", CS_SECRET, &body).await;
    assert_eq!((status, duplicate), (200, false), "{answer}");

    // Its delivery key is as old as its first use, not as its message: the prune of keys over
    // 24 hours old keeps it, and the PC system's retry is still answered as a duplicate.
    let job = provider_desk::service::jobs::Job::Prune(provider_desk::store::Retained::IdempotencyKeys);
    app.services.jobs.run_now(job, "test").await.unwrap().expect("the prune ran");
    let (status, duplicate, again) = post_signed(&app, "/integrations/cs/messages", CS_SECRET, &body).await;
    assert_eq!((status, duplicate), (200, true), "{again}");
    assert_eq!(again["data"]["chatMessageId"], answer["data"]["chatMessageId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_message_sent_days_ago_is_replayed_to_a_subscriber_resuming_before_it() {
    let app = TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET)]).await;
    let token = app.login(DEMO_A).await;
    let after = latest_cursor(&app, "sp001").await;
    // Sent ten days ago by the PC system's clock (a backlog delivered late), beyond the 168 hours
    // a cursor may be replayed from: it is logged when it arrives.
    let sent_at = (chrono::Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%dT%H:%M:%S.000Z").to_string();
    let body = json!({ "messageId": "pc-late-1", "customerId": "c001", "content": "积压的消息", "sentAt": sent_at });
    let (status, _, answer) = post_signed(&app, "/integrations/cs/messages", CS_SECRET, &body).await;
    assert_eq!(status, 200, "{answer}");

    let mut ws = WsClient::connect(&app, &token).await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c001", "after": after })).await;
    let event = ws.next_event("chat").await;
    assert_eq!(event["message"]["id"], answer["data"]["chatMessageId"]);
    assert_eq!(event["message"]["content"], "积压的消息");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_message_is_checked_stored_once_and_arrives_live() {
    let app = TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET)]).await;
    let token = app.login(DEMO_A).await;
    let before = conversation(&app, &token, "c001").await.len();
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, "sp001").await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "customerId": "c001", "after": after })).await;

    // Signed properly: stored as the customer's message of the provider that owns c001, and live.
    // A minute ago: if the post beats the subscription, its event is missed and replayed, which a
    // sent time beyond the replay window (168 hours) would refuse.
    let sent = chrono::Utc::now() - chrono::Duration::minutes(1);
    let body = json!({ "messageId": "pc-10001", "customerId": "c001", "content": "你好，库存数据不同步",
        "sentAt": sent.format("%Y-%m-%dT%H:%M:%S.500Z").to_string() });
    let (status, duplicate, first) = post_signed(&app, "/integrations/cs/messages", CS_SECRET, &body).await;
    assert_eq!((status, duplicate), (200, false), "{first}");
    assert_eq!((first["code"].clone(), first["message"].clone()), (json!(200), json!("接收成功")));
    let data = &first["data"];
    assert_eq!((data["messageId"].as_str(), data["customerId"].as_str()), (Some("pc-10001"), Some("c001")));
    assert_eq!(
        (data["serviceProviderId"].as_str(), data["timestamp"].as_str()),
        (Some("sp001"), Some(sent.format("%Y-%m-%dT%H:%M:%SZ").to_string().as_str()))
    );
    let event = ws.next_event("chat").await;
    assert_eq!(event["message"]["id"], data["chatMessageId"]);
    assert_eq!(event["message"]["senderType"], "CUSTOMER");
    assert_eq!(event["message"]["content"], "你好，库存数据不同步");

    // A retried delivery (signed anew, even with other content): the same answer, nothing stored.
    let (status, duplicate, again) = post_signed(&app, "/integrations/cs/messages", CS_SECRET, &body).await;
    assert_eq!((status, duplicate), (200, true));
    assert_eq!(again, first, "a retried delivery answers the same");
    let mut changed = body.clone();
    changed["content"] = json!("重发的内容");
    let (status, duplicate, again) = post_signed(&app, "/integrations/cs/messages", CS_SECRET, &changed).await;
    assert_eq!((status, duplicate, again["data"]["chatMessageId"].clone()), (200, true, data["chatMessageId"].clone()));

    // Refused: a wrong secret, a changed body, a stale or future timestamp, no signature.
    let bytes = json!({ "messageId": "pc-10002", "customerId": "c001", "content": "伪造" }).to_string().into_bytes();
    let path = "/integrations/cs/messages";
    let now = unix_now();
    for (what, secret, at) in [
        ("wrong secret", "not-the-shared-secret", now),
        ("stale", CS_SECRET, now - 301),
        ("future", CS_SECRET, now + 301),
    ] {
        let (status, _, answer) = post_signed_at(&app, path, secret, at, &bytes).await;
        assert_eq!(status, 401, "{what}: {answer}");
        assert_eq!((answer["code"].clone(), answer["data"].clone()), (json!(401), Value::Null), "{what}");
        assert!(has_chinese(answer["message"].as_str().unwrap_or_default()), "{what}: {answer}");
    }
    let (status, _, _) = post_signed_at(&app, path, CS_SECRET, now - 290, &bytes).await;
    assert_eq!(status, 200, "within five minutes the signature holds");
    let timestamp = now.to_string();
    let signature = format!("sha256={}", hmac_hex(CS_SECRET, &timestamp, &bytes));
    let tampered = String::from_utf8(bytes.clone()).unwrap().replace("伪造", "篡改");
    let unsigned = [
        (Some(timestamp.as_str()), Some(signature.as_str()), tampered.clone().into_bytes()),
        (None, None, bytes.clone()),
        (Some(timestamp.as_str()), Some(&signature[7..]), bytes.clone()),
    ];
    for (timestamp, signature, body) in unsigned {
        let mut request = app.client.post(format!("{}{path}", app.address)).body(body);
        if let Some(timestamp) = timestamp {
            request = request.header("x-pd-timestamp", timestamp);
        }
        if let Some(signature) = signature {
            request = request.header("x-pd-signature", signature);
        }
        assert_eq!(request.send().await.unwrap().status().as_u16(), 401);
    }

    // Signed but wrong: an unknown customer, empty content, not JSON.
    let unknown = json!({ "messageId": "pc-10003", "customerId": "c999", "content": "你好" });
    assert_eq!(post_signed(&app, path, CS_SECRET, &unknown).await.0, 404);
    let empty = json!({ "messageId": "pc-10004", "customerId": "c001", "content": "  " });
    let (status, _, answer) = post_signed(&app, path, CS_SECRET, &empty).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(post_signed_at(&app, path, CS_SECRET, unix_now(), b"[1,2]").await.0, 400);

    // Two messages stored in all: the first, and the one signed 290 s ago.
    let messages = conversation(&app, &token, "c001").await;
    assert_eq!(messages.len(), before + 2, "{messages:#?}");
    let second = ws.next_event("chat").await;
    assert_eq!(second["message"]["content"], "伪造");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_from_the_saas_system_are_checked_one_by_one_and_synced_once() {
    let app = TestApp::spawn_configured(&[("SAAS_WEBHOOK_SECRET", SAAS_SECRET)]).await;
    let record = |id: &str, provider: &str| {
        json!({
            "id": id, "serviceProviderId": provider, "name": format!("同步客户{id}"), "contactPerson": "王五",
            "phone": "138-0000-0000", "email": "wang@example.com", "region": "浙江", "softwareVersion": "专业版",
            "portCount": 10, "purchaseDate": "2025-03-01T00:00:00Z", "expiryDate": "2027-03-01T00:00:00Z",
            "usageMetrics": { "loginFrequency": 90, "featureUsage": 80, "dataInput": 85, "trainingCompletion": 95 }
        })
    };
    let mut bad_email = record("c902", "sp001");
    bad_email["email"] = json!("no-at-sign");
    bad_email["usageMetrics"]["featureUsage"] = json!(120);
    let mut existing = record("c002", "sp001");
    existing["usageMetrics"] =
        json!({ "loginFrequency": 40, "featureUsage": 50, "dataInput": 60, "trainingCompletion": 70 });
    let batch = json!({ "customers": [
        record("c900", "sp001"),
        record("c901", "sp002"),
        bad_email,
        record("c903", "sp999"),
        record("c031", "sp001"),
        record("c900", "sp001"),
        existing,
    ] });
    let path = "/integrations/saas/customers";
    let (status, _, answer) = post_signed(&app, path, SAAS_SECRET, &batch).await;
    assert_eq!(status, 200, "{answer}");
    let data = &answer["data"];
    let results = data["results"].as_array().unwrap();
    let outcomes: Vec<&str> = results.iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["created", "created", "refused", "refused", "refused", "refused", "updated"], "{answer}");
    assert_eq!(
        (data["created"].clone(), data["updated"].clone(), data["refused"].clone()),
        (json!(2), json!(1), json!(4))
    );
    assert_eq!(results[0]["usageScore"], 85);
    assert_eq!(results[6]["usageScore"], 53, "40/50/60/70 weighted 20/40/30/10");
    let fields = |i: usize| -> Vec<String> {
        results[i]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(fields(2), ["email", "usageMetrics.featureUsage"]);
    assert_eq!(
        (fields(3), fields(4), fields(5)),
        (vec!["serviceProviderId".to_owned()], vec!["serviceProviderId".to_owned()], vec!["id".to_owned()])
    );
    assert!(results[2]["errors"][0]["message"].as_str().is_some_and(has_chinese));

    // The providers see their new customers, scored by the domain rules; c031 stays demo-b's.
    let query = "query($id: ID!) { customer(id: $id) { id name serviceProviderId usageScore } }";
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let c900 = app.data(&token_a, query, json!({ "id": "c900" })).await;
    assert_eq!(
        (c900["customer"]["usageScore"].clone(), c900["customer"]["name"].clone()),
        (json!(85), json!("同步客户c900"))
    );
    assert_eq!(app.data(&token_a, query, json!({ "id": "c002" })).await["customer"]["usageScore"], 53);
    assert_eq!(app.data(&token_b, query, json!({ "id": "c901" })).await["customer"]["serviceProviderId"], "sp002");
    let c031 = app.data(&token_b, query, json!({ "id": "c031" })).await;
    assert_ne!(c031["customer"]["name"], "同步客户c031");
    assert_error(&app.graphql(Some(&token_a), query, json!({ "id": "c031" })).await, "NOT_FOUND");

    // The same batch again changes nothing.
    let list = "{ customers(pageSize: 100) { items { id updatedAt } } }";
    let listed = app.data(&token_a, list, json!({})).await;
    let (status, _, again) = post_signed(&app, path, SAAS_SECRET, &batch).await;
    assert_eq!(status, 200);
    let outcomes: Vec<&str> =
        again["data"]["results"].as_array().unwrap().iter().map(|r| r["result"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["unchanged", "unchanged", "refused", "refused", "refused", "refused", "unchanged"],
        "{again}"
    );
    assert_eq!(app.data(&token_a, list, json!({})).await, listed, "nothing was written");

    // Unsigned or not a batch.
    let body = batch.to_string().into_bytes();
    assert_eq!(post_signed_at(&app, path, CS_SECRET, unix_now(), &body).await.0, 401, "another sender's secret");
    assert_eq!(post_signed(&app, path, SAAS_SECRET, &json!({ "customers": "c900" })).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_events_are_signed_webhooks_in_order_per_conversation() {
    let receiver = Receiver::start().await;
    let settings = integrated(&receiver, &[]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login(DEMO_A).await;

    let reply = send(&app, &token, "c001", "您好，我们马上处理").await;
    let escalate = "mutation { escalateTicket(id: \"t002\", reason: \"需要二线支持\") { notificationSent } }";
    assert_eq!(app.data(&token, escalate, json!({})).await["escalateTicket"]["notificationSent"], true);
    app.data(&token, "mutation { resolveTicket(id: \"t002\", resolution: \"已修复\") { id } }", json!({})).await;
    let escalate_chat =
        "mutation { escalateChat(customerId: \"c001\", content: \"无法同步\", reason: \"需要技术支持\") { id } }";
    let chat_ticket = app.data(&token, escalate_chat, json!({})).await["escalateChat"]["id"].clone();
    // A ticket reply goes out too (`ticket.replied`).
    app.data(&token, "mutation { replyTicket(id: \"t003\", content: \"处理中\") { ticket { id } } }", json!({})).await;

    let received = receiver.wait_for("five webhooks", |r| r.len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.webhooks().len(), 5, "one webhook per event, no more: {received:#?}");
    for hook in &received {
        assert!(hook.signed, "a valid signature: {hook:?}");
        assert_eq!(hook.status, 200);
        let body = hook.json();
        assert_eq!(hook.headers["content-type"], "application/json");
        assert_eq!(hook.headers["x-pd-delivery"], body["deliveryId"].as_str().unwrap());
        assert_eq!(hook.headers["x-pd-event"], body["type"].as_str().unwrap());
        let signed_at: i64 = hook.headers["x-pd-timestamp"].parse().unwrap();
        assert!((unix_now() - signed_at).abs() < 60);
        assert_eq!(body["serviceProviderId"], "sp001");
    }
    let by_type: BTreeMap<String, Value> =
        received.iter().map(|r| (r.json()["type"].as_str().unwrap().to_owned(), r.json())).collect();
    let message = &by_type["chat.message"];
    assert_eq!((message["customerId"].clone(), message["data"]["messageId"].clone()), (json!("c001"), json!(reply)));
    assert_eq!(
        (message["data"]["senderType"].clone(), message["data"]["content"].clone()),
        (json!("service_provider"), json!("您好，我们马上处理"))
    );
    let escalated = &by_type["ticket.escalated"];
    assert_eq!(
        (escalated["data"]["ticketId"].clone(), escalated["data"]["escalationReason"].clone()),
        (json!("t002"), json!("需要二线支持"))
    );
    let resolved = &by_type["ticket.resolved"];
    assert_eq!(
        (resolved["data"]["status"].clone(), resolved["data"]["resolution"].clone()),
        (json!("resolved"), json!("已修复"))
    );
    let chat = &by_type["chat.escalated"];
    assert_eq!(
        (chat["data"]["ticketId"].clone(), chat["data"]["type"].clone()),
        (chat_ticket, json!("issue_escalation"))
    );
    // c001's chat in order: the reply, then the chat's escalation.
    let c001: Vec<&Received> = received
        .iter()
        .filter(|r| r.json()["customerId"] == "c001" && r.json()["type"].as_str().unwrap().starts_with("chat."))
        .collect();
    assert_eq!(
        c001.iter().map(|r| r.json()["type"].clone()).collect::<Vec<_>>(),
        [json!("chat.message"), json!("chat.escalated")]
    );
    assert!(c001[0].json()["sequence"].as_u64() < c001[1].json()["sequence"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_after_the_receiver_and_the_server_come_back() {
    let mut receiver = Receiver::start().await;
    receiver.down().await;
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    let settings = integrated(&receiver, &[]);
    let config = test_config(&backend, dir.path(), true, &pairs(&settings));
    let first = TestApp::spawn_with(config, backend.clone()).await;
    let token = first.login(DEMO_A).await;

    // The receiver is down: twelve replies in three conversations, interleaved.
    let customers = ["c001", "c002", "c003"];
    let mut sent: HashMap<&str, Vec<String>> = HashMap::new();
    for round in 0..4 {
        for customer in customers {
            sent.entry(customer).or_default().push(send(&first, &token, customer, &format!("第{round}条回复")).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(receiver.received().is_empty());
    let counts = first.services.store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.delivered), (12, 0), "all queued, none lost: {counts:?}");

    // The server stops; two processes come back on the same store, and more is written.
    first.stop().await;
    let config = |backend: &Backend| test_config(backend, dir.path(), false, &pairs(&settings));
    let second = TestApp::spawn_with(config(&backend), backend.clone()).await;
    let third = TestApp::spawn_with(config(&backend), backend.clone()).await;
    let token = second.login(DEMO_A).await;
    for customer in customers {
        sent.get_mut(customer).unwrap().push(send(&second, &token, customer, "重启后的回复").await);
    }

    // The receiver comes back, taking the first five webhooks but answering them 500.
    receiver.take_then_fail(5);
    receiver.up().await;
    let all: usize = sent.values().map(Vec::len).sum();
    let received = receiver
        .wait_for("every delivery taken", |r| {
            let taken: std::collections::HashSet<String> =
                r.iter().filter(|r| r.status == 200).map(Received::delivery).collect();
            taken.len() == all
        })
        .await;

    // Duplicates only of the five answered 500, each with the same delivery id and body.
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    for hook in &received {
        assert!(hook.signed);
        let body = bodies.entry(hook.delivery()).or_insert_with(|| hook.body.clone());
        assert_eq!(body, &hook.body, "every attempt of a delivery sends the same body");
    }
    assert_eq!(bodies.len(), all, "one delivery id per event");
    assert_eq!(received.len(), all + 5, "the five refused ones came twice, nothing else did");
    // In order per conversation: first arrivals in the order the replies were sent.
    for customer in customers {
        let mut arrived: Vec<String> = Vec::new();
        for hook in received.iter().filter(|r| r.json()["customerId"] == customer) {
            let id = hook.json()["data"]["messageId"].as_str().unwrap().to_owned();
            if !arrived.contains(&id) {
                arrived.push(id);
            }
        }
        assert_eq!(arrived, sent[customer], "{customer}'s replies arrive in order");
    }
    let counts = outbox_once_nothing_pending(&second).await;
    assert_eq!((counts.pending, counts.delivered, counts.dead), (0, all as u64, 0));
    second.stop().await;
    third.stop().await;
    if let Backend::Mongo { mongodb_uri, .. } = &backend {
        drop_database(mongodb_uri, &database_name(dir.path()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_keeps_failing_is_a_dead_letter_until_replayed() {
    let receiver = Receiver::start().await;
    receiver.fail_all(Some(503));
    let settings = integrated(&receiver, &[("OUTBOX_MAX_ATTEMPTS", "3")]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login(DEMO_A).await;

    let first = send(&app, &token, "c004", "第一条").await;
    let attempts = receiver.wait_for("three attempts", |r| r.len() >= 3).await;
    let delivery = attempts[0].delivery();
    assert!(attempts.iter().all(|r| r.delivery() == delivery && r.body == attempts[0].body));
    let dead = loop {
        let dead = cli(&app, &["outbox", "dead-letters"]).await;
        if !dead.is_empty() {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0]["id"].as_str(), dead[0]["type"].as_str()), (Some(delivery.as_str()), Some("chat.message")));
    assert_eq!((dead[0]["attempts"].clone(), dead[0]["customerId"].clone()), (json!(3), json!("c004")));
    assert!(dead[0]["lastError"].as_str().is_some_and(|e| e.contains("503")), "{dead:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.webhooks().len(), 3, "no attempt after the last one");

    // The receiver is fixed: a dead letter does not hold up its conversation...
    receiver.fail_all(None);
    let second = send(&app, &token, "c004", "第二条").await;
    let received = receiver.wait_for("the second reply", |r| r.iter().any(|r| r.status == 200)).await;
    assert_eq!(received.last().unwrap().json()["data"]["messageId"], second);

    // ...and a replay delivers it, with the same delivery id and body.
    let replayed = cli(&app, &["outbox", "replay", &delivery]).await;
    assert_eq!(replayed, [json!({ "replayed": 1 })]);
    let received =
        receiver.wait_for("the replayed delivery", |r| r.iter().filter(|r| r.status == 200).count() == 2).await;
    let last = received.last().unwrap();
    assert_eq!((last.delivery(), &last.body), (delivery.clone(), &attempts[0].body));
    assert_eq!(last.json()["data"]["messageId"], first);
    assert!(cli(&app, &["outbox", "dead-letters"]).await.is_empty());
    outbox_once_nothing_pending(&app).await;
    assert_eq!(cli(&app, &["outbox", "stats"]).await, [json!({ "pending": 0, "delivered": 2, "dead": 0 })]);
    assert_eq!(cli(&app, &["outbox", "replay", "--all"]).await, [json!({ "replayed": 0 })]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_messages_go_to_a_provider_who_is_not_connected() {
    let receiver = Receiver::start().await;
    let base = receiver.url("");
    let app = TestApp::spawn_configured(&[
        ("CS_WEBHOOK_SECRET", CS_SECRET),
        ("OUTBOX_POLL_INTERVAL_MS", "100"),
        ("WECHAT_API_BASE", base.as_str()),
        ("WECHAT_APP_ID", "wx-app-1"),
        ("WECHAT_APP_SECRET", "wx-secret-1"),
        ("WECHAT_TEMPLATE_CHAT", "template-chat"),
        ("WECHAT_TEMPLATE_ALERT", "template-alert"),
    ])
    .await;
    let token = app.login(DEMO_A).await;

    // Nothing is sent before the mini-program user's openid is bound.
    customer_says(&app, "pc-1", "c001", "在吗").await;
    let bind = "mutation($code: String!) { bindWechat(code: $code) }";
    assert_eq!(app.data(&token, bind, json!({ "code": "code-a" })).await["bindWechat"], true);
    let login = receiver.wait_for("the code exchange", |r| r.iter().any(|r| r.path == "/sns/jscode2session")).await;
    let exchange = login.iter().find(|r| r.path == "/sns/jscode2session").unwrap();
    assert!(exchange.query.contains("appid=wx-app-1") && exchange.query.contains("js_code=code-a"), "{exchange:?}");

    // Not connected: the customer's message goes out as a subscribe message.
    customer_says(&app, "pc-2", "c001", "系统登录不上，请尽快处理").await;
    let received =
        receiver.wait_for("a subscribe message", |r| r.iter().any(|r| r.path.ends_with("/subscribe/send"))).await;
    let sends: Vec<&Received> = received.iter().filter(|r| r.path.ends_with("/subscribe/send")).collect();
    assert_eq!(sends.len(), 1, "only after binding");
    assert_eq!(sends[0].query, "access_token=wx-token-1");
    let message = sends[0].json();
    assert_eq!(
        (message["touser"].as_str(), message["template_id"].as_str()),
        (Some("openid-code-a"), Some("template-chat"))
    );
    assert_eq!(message["data"]["thing2"]["value"], "系统登录不上，请尽快处理");
    assert!(message["page"].as_str().unwrap().contains("customerId=c001"));

    // Connected: the message arrives live, and no subscribe message is sent.
    let mut ws = WsClient::connect(&app, &token).await;
    let after = latest_cursor(&app, "sp001").await;
    ws.subscribe("chat", CHAT_SUBSCRIPTION, json!({ "after": after })).await;
    // The provider's own message arriving shows that the subscription is live.
    send(&app, &token, "c002", "在线").await;
    assert_eq!(ws.next_event("chat").await["message"]["content"], "在线");
    customer_says(&app, "pc-3", "c001", "我在线等").await;
    assert_eq!(ws.next_event("chat").await["message"]["content"], "我在线等");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.received().iter().filter(|r| r.path.ends_with("/subscribe/send")).count(), 1);
    assert_eq!(receiver.received().iter().filter(|r| r.path == "/cgi-bin/token").count(), 1, "the token is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_run_twice_change_nothing_the_second_time() {
    let app = TestApp::spawn_configured(&[("SAAS_WEBHOOK_SECRET", SAAS_SECRET)]).await;
    let token = app.login(DEMO_A).await;
    let day = |days: i64| provider_desk::domain::format_time(&(chrono::Utc::now() + chrono::Duration::days(days)));
    let record = |id: &str, expiry: String| {
        json!({
            "id": id, "serviceProviderId": "sp001", "name": format!("到期测试{id}"), "contactPerson": "赵六",
            "phone": "13900000000", "email": "zhao@example.com", "region": "江苏", "softwareVersion": "标准版",
            "portCount": 3, "purchaseDate": "2024-01-01T00:00:00Z", "expiryDate": expiry,
            "usageMetrics": { "loginFrequency": 70, "featureUsage": 60, "dataInput": 50, "trainingCompletion": 40 }
        })
    };
    let batch = json!({ "customers": [record("c950", day(10)), record("c951", day(-1)), record("c952", day(100))] });
    let (status, _, answer) = post_signed(&app, "/integrations/saas/customers", SAAS_SECRET, &batch).await;
    assert_eq!((status, answer["data"]["created"].clone()), (200, json!(3)), "{answer}");
    if app.backend.is_mongo() {
        // A copy of the score gone stale, as a writer outside this server might leave it.
        use mongodb::bson::doc;
        let Backend::Mongo { mongodb_uri, .. } = &app.backend else { unreachable!() };
        let client = mongodb::Client::with_uri_str(mongodb_uri).await.unwrap();
        let customers =
            client.database(&database_name(&app.data_dir)).collection::<mongodb::bson::Document>("customers");
        customers.update_one(doc! { "id": "c001" }, doc! { "$set": { "usageScore": 0 } }).await.unwrap();
    }

    let alerts =
        "{ notifications(type: CUSTOMER_ALERT, pageSize: 100) { total items { id title relatedCustomerId } } }";
    let before = total(&app.data(&token, alerts, json!({})).await["notifications"]);
    // The demo history has events exactly a whole number of days old, one of them on the default
    // retention's edge; times are whole seconds, so a run within the seeding's second would leave
    // that one for the next run. A second later the first run takes everything due.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let first = cli(&app, &["run-jobs"]).await;
    let changed: BTreeMap<String, u64> =
        first.iter().map(|r| (r["job"].as_str().unwrap().to_owned(), r["changed"].as_u64().unwrap())).collect();
    assert!(first.iter().all(|r| r["ran"] == true), "{first:?}");
    assert_eq!(changed["customer-status"], 2, "c950 became expiring, c951 expired: {first:?}");
    assert_eq!(changed["unresolved-issues"], 0, "counted at read time: {first:?}");
    assert_eq!(changed["usage-scores"], u64::from(app.backend.is_mongo()), "{first:?}");
    let listed = app.data(&token, alerts, json!({})).await;
    assert_eq!(total(&listed["notifications"]), before + 2);
    let new: Vec<(String, String)> = items(&listed["notifications"])
        .iter()
        .filter(|n| n["relatedCustomerId"].as_str().is_some_and(|c| c.starts_with("c95")))
        .map(|n| (n["relatedCustomerId"].as_str().unwrap().to_owned(), n["title"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(
        new.contains(&("c950".into(), "客户即将到期".into())) && new.contains(&("c951".into(), "客户已到期".into()))
    );

    let second = cli(&app, &["run-jobs"]).await;
    assert_eq!(second.len(), provider_desk::service::jobs::Job::ALL.len());
    for report in &second {
        assert_eq!((report["ran"].clone(), report["changed"].clone()), (json!(true), json!(0)), "{second:?}");
    }
    assert_eq!(app.data(&token, alerts, json!({})).await, listed, "no new alert");
    assert_eq!(cli(&app, &["run-jobs", "customer-status"]).await[0]["changed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_the_jobs_at_their_interval_in_one_process() {
    let backend = Backend::from_env();
    let dir = tempfile::tempdir().unwrap();
    let settings = [("SAAS_WEBHOOK_SECRET", SAAS_SECRET), ("JOB_INTERVAL_SECONDS", "1")];
    let first = TestApp::spawn_with(test_config(&backend, dir.path(), true, &settings), backend.clone()).await;
    let second = TestApp::spawn_with(test_config(&backend, dir.path(), false, &settings), backend.clone()).await;
    let expiry = provider_desk::domain::format_time(&(chrono::Utc::now() + chrono::Duration::days(5)));
    let customer = json!({
        "id": "c960", "serviceProviderId": "sp001", "name": "定时任务测试", "contactPerson": "钱七",
        "phone": "13700000000", "email": "qian@example.com", "region": "上海", "softwareVersion": "基础版",
        "portCount": 1, "purchaseDate": "2024-06-01T00:00:00Z", "expiryDate": expiry,
        "usageMetrics": { "loginFrequency": 50, "featureUsage": 50, "dataInput": 50, "trainingCompletion": 50 }
    });
    let (status, _, _) =
        post_signed(&first, "/integrations/saas/customers", SAAS_SECRET, &json!({ "customers": [customer] })).await;
    assert_eq!(status, 200);

    // Both processes look every second; the alert is written once, by whichever takes the lease.
    let token = second.login(DEMO_A).await;
    let alerts = "{ notifications(type: CUSTOMER_ALERT, pageSize: 100) { items { relatedCustomerId title } } }";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = second.data(&token, alerts, json!({})).await;
        let found = items(&listed["notifications"]).iter().filter(|n| n["relatedCustomerId"] == "c960").count();
        if found > 0 {
            assert_eq!(found, 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the scheduled job never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let listed = second.data(&token, alerts, json!({})).await;
    let found = items(&listed["notifications"]).iter().filter(|n| n["relatedCustomerId"] == "c960").count();
    assert_eq!(found, 1, "later runs change nothing");
    first.stop().await;
    second.stop().await;
    if let Backend::Mongo { mongodb_uri, .. } = &backend {
        drop_database(mongodb_uri, &database_name(dir.path()));
    }
}
