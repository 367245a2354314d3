//! Property-based testing with schemathesis (PyPI; `scripts/test` installs it into
//! `~/.cache/provider-desk/venv`) against a running server, signed in as demo-a.
//!
//! The REST API, from `/api/openapi.json`: all four phases (examples, coverage, fuzzing, and
//! stateful, which follows the document's links from lists to details and actions) and
//! `--checks all`: no server error, every status, header, content type and body as documented,
//! every request the document calls valid accepted and every one it calls invalid refused,
//! undocumented methods refused, authentication not ignored, deleted resources gone. No check is
//! turned off. Logout is left out of that run (a generated logout would end the session the run
//! uses) and tested afterwards with login, in the same phases and checks. `tests/schemathesis/hooks.py`
//! keeps requests meant to be valid within the three rules that span parameters or stored data,
//! which a JSON Schema cannot state (the document says them in words);
//! `tests/schemathesis/schemathesis.toml` lengthens the stateful scenarios.
//!
//! The GraphQL endpoint, from introspection: the project's own definition of a server error
//! (`hooks.py` says why schemathesis's does not fit).
//!
//! Every answer must pass, and the server must still serve afterwards. The number of examples is
//! bounded so each run takes well under two minutes; schemathesis prints its seed to replay a
//! failure.

use crate::support::*;
use std::path::PathBuf;
use std::process::Command;

/// How many test cases schemathesis generates per operation and phase.
const EXAMPLES: &str = "50";

/// schemathesis: `SCHEMATHESIS`, or the one `scripts/test` installs, or one on PATH.
fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let installed =
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/provider-desk/venv/bin/schemathesis"));
    match installed {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("schemathesis"),
    }
}

/// What schemathesis prints when its own stateful phase wanders into a state no rule can leave
/// (hypothesis's `InvalidDefinition`), an error of the tool, not of the server under test. Seen on
/// the GraphQL run, after 680 scenarios had passed.
const STATEFUL_DEAD_END: &str = "No progress can be made from state";

/// Runs schemathesis with `args` and returns (success, printed output). A run that failed only on
/// the tool's stateful dead end, with nothing under test failing, is run once more with a fresh seed.
async fn run(args: Vec<String>, work_dir: PathBuf) -> (bool, String) {
    let (passed, printed) = run_once(args.clone(), work_dir.clone()).await;
    let dead_end_only = !passed && printed.contains(STATEFUL_DEAD_END) && !printed.contains("FAILURES");
    if !dead_end_only {
        return (passed, printed);
    }
    let (passed, again) = run_once(args, work_dir).await;
    (passed, format!("{printed}\n(schemathesis reached its stateful dead end; run again:)\n{again}"))
}

async fn run_once(args: Vec<String>, work_dir: PathBuf) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/hooks.py");
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis/schemathesis.toml");
        let output = Command::new(schemathesis())
            .arg("--config-file")
            .arg(config)
            .args(&args)
            .current_dir(&work_dir)
            .env("SCHEMATHESIS_HOOKS", hooks)
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|error| {
                panic!("schemathesis cannot run ({error}); scripts/test installs it into ~/.cache/provider-desk/venv")
            });
        let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), printed)
    })
    .await
    .expect("schemathesis ran")
}

fn common_args(location: String, token: &str, checks: &str) -> Vec<String> {
    [
        "run",
        &location,
        "--checks",
        checks,
        "--header",
        &format!("Authorization: Bearer {token}"),
        "--max-examples",
        EXAMPLES,
        "--generation-database",
        "none",
        "--no-color",
        "--request-timeout",
        "10",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A server for fuzzing: a flood of requests, malformed ones among them, from one address is the
/// point, so no rate limits and no bans.
async fn fuzzing_target() -> (TestApp, String) {
    let app = TestApp::spawn_configured(&[
        ("RATE_LIMIT_IP_PER_MINUTE", "0"),
        ("RATE_LIMIT_PROVIDER_PER_MINUTE", "0"),
        ("LOGIN_MAX_FAILURES_PER_IP", "0"),
        ("LOGIN_MAX_FAILURES_PER_USERNAME", "0"),
        ("LOGIN_SLOW_AFTER_FAILURES", "0"),
        ("AUTO_BAN_AFTER_BAD_REQUESTS", "0"),
    ])
    .await;
    let token = app.login(DEMO_A).await;
    (app, token)
}

async fn assert_still_serving(app: &TestApp) {
    let token = app.login(DEMO_A).await;
    let data = app.data(&token, "{ me { id } customers { total } }", serde_json::json!({})).await;
    assert_eq!(data["me"]["id"], "sp001", "the server still serves after the fuzzing");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_the_rest_api_as_its_openapi_document_says_in_every_phase_and_check() {
    let (app, token) = fuzzing_target().await;
    let work = tempfile::tempdir().unwrap();
    let location = format!("{}/api/openapi.json", app.address);
    // Everything but logout first (a fuzzed logout would sign the token out for the rest), then
    // logout on its own. Left out: the upload, a file whose type the server reads from its bytes,
    // which a JSON Schema cannot state (tests/api/uploads.rs sends it what it accepts and refuses).
    let mut everything = common_args(location.clone(), &token, "all");
    everything.extend(
        [
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--exclude-path",
            "/api/auth/logout",
            "--exclude-path",
            "/api/uploads",
        ]
        .map(str::to_owned),
    );
    let (passed, printed) = run(everything, work.path().to_owned()).await;
    assert!(passed, "schemathesis found the REST API other than its document says:\n{printed}");
    assert!(printed.contains("Stateful"), "the stateful phase ran: {printed}");
    assert!(printed.contains("passed"), "{printed}");
    // Logout with login, whose link leads to it, in the same phases and checks.
    let mut logout = common_args(location, &token, "all");
    logout.extend(
        [
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--include-path",
            "/api/auth/logout",
            "--include-path",
            "/api/auth/login",
        ]
        .map(str::to_owned),
    );
    let (passed, printed) = run(logout, work.path().to_owned()).await;
    assert!(passed, "schemathesis found logout other than its document says:\n{printed}");
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_in_the_graphql_api() {
    let (app, token) = fuzzing_target().await;
    let work = tempfile::tempdir().unwrap();
    let location = format!("{}/graphql", app.address);
    let mut everything = common_args(location.clone(), &token, "no_server_error");
    everything.extend(["--exclude-name-regex".to_owned(), "logout".to_owned()]);
    let (passed, printed) = run(everything, work.path().to_owned()).await;
    assert!(passed, "schemathesis found server errors in the GraphQL API:\n{printed}");
    assert!(printed.contains("passed"), "{printed}");
    let mut logout = common_args(location, &token, "no_server_error");
    logout.extend(["--include-name-regex".to_owned(), "logout".to_owned()]);
    let (passed, printed) = run(logout, work.path().to_owned()).await;
    assert!(passed, "schemathesis found server errors in logout:\n{printed}");
    assert_still_serving(&app).await;
}
