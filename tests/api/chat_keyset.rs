//! Chat history by keyset (#17): `before`/`after` a message id on `chatMessages` and on
//! `GET /api/chat/messages`. Scrolling back while messages arrive gives the conversation exactly
//! once, in order; catching up after a reconnect with `after` gives exactly what was sent
//! meanwhile; a cursor that is not a message of the conversation is refused; `page` keeps working.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;

const WINDOW: &str = "query($customerId: ID!, $page: Int = 1, $pageSize: Int = 20, $before: ID, $after: ID) {
    chatMessages(customerId: $customerId, page: $page, pageSize: $pageSize, before: $before, after: $after) {
        total page pageSize hasMore items { id content }
    }
}";

const SEND: &str = "mutation($customerId: ID!, $content: String!) { sendChatMessage(customerId: $customerId, content: $content) { id } }";

async fn window(app: &TestApp, token: &str, variables: Value) -> Value {
    app.data(token, WINDOW, variables).await["chatMessages"].clone()
}

async fn send(app: &TestApp, token: &str, customer: &str, content: &str) -> String {
    let sent = app.data(token, SEND, json!({ "customerId": customer, "content": content })).await;
    str_of(&sent["sendChatMessage"], "id").to_owned()
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| str_of(m, "id").to_owned()).collect()
}

/// The whole conversation, oldest first, from one page of a hundred.
async fn conversation(app: &TestApp, token: &str, customer: &str) -> Vec<String> {
    let page = window(app, token, json!({ "customerId": customer, "pageSize": 100 })).await;
    assert_eq!(total(&page), items(&page).len() as u64, "one page holds the conversation");
    assert_eq!(page["hasMore"], false);
    ids(items(&page))
}

fn assert_no_repeats(joined: &[String]) {
    let unique: HashSet<&String> = joined.iter().collect();
    assert_eq!(unique.len(), joined.len(), "no message twice: {joined:?}");
}

#[tokio::test]
async fn scrolling_back_by_before_while_messages_arrive_gives_the_conversation_exactly_once_then_after_catches_up() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    for n in 1..=7 {
        send(&app, &token, "c002", &format!("历史消息{n}")).await;
    }
    let shown = conversation(&app, &token, "c002").await;
    assert!(shown.len() > 9, "more than three windows of three: {}", shown.len());

    let latest = window(&app, &token, json!({ "customerId": "c002", "pageSize": 3 })).await;
    assert_eq!(latest["hasMore"], true);
    let mut joined = ids(items(&latest));
    let mut arrived = Vec::new();
    loop {
        // A message arrives while the provider scrolls back: with `page` it would push every
        // older page one message further and repeat one; with `before` nothing moves.
        arrived.push(send(&app, &token, "c002", &format!("新消息{}", arrived.len() + 1)).await);
        let older = window(&app, &token, json!({ "customerId": "c002", "pageSize": 3, "before": joined[0] })).await;
        assert_eq!((older["page"].clone(), older["pageSize"].clone()), (json!(1), json!(3)));
        assert_eq!(total(&older), (shown.len() + arrived.len()) as u64, "the total counts the arrivals");
        assert!(items(&older).len() <= 3);
        let found = ids(items(&older));
        joined.splice(0..0, found);
        if older["hasMore"] == false {
            break;
        }
    }
    assert_no_repeats(&joined);
    assert_eq!(joined, shown, "the conversation as it was when scrolling began, exactly, in order");

    // Back online: catch up from the newest message shown, two at a time.
    let mut caught_up = Vec::new();
    let mut newest = shown.last().expect("messages").clone();
    loop {
        let newer = window(&app, &token, json!({ "customerId": "c002", "pageSize": 2, "after": newest })).await;
        caught_up.extend(ids(items(&newer)));
        if let Some(last) = caught_up.last() {
            newest = last.clone();
        }
        if newer["hasMore"] == false {
            break;
        }
    }
    assert_eq!(caught_up, arrived, "after gives exactly the messages sent meanwhile, oldest first");
    let everything = conversation(&app, &token, "c002").await;
    assert_eq!(everything, [shown, arrived].concat(), "and page 1 now ends with them");
}

