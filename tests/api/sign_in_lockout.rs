//! The sign-in lockout cannot be turned against a provider: failures count per (username,
//! address) for the refusal, so another address hammering a username with bad passwords is
//! refused itself while the provider keeps signing in from its usual address, and from a new one.
//!
//! On `TEST_BACKEND=mongo` the limiter is Redis's; on SQLite the in-process one.

use crate::support::*;
use serde_json::json;

const USUAL: &str = "203.0.113.7";
const ATTACKER: &str = "198.51.100.66";
const NEW_PLACE: &str = "192.0.2.40";

async fn sign_in_from(app: &Api, password: &str, client: &str) -> Answer {
    let body = json!({ "username": DEMO_A, "password": password });
    app.send(None, &Request::post("/api/auth/login", body).forwarded_for(client)).await
}

#[tokio::test]
async fn a_provider_keeps_signing_in_from_its_usual_address_while_another_hammers_its_username() {
    let app = TestApp::spawn_configured(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("LOGIN_SLOW_AFTER_FAILURES", "2"),
        ("LOGIN_FAILURE_DELAY_MS", "20"),
        ("LOGIN_MAX_FAILURES_PER_USERNAME", "3"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    assert_eq!(sign_in_from(&app, DEMO_PASSWORD, USUAL).await.status, 200, "the provider's usual address");

    let mut refused = 0;
    for round in 0..8 {
        let guess = sign_in_from(&app, "guess-password", ATTACKER).await;
        match guess.status {
            401 => assert!(round < 3, "the attacker's fourth guess is refused: {}", guess.body),
            429 => refused += 1,
            other => panic!("a guess is refused or wrong, not {other}: {}", guess.body),
        }
        let own = sign_in_from(&app, DEMO_PASSWORD, USUAL).await;
        assert_eq!(own.status, 200, "round {round}: the provider signs in from its usual address: {}", own.body);
        let token = str_of(&own.body["data"], "token").to_owned();
        assert_eq!(app.get(Some(&token), "/api/customers").await.status, 200);
    }
    assert_eq!(refused, 5, "the attacker's address is refused once over the limit");
    let right = sign_in_from(&app, DEMO_PASSWORD, ATTACKER).await;
    assert_eq!(right.status, 429, "even with the right password, from the attacker's address: {}", right.body);
    let elsewhere = sign_in_from(&app, DEMO_PASSWORD, NEW_PLACE).await;
    assert_eq!(elsewhere.status, 200, "the provider signs in from a new address too (slowed): {}", elsewhere.body);
}
