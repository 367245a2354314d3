//! Quick replies (canned replies, issue #18) through the real GraphQL and REST endpoints: kept,
//! listed, read, updated (compare-and-set on the version) and deleted; the cap of 200 a provider
//! and the content limit; a short code once per provider; only the three placeholders; one
//! provider's replies never another's; and a reply sent as a chat message or a ticket reply with
//! its placeholders filled in (and refused when the filled text no longer fits the message).

use crate::support::*;
use serde_json::{json, Value};

const FIELDS: &str = "id shortCode title content createdAt updatedAt version";

/// demo-a's seeded canned replies: `greeting`, `renewal`, `thanks`, `remote`.
const SEEDED_OF_A: [&str; 4] = ["cr001", "cr002", "cr003", "cr004"];

fn list_query() -> String {
    format!("query($page: Int = 1, $pageSize: Int = 20) {{ cannedReplies(page: $page, pageSize: $pageSize) {{ total page pageSize items {{ {FIELDS} }} }} }}")
}

fn get_query() -> String {
    format!("query($id: ID!) {{ cannedReply(id: $id) {{ {FIELDS} }} }}")
}

fn create_query() -> String {
    format!(
        "mutation($shortCode: String!, $title: String!, $content: String!) {{
            createCannedReply(shortCode: $shortCode, title: $title, content: $content) {{ {FIELDS} }}
        }}"
    )
}

fn update_query() -> String {
    format!(
        "mutation($id: ID!, $version: Int!, $shortCode: String, $title: String, $content: String) {{
            updateCannedReply(id: $id, version: $version, shortCode: $shortCode, title: $title, content: $content) {{ {FIELDS} }}
        }}"
    )
}

const DELETE: &str = "mutation($id: ID!) { deleteCannedReply(id: $id) { success id } }";

const SEND: &str = "mutation($customerId: ID!, $content: String, $cannedReplyId: ID) {
    sendChatMessage(customerId: $customerId, content: $content, cannedReplyId: $cannedReplyId) {
        id customerName content senderType
    }
}";

const REPLY: &str = "mutation($id: ID!, $content: String, $cannedReplyId: ID) {
    replyTicket(id: $id, content: $content, cannedReplyId: $cannedReplyId) { ticketId replyId content operatorName }
}";

/// Creates a canned reply through GraphQL (which must succeed) and answers it.
async fn create(app: &TestApp, token: &str, short_code: &str, content: &str) -> Value {
    let variables = json!({ "shortCode": short_code, "title": format!("标题 {short_code}"), "content": content });
    app.data(token, &create_query(), variables).await["createCannedReply"].clone()
}

async fn list(app: &TestApp, token: &str) -> Value {
    app.data(token, &list_query(), json!({ "pageSize": 100 })).await["cannedReplies"].clone()
}

fn short_codes(page: &Value) -> Vec<&str> {
    items(page).iter().map(|reply| str_of(reply, "shortCode")).collect()
}