#[tokio::test]
async fn the_rest_history_scrolls_back_by_before_and_catches_up_by_after_while_messages_arrive() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let path = |size: u32, query: &str| format!("/api/chat/messages?customerId=c003&pageSize={size}{query}");
    let fetch = |query: String| {
        let (app, token) = (&app, &token);
        async move {
            let answer = app.get(Some(token), &query).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.body);
            let data = answer.body["data"].clone();
            let keys: Vec<&String> = data.as_object().map(|o| o.keys().collect()).unwrap_or_default();
            assert_eq!(keys, ["messages", "total", "page", "pageSize"], "the spec's fields exactly: {data}");
            data
        }
    };
    let send_rest = |content: String| {
        let (app, token) = (&app, &token);
        async move {
            let answer =
                app.post(Some(token), "/api/chat/send", json!({ "customerId": "c003", "content": content })).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            str_of(&answer.body["data"], "messageId").to_owned()
        }
    };
    for n in 1..=4 {
        send_rest(format!("历史消息{n}")).await;
    }
    let whole = fetch(path(100, "")).await;
    let shown = ids(whole["messages"].as_array().expect("messages"));
    assert!(shown.len() > 4 && shown.len() as u64 == total(&whole), "one page holds the conversation: {whole}");

    let mut joined = ids(fetch(path(2, "")).await["messages"].as_array().expect("messages"));
    let mut arrived = Vec::new();
    loop {
        arrived.push(send_rest(format!("新消息{}", arrived.len() + 1)).await);
        let older = fetch(path(2, &format!("&before={}", joined[0]))).await;
        let found = ids(older["messages"].as_array().expect("messages"));
        let ended = found.len() < 2;
        joined.splice(0..0, found);
        // REST keeps the spec's fields: a window shorter than pageSize is the beginning.
        if ended {
            break;
        }
    }
    assert_no_repeats(&joined);
    assert_eq!(joined, shown, "the conversation as it was, exactly, in order");

    let mut caught_up: Vec<String> = Vec::new();
    loop {
        let newest = caught_up.last().unwrap_or_else(|| shown.last().expect("messages")).clone();
        let newer = fetch(path(2, &format!("&after={newest}"))).await;
        let found = ids(newer["messages"].as_array().expect("messages"));
        let ended = found.len() < 2;
        caught_up.extend(found);
        if ended {
            break;
        }
    }
    assert_eq!(caught_up, arrived, "after gives exactly the messages sent meanwhile");
}

#[tokio::test]
async fn a_cursor_outside_the_conversation_or_with_a_later_page_or_both_cursors_are_bad_input() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let own = conversation(&app, &token_a, "c002").await;
    let other_customer = conversation(&app, &token_a, "c001").await;
    let other_provider = conversation(&app, &token_b, "c031").await;
    let cases = [
        (json!({ "customerId": "c002", "before": other_customer[0] }), "before", "another customer's message"),
        (json!({ "customerId": "c002", "after": other_provider[0] }), "after", "another provider's message"),
        (json!({ "customerId": "c002", "before": "cm-none" }), "before", "no message"),
        (json!({ "customerId": "c002", "before": "c002' OR '1'='1" }), "before", "a malformed id"),
        (json!({ "customerId": "c002", "before": own[1], "after": own[0] }), "after", "both cursors"),
        (json!({ "customerId": "c002", "before": own[1], "page": 2 }), "page", "a cursor and page 2"),
    ];
    for (variables, field, case) in &cases {
        let body = app.graphql(Some(&token_a), WINDOW, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{case}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], *field, "{case}: {body}");
        assert!(has_chinese(&error_message(&body)), "{case}: {body}");
        assert!(body["data"].is_null(), "{case}: nothing of the conversation: {body}");
    }
    // Over REST, the same refusals as a 400 naming the parameter.
    let refused = [
        (format!("&before={}", other_customer[0]), "before"),
        (format!("&after={}", other_provider[0]), "after"),
        (format!("&before={}&after={}", own[1], own[0]), "after"),
        (format!("&before={}&page=2", own[1]), "page"),
    ];
    for (query, parameter) in refused {
        let answer = app.get(Some(&token_a), &format!("/api/chat/messages?customerId=c002{query}")).await;
        assert_eq!((answer.status, answer.body["code"].clone()), (400, json!(400)), "{query}: {}", answer.body);
        assert!(answer.body["data"].is_null(), "{query}: {}", answer.body);
        let message = str_of(&answer.body, "message");
        assert!(has_chinese(message) && message.contains(parameter), "{query}: names {parameter}: {message}");
    }
    // Demo-b cannot use demo-a's message to read demo-a's conversation.
    let body = app.graphql(Some(&token_b), WINDOW, json!({ "customerId": "c002", "before": own[1] })).await;
    assert_error(&body, "NOT_FOUND");
}

#[tokio::test]
async fn page_one_with_a_cursor_is_the_window_and_pages_by_number_say_whether_older_ones_remain() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = conversation(&app, &token, "c001").await;
    let count = everything.len();
    assert!(count >= 3, "a conversation of a few messages: {count}");
    let newest = everything.last().unwrap();
    let explicit =
        window(&app, &token, json!({ "customerId": "c001", "page": 1, "pageSize": 2, "before": newest })).await;
    assert_eq!(ids(items(&explicit)), everything[count - 3..count - 1], "the two before the newest");
    assert_eq!(explicit["hasMore"], json!(count > 3));
    let first = window(&app, &token, json!({ "customerId": "c001", "pageSize": 1, "before": everything[0] })).await;
    assert_eq!((items(&first).len(), first["hasMore"].clone()), (0, json!(false)), "nothing before the first");

    let pages = count.div_ceil(2) as i64;
    for page in 1..=pages {
        let found = window(&app, &token, json!({ "customerId": "c001", "page": page, "pageSize": 2 })).await;
        assert_eq!(found["hasMore"], json!(page < pages), "page {page} of {pages}");
    }
}

#[tokio::test]
async fn the_openapi_document_shows_before_and_after_on_the_chat_history() {
    let app = TestApp::spawn().await;
    let document = app.get(None, "/api/openapi.json").await.body;
    let parameters = document["paths"]["/api/chat/messages"]["get"]["parameters"].as_array().expect("parameters");
    for name in ["customerId", "page", "pageSize", "before", "after"] {
        let parameter =
            parameters.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}: {parameters:?}"));
        assert_eq!(parameter["in"], "query", "{parameter}");
        assert_eq!(parameter["required"], json!(name == "customerId"), "{parameter}");
    }
}
