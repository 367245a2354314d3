//! Typing indicators, both ways, through the real server: the provider's `typing` (GraphQL and
//! `POST /api/chat/typing`) reaches a test webhook receiver as `chat.typing` once a second and
//! leaves no outbox row, queues nothing without the PC webhook, and is dropped when it cannot be
//! sent in time; the customer's signed `POST /integrations/cs/typing` reaches the `typing`
//! subscription of the customer's provider and no other, and nothing is written to the event log.

use crate::integration::{integrated, pairs, post_signed, post_signed_at, Receiver, CS_SECRET};
use crate::support::*;
use provider_desk::domain::Id;
use provider_desk::store::OutboxCounts;
use serde_json::{json, Value};
use std::time::Duration;

const TYPING: &str = "mutation($customerId: ID!) { typing(customerId: $customerId) }";
const TYPING_SUBSCRIPTION: &str = "subscription($customerId: ID) { typing(customerId: $customerId) { customerId at } }";
/// How long a test waits for anything that should happen soon.
const WAIT: Duration = Duration::from_secs(20);

async fn latest_cursor(app: &TestApp, provider: &str) -> u64 {
    let provider = Id::parse(provider).expect("a provider id");
    app.services.store.latest_cursor(&provider).await.expect("the store answers")
}

/// The outbox's counts once they are `wanted`, or the last ones after [`WAIT`].
async fn outbox_once(app: &TestApp, wanted: OutboxCounts) -> OutboxCounts {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // A store busy with other tests may not answer one of these in time: asked again.
        let counts = app.services.store.outbox_counts().await.ok();
        if counts == Some(wanted) || tokio::time::Instant::now() > deadline {
            return counts.expect("the store answers");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn typing_hooks(receiver: &Receiver) -> Vec<Value> {
    receiver.webhooks().iter().map(|hook| hook.json()).filter(|body| body["type"] == "chat.typing").collect()
}

/// Signals that `customer` is typing, again every second, until subscription `id` of `ws` sees
/// it (a subscription starts a moment after it is asked for, and typing is never replayed);
/// answers the event. Every message the connection receives meanwhile must be that signal.
pub(crate) async fn typing_until_seen(app: &TestApp, ws: &mut WsClient, id: &str, customer: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, _, answer) =
            post_signed(app, "/integrations/cs/typing", CS_SECRET, &json!({ "customerId": customer })).await;
        assert_eq!(status, 200, "{answer}");
        // Other typing subscriptions of the connection may see the signal too: skipped.
        while let Some(message) = ws.next_message_or_quiet(Duration::from_millis(1100)).await {
            assert_eq!(message["type"], "next", "{message}");
            let event = message["payload"]["data"]["typing"].clone();
            assert_eq!(event["customerId"], customer, "{message}");
            if message["id"] == id {
                return event;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "subscription {id} never saw {customer} typing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_typing_reaches_the_pc_system_once_a_second_and_leaves_no_outbox_row() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_configured(&pairs(&integrated(&receiver, &[]))).await;
    let token = app.login(DEMO_A).await;
    let cursor = latest_cursor(&app, "sp001").await;

    let first = app.data(&token, TYPING, json!({ "customerId": "c001" })).await;
    assert_eq!(first["typing"], true, "forwarded");
    let again = app.data(&token, TYPING, json!({ "customerId": "c001" })).await;
    assert_eq!(again["typing"], false, "within a second: not forwarded, and not an error");

    receiver.wait_for("a chat.typing webhook", |r| !r.is_empty()).await;
    let hook = receiver.webhooks().into_iter().next().expect("a webhook");
    assert!(hook.signed, "signed like every webhook: {hook:?}");
    let body = hook.json();
    assert_eq!((body["type"].as_str(), body["customerId"].as_str()), (Some("chat.typing"), Some("c001")), "{body}");
    assert_eq!(body["serviceProviderId"], "sp001");
    assert_eq!(
        (body["data"]["customerId"].as_str(), body["data"]["serviceProviderId"].as_str()),
        (Some("c001"), Some("sp001"))
    );
    assert!(time(&body["data"], "at") <= chrono::Utc::now(), "{body}");
    assert_eq!(
        outbox_once(&app, OutboxCounts::default()).await,
        OutboxCounts::default(),
        "delivered and gone: not kept in the outbox's history"
    );

    // The REST twin, for another customer (its own second).
    let answer = app.post(Some(&token), "/api/chat/typing", json!({ "customerId": "c002" })).await;
    assert_eq!(
        (answer.status, answer.body["data"].clone(), answer.body["message"].clone()),
        (200, json!(true), json!("已接收"))
    );
    let answer = app.post(Some(&token), "/api/chat/typing", json!({ "customerId": "c002" })).await;
    assert_eq!((answer.status, answer.body["data"].clone()), (200, json!(false)), "{}", answer.text);
    receiver.wait_for("c002's chat.typing", |_| typing_hooks(&receiver).len() >= 2).await;
    assert_eq!(outbox_once(&app, OutboxCounts::default()).await, OutboxCounts::default());

    // Own customers only; nothing in the event log; one webhook per forwarded call.
    let refused = app.graphql(Some(&token), TYPING, json!({ "customerId": "c031" })).await;
    assert_error(&refused, "NOT_FOUND");
    let answer = app.post(Some(&token), "/api/chat/typing", json!({ "customerId": "c031" })).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let hooks = typing_hooks(&receiver);
    assert_eq!(hooks.iter().map(|h| h["customerId"].clone()).collect::<Vec<_>>(), [json!("c001"), json!("c002")]);
    assert_eq!(latest_cursor(&app, "sp001").await, cursor, "nothing written to the events");
    let metrics = app.metrics().await;
    for outcome in ["forwarded", "throttled"] {
        let series = format!("typing_signals_total{{direction=\"out\",outcome=\"{outcome}\"}} ");
        assert!(metrics.lines().any(|line| line.starts_with(&series)), "{series} in {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_pc_webhook_typing_is_accepted_and_nothing_is_queued() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let cursor = latest_cursor(&app, "sp001").await;
    assert_eq!(app.data(&token, TYPING, json!({ "customerId": "c001" })).await["typing"], true);
    assert_eq!(app.services.store.outbox_counts().await.unwrap(), OutboxCounts::default());
    assert_eq!(latest_cursor(&app, "sp001").await, cursor);
    let audit = app.data(&token, "{ auditLog(pageSize: 50) { items { operation } } }", json!({})).await;
    assert!(
        items(&audit["auditLog"]).iter().all(|entry| entry["operation"] != "typing"),
        "a keystroke signal leaves no audit entry: {audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_delivery_not_sent_within_its_ttl_is_dropped_not_kept_as_a_dead_letter() {
    // A PC system that is down: every attempt fails, and the delivery is retried until it expires.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/hooks/cs", closed.local_addr().unwrap().port());
    drop(closed);
    let receiver = Receiver::start().await;
    let mut settings = integrated(&receiver, &[]);
    // Retried every second or two (not the other tests' 50 ms), which is enough to see it dropped.
    let slower = ["CS_WEBHOOK_URL", "OUTBOX_BASE_DELAY_MS", "OUTBOX_MAX_DELAY_MS", "OUTBOX_POLL_INTERVAL_MS"];
    settings.retain(|(name, _)| !slower.contains(&name.as_str()));
    for (name, value) in [
        ("CS_WEBHOOK_URL", url.as_str()),
        ("OUTBOX_BASE_DELAY_MS", "1000"),
        ("OUTBOX_MAX_DELAY_MS", "2000"),
        ("OUTBOX_POLL_INTERVAL_MS", "500"),
    ] {
        settings.push((name.into(), value.into()));
    }
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login(DEMO_A).await;

    assert_eq!(app.data(&token, TYPING, json!({ "customerId": "c001" })).await["typing"], true);
    let queued = app.services.store.outbox_counts().await.unwrap();
    assert_eq!(queued, OutboxCounts { pending: 1, delivered: 0, dead: 0 }, "queued while it may still be sent");
    assert_eq!(outbox_once(&app, OutboxCounts::default()).await, OutboxCounts::default(), "dropped once stale");
    assert!(app.services.store.dead_letters(10).await.unwrap().is_empty(), "never a dead letter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_typing_reaches_its_providers_subscription_only_and_is_not_stored() {
    let app = TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET)]).await;
    let (token_a, token_b) = (app.login(DEMO_A).await, app.login(DEMO_B).await);
    let cursors = (latest_cursor(&app, "sp001").await, latest_cursor(&app, "sp002").await);
    let mut provider_a = WsClient::connect(&app, &token_a).await;
    provider_a.subscribe("typing", TYPING_SUBSCRIPTION, json!({})).await;
    let mut provider_b = WsClient::connect(&app, &token_b).await;
    provider_b.subscribe("typing", TYPING_SUBSCRIPTION, json!({})).await;
    // Both subscriptions live, each seeing its own customer.
    let seen = typing_until_seen(&app, &mut provider_b, "typing", "c031").await;
    assert_eq!(seen["customerId"], "c031");
    let seen = typing_until_seen(&app, &mut provider_a, "typing", "c001").await;
    assert_eq!(seen["customerId"], "c001");
    assert!(time(&seen, "at") <= chrono::Utc::now());

    // Within a second of that: accepted, not forwarded.
    let (status, _, answer) =
        post_signed(&app, "/integrations/cs/typing", CS_SECRET, &json!({ "customerId": "c001" })).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"], json!({ "customerId": "c001", "serviceProviderId": "sp001", "forwarded": false }));
    // c001 reached demo-a only: demo-b's next signal is its own customer's, not c001's.
    let seen = typing_until_seen(&app, &mut provider_b, "typing", "c032").await;
    assert_eq!(seen["customerId"], "c032", "demo-b never sees demo-a's customer");

    // A subscription to one customer; another provider's customer is NOT_FOUND.
    provider_a.subscribe("c002", TYPING_SUBSCRIPTION, json!({ "customerId": "c002" })).await;
    let seen = typing_until_seen(&app, &mut provider_a, "c002", "c002").await;
    assert_eq!(seen["customerId"], "c002");
    provider_a.subscribe("theirs", TYPING_SUBSCRIPTION, json!({ "customerId": "c031" })).await;
    // (The subscription to all of demo-a's customers saw c002 too: skipped.)
    let refused = loop {
        let message = provider_a.next_message().await;
        if message["id"] == "theirs" {
            break message;
        }
        assert_eq!(message["payload"]["data"]["typing"]["customerId"], "c002", "{message}");
    };
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{refused}");

    // Refused: a bad signature (401), an unknown customer (404), not an object (400).
    let path = "/integrations/cs/typing";
    let bytes = json!({ "customerId": "c001" }).to_string().into_bytes();
    let (status, _, answer) =
        post_signed_at(&app, path, "not-the-shared-secret", chrono::Utc::now().timestamp(), &bytes).await;
    assert_eq!((status, answer["code"].clone()), (401, json!(401)), "{answer}");
    let (status, _, answer) = post_signed(&app, path, CS_SECRET, &json!({ "customerId": "c999" })).await;
    assert_eq!((status, answer["code"].clone()), (404, json!(404)), "{answer}");
    assert!(has_chinese(answer["message"].as_str().unwrap_or_default()));
    assert_eq!(post_signed_at(&app, path, CS_SECRET, chrono::Utc::now().timestamp(), b"[1]").await.0, 400);

    let after = (latest_cursor(&app, "sp001").await, latest_cursor(&app, "sp002").await);
    assert_eq!(after, cursors, "typing is never written to the events");
}