/// What the placeholders stand for with demo-a and its customer `c001`: the customer's name, its
/// contact person, the provider's name.
async fn names_of_c001(app: &TestApp, token: &str) -> (String, String, String) {
    let data = app.data(token, r#"{ customer(id: "c001") { name contactPerson } me { name } }"#, json!({})).await;
    let customer = &data["customer"];
    (
        str_of(customer, "name").to_owned(),
        str_of(customer, "contactPerson").to_owned(),
        str_of(&data["me"], "name").to_owned(),
    )
}

async fn chat_total(app: &TestApp, token: &str, customer: &str) -> u64 {
    let query = "query($c: ID!) { chatMessages(customerId: $c, pageSize: 1) { total } }";
    total(&app.data(token, query, json!({ "c": customer })).await["chatMessages"])
}

/// What demo-b's refused requests could have changed: its replies, chat with c031, ticket t037.
async fn snapshot_of_b(app: &TestApp, token: &str) -> Value {
    let query = format!(
        "{{ cannedReplies(pageSize: 100) {{ items {{ {FIELDS} }} }}
            chatMessages(customerId: \"c031\", pageSize: 1) {{ total }}
            ticket(id: \"t037\") {{ status processingHistory {{ id }} }} }}"
    );
    app.data(token, &query, json!({})).await
}

/// A REST failure with `status`, the envelope's code repeating it; answers the message.
fn rest_refused(answer: &Answer, status: u16, context: &str) -> String {
    assert_eq!(answer.status, status, "{context}: {}", answer.text);
    assert_eq!(answer.body["code"], json!(status), "{context}: {}", answer.text);
    assert!(answer.body["data"].is_null(), "{context}: {}", answer.text);
    answer.body["message"].as_str().unwrap_or_default().to_owned()
}

/// The `data` of a REST call that must succeed.
fn rest_data(answer: &Answer, context: &str) -> Value {
    assert_eq!(answer.status, 200, "{context}: {}", answer.text);
    assert_eq!(answer.body["code"], json!(200), "{context}: {}", answer.text);
    answer.body["data"].clone()
}

#[tokio::test]
async fn canned_replies_are_created_listed_read_updated_and_deleted_through_graphql() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let seeded = list(&app, &token).await;
    assert_eq!(short_codes(&seeded), ["greeting", "remote", "renewal", "thanks"], "seeded, by short code");
    assert!(str_of(&items(&seeded)[0], "content").contains("{customerName}"), "placeholders kept: {seeded}");

    let created = create(&app, &token, "Bye-2", "再见，{contactPerson}").await;
    assert_eq!((created["shortCode"].clone(), created["version"].clone()), (json!("Bye-2"), json!(0)), "case kept");
    let id = str_of(&created, "id").to_owned();
    let listed = list(&app, &token).await;
    assert_eq!(total(&listed), 5);
    assert_eq!(short_codes(&listed)[0], "Bye-2", "by short code (upper case sorts first)");
    let read = app.data(&token, &get_query(), json!({ "id": id })).await;
    assert_eq!(read["cannedReply"], created, "read as created");

    let update = json!({ "id": id, "version": 0, "title": "告别", "content": "{customerName}，再见" });
    let updated = app.data(&token, &update_query(), update.clone()).await["updateCannedReply"].clone();
    assert_eq!(updated["version"], 1, "{updated}");
    assert_eq!((updated["title"].clone(), updated["content"].clone()), (json!("告别"), json!("{customerName}，再见")));
    assert_eq!(updated["shortCode"], "Bye-2", "a field left out keeps its value");
    assert_eq!(updated["createdAt"], created["createdAt"]);

    let stale = app.graphql(Some(&token), &update_query(), json!({ "id": id, "version": 0, "title": "过时" })).await;
    assert_error(&stale, "CONFLICT");
    assert!(error_message(&stale).contains("已被修改"), "a clear message: {stale}");
    let kept = app.data(&token, &get_query(), json!({ "id": id })).await;
    assert_eq!(kept["cannedReply"], updated, "the stale update changed nothing");

    let deleted = app.data(&token, DELETE, json!({ "id": id })).await;
    assert_eq!(deleted["deleteCannedReply"], json!({ "success": true, "id": id }));
    assert_error(&app.graphql(Some(&token), DELETE, json!({ "id": id })).await, "NOT_FOUND");
    assert_error(&app.graphql(Some(&token), &get_query(), json!({ "id": id })).await, "NOT_FOUND");
    assert_eq!(total(&list(&app, &token).await), 4);
}

#[tokio::test]
async fn canned_replies_are_created_listed_read_updated_and_deleted_through_rest() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let body = json!({ "shortCode": "visit", "title": "上门", "content": "{contactPerson}您好，明天上门。" });
    let created = rest_data(&app.post(Some(&token), "/api/canned-replies", body).await, "POST");
    assert_eq!(created["version"], 0, "{created}");
    let id = str_of(&created, "id").to_owned();
    let path = format!("/api/canned-replies/{id}");

    let page = rest_data(&app.get(Some(&token), "/api/canned-replies?pageSize=2&page=3").await, "GET list");
    assert_eq!((page["total"].clone(), page["page"].clone(), page["pageSize"].clone()), (json!(5), json!(3), json!(2)));
    let last: Vec<&Value> = page["cannedReplies"].as_array().expect("cannedReplies").iter().collect();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["shortCode"], "visit", "by short code, the last page holds the rest");
    assert_eq!(rest_data(&app.get(Some(&token), &path).await, "GET one"), created);

    let put = |body: Value| Request::new("PUT", path.clone()).json(body);
    let updated = rest_data(&app.send(Some(&token), &put(json!({ "version": 0, "title": "上门服务" }))).await, "PUT");
    assert_eq!((updated["title"].clone(), updated["version"].clone()), (json!("上门服务"), json!(1)));
    assert_eq!(updated["content"], created["content"], "a field left out keeps its value");
    let stale = app.send(Some(&token), &put(json!({ "version": 0, "title": "过时" }))).await;
    assert!(rest_refused(&stale, 409, "a stale PUT").contains("已被修改"));
    let missing = app.send(Some(&token), &put(json!({ "title": "无版本" }))).await;
    assert!(rest_refused(&missing, 400, "a PUT without version").contains("version"));

    // A PUT's body passes the same edge as a POST's: too large is 413, nested too deep 400.
    let huge = format!(r#"{{"version": 1, "title": "{}"}}"#, "长".repeat(40_000));
    rest_refused(&app.send(Some(&token), &Request::new("PUT", path.clone()).raw(huge)).await, 413, "a huge PUT");
    let deep = format!(r#"{{"version": 1, "title": {}1{}}}"#, "[".repeat(200), "]".repeat(200));
    rest_refused(&app.send(Some(&token), &Request::new("PUT", path.clone()).raw(deep)).await, 400, "a deep PUT");

    let deleted = rest_data(&app.send(Some(&token), &Request::new("DELETE", path.clone())).await, "DELETE");
    assert_eq!(deleted, json!({ "success": true, "id": id }));
    rest_refused(&app.get(Some(&token), &path).await, 404, "GET once deleted");
    rest_refused(&app.send(Some(&token), &Request::new("DELETE", path.clone())).await, 404, "deleted twice");
}

#[tokio::test]
async fn a_provider_keeps_at_most_200_canned_replies_with_content_of_at_most_2000_characters() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let longest = "好".repeat(2000);
    let created = create(&app, &token, "longest", &longest).await;
    assert_eq!(created["content"].as_str().map(|c| c.chars().count()), Some(2000));
    let too_long = json!({ "shortCode": "toolong", "title": "长", "content": format!("{longest}好") });
    let refused = app.graphql(Some(&token), &create_query(), too_long).await;
    assert_error(&refused, "BAD_USER_INPUT");
    assert!(error_message(&refused).contains("2000"), "{refused}");
    let edit = json!({ "id": created["id"], "version": 0, "content": format!("{longest}好") });
    assert_error(&app.graphql(Some(&token), &update_query(), edit).await, "BAD_USER_INPUT");

    let mut kept = total(&list(&app, &token).await);
    while kept < 200 {
        create(&app, &token, &format!("code-{kept:03}"), "{customerName}您好").await;
        kept += 1;
    }
    let over = json!({ "shortCode": "one-more", "title": "多一条", "content": "您好" });
    let refused = app.graphql(Some(&token), &create_query(), over.clone()).await;
    assert_error(&refused, "CONFLICT");
    assert!(error_message(&refused).contains("200"), "the message names the cap: {refused}");
    rest_refused(&app.post(Some(&token), "/api/canned-replies", over).await, 409, "the 201st over REST");
    assert_eq!(total(&list(&app, &token).await), 200, "nothing stored past the cap");

    let other = app.login(DEMO_B).await;
    create(&app, &other, "one-more", "您好").await;
}

#[tokio::test]
async fn a_taken_short_code_is_a_conflict_and_a_bad_short_code_or_placeholder_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let taken = json!({ "shortCode": "greeting", "title": "又一个问候", "content": "您好" });
    assert_error(&app.graphql(Some(&token), &create_query(), taken.clone()).await, "CONFLICT");
    rest_refused(&app.post(Some(&token), "/api/canned-replies", taken).await, 409, "a taken code over REST");
    let rename = json!({ "id": "cr002", "version": 0, "shortCode": "greeting" });
    assert_error(&app.graphql(Some(&token), &update_query(), rename).await, "CONFLICT");

    // The field the error names, and what its message must say.
    for (short_code, content, field, said) in [
        ("has space", "您好", "shortCode", "快捷短语编码"),
        ("快捷", "您好", "shortCode", "快捷短语编码"),
        (&"x".repeat(33) as &str, "您好", "shortCode", "32"),
        ("price", "您好{customerName}，优惠价{price}", "content", "{price}"),
        ("mixed", "{CustomerName}", "content", "{CustomerName}"),
        ("blank", "   ", "content", "快捷短语内容"),
    ] {
        let body = json!({ "shortCode": short_code, "title": "标题", "content": content });
        let refused = app.graphql(Some(&token), &create_query(), body.clone()).await;
        assert_error(&refused, "BAD_USER_INPUT");
        assert_eq!(refused["errors"][0]["extensions"]["field"], field, "{body}: {refused}");
        assert!(error_message(&refused).contains(said), "{body}: says {said}: {refused}");
        let rest = app.post(Some(&token), "/api/canned-replies", body.clone()).await;
        assert!(rest_refused(&rest, 400, &body.to_string()).contains(said));
    }
    assert_eq!(total(&list(&app, &token).await), 4, "nothing stored");
}

