//! No WeChat secret in a log, in the store or in the CLI's output. WeChat takes the app secret,
//! the access token and the login code (`js_code`) in the query string; the test's WeChat gateway
//! first answers, then hangs (the server's requests time out), then is gone (connections are
//! refused). The server process's whole log, the dead letters the CLI lists (the store's
//! `outbox.last_error`) and the CLI's own output hold none of those values, and the errors still
//! say what happened and to which address.

use crate::support::*;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use provider_desk::integration::signature::sign;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const APP_SECRET: &str = "wx-app-secret-0f9c2d7e41b8";
const ACCESS_TOKEN: &str = "wx-access-token-93ad51c0e7f2";
const CODE_ANSWERED: &str = "js-code-answered-6b1f";
const CODE_TIMED_OUT: &str = "js-code-timed-out-2c8e";
const CODE_REFUSED: &str = "js-code-refused-7d4a";
const CS_SECRET: &str = "cs-shared-secret-for-secrets-test";

/// A WeChat API that answers, or hangs, and records the paths it was asked for.
#[derive(Default)]
struct Gateway {
    hang: AtomicBool,
    paths: Mutex<Vec<String>>,
}

async fn wechat(State(gateway): State<Arc<Gateway>>, uri: Uri) -> Response {
    gateway.paths.lock().unwrap().push(uri.path().to_owned());
    if gateway.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let answer = match uri.path() {
        "/cgi-bin/token" => json!({ "access_token": ACCESS_TOKEN, "expires_in": 7200 }),
        "/sns/jscode2session" => json!({ "openid": "openid-of-the-user", "session_key": "k" }),
        _ => json!({ "errcode": 0, "errmsg": "ok" }),
    };
    // No keep-alive: once the gateway is gone, every request needs a new connection, refused.
    ([("connection", "close")], axum::Json(answer)).into_response()
}

/// A customer message from the PC customer-service system, signed as it would be.
async fn customer_says(server: &ServerProcess, message_id: &str, content: &str) {
    let body = json!({ "messageId": message_id, "customerId": "c001", "content": content }).to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let response = reqwest::Client::new()
        .post(format!("{}/integrations/cs/messages", server.address))
        .header("content-type", "application/json")
        .header("x-pd-timestamp", &timestamp)
        .header("x-pd-signature", sign(CS_SECRET.as_bytes(), &timestamp, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn bind(server: &ServerProcess, token: &str, code: &str) -> Value {
    server.graphql(Some(token), "mutation($code: String!) { bindWechat(code: $code) }", json!({ "code": code })).await
}

/// The dead letters, once there are `count` of them; and the CLI's whole output.
async fn dead_letters(env: &[(String, String)], server: &ServerProcess, count: usize) -> (Vec<Value>, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let output = run_cli(env, &server.data_dir, &["outbox", "dead-letters"], None);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let letters: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        if letters.len() >= count {
            return (letters, format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)));
        }
        assert!(tokio::time::Instant::now() < deadline, "never {count} dead letters: {letters:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_secrets_reach_no_log_no_outbox_row_and_no_cli_output_when_the_gateway_fails() {
    let gateway = Arc::new(Gateway::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_address = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(wechat).with_state(gateway.clone());
    let serving = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let base = format!("http://{gateway_address}");

    let settings = [
        ("CS_WEBHOOK_SECRET", CS_SECRET),
        ("WECHAT_API_BASE", base.as_str()),
        ("WECHAT_APP_ID", "wx-app-1"),
        ("WECHAT_APP_SECRET", APP_SECRET),
        ("WECHAT_TEMPLATE_CHAT", "template-chat"),
        ("WEBHOOK_TIMEOUT_MS", "500"),
        ("OUTBOX_MAX_ATTEMPTS", "2"),
        ("OUTBOX_BASE_DELAY_MS", "50"),
        ("OUTBOX_MAX_DELAY_MS", "200"),
        ("OUTBOX_POLL_INTERVAL_MS", "100"),
    ];
    let server = ServerProcess::start(&settings).await;
    let env = with_settings(process_env(&Backend::from_env(), &server.data_dir), &settings);
    let token = server.login(DEMO_A).await;

    // The gateway answers: the user is bound, the token fetched and a message sent.
    assert_eq!(bind(&server, &token, CODE_ANSWERED).await["data"]["bindWechat"], true);
    customer_says(&server, "pc-secret-1", "第一条").await;
    let sent = |gateway: &Gateway| gateway.paths.lock().unwrap().iter().any(|p| p.ends_with("/subscribe/send"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !sent(&gateway) {
        assert!(tokio::time::Instant::now() < deadline, "the first message never reached the gateway");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The gateway hangs: the message (with the access token in its URL) and the code exchange
    // (with the app secret and the code) time out.
    gateway.hang.store(true, Ordering::SeqCst);
    customer_says(&server, "pc-secret-2", "第二条").await;
    let timed_out = bind(&server, &token, CODE_TIMED_OUT).await;
    assert_eq!(error_code(&timed_out), "UNAVAILABLE", "{timed_out}");
    let (letters, _) = dead_letters(&env, &server, 1).await;
    let error = letters[0]["lastError"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains("timed out") && error.contains(&base), "{error}");

    // The gateway is gone: connections are refused.
    serving.abort();
    let _ = serving.await;
    customer_says(&server, "pc-secret-3", "第三条").await;
    let refused = bind(&server, &token, CODE_REFUSED).await;
    assert_eq!(error_code(&refused), "UNAVAILABLE", "{refused}");
    let (letters, cli_output) = dead_letters(&env, &server, 2).await;
    let errors: Vec<&str> = letters.iter().filter_map(|letter| letter["lastError"].as_str()).collect();
    assert!(
        errors.iter().any(|e| e.contains("could not connect") && e.to_lowercase().contains("connection refused")),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| e.contains(&base)), "each error names the address: {errors:?}");

    // The log says what happened, and where...
    let log = [server.stdout_lines(), server.stderr_lines()].concat().join("\n");
    assert!(log.contains("timed out") && log.to_lowercase().contains("connection refused"), "{log}");
    assert!(log.contains(&format!("{base}/sns/jscode2session")), "the failed code exchange is logged: {log}");
    // ...and no secret is anywhere.
    let answers = format!("{timed_out}{refused}");
    for secret in [APP_SECRET, ACCESS_TOKEN, CODE_ANSWERED, CODE_TIMED_OUT, CODE_REFUSED] {
        assert!(!log.contains(secret), "{secret} is in the server's log: {log}");
        assert!(!cli_output.contains(secret), "{secret} is in the CLI's output: {cli_output}");
        assert!(!answers.contains(secret), "{secret} is in an answer: {answers}");
    }
    assert!(!log.contains("secret=") && !log.contains("access_token=") && !log.contains("js_code="), "{log}");
    assert!(!cli_output.contains("secret=") && !cli_output.contains("access_token="), "{cli_output}");
}
