//! The operator's sub-commands, run as the built binary against a temporary data directory (or
//! the test MongoDB database named after it): create-provider, reset-password, check-config, and
//! the command line itself (help, usage errors, suggestions).

use crate::support::*;
use serde_json::json;
use std::path::Path;
use std::process::Output;

/// A data directory of its own, whose MongoDB database (with the mongo backend) goes with it.
pub(crate) struct Workspace {
    dir: tempfile::TempDir,
    pub(crate) backend: Backend,
}

impl Workspace {
    pub(crate) fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().expect("a data directory"), backend: Backend::from_env() }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        with_settings(process_env(&self.backend, self.path()), extra)
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_cli(&self.env(&[]), self.path(), args, stdin)
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if let Backend::Mongo { mongodb_uri, .. } = &self.backend {
            drop_database(mongodb_uri, &database_name(self.path()));
        }
    }
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) async fn can_sign_in(app: &TestApp, username: &str, password: &str) -> bool {
    let body = app
        .graphql(
            None,
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            json!({ "u": username, "p": password }),
        )
        .await;
    body["data"]["login"]["token"].is_string()
}

#[tokio::test]
async fn create_provider_then_reset_its_password_from_standard_input() {
    let workspace = Workspace::new();
    let create = [
        "create-provider",
        "--username",
        "ops-admin",
        "--name",
        "运维测试服务商",
        "--email",
        "ops@example.com",
        "--phone",
        "13800000000",
        "--region",
        "北京",
        "--password-stdin",
    ];
    let output = workspace.run(&create, Some("first-pass-1\n"));
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).starts_with("created provider sp"), "{}", stdout(&output));
    assert!(!stdout(&output).contains("first-pass-1") && !stderr(&output).contains("first-pass-1"));

    let again = workspace.run(&create, Some("first-pass-1\n"));
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));

    // The server sees the new provider (and seeds nothing: the store is no longer empty). It checks
    // the sessions of open WebSockets every second.
    let config = test_config(&workspace.backend, workspace.path(), true, &[("WS_PING_SECONDS", "1")]);
    let app = TestApp::spawn_with(config, Backend::from_env()).await;
    assert!(can_sign_in(&app, "ops-admin", "first-pass-1").await);
    assert!(!can_sign_in(&app, DEMO_A, DEMO_PASSWORD).await, "no demo data in a store that has a provider");

    // Two sessions signed in with the old password (say, one of them an intruder's).
    let sessions =
        [app.login_with("ops-admin", "first-pass-1").await, app.login_with("ops-admin", "first-pass-1").await];
    let customers = "{ customers { total } }";
    for (token, _) in &sessions {
        assert!(app.graphql(Some(token), customers, json!({})).await["errors"].is_null());
    }
    // One of them is connected for live notifications.
    let mut subscriber = WsClient::connect(&app, &sessions[0].0).await;
    subscriber.subscribe("live", "subscription { notifications { cursor } }", json!({})).await;

    let reset = workspace.run(&["reset-password", "ops-admin", "--password-stdin"], Some("second-pass-2\r\n"));
    assert!(reset.status.success(), "{}{}", stdout(&reset), stderr(&reset));
    let ended = "password of ops-admin reset; 3 signed-in session(s) ended"; // with can_sign_in's above
    assert!(stdout(&reset).contains(ended), "{}", stdout(&reset));
    assert!(!can_sign_in(&app, "ops-admin", "first-pass-1").await, "the old password stops working");
    assert!(can_sign_in(&app, "ops-admin", "second-pass-2").await, "the new one works (line break dropped)");
    // The server heard nothing of the reset, yet the session's open connection ends at a ping.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), subscriber.expect_close()).await;
    assert_eq!(closed.ok(), Some(4403), "the live connection of a session ended by the reset closes within 10 s");
    for (token, refresh_token) in &sessions {
        // The server may trust a token it checked a moment ago for up to 2 s (see the README).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let body = loop {
            let body = app.graphql(Some(token), customers, json!({})).await;
            if !body["errors"].is_null() || std::time::Instant::now() > deadline {
                break body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "an access token from before the reset is refused: {body}");
        let refresh = "mutation($r: String!) { refreshToken(refreshToken: $r) { token } }";
        let body = app.graphql(None, refresh, json!({ "r": refresh_token })).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "so is its refresh token: {body}");
    }
    app.stop().await;

    let unknown = workspace.run(&["reset-password", "nobody-here", "--password-stdin"], Some("third-pass-3\n"));
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no provider has the username"), "{}", stderr(&unknown));
}

#[test]
fn passwords_are_checked_and_never_taken_from_a_pipe_without_the_flag() {
    let workspace = Workspace::new();
    let short = workspace.run(&["reset-password", "demo-a", "--password-stdin"], Some("short\n"));
    assert_eq!(short.status.code(), Some(1));
    assert!(stderr(&short).contains("at least 8 characters"), "{}", stderr(&short));

    let long = "x".repeat(73);
    let too_long = workspace.run(&["reset-password", "demo-a", "--password-stdin"], Some(&long));
    assert!(stderr(&too_long).contains("at most 72 bytes"), "{}", stderr(&too_long));

    let no_terminal = workspace.run(&["reset-password", "demo-a"], Some("piped-password\n"));
    assert_eq!(no_terminal.status.code(), Some(1));
    assert!(stderr(&no_terminal).contains("--password-stdin"), "{}", stderr(&no_terminal));

    let missing = workspace.run(&["create-provider", "--username", "x1", "--password-stdin"], Some("long-enough\n"));
    assert_eq!(missing.status.code(), Some(2), "a usage error");
    assert!(stderr(&missing).contains("required arguments were not provided"), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("--name <NAME>"), "{}", stderr(&missing));

    let blank = workspace.run(&["create-provider", "--username", "x1", "--name", " ", "--email", "a@b.c"], None);
    assert_eq!(blank.status.code(), Some(2), "a blank value is no value");
    assert!(stderr(&blank).contains("must not be empty"), "{}", stderr(&blank));

    let unknown_option = workspace.run(&["reset-password", "demo-a", "--pasword-stdin"], None);
    assert_eq!(unknown_option.status.code(), Some(2));
    let message = stderr(&unknown_option);
    assert!(message.contains("unexpected argument '--pasword-stdin'"), "{message}");
    assert!(message.contains("a similar argument exists: '--password-stdin'"), "{message}");
}