#[tokio::test]
async fn demo_b_sees_none_of_demo_a_canned_replies_and_gets_not_found_on_their_ids() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.login(DEMO_A).await, app.login(DEMO_B).await);
    let of_a = create(&app, &a, "only-a", "{customerName}您好").await;
    let mut ids_of_a: Vec<String> = SEEDED_OF_A.iter().map(|id| id.to_string()).collect();
    ids_of_a.push(str_of(&of_a, "id").to_owned());

    let seen_by_b = list(&app, &b).await;
    assert_eq!(total(&seen_by_b), 4, "demo-b's own seeded replies only");
    let rest_list = rest_data(&app.get(Some(&b), "/api/canned-replies?pageSize=100").await, "GET as demo-b");
    for reply in items(&seen_by_b).iter().chain(rest_list["cannedReplies"].as_array().expect("a list")) {
        assert!(!ids_of_a.contains(&str_of(reply, "id").to_owned()), "demo-b sees demo-a's {reply}");
    }

    let before = snapshot_of_b(&app, &b).await;
    for id in &ids_of_a {
        let reached = [
            app.graphql(Some(&b), &get_query(), json!({ "id": id })).await,
            app.graphql(Some(&b), &update_query(), json!({ "id": id, "version": 0, "title": "B" })).await,
            app.graphql(Some(&b), DELETE, json!({ "id": id })).await,
            app.graphql(Some(&b), SEND, json!({ "customerId": "c031", "cannedReplyId": id })).await,
            app.graphql(Some(&b), REPLY, json!({ "id": "t037", "cannedReplyId": id })).await,
        ];
        for answer in reached {
            assert_error(&answer, "NOT_FOUND");
        }
        let path = format!("/api/canned-replies/{id}");
        rest_refused(&app.get(Some(&b), &path).await, 404, "GET as demo-b");
        let put = Request::new("PUT", path.clone()).json(json!({ "version": 0, "title": "B" }));
        rest_refused(&app.send(Some(&b), &put).await, 404, "PUT as demo-b");
        rest_refused(&app.send(Some(&b), &Request::new("DELETE", path)).await, 404, "DELETE as demo-b");
        let send = json!({ "customerId": "c031", "cannedReplyId": id });
        rest_refused(&app.post(Some(&b), "/api/chat/send", send).await, 404, "send as demo-b");
        let reply = json!({ "cannedReplyId": id });
        rest_refused(&app.post(Some(&b), "/api/tickets/t037/reply", reply).await, 404, "reply as demo-b");
    }
    assert_eq!(snapshot_of_b(&app, &b).await, before, "nothing sent, no ticket changed, no reply touched");
    assert_eq!(total(&list(&app, &a).await), 5, "demo-a's replies all still there");
    let untouched = app.data(&a, &get_query(), json!({ "id": "cr001" })).await;
    assert_eq!(untouched["cannedReply"]["version"], 0);
}

