//! Notifications (the spec's "messages", 3.4): the list with its filters and unread count, one
//! notification, marking read one or all, and the provider boundary.

use crate::support::*;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const FIELDS: &str = "id serviceProviderId type title content relatedCustomerId relatedCustomerName \
    relatedTicketId readStatus createdAt readAt";

const TYPES: [&str; 3] = ["SYSTEM_NOTIFICATION", "CUSTOMER_ALERT", "TICKET_UPDATE"];

fn list_query() -> String {
    format!(
        "query($page: Int = 1, $pageSize: Int = 10, $type: NotificationType, $readStatus: ReadStatus) {{
            notifications(page: $page, pageSize: $pageSize, type: $type, readStatus: $readStatus) {{
                total page pageSize unreadCount items {{ {FIELDS} }}
            }}
        }}"
    )
}

fn detail_query() -> String {
    format!("query($id: ID!) {{ notification(id: $id) {{ {FIELDS} }} }}")
}

fn mark_query() -> String {
    format!("mutation($id: ID!) {{ markNotificationRead(id: $id) {{ {FIELDS} }} }}")
}

const MARK_ALL: &str = "mutation { markAllNotificationsRead { success markedCount updatedAt } }";
const UNREAD_COUNT: &str = "{ notifications(pageSize: 1) { unreadCount } }";

/// The `notifications` page for the given variables (which must succeed).
async fn list(app: &TestApp, token: &str, variables: Value) -> Value {
    app.data(token, &list_query(), variables).await["notifications"].clone()
}

async fn unread_count(app: &TestApp, token: &str) -> u64 {
    let data = app.data(token, UNREAD_COUNT, json!({})).await;
    data["notifications"]["unreadCount"].as_u64().expect("an unread count")
}

/// The newest unread notification of the provider.
async fn an_unread_notification(app: &TestApp, token: &str) -> Value {
    let page = list(app, token, json!({ "readStatus": "UNREAD", "pageSize": 1 })).await;
    items(&page).first().cloned().unwrap_or_else(|| panic!("the demo data has unread notifications: {page}"))
}

// --- the list ---

#[tokio::test]
async fn the_list_runs_newest_first() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let page = list(&app, &token, json!({ "pageSize": 100 })).await;
    let found = items(&page);
    assert!(found.len() > 10, "the demo data has a good number of notifications");
    assert_eq!(total(&page), found.len() as u64);
    let times: Vec<DateTime<Utc>> = found.iter().map(|n| time(n, "createdAt")).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "createdAt descending: {times:?}");
}

#[tokio::test]
async fn the_list_defaults_to_the_first_page_of_ten() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app.data(&token, "{ notifications { total page pageSize items { id } } }", json!({})).await;
    let page = &data["notifications"];
    assert_eq!(page["page"], 1);
    assert_eq!(page["pageSize"], 10);
    assert_eq!(items(page).len(), 10);
    assert!(total(page) > 10);
}

#[tokio::test]
async fn the_unread_count_is_the_number_of_unread_notifications() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = list(&app, &token, json!({})).await;
    let unread = list(&app, &token, json!({ "readStatus": "UNREAD", "pageSize": 100 })).await;
    assert!(total(&unread) > 0, "the demo data has unread notifications");
    assert_eq!(everything["unreadCount"], unread["total"]);
    assert!(items(&unread).iter().all(|n| n["readStatus"] == "UNREAD" && n["readAt"].is_null()), "{unread}");
}

#[tokio::test]
async fn the_type_filters_return_only_their_type_and_together_cover_the_list() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = total(&list(&app, &token, json!({})).await);
    let mut sum = 0;
    for kind in TYPES {
        let page = list(&app, &token, json!({ "type": kind, "pageSize": 100 })).await;
        assert!(total(&page) > 0, "the demo data has {kind} notifications");
        assert_eq!(items(&page).len() as u64, total(&page));
        assert!(items(&page).iter().all(|n| n["type"] == kind), "only {kind}: {page}");
        sum += total(&page);
    }
    assert_eq!(sum, everything);
}

#[tokio::test]
async fn the_read_status_filters_return_only_their_status_and_together_cover_the_list() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let everything = total(&list(&app, &token, json!({})).await);
    let mut sum = 0;
    for status in ["UNREAD", "READ"] {
        let page = list(&app, &token, json!({ "readStatus": status, "pageSize": 100 })).await;
        assert!(total(&page) > 0, "the demo data has {status} notifications");
        assert!(items(&page).iter().all(|n| n["readStatus"] == status), "only {status}: {page}");
        sum += total(&page);
    }
    assert_eq!(sum, everything);
}