#[test]
fn check_config_prints_the_settings_without_secrets_and_passes_when_the_backends_answer() {
    let workspace = Workspace::new();
    let output = workspace.run(&["check-config"], None);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(!text.contains(TEST_JWT_SECRET), "the JWT secret is hidden: {text}");
    assert!(text.contains("JWT_SECRET") && text.contains("<hidden: 42 bytes>"), "{text}");
    assert!(text.contains(&format!("DATA_DIR                             {}", workspace.path().display())), "{text}");
    assert!(text.contains("LOG_FORMAT                           json"), "{text}");
    assert!(text.contains("all checks passed"), "{text}");
    for check in ["store", "secret", "tokens"] {
        assert!(
            text.lines().any(|line| line.trim_start().starts_with("ok") && line.contains(check)),
            "{check}: {text}"
        );
    }
    if matches!(workspace.backend, Backend::Sqlite) {
        assert!(text.contains("will be created at the first start"), "{text}");
        assert!(!workspace.path().join("provider-desk.sqlite3").exists(), "checking creates no database");
    }
}

#[test]
fn check_config_fails_on_an_unreachable_backend_without_showing_its_password() {
    let workspace = Workspace::new();
    let env = workspace.env(&[("REDIS_URL", "redis://:redis-secret-9@127.0.0.1:1/0"), ("REDIS_TIMEOUT_MS", "500")]);
    let output = run_cli(&env, workspace.path(), &["check-config"], None);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("redis-secret-9") && !stderr(&output).contains("redis-secret-9"), "{text}");
    assert!(text.contains("redis://:<hidden>@127.0.0.1:1/0"), "{text}");
    assert!(text.lines().any(|line| line.contains("FAILED") && line.contains("tokens")), "{text}");
    assert!(text.contains("problems found"), "{text}");

    let uri = "mongodb://desk:mongo-secret-8@127.0.0.1:1/?replicaSet=rs0";
    let env = workspace.env(&[("MONGODB_URI", uri), ("MONGODB_SERVER_SELECTION_TIMEOUT_MS", "300"), ("REDIS_URL", "")]);
    let output = run_cli(&env, workspace.path(), &["check-config"], None);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("mongo-secret-8") && !stderr(&output).contains("mongo-secret-8"), "{text}");
    assert!(text.lines().any(|line| line.contains("FAILED") && line.contains("MongoDB")), "{text}");
}

#[test]
fn check_config_reports_an_invalid_setting_by_name() {
    let workspace = Workspace::new();
    let output = run_cli(&workspace.env(&[("PORT", "eighty")]), workspace.path(), &["check-config"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("INVALID") && stdout(&output).contains("PORT"), "{}", stdout(&output));
}

#[test]
fn help_lists_every_command_and_an_unknown_command_is_a_usage_error() {
    let workspace = Workspace::new();
    let help = workspace.run(&["help"], None);
    assert!(help.status.success());
    let commands = ["serve", "seed", "export-schema", "create-provider", "reset-password", "check-config", "run-jobs"];
    for command in commands.into_iter().chain(["outbox"]) {
        assert!(stdout(&help).contains(command), "{command} in {}", stdout(&help));
    }
    assert_eq!(stdout(&workspace.run(&["--help"], None)), stdout(&help));

    let unknown = workspace.run(&["frobnicate"], None);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("unrecognized subcommand 'frobnicate'"), "{}", stderr(&unknown));
}

#[test]
fn a_mistyped_command_is_refused_with_status_2_and_the_command_it_resembles() {
    let workspace = Workspace::new();
    let typo = workspace.run(&["chek-config"], None);
    assert_eq!(typo.status.code(), Some(2));
    let message = stderr(&typo);
    assert!(message.contains("unrecognized subcommand 'chek-config'"), "{message}");
    assert!(message.contains("a similar subcommand exists: 'check-config'"), "{message}");
    assert!(stdout(&typo).is_empty(), "nothing was run: {}", stdout(&typo));

    let typo = workspace.run(&["outbox", "dead-leters"], None);
    assert_eq!(typo.status.code(), Some(2));
    assert!(stderr(&typo).contains("a similar subcommand exists: 'dead-letters'"), "{}", stderr(&typo));
}

#[test]
fn a_command_followed_by_help_prints_that_commands_help_and_does_nothing_else() {
    let workspace = Workspace::new();
    let help = workspace.run(&["create-provider", "--help"], None);
    assert!(help.status.success(), "{}", stderr(&help));
    let text = stdout(&help);
    assert!(text.contains("Usage: provider-desk create-provider"), "{text}");
    for option in ["--username <USERNAME>", "--name <NAME>", "--email <EMAIL>", "--region", "--password-stdin"] {
        assert!(text.contains(option), "{option} in {text}");
    }
    assert!(!text.contains("reset-password"), "only that command's help: {text}");
    assert_eq!(stdout(&workspace.run(&["help", "create-provider"], None)), text);

    let help = workspace.run(&["outbox", "replay", "--help"], None);
    assert!(help.status.success());
    assert!(stdout(&help).contains("Usage: provider-desk outbox replay <--all|ID>"), "{}", stdout(&help));
}
