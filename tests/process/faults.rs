//! Faults of the production backends: MongoDB or Redis going away under a running server, and
//! coming back; and start-up against backends that cannot be used.
//!
//! The outage tests start servers of their own (so stopping them disturbs no other test), from
//! the command templates `TEST_MONGO_SERVER_CMD` and `TEST_REDIS_SERVER_CMD`, in which `{port}`
//! and `{dir}` stand for a free port and a fresh data directory. `scripts/test` sets both for its
//! MongoDB run; with `TEST_BACKEND=mongo` they are required, so these tests are never skipped
//! there. The servers are stopped with SIGKILL, the harshest way, and must be started so that an
//! acknowledged write survives that (SecantusDB with `--sync-on-commit`, Redis with
//! `appendfsync always`).

use crate::support::*;
use provider_desk::app::Application;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process this test owns: started, killed and started again on the same port and data.
struct Server {
    name: &'static str,
    program: String,
    args: Vec<String>,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Server {
    /// The server the template in `variable` describes, not yet started.
    fn from_template(variable: &str, name: &'static str) -> Option<Server> {
        let template = std::env::var(variable).ok().filter(|t| !t.trim().is_empty())?;
        Some(Server::new(&template, name))
    }

    fn new(template: &str, name: &'static str) -> Server {
        let port = free_port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let dir_text = dir.path().to_string_lossy().into_owned();
        let mut words =
            template.split_whitespace().map(|w| w.replace("{port}", &port.to_string()).replace("{dir}", &dir_text));
        let program = words.next().expect("a command");
        Server { name, program, args: words.collect(), port, dir, child: None }
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("a log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({}): {e}", self.name, self.program));
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "{} did not start listening on {address}", self.name);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server at once (SIGKILL): no chance to flush anything it had not made durable.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("an address").port()
}

/// MongoDB and Redis servers of the test's own, started; `None` (and said so) where the
/// templates are not set and the suite does not run on MongoDB.
fn own_servers() -> Option<(Server, Server)> {
    let mongo = Server::from_template("TEST_MONGO_SERVER_CMD", "the MongoDB server");
    let redis = Server::from_template("TEST_REDIS_SERVER_CMD", "the Redis server");
    match (mongo, redis) {
        (Some(mut mongo), Some(mut redis)) => {
            mongo.start();
            redis.start();
            Some((mongo, redis))
        }
        _ if Backend::from_env().is_mongo() => {
            panic!("TEST_BACKEND=mongo runs the fault tests: set TEST_MONGO_SERVER_CMD and TEST_REDIS_SERVER_CMD (scripts/test does)")
        }
        _ => {
            eprintln!("fault test not run: TEST_MONGO_SERVER_CMD / TEST_REDIS_SERVER_CMD are not set (scripts/test sets them)");
            None
        }
    }
}

/// A server on the given MongoDB and Redis, quick to notice an outage.
async fn spawn_on(mongo: &Server, redis: &Server, dir: &std::path::Path) -> TestApp {
    let backend = Backend::Mongo {
        mongodb_uri: format!("mongodb://127.0.0.1:{}/?directConnection=true", mongo.port),
        redis_url: format!("redis://127.0.0.1:{}", redis.port),
    };
    let config = test_config(
        &backend,
        dir,
        true,
        &[
            ("MONGODB_SERVER_SELECTION_TIMEOUT_MS", "1000"),
            ("MONGODB_OPERATION_TIMEOUT_MS", "4000"),
            ("REDIS_TIMEOUT_MS", "1000"),
        ],
    );
    TestApp::spawn_with(config, backend).await
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app.client.get(format!("{}/readyz", app.address)).send().await.expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("readyz answers JSON"))
}

/// Waits until readyz is green again, which it must become without a restart.
async fn until_ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = readyz(app).await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "readyz stayed red after the backend came back: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn assert_unavailable(body: &Value) {
    assert_error(body, "UNAVAILABLE");
    assert!(has_chinese(&error_message(body)), "a message in Chinese: {body}");
}

