//! Inbound webhooks with a bad signature count toward the sender address's ban like any malformed
//! request, and a barrage of them leaves a line or two in the log, not one warning each.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "a-webhook-secret-of-the-test";
const PATH: &str = "/integrations/cs/messages";

async fn post_badly_signed(server: &ServerProcess, client: &str) -> u16 {
    let body = json!({ "messageId": "pc-1", "customerId": "c001", "content": "你好" }).to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = provider_desk::integration::signature::sign(b"not-the-shared-secret", &timestamp, body.as_bytes());
    reqwest::Client::new()
        .post(format!("{}{PATH}", server.address))
        .header("content-type", "application/json")
        .header("x-forwarded-for", client)
        .header("x-pd-timestamp", timestamp)
        .header("x-pd-signature", signature)
        .body(body)
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn enough_bad_webhook_signatures_from_one_address_ban_it_with_one_warning_and_no_flood() {
    let mut server = ServerProcess::start(&[
        ("LOG_FORMAT", "json"),
        ("CS_WEBHOOK_SECRET", SECRET),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("AUTO_BAN_AFTER_BAD_REQUESTS", "5"),
    ])
    .await;
    let attacker = "203.0.113.7";
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(post_badly_signed(&server, attacker).await);
    }
    assert_eq!(statuses[..5], [401; 5], "refused for the signature until the fifth: {statuses:?}");
    assert!(statuses[5..].iter().all(|status| *status == 429), "then banned: {statuses:?}");
    assert_eq!(post_badly_signed(&server, "203.0.113.8").await, 401, "another address is not banned");

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30)).await.expect("the server exits after SIGTERM");
    let entries: Vec<Value> =
        server.stdout_lines().iter().filter_map(|line| serde_json::from_str::<Value>(line).ok()).collect();
    let about_attacker: Vec<&Value> =
        entries.iter().filter(|entry| entry["message"] != "request" && entry.to_string().contains(attacker)).collect();
    let warnings: Vec<&&Value> = about_attacker.iter().filter(|entry| entry["level"] == "WARN").collect();
    assert_eq!(warnings.len(), 1, "one warning, the ban: {warnings:#?}");
    assert!(warnings[0].to_string().contains("bad_signature"), "the ban names the reason: {}", warnings[0]);
    assert!(about_attacker.len() <= 2, "the first bad signature and the ban, not one line each: {about_attacker:#?}");
    let refused = entries.iter().filter(|entry| entry.to_string().contains("an inbound webhook was refused")).count();
    assert_eq!(refused, 0, "no line per refused webhook at the default level");
}