#[tokio::test]
async fn type_and_read_status_filters_combine() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let unread = total(&list(&app, &token, json!({ "readStatus": "UNREAD" })).await);
    let mut sum = 0;
    for kind in TYPES {
        let page = list(&app, &token, json!({ "type": kind, "readStatus": "UNREAD", "pageSize": 100 })).await;
        assert!(items(&page).iter().all(|n| n["type"] == kind && n["readStatus"] == "UNREAD"), "{page}");
        sum += total(&page);
    }
    assert_eq!(sum, unread);
}

// --- one notification ---

#[tokio::test]
async fn a_notification_has_every_field_of_the_spec() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let tickets = list(&app, &token, json!({ "type": "TICKET_UPDATE", "pageSize": 1 })).await;
    let listed = &items(&tickets)[0];
    let id = listed["id"].as_str().unwrap();

    let detail = app.data(&token, &detail_query(), json!({ "id": id })).await["notification"].clone();
    assert_eq!(&detail, listed, "the detail is what the list shows");
    assert_eq!(detail["serviceProviderId"], "sp001");
    assert_eq!(detail["type"], "TICKET_UPDATE");
    for field in ["title", "content", "relatedCustomerName"] {
        assert!(detail[field].as_str().is_some_and(|s| !s.is_empty()), "{field}: {detail}");
    }
    let customer = detail["relatedCustomerId"].as_str().expect("a related customer");
    let ticket = detail["relatedTicketId"].as_str().expect("a related ticket");
    assert!(["UNREAD", "READ"].contains(&detail["readStatus"].as_str().unwrap()));
    time(&detail, "createdAt");

    // The related ids lead to the provider's customer and ticket.
    let related = app
        .data(
            &token,
            "query($c: ID!, $t: ID!) { customer(id: $c) { name } ticket(id: $t) { customerId } }",
            json!({ "c": customer, "t": ticket }),
        )
        .await;
    assert_eq!(related["customer"]["name"], detail["relatedCustomerName"]);
    assert_eq!(related["ticket"]["customerId"], customer);
}

#[tokio::test]
async fn a_system_notification_has_no_related_customer_or_ticket() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let page = list(&app, &token, json!({ "type": "SYSTEM_NOTIFICATION" })).await;
    for notification in items(&page) {
        assert!(notification["relatedCustomerId"].is_null(), "{notification}");
        assert!(notification["relatedCustomerName"].is_null(), "{notification}");
        assert!(notification["relatedTicketId"].is_null(), "{notification}");
    }
}

#[tokio::test]
async fn an_unknown_notification_is_not_found() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = app.graphql(Some(&token), &detail_query(), json!({ "id": "m999999" })).await;
    assert_error(&body, "NOT_FOUND");
    let body = app.graphql(Some(&token), &mark_query(), json!({ "id": "m999999" })).await;
    assert_error(&body, "NOT_FOUND");
}

// --- marking read ---

#[tokio::test]
async fn marking_an_unread_notification_read_sets_read_at_and_lowers_the_unread_count_by_one() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = unread_count(&app, &token).await;
    let target = an_unread_notification(&app, &token).await;
    let started = Utc::now() - chrono::Duration::seconds(1);

    let marked = app.data(&token, &mark_query(), json!({ "id": target["id"] })).await["markNotificationRead"].clone();
    assert_eq!(marked["id"], target["id"]);
    assert_eq!(marked["readStatus"], "READ");
    let read_at = time(&marked, "readAt");
    assert!(read_at >= started && read_at <= Utc::now(), "read just now: {read_at}");
    assert_eq!(unread_count(&app, &token).await, before - 1);

    let detail = app.data(&token, &detail_query(), json!({ "id": target["id"] })).await;
    assert_eq!(detail["notification"]["readStatus"], "READ");
    assert_eq!(detail["notification"]["readAt"], marked["readAt"]);
}

#[tokio::test]
async fn marking_a_read_notification_again_keeps_its_first_read_time_and_the_count() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let target = an_unread_notification(&app, &token).await;
    let first = app.data(&token, &mark_query(), json!({ "id": target["id"] })).await["markNotificationRead"].clone();
    let after_first = unread_count(&app, &token).await;

    // Times have whole seconds: wait for the clock to move on so a new read time would show.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = app.data(&token, &mark_query(), json!({ "id": target["id"] })).await["markNotificationRead"].clone();
    assert_eq!(second["readStatus"], "READ");
    assert_eq!(second["readAt"], first["readAt"], "the first read time stays");
    assert_eq!(unread_count(&app, &token).await, after_first);
}