const CREATE: &str = r#"mutation($title: String!) {
    createTicket(customerId: "c001", title: $title, content: "故障测试", type: SYSTEM_ISSUE) { id }
}"#;
const REPLY: &str = r#"mutation($id: ID!) { replyTicket(id: $id, content: "已收到，正在处理") { replyId } }"#;
const SEND: &str = r#"mutation { sendChatMessage(customerId: "c001", content: "您好，问题已记录") { id } }"#;
const TICKET: &str = "query($id: ID!) { ticket(id: $id) { status processingHistory { id action content } } }";
const COUNTS: &str = "{ tickets(pageSize: 1) { total } notifications(pageSize: 1, type: TICKET_UPDATE) { total } }";
const CHAT: &str = r#"{ chatMessages(customerId: "c001", pageSize: 100) { items { id } } }"#;
const ME: &str = "{ me { id } }";

#[tokio::test]
async fn while_mongodb_is_down_requests_answer_unavailable_and_when_it_is_back_nothing_acknowledged_is_lost() {
    let Some((mut mongo, redis)) = own_servers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_on(&mongo, &redis, dir.path()).await;
    let token = app.login(DEMO_A).await;

    // Acknowledged writes of every kind: a ticket (with its notification), a reply, a chat message.
    let created = app.data(&token, CREATE, json!({ "title": "断电前创建" })).await;
    let ticket_id = str_of(&created["createTicket"], "id").to_owned();
    let reply = app.data(&token, REPLY, json!({ "id": ticket_id })).await;
    let reply_id = str_of(&reply["replyTicket"], "replyId").to_owned();
    let sent = app.data(&token, SEND, json!({})).await;
    let message_id = str_of(&sent["sendChatMessage"], "id").to_owned();
    let before = app.data(&token, COUNTS, json!({})).await;

    mongo.kill();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "readyz is red while MongoDB is down: {body}");
    assert_eq!(body["store"], "unreachable", "{body}");
    assert_eq!(body["tokens"], "ok", "Redis is still up: {body}");
    assert_unavailable(&app.graphql(Some(&token), COUNTS, json!({})).await);
    assert_unavailable(&app.graphql(Some(&token), CREATE, json!({ "title": "断电时创建" })).await);
    assert_unavailable(&app.graphql(Some(&token), REPLY, json!({ "id": ticket_id })).await);

    mongo.start();
    until_ready(&app).await;
    let stored = app.data(&token, TICKET, json!({ "id": ticket_id })).await;
    assert_eq!(stored["ticket"]["status"], "PROCESSING", "{stored}");
    let history: Vec<&str> =
        stored["ticket"]["processingHistory"].as_array().unwrap().iter().map(|e| str_of(e, "id")).collect();
    assert!(history.contains(&reply_id.as_str()), "the acknowledged reply is kept: {stored}");
    assert_eq!(history.len(), 2, "create and one reply; the refused reply left nothing: {stored}");
    let chat = app.data(&token, CHAT, json!({})).await;
    assert!(items(&chat["chatMessages"]).iter().any(|m| m["id"] == message_id.as_str()), "the message is kept");
    let after = app.data(&token, COUNTS, json!({})).await;
    assert_eq!(after, before, "the refused writes stored no ticket and no notification");

    // And it serves writes again, with no restart.
    app.data(&token, CREATE, json!({ "title": "恢复后创建" })).await;
    let counts = app.data(&token, COUNTS, json!({})).await;
    assert_eq!(total(&counts["tickets"]), total(&before["tickets"]) + 1);
    assert_eq!(total(&counts["notifications"]), total(&before["notifications"]) + 1);
}

/// Every item of a paged list, page after page.
async fn every(app: &TestApp, token: &str, field: &str, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for page in 1.. {
        let data = app.data(token, query, json!({ "page": page })).await;
        let found = items(&data[field]).clone();
        let done = found.len() < 100;
        all.extend(found);
        if done {
            return all;
        }
    }
    unreachable!()
}

const REPLY_TEXT: &str =
    r#"mutation($id: ID!, $content: String!) { replyTicket(id: $id, content: $content) { replyId } }"#;
const STORM_TICKET: &str = "t001";

