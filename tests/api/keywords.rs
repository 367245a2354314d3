//! A search keyword holding a NUL or another control character is the client's mistake: 400
//! BAD_REQUEST over REST and BAD_USER_INPUT over GraphQL, with a Chinese message, on either store
//! (never a 500 from MongoDB's `$regex`).

use crate::support::*;
use serde_json::json;

const CONTROL_KEYWORDS: [&str; 6] = ["c001\u{0}", "\u{0}", "客户\r\n名", "a\u{7}b", "x\u{1b}[31m", "名\u{7f}"];

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn a_keyword_with_a_control_character_is_a_bad_request_over_rest() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for keyword in CONTROL_KEYWORDS {
        let answer = app.get(Some(&token), &format!("/api/customers?keyword={}", percent_encode(keyword))).await;
        assert_eq!(answer.status, 400, "{keyword:?}: {}", answer.text);
        assert_eq!(answer.body["code"], 400, "{keyword:?}: {}", answer.text);
        assert!(answer.body["data"].is_null(), "{keyword:?}: {}", answer.text);
        let message = answer.body["message"].as_str().unwrap_or_default();
        assert!(message.contains("控制字符"), "{keyword:?}: the message names the problem: {}", answer.text);
    }
    let answer = app.get(Some(&token), "/api/customers?keyword=%20%E5%AE%A2%E6%88%B7%20").await;
    assert_eq!(answer.status, 200, "an ordinary keyword is still served: {}", answer.text);
}

#[tokio::test]
async fn a_keyword_with_a_control_character_is_bad_user_input_over_graphql() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for keyword in CONTROL_KEYWORDS {
        let body = app
            .graphql(Some(&token), "query($k: String) { customers(keyword: $k) { total } }", json!({ "k": keyword }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{keyword:?}: {body}");
        assert!(has_chinese(&error_message(&body)), "{keyword:?}: {body}");
        assert!(body["data"].is_null(), "{keyword:?}: {body}");
    }
    let data = app.data(&token, "{ customers(keyword: \"\\n\\t\") { total } }", json!({})).await;
    assert_eq!(data["customers"]["total"], 30, "a keyword of only blanks is no filter, as before");
}