#[tokio::test]
async fn marking_all_read_marks_exactly_the_unread_ones() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = unread_count(&app, &token).await;
    assert!(before > 0);
    let already_read = list(&app, &token, json!({ "readStatus": "READ", "pageSize": 100 })).await;

    let result = app.data(&token, MARK_ALL, json!({})).await["markAllNotificationsRead"].clone();
    assert_eq!(result["success"], true);
    assert_eq!(result["markedCount"].as_u64(), Some(before));
    time(&result, "updatedAt");
    assert_eq!(unread_count(&app, &token).await, 0);
    let unread = list(&app, &token, json!({ "readStatus": "UNREAD" })).await;
    assert_eq!(unread["total"], 0);

    // Those read before keep their own read time.
    let read = list(&app, &token, json!({ "readStatus": "READ", "pageSize": 100 })).await;
    for earlier in items(&already_read) {
        let now = items(&read).iter().find(|n| n["id"] == earlier["id"]).expect("still listed");
        assert_eq!(now["readAt"], earlier["readAt"], "{}", earlier["id"]);
    }
}

#[tokio::test]
async fn marking_all_read_a_second_time_marks_nothing() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    app.data(&token, MARK_ALL, json!({})).await;
    let again = app.data(&token, MARK_ALL, json!({})).await;
    assert_eq!(again["markAllNotificationsRead"]["markedCount"], 0);
    assert_eq!(again["markAllNotificationsRead"]["success"], true);
}

#[tokio::test]
async fn marking_all_read_leaves_another_providers_notifications_unread() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let before_b = unread_count(&app, &token_b).await;
    assert!(before_b > 0);
    app.data(&token_a, MARK_ALL, json!({})).await;
    assert_eq!(unread_count(&app, &token_a).await, 0);
    assert_eq!(unread_count(&app, &token_b).await, before_b);
}

// --- the provider boundary ---

#[tokio::test]
async fn another_provider_cannot_read_a_notification() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let target = an_unread_notification(&app, &token_a).await;
    let body = app.graphql(Some(&token_b), &detail_query(), json!({ "id": target["id"] })).await;
    assert_error(&body, "NOT_FOUND");
}

#[tokio::test]
async fn another_provider_cannot_mark_a_notification_read() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let target = an_unread_notification(&app, &token_a).await;
    let before_a = unread_count(&app, &token_a).await;

    let body = app.graphql(Some(&token_b), &mark_query(), json!({ "id": target["id"] })).await;
    assert_error(&body, "NOT_FOUND");

    let detail = app.data(&token_a, &detail_query(), json!({ "id": target["id"] })).await;
    assert_eq!(detail["notification"]["readStatus"], "UNREAD");
    assert!(detail["notification"]["readAt"].is_null());
    assert_eq!(unread_count(&app, &token_a).await, before_a);
}

#[tokio::test]
async fn a_provider_lists_only_its_own_notifications() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let token_b = app.login(DEMO_B).await;
    let a = list(&app, &token_a, json!({ "pageSize": 100 })).await;
    let b = list(&app, &token_b, json!({ "pageSize": 100 })).await;
    assert!(items(&a).iter().all(|n| n["serviceProviderId"] == "sp001"), "{a}");
    assert!(items(&b).iter().all(|n| n["serviceProviderId"] == "sp002"), "{b}");
    let ids_a: Vec<&Value> = items(&a).iter().map(|n| &n["id"]).collect();
    assert!(items(&b).iter().all(|n| !ids_a.contains(&&n["id"])), "no notification is shared");
}

// --- signing in ---

#[tokio::test]
async fn notifications_need_a_signed_in_provider() {
    let app = TestApp::spawn().await;
    let token_a = app.login(DEMO_A).await;
    let target = an_unread_notification(&app, &token_a).await;
    let before = unread_count(&app, &token_a).await;
    let garbage = "not-a-token";
    for token in [None, Some(garbage)] {
        let body = app.graphql(token, &list_query(), json!({})).await;
        assert_error(&body, "UNAUTHENTICATED");
        let body = app.graphql(token, &detail_query(), json!({ "id": target["id"] })).await;
        assert_error(&body, "UNAUTHENTICATED");
        let body = app.graphql(token, &mark_query(), json!({ "id": target["id"] })).await;
        assert_error(&body, "UNAUTHENTICATED");
        let body = app.graphql(token, MARK_ALL, json!({})).await;
        assert_error(&body, "UNAUTHENTICATED");
    }
    assert_eq!(unread_count(&app, &token_a).await, before, "nothing was marked");
}