#[tokio::test]
async fn writes_in_flight_when_mongodb_dies_are_all_or_nothing_and_every_acknowledged_one_is_kept_once() {
    let Some((mut mongo, redis)) = own_servers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = std::sync::Arc::new(spawn_on(&mongo, &redis, dir.path()).await);
    let token = app.login(DEMO_A).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let updates_of = |notifications: &[Value]| {
        notifications.iter().filter(|n| n["relatedTicketId"] == STORM_TICKET && n["title"] == "工单状态更新").count()
    };
    let updates_before = updates_of(&every_notification(&app, &token).await);

    // Four writers, as fast as they can, throughout: two create tickets (each with its
    // notification), two reply to one ticket (a compare-and-set change with its notification).
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (app, token, stop) = (app.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut acknowledged, mut refused) = (Vec::new(), 0);
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let (body, id) = if writer % 2 == 0 {
                        let body =
                            app.graphql(Some(&token), CREATE, json!({ "title": format!("风暴 {writer}-{n}") })).await;
                        let id = body["data"]["createTicket"]["id"].as_str().map(str::to_owned);
                        (body, id)
                    } else {
                        let variables = json!({ "id": STORM_TICKET, "content": format!("风暴回复 {writer}-{n}") });
                        let body = app.graphql(Some(&token), REPLY_TEXT, variables).await;
                        let id = body["data"]["replyTicket"]["replyId"].as_str().map(str::to_owned);
                        (body, id)
                    };
                    match id {
                        Some(id) => acknowledged.push(id),
                        None => {
                            assert_eq!(error_code(&body), "UNAVAILABLE", "only the outage refuses writes: {body}");
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                (writer, acknowledged, refused)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(800)).await;
    mongo.kill();
    // Longer than a write keeps retrying (three transaction attempts of a 1 s server selection each).
    tokio::time::sleep(Duration::from_millis(4000)).await;
    mongo.start();
    until_ready(&app).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut created, mut replies, mut refused) = (Vec::new(), Vec::new(), 0);
    for writer in writers {
        let (writer, ids, failures) = writer.await.expect("a writer finishes");
        if writer % 2 == 0 {
            created.extend(ids)
        } else {
            replies.extend(ids)
        }
        refused += failures;
    }
    assert!(refused > 0, "some writes met the outage");
    assert!(!created.is_empty() && !replies.is_empty(), "some writes of each kind were acknowledged");

    // Tickets: every acknowledged one is there, each stored one has exactly one notification, and
    // no notification announces a ticket that is not there.
    let tickets = every(
        &app,
        &token,
        "tickets",
        "query($page: Int!) { tickets(page: $page, pageSize: 100) { items { id title } } }",
    )
    .await;
    let stored: HashSet<&str> =
        tickets.iter().filter(|t| str_of(t, "title").starts_with("风暴")).map(|t| str_of(t, "id")).collect();
    for id in &created {
        assert!(stored.contains(id.as_str()), "acknowledged ticket {id} was lost");
    }
    let notifications = every_notification(&app, &token).await;
    let mut announced: HashMap<&str, usize> = HashMap::new();
    for n in notifications.iter().filter(|n| n["title"] == "新工单") {
        *announced.entry(str_of(n, "relatedTicketId")).or_default() += 1;
    }
    for id in &stored {
        assert_eq!(announced.get(id), Some(&1), "ticket {id} has exactly one notification");
    }
    let all_tickets: HashSet<&str> = tickets.iter().map(|t| str_of(t, "id")).collect();
    let orphans: Vec<_> = announced.keys().filter(|id| !all_tickets.contains(**id)).collect();
    assert!(orphans.is_empty(), "notifications of tickets that were never stored: {orphans:?}");

    // Replies: every acknowledged one is in the history, none twice, each with one notification.
    let history = app.data(&token, TICKET, json!({ "id": STORM_TICKET })).await;
    let entries: Vec<&Value> = history["ticket"]["processingHistory"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "reply" && str_of(e, "content").starts_with("风暴回复"))
        .collect();
    let ids: HashSet<&str> = entries.iter().map(|e| str_of(e, "id")).collect();
    for id in &replies {
        assert!(ids.contains(id.as_str()), "acknowledged reply {id} was lost");
    }
    let contents: HashSet<&str> = entries.iter().map(|e| str_of(e, "content")).collect();
    assert_eq!(contents.len(), entries.len(), "no reply was applied twice");
    assert_eq!(updates_of(&notifications) - updates_before, entries.len(), "one notification per stored reply");
}

async fn every_notification(app: &TestApp, token: &str) -> Vec<Value> {
    every(
        app,
        token,
        "notifications",
        "query($page: Int!) { notifications(page: $page, pageSize: 100, type: TICKET_UPDATE) { items { title relatedTicketId } } }",
    )
    .await
}

