//! IPv6 clients are limited and banned by their /64: a host gets a whole /64 and can pick any
//! address in it. Addresses come through `X-Forwarded-For` from a trusted proxy (the test client).

use crate::support::*;

async fn get_from(app: &TestApp, client: &str, path: &str) -> Answer {
    app.send(None, &Request::get(path).forwarded_for(client)).await
}

#[tokio::test]
async fn two_addresses_in_one_ipv6_64_share_a_rate_limit_and_another_64_does_not() {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_IP_PER_MINUTE", "1"),
        ("RATE_LIMIT_IP_BURST", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("AUTO_BAN_AFTER_REFUSALS", "0"),
    ])
    .await;
    assert_eq!(get_from(&app, "2001:db8:1:2::1", "/api/customers").await.status, 401);
    assert_eq!(get_from(&app, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "/api/customers").await.status, 401);
    let refused = get_from(&app, "2001:db8:1:2::ffff", "/api/customers").await;
    assert_eq!(refused.status, 429, "the third request of the /64, from a third address: {}", refused.text);
    assert!(refused.retry_after() >= 1);
    let other = get_from(&app, "2001:db8:1:3::1", "/api/customers").await;
    assert_eq!(other.status, 401, "the next /64 has its own allowance: {}", other.text);
    let v4 = get_from(&app, "198.51.100.1", "/api/customers").await;
    assert_eq!(v4.status, 401, "IPv4 clients are still keyed by address: {}", v4.text);
}

#[tokio::test]
async fn a_ban_earned_by_one_ipv6_address_covers_its_64_and_not_the_next() {
    let app =
        TestApp::spawn_configured(&[("TRUSTED_PROXIES", "127.0.0.1"), ("AUTO_BAN_AFTER_BAD_REQUESTS", "3")]).await;
    for client in ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6::3"] {
        let malformed = app.send(None, &Request::post_raw("/graphql", "not json").forwarded_for(client)).await;
        assert_eq!(malformed.status, 400, "{client}: {}", malformed.text);
    }
    let banned = get_from(&app, "2001:db8:5:6:ffff::1", "/api/customers").await;
    assert_eq!(banned.status, 429, "three malformed requests from one /64 ban all of it: {}", banned.text);
    assert_eq!(get_from(&app, "2001:db8:5:7::1", "/api/customers").await.status, 401, "the next /64 is not banned");
}
