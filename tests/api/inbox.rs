//! The provider's inbox through the real server, over GraphQL, REST and the WebSocket: signed
//! inbound customer messages put a conversation first with its unread count and its waiting
//! start; a reply clears the wait; marking read and unread; the badges query, REST twin and live
//! subscription seeing each step in order and resuming with `after`; paging by number and after a
//! cursor; one provider never seeing another's; and a page costing the same store calls whatever
//! the number of conversations.
//!
//! The demo data gives demo-a conversations with its first 8 customers, each answered by the
//! provider and read; c021 has none until a test writes to it.

use crate::integration::{customer_says, CS_SECRET};
use crate::support::*;
use provider_desk::domain::Id;
use serde_json::{json, Value};

const CONVERSATIONS: &str =
    "query($filter: ConversationFilter!, $page: Int! = 1, $pageSize: Int! = 20, $after: String) {
    conversations(filter: $filter, page: $page, pageSize: $pageSize, after: $after) {
        total page pageSize hasMore
        items {
            customerId unreadCount markedUnread waitingSince cursor
            customer { id name phone status }
            lastMessage { id senderType preview timestamp }
        }
    }
}";
const BADGES: &str = "{ badges { unreadNotifications unreadChatMessages waitingConversations } }";
const BADGES_SUBSCRIPTION: &str = "subscription($after: String) {
    badges(after: $after) { cursor badges { unreadNotifications unreadChatMessages waitingConversations } }
}";
const STATUS_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessageStatus(customerId: $customerId, after: $after) { cursor message { id status } }
}";
const SEND: &str = "mutation($customerId: ID!, $content: String!) {
    sendChatMessage(customerId: $customerId, content: $content) { id timestamp }
}";
const MARK_READ: &str = "mutation($customerId: ID!) {
    markConversationRead(customerId: $customerId) { customerId unreadCount markedUnread waitingSince }
}";
const MARK_UNREAD: &str = "mutation($customerId: ID!) {
    markConversationUnread(customerId: $customerId) { customerId unreadCount markedUnread waitingSince }
}";

async fn inbox_app() -> TestApp {
    TestApp::spawn_configured(&[("CS_WEBHOOK_SECRET", CS_SECRET)]).await
}

async fn conversations(app: &TestApp, token: &str, variables: Value) -> Value {
    app.data(token, CONVERSATIONS, variables).await["conversations"].clone()
}

fn customer_ids(page: &Value) -> Vec<String> {
    items(page).iter().map(|c| str_of(c, "customerId").to_owned()).collect()
}

/// The badges as `[unreadNotifications, unreadChatMessages, waitingConversations]`.
fn numbers(badges: &Value) -> [u64; 3] {
    let number = |field: &str| badges[field].as_u64().unwrap_or_else(|| panic!("{field} in {badges}"));
    [number("unreadNotifications"), number("unreadChatMessages"), number("waitingConversations")]
}

async fn badges(app: &TestApp, token: &str) -> [u64; 3] {
    numbers(&app.data(token, BADGES, json!({})).await["badges"])
}

async fn latest_cursor(app: &TestApp, provider: &str) -> String {
    let provider = Id::parse(provider).expect("a provider id");
    app.services.store.latest_cursor(&provider).await.expect("the store answers").to_string()
}

#[tokio::test]
async fn three_inbound_messages_put_their_conversation_first_with_three_unread_waiting_since_the_first() {
    let app = inbox_app().await;
    let token = app.login("demo-a").await;
    let before = badges(&app, &token).await;
    let first = customer_says(&app, "pc-1", "c021", "你好，系统打不开").await;
    customer_says(&app, "pc-2", "c021", "登录一直转圈").await;
    let third = customer_says(&app, "pc-3", "c021", "麻烦尽快看看，谢谢").await;

    let all = conversations(&app, &token, json!({ "filter": "ALL" })).await;
    let top = &items(&all)[0];
    assert_eq!(str_of(top, "customerId"), "c021", "the latest conversation first: {all}");
    assert_eq!(top["unreadCount"], 3);
    assert_eq!(top["waitingSince"], first["timestamp"], "waiting since the first message");
    assert_eq!(top["lastMessage"]["id"], third["chatMessageId"]);
    assert_eq!(top["lastMessage"]["preview"], "麻烦尽快看看，谢谢");
    assert_eq!(top["lastMessage"]["senderType"], "CUSTOMER");
    assert_eq!(top["customer"]["id"], "c021");
    assert!(str_of(&top["customer"], "phone").contains("****"), "the phone masked as in lists: {top}");
    assert_eq!(total(&all), 9, "the demo's 8 conversations and this one");

    let waiting = conversations(&app, &token, json!({ "filter": "WAITING" })).await;
    assert_eq!(customer_ids(&waiting), ["c021"], "the demo's conversations are all answered");
    let unread = conversations(&app, &token, json!({ "filter": "UNREAD" })).await;
    assert_eq!(customer_ids(&unread), ["c021"]);
    let now = badges(&app, &token).await;
    assert_eq!(now, [before[0], before[1] + 3, before[2] + 1]);

    // The REST twins answer the same.
    let rest = app.get(Some(&token), "/api/chat/conversations?filter=waiting").await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    let listed = &rest.body["data"]["conversations"][0];
    assert_eq!((listed["customerId"].clone(), listed["unreadCount"].clone()), (json!("c021"), json!(3)));
    assert_eq!(listed["waitingSince"], first["timestamp"]);
    assert_eq!(listed["lastMessage"]["content"], "麻烦尽快看看，谢谢");
    assert_eq!(rest.body["data"]["total"], 1);
    let rest = app.get(Some(&token), "/api/badges").await;
    assert_eq!(numbers(&rest.body["data"]), now, "{}", rest.text);
}

