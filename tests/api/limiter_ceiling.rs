//! The in-process limiter holds at most `MEMORY_LIMITER_MAX_KEYS` entries, and a flood of new
//! addresses makes it evict, but never a ban while anything else can go. (With Redis, on the
//! MongoDB pass, the same test holds: Redis keeps every key until it expires.)

use crate::support::*;

#[tokio::test]
async fn a_ban_holds_while_more_addresses_than_the_limiter_can_hold_call() {
    let app = TestApp::spawn_configured(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("MEMORY_LIMITER_MAX_KEYS", "1000"),
        ("AUTO_BAN_AFTER_BAD_REQUESTS", "3"),
    ])
    .await;
    let hostile = "198.51.100.7";
    for _ in 0..3 {
        let malformed = app.send(None, &Request::post_raw("/graphql", "not json").forwarded_for(hostile)).await;
        assert_eq!(malformed.status, 400, "{}", malformed.text);
    }
    let banned = app.send(None, &Request::get("/api/customers").forwarded_for(hostile)).await;
    assert_eq!(banned.status, 429, "banned after three malformed requests: {}", banned.text);

    // Three times the ceiling of distinct addresses, each one request: each is a new rate key.
    for n in 0..3_000u32 {
        let client = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
        let answer = app.send(None, &Request::get("/api/customers").forwarded_for(&client)).await;
        assert_eq!(answer.status, 401, "{client}: a new address is served: {}", answer.text);
    }

    let still = app.send(None, &Request::get("/api/customers").forwarded_for(hostile)).await;
    assert_eq!(still.status, 429, "the ban outlived the flood: {}", still.text);
    let ordinary = app.send(None, &Request::get("/api/customers").forwarded_for("203.0.113.9")).await;
    assert_eq!(ordinary.status, 401, "and the server still serves everyone else: {}", ordinary.text);
}
