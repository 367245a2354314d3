//! A customer's typing signal received by one server process reaches a `typing` subscriber of
//! another over Redis (never through the store: typing is in no log), and the once-a-second
//! throttle holds across the two processes.

use crate::bus::shared_deployment;
use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "a-webhook-secret-of-the-test";
const TYPING_SUBSCRIPTION: &str = "subscription($customerId: ID) { typing(customerId: $customerId) { customerId at } }";

/// Posts the signed typing signal of `customer`; answers the envelope.
async fn customer_typing(server: &ServerProcess, customer: &str) -> Value {
    let body = json!({ "customerId": customer }).to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = provider_desk::integration::signature::sign(SECRET.as_bytes(), &timestamp, body.as_bytes());
    let response = reqwest::Client::new()
        .post(format!("{}/integrations/cs/typing", server.address))
        .header("content-type", "application/json")
        .header("x-pd-timestamp", timestamp)
        .header("x-pd-signature", signature)
        .body(body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 200);
    response.json().await.expect("an envelope")
}

#[tokio::test]
async fn a_customers_typing_received_by_one_process_reaches_a_subscriber_of_another_over_redis() {
    let data = tempfile::tempdir().expect("a data directory");
    let backend = Backend::from_env();
    let settings = with_settings(shared_deployment(&backend, data.path()), &[("CS_WEBHOOK_SECRET", SECRET)]);
    let first = ServerProcess::start_with(&settings, data.path(), backend.clone()).await;
    let second = ServerProcess::start_with(&settings, data.path(), backend.clone()).await;
    let token = first.login(DEMO_A).await;
    let mut subscriber = WsClient::connect(&second, &token).await;
    subscriber.subscribe("typing", TYPING_SUBSCRIPTION, json!({ "customerId": "c002" })).await;

    // Signalled to the first process, again each second until the subscription (live only) is up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let event = loop {
        let answer = customer_typing(&first, "c002").await;
        assert_eq!(answer["data"]["serviceProviderId"], "sp001", "{answer}");
        if let Some(message) = subscriber.next_message_or_quiet(Duration::from_millis(1100)).await {
            break message;
        }
        assert!(tokio::time::Instant::now() < deadline, "the second process's subscriber never saw c002 typing");
    };
    assert_eq!((event["type"].as_str(), event["id"].as_str()), (Some("next"), Some("typing")), "{event}");
    assert_eq!(event["payload"]["data"]["typing"]["customerId"], "c002", "{event}");

    // One throttle for both processes: the same customer through the other one within the second.
    let first_answer = customer_typing(&first, "c003").await;
    let second_answer = customer_typing(&second, "c003").await;
    assert_eq!(
        (first_answer["data"]["forwarded"].clone(), second_answer["data"]["forwarded"].clone()),
        (json!(true), json!(false)),
        "{first_answer} {second_answer}"
    );
    drop((first, second));
    if let Backend::Mongo { mongodb_uri, .. } = backend {
        drop_database(&mongodb_uri, &database_name(data.path()));
    }
}