#[tokio::test]
async fn a_reply_clears_the_wait_marking_read_and_unread_move_the_counts_and_the_badges_see_each_step_in_order() {
    let app = inbox_app().await;
    let token = app.login("demo-a").await;
    let after = latest_cursor(&app, "sp001").await;
    let mut live = WsClient::connect(&app, &token).await;
    live.subscribe("badges", BADGES_SUBSCRIPTION, json!({ "after": after })).await;
    let mut statuses = WsClient::connect(&app, &token).await;
    statuses.subscribe("status", STATUS_SUBSCRIPTION, json!({ "customerId": "c021", "after": after })).await;
    let [notifications, chat, waiting] = badges(&app, &token).await;

    let said = customer_says(&app, "pc-10", "c021", "在吗？").await;
    let step = live.next_event("badges").await;
    assert_eq!(numbers(&step["badges"]), [notifications, chat + 1, waiting + 1], "a customer writes: {step}");
    let resume_from = str_of(&step, "cursor").to_owned();

    app.data(&token, SEND, json!({ "customerId": "c021", "content": "在的，请说" })).await;
    let step = live.next_event("badges").await;
    assert_eq!(numbers(&step["badges"]), [notifications, chat + 1, waiting], "the reply clears the wait: {step}");
    let all = conversations(&app, &token, json!({ "filter": "ALL" })).await;
    let conversation = &items(&all)[0];
    assert_eq!(
        (conversation["customerId"].clone(), conversation["waitingSince"].clone()),
        (json!("c021"), Value::Null)
    );
    assert_eq!(conversation["unreadCount"], 1, "answering is not reading");

    let read = app.post(Some(&token), "/api/chat/conversations/c021/read", json!({})).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.body["data"]["unreadCount"], 0);
    let step = live.next_event("badges").await;
    assert_eq!(numbers(&step["badges"]), [notifications, chat, waiting], "read: {step}");
    let status = statuses.next_event("status").await;
    assert_eq!(
        (status["message"]["id"].clone(), status["message"]["status"].clone()),
        (said["chatMessageId"].clone(), json!("READ"))
    );

    let unread = app.data(&token, MARK_UNREAD, json!({ "customerId": "c021" })).await["markConversationUnread"].clone();
    assert_eq!((unread["unreadCount"].clone(), unread["markedUnread"].clone()), (json!(1), json!(true)));
    let step = live.next_event("badges").await;
    assert_eq!(numbers(&step["badges"]), [notifications, chat + 1, waiting], "marked unread: {step}");
    let listed = conversations(&app, &token, json!({ "filter": "UNREAD" })).await;
    assert!(customer_ids(&listed).contains(&"c021".to_owned()), "{listed}");

    let again = app.data(&token, MARK_READ, json!({ "customerId": "c021" })).await["markConversationRead"].clone();
    assert_eq!((again["unreadCount"].clone(), again["markedUnread"].clone()), (json!(0), json!(false)));
    let step = live.next_event("badges").await;
    assert_eq!(numbers(&step["badges"]), [notifications, chat, waiting], "read again: {step}");

    let unread_notification = app
        .data(&token, "{ notifications(readStatus: UNREAD, pageSize: 1) { items { id } } }", json!({}))
        .await["notifications"]["items"][0]["id"]
        .clone();
    let path = format!("/api/messages/{}/read", unread_notification.as_str().expect("an unread notification"));
    assert_eq!(app.post(Some(&token), &path, json!({})).await.status, 200);
    let step = live.next_event("badges").await;
    assert_eq!(numbers(&step["badges"]), [notifications - 1, chat, waiting], "a notification read: {step}");
    let last_cursor = str_of(&step, "cursor").to_owned();

    // Resuming after the first step: what moved meanwhile comes as one push of the numbers of now.
    let mut resumed = WsClient::connect(&app, &token).await;
    resumed.subscribe("badges", BADGES_SUBSCRIPTION, json!({ "after": resume_from })).await;
    let caught_up = resumed.next_event("badges").await;
    assert_eq!(numbers(&caught_up["badges"]), [notifications - 1, chat, waiting], "{caught_up}");
    assert_eq!(str_of(&caught_up, "cursor"), last_cursor, "up to the latest event");
    customer_says(&app, "pc-11", "c021", "还有一个问题").await;
    let next = resumed.next_event("badges").await;
    assert_eq!(numbers(&next["badges"]), [notifications - 1, chat + 1, waiting + 1], "then live: {next}");
}