#[tokio::test]
async fn while_redis_is_down_token_checks_fail_closed_and_revocations_survive_its_restart() {
    let Some((mongo, mut redis)) = own_servers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_on(&mongo, &redis, dir.path()).await;
    let (token, refresh) = app.login_pair(DEMO_A).await;
    let signed_out = app.login(DEMO_A).await;
    app.data(&signed_out, "mutation { logout { success } }", json!({})).await;
    assert_error(&app.graphql(Some(&signed_out), ME, json!({})).await, "UNAUTHENTICATED");

    redis.kill();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "readyz is red while Redis is down: {body}");
    assert_eq!(body["tokens"], "unreachable", "{body}");
    assert_eq!(body["store"], "ok", "MongoDB is still up: {body}");
    // Fail closed: no token is let through unchecked, the revoked one least of all.
    assert_unavailable(&app.graphql(Some(&token), ME, json!({})).await);
    assert_unavailable(&app.graphql(Some(&signed_out), ME, json!({})).await);
    let login = "mutation { login(username: \"demo-a\", password: \"demo12345\") { token } }";
    assert_unavailable(&app.graphql(None, login, json!({})).await);

    redis.start();
    until_ready(&app).await;
    assert_eq!(app.data(&token, ME, json!({})).await["me"]["id"], "sp001", "the live token works again");
    assert_error(&app.graphql(Some(&signed_out), ME, json!({})).await, "UNAUTHENTICATED");
    let refreshed = app
        .graphql(None, "mutation($r: String!) { refreshToken(refreshToken: $r) { token } }", json!({ "r": refresh }))
        .await;
    assert!(refreshed["data"]["refreshToken"]["token"].is_string(), "the refresh token was kept: {refreshed}");
}

#[tokio::test]
async fn a_standalone_mongodb_server_is_refused_at_start_up_because_it_cannot_run_transactions() {
    let template = std::env::var("TEST_MONGO_SERVER_CMD").unwrap_or_default();
    if !template.contains("secantusd") {
        // Only SecantusDB can be told to pose as a standalone server (`--standalone`).
        assert!(template.is_empty() || !Backend::from_env().is_mongo(), "the MongoDB pass runs SecantusDB here");
        eprintln!("standalone test not run: TEST_MONGO_SERVER_CMD does not start SecantusDB");
        return;
    }
    let mut server = Server::new(&format!("{template} --standalone"), "a standalone SecantusDB");
    server.start();
    let uri = format!("mongodb://127.0.0.1:{}/?directConnection=true", server.port);
    let error = startup_error(&[("MONGODB_URI", uri.as_str())]).await;
    assert!(error.contains("standalone") && error.contains("replica set"), "{error}");
}

// --- start-up: these need no server, and run on every backend ---

async fn startup_error(pairs: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&Backend::Sqlite, dir.path(), false, pairs);
    let started = Instant::now();
    let error = match Application::build(config).await {
        Ok(_) => panic!("the server must not start with {pairs:?}"),
        Err(error) => error.to_string(),
    };
    assert!(started.elapsed() < Duration::from_secs(15), "it gives up quickly: {:?}", started.elapsed());
    error
}

#[tokio::test]
async fn an_unreachable_mongodb_stops_the_start_with_a_clear_message() {
    let uri = format!("mongodb://127.0.0.1:{}/?directConnection=true", free_port());
    let error = startup_error(&[("MONGODB_URI", uri.as_str()), ("MONGODB_SERVER_SELECTION_TIMEOUT_MS", "500")]).await;
    assert!(error.contains("MongoDB") && error.contains("cannot reach"), "{error}");
}

#[tokio::test]
async fn a_malformed_mongodb_uri_stops_the_start_and_names_the_variable() {
    for uri in ["http://127.0.0.1:27017", "mongodb://", "mongodb+srv://cluster.example.net"] {
        let error = startup_error(&[("MONGODB_URI", uri)]).await;
        assert!(error.contains("MONGODB_URI"), "{uri}: {error}");
    }
}

#[tokio::test]
async fn an_unreachable_redis_stops_the_start_with_a_clear_message() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let error = startup_error(&[("REDIS_URL", url.as_str()), ("REDIS_TIMEOUT_MS", "500")]).await;
    assert!(error.contains("Redis") && error.contains("cannot reach"), "{error}");
}