#[tokio::test]
async fn a_canned_reply_with_placeholders_is_sent_filled_in_as_a_chat_message() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let (customer, contact, provider) = names_of_c001(&app, &token).await;
    let reply =
        create(&app, &token, "all-three", "{customerName}的{contactPerson}您好，我是{providerName}。{customerName}")
            .await;
    let expected = format!("{customer}的{contact}您好，我是{provider}。{customer}");

    let sent = app.data(&token, SEND, json!({ "customerId": "c001", "cannedReplyId": reply["id"] })).await;
    assert_eq!(sent["sendChatMessage"]["content"], json!(expected), "filled in: {sent}");
    assert_eq!(sent["sendChatMessage"]["senderType"], "SERVICE_PROVIDER");
    let latest = app
        .data(&token, r#"{ chatMessages(customerId: "c001", pageSize: 1) { items { id content } } }"#, json!({}))
        .await;
    assert_eq!(latest["chatMessages"]["items"][0]["id"], sent["sendChatMessage"]["id"]);
    assert_eq!(latest["chatMessages"]["items"][0]["content"], json!(expected), "stored filled in");

    let greeting = format!("您好{customer}，我是{provider}的客服，请问有什么可以帮您？");
    let keyed = Request::post("/api/chat/send", json!({ "customerId": "c001", "cannedReplyId": "cr001" }))
        .header("Idempotency-Key", "greet-c001");
    let before = chat_total(&app, &token, "c001").await;
    let first = rest_data(&app.send(Some(&token), &keyed).await, "REST send with a canned reply");
    assert_eq!(first["content"], json!(greeting), "the seeded greeting, filled: {first}");
    assert_eq!(first["customerName"], json!(customer));
    let again = rest_data(&app.send(Some(&token), &keyed).await, "the retry");
    assert_eq!(again["messageId"], first["messageId"], "a retry with the key answers the first message");
    assert_eq!(chat_total(&app, &token, "c001").await, before + 1, "sent once");
    let stored = app
        .data(&token, r#"{ chatMessages(customerId: "c001", pageSize: 1) { items { id content } } }"#, json!({}))
        .await;
    assert_eq!(stored["chatMessages"]["items"][0]["content"], json!(greeting));

    let only_text = rest_data(
        &app.post(Some(&token), "/api/chat/send", json!({ "customerId": "c001", "content": "{customerName}" })).await,
        "plain content",
    );
    assert_eq!(only_text["content"], "{customerName}", "typed text is sent as written, never filled");
}

#[tokio::test]
async fn a_canned_reply_with_placeholders_is_sent_filled_in_as_a_ticket_reply() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let ticket = app.data(&token, r#"{ ticket(id: "t001") { customerId } }"#, json!({})).await;
    let customer_id = str_of(&ticket["ticket"], "customerId").to_owned();
    let names = app
        .data(
            &token,
            "query($id: ID!) { customer(id: $id) { name contactPerson } me { name } }",
            json!({ "id": customer_id }),
        )
        .await;
    let (customer, contact, provider) =
        (str_of(&names["customer"], "name"), str_of(&names["customer"], "contactPerson"), str_of(&names["me"], "name"));
    let reply =
        create(&app, &token, "ticket-done", "{contactPerson}您好，{customerName}的问题{providerName}已处理").await;
    let expected = format!("{contact}您好，{customer}的问题{provider}已处理");

    let replied = app.data(&token, REPLY, json!({ "id": "t001", "cannedReplyId": reply["id"] })).await;
    assert_eq!(replied["replyTicket"]["content"], json!(expected), "filled for the ticket's customer: {replied}");
    let history =
        app.data(&token, r#"{ ticket(id: "t001") { processingHistory { action content } } }"#, json!({})).await;
    let last = history["ticket"]["processingHistory"].as_array().and_then(|h| h.last().cloned()).expect("a history");
    assert_eq!(last["content"], json!(expected), "stored filled in: {history}");

    let thanks = format!("感谢{customer}的耐心等待，问题已处理完毕，如有其他问题请随时联系{provider}。");
    let answer = app.post(Some(&token), "/api/tickets/t001/reply", json!({ "cannedReplyId": "cr003" })).await;
    assert_eq!(rest_data(&answer, "REST reply with a canned reply")["content"], json!(thanks));
}

#[tokio::test]
async fn both_or_neither_content_and_canned_reply_id_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let before = app.snapshot(&token).await;
    let cases = [
        (json!({ "customerId": "c001" }), "content"),
        (json!({ "customerId": "c001", "content": "您好", "cannedReplyId": "cr001" }), "cannedReplyId"),
    ];
    for (variables, named) in cases {
        let refused = app.graphql(Some(&token), SEND, variables.clone()).await;
        assert_error(&refused, "BAD_USER_INPUT");
        assert!(error_message(&refused).contains(named), "{variables}: names {named}: {refused}");
        let rest = app.post(Some(&token), "/api/chat/send", variables.clone()).await;
        assert!(rest_refused(&rest, 400, &variables.to_string()).contains(named));

        let mut reply = variables.clone();
        reply.as_object_mut().unwrap().remove("customerId");
        let refused = app.graphql(Some(&token), REPLY, json!({ "id": "t001" }).merged(&reply)).await;
        assert_error(&refused, "BAD_USER_INPUT");
        assert!(error_message(&refused).contains(named), "{reply}: names {named}: {refused}");
        let rest = app.post(Some(&token), "/api/tickets/t001/reply", reply.clone()).await;
        assert!(rest_refused(&rest, 400, &reply.to_string()).contains(named));
    }
    let bad_id = app.graphql(Some(&token), SEND, json!({ "customerId": "c001", "cannedReplyId": "不是ID" })).await;
    assert_error(&bad_id, "BAD_USER_INPUT");
    assert_eq!(app.snapshot(&token).await, before, "nothing sent, no ticket changed");
}

/// `json!` objects merged: the fields of `other` over those of `self`.
trait Merged {
    fn merged(self, other: &Value) -> Value;
}

impl Merged for Value {
    fn merged(mut self, other: &Value) -> Value {
        for (key, value) in other.as_object().expect("an object") {
            self[key] = value.clone();
        }
        self
    }
}

#[tokio::test]
async fn a_canned_reply_too_long_once_filled_is_refused_and_nothing_is_sent() {
    const SAAS_SECRET: &str = "saas-shared-secret-for-canned-replies";
    let app = TestApp::spawn_configured(&[("SAAS_WEBHOOK_SECRET", SAAS_SECRET)]).await;
    let token = app.login(DEMO_A).await;
    // A customer whose name (60 characters) is longer than the placeholder it fills (14).
    let name = "很长的客户名称".repeat(8) + "有限公司";
    let customer = json!({
        "id": "c950", "serviceProviderId": "sp001", "name": name, "contactPerson": "王五",
        "phone": "138-0000-0000", "email": "wang@example.com", "region": "浙江", "softwareVersion": "专业版",
        "portCount": 10, "purchaseDate": "2025-03-01T00:00:00Z", "expiryDate": "2027-03-01T00:00:00Z",
        "usageMetrics": { "loginFrequency": 90, "featureUsage": 80, "dataInput": 85, "trainingCompletion": 95 }
    });
    let body = json!({ "customers": [customer] }).to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let signature = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SAAS_SECRET.as_bytes()).expect("any key length");
        mac.update(format!("{timestamp}.{body}").as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let synced = Request::post_raw("/integrations/saas/customers", body)
        .header("x-pd-timestamp", &timestamp)
        .header("x-pd-signature", &format!("sha256={signature}"));
    let answer = app.send(None, &synced).await;
    assert_eq!((answer.status, answer.body["data"]["created"].clone()), (200, json!(1)), "{}", answer.text);

    // 1,986 characters and one placeholder: 2,000 as stored, 2,046 once filled.
    let reply = create(&app, &token, "fills-long", &format!("{}{{customerName}}", "好".repeat(1986))).await;
    let fits = app.data(&token, SEND, json!({ "customerId": "c001", "cannedReplyId": reply["id"] })).await;
    assert!(str_of(&fits["sendChatMessage"], "content").chars().count() <= 2000, "c001's name is short: {fits}");

    let before = chat_total(&app, &token, "c950").await;
    let refused = app.graphql(Some(&token), SEND, json!({ "customerId": "c950", "cannedReplyId": reply["id"] })).await;
    assert_error(&refused, "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "cannedReplyId", "{refused}");
    assert!(error_message(&refused).contains("2000"), "the message names the limit: {refused}");
    let rest = app.post(Some(&token), "/api/chat/send", json!({ "customerId": "c950", "cannedReplyId": reply["id"] }));
    assert!(rest_refused(&rest.await, 400, "REST send, too long once filled").contains("2000"));
    assert_eq!(chat_total(&app, &token, "c950").await, before, "nothing sent");
}