#[tokio::test]
async fn pages_by_number_and_after_a_cursor_cover_the_inbox_once_and_bad_arguments_are_refused() {
    let app = inbox_app().await;
    let token = app.login("demo-a").await;
    customer_says(&app, "pc-20", "c021", "你好").await;
    let whole = conversations(&app, &token, json!({ "filter": "ALL", "pageSize": 100 })).await;
    let mut walked = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = conversations(&app, &token, json!({ "filter": "ALL", "pageSize": 4, "after": after })).await;
        walked.extend(customer_ids(&page));
        if page["hasMore"] != true {
            break;
        }
        after = items(&page).last().expect("a full page")["cursor"].clone();
    }
    assert_eq!(walked, customer_ids(&whole), "after a cursor, neither repeated nor skipped");
    let second = conversations(&app, &token, json!({ "filter": "ALL", "page": 2, "pageSize": 4 })).await;
    assert_eq!(customer_ids(&second), customer_ids(&whole)[4..8]);

    let refused = app.graphql(Some(&token), CONVERSATIONS, json!({ "filter": "ALL", "after": "nonsense" })).await;
    assert_error(&refused, "BAD_USER_INPUT");
    let both = json!({ "filter": "ALL", "page": 2, "after": items(&whole)[0]["cursor"] });
    assert_error(&app.graphql(Some(&token), CONVERSATIONS, both).await, "BAD_USER_INPUT");
    let rest = app.get(Some(&token), "/api/chat/conversations?filter=SOMETIMES").await;
    assert_eq!(rest.status, 400, "{}", rest.text);
    // A customer who never wrote has no conversation to mark.
    let none = app.post(Some(&token), "/api/chat/conversations/c025/read", json!({})).await;
    assert_eq!(none.status, 404, "{}", none.text);
}

#[tokio::test]
async fn demo_b_sees_none_of_demo_a_conversations_and_cannot_mark_them() {
    let app = inbox_app().await;
    let (a, b) = (app.login("demo-a").await, app.login("demo-b").await);
    let b_before = badges(&app, &b).await;
    customer_says(&app, "pc-30", "c021", "你好").await;
    let theirs = customer_ids(&conversations(&app, &a, json!({ "filter": "ALL", "pageSize": 100 })).await);
    let mine = customer_ids(&conversations(&app, &b, json!({ "filter": "ALL", "pageSize": 100 })).await);
    assert!(!mine.is_empty(), "demo-b has its own demo conversations");
    assert!(mine.iter().all(|c| !theirs.contains(c)), "none of demo-a's: {mine:?} / {theirs:?}");
    assert_eq!(badges(&app, &b).await, b_before, "demo-a's customer moved nothing of demo-b's");
    for mutation in [MARK_READ, MARK_UNREAD] {
        assert_error(&app.graphql(Some(&b), mutation, json!({ "customerId": "c021" })).await, "NOT_FOUND");
    }
    let conversation = "query { conversation(customerId: \"c021\") { unreadCount } }";
    assert_error(&app.graphql(Some(&b), conversation, json!({})).await, "NOT_FOUND");
    assert_eq!(app.post(Some(&b), "/api/chat/conversations/c021/unread", json!({})).await.status, 404);
    let kept = app.data(&a, conversation, json!({})).await;
    assert_eq!(kept["conversation"]["unreadCount"], 1, "untouched by demo-b");
}

#[tokio::test]
async fn an_inbox_page_costs_the_same_store_calls_with_8_conversations_as_with_30() {
    let app = inbox_app().await;
    let token = app.login("demo-a").await;
    let mut costs = Vec::new();
    for grow in [false, true] {
        if grow {
            let customers = app.data(&token, "{ customers(pageSize: 100) { items { id } } }", json!({})).await;
            for (n, customer) in items(&customers["customers"]).iter().enumerate() {
                customer_says(&app, &format!("pc-grow-{n}"), str_of(customer, "id"), "你好").await;
            }
        }
        // The fewest of three: a loaded machine may split one batched read (see tickets.rs).
        let mut fewest = u64::MAX;
        let mut page = Value::Null;
        for _ in 0..3 {
            let before = app.store_round_trips();
            page = conversations(&app, &token, json!({ "filter": "ALL", "pageSize": 8 })).await;
            fewest = fewest.min(app.store_round_trips() - before);
        }
        assert_eq!(items(&page).len(), 8, "a full page");
        costs.push((total(&page), fewest));
    }
    assert_eq!((costs[0].0, costs[1].0), (8, 30), "{costs:?}");
    assert_eq!(costs[0].1, costs[1].1, "30 conversations cost what 8 do: {costs:?}");
    assert!(costs[1].1 <= 3, "the summaries and their customers: {costs:?}");
}
