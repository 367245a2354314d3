//! The mini-program's client kit (`clients/miniprogram`) run under Node against this server as a
//! process, on the backend TEST_BACKEND selects: its own `node --test` suite, through a stand-in
//! for `wx` over `fetch` and `ws`, shows one refresh for concurrent callers, one message for a
//! retried send, a subscription resumed with no gap after its socket is killed, and a logout
//! elsewhere ending a subscription. The kit's tests are JavaScript because the kit is; this test
//! only gives them a server and fails when they do.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most the kit's suite may take (it takes seconds); a hung client must not hang the suite.
const LIMIT: Duration = Duration::from_secs(120);

fn kit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/miniprogram")
}

/// Installs the kit's one dev dependency (`ws`) from its lock file when a fresh clone lacks it.
fn ensure_dev_dependencies(kit: &Path) {
    if kit.join("node_modules/ws").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(kit)
        .status()
        .unwrap_or_else(|error| panic!("npm runs ({error}); the client kit's tests need Node.js 18+ and npm"));
    assert!(status.success(), "`npm ci` in clients/miniprogram succeeds: {status}");
}

fn test_files(kit: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(kit.join("test"))
        .expect("clients/miniprogram/test")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.mjs"))
        .map(|name| format!("test/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the kit has tests");
    files
}

#[tokio::test]
async fn the_mini_program_client_kit_passes_its_node_tests_against_the_server() {
    let kit = kit_dir();
    ensure_dev_dependencies(&kit);
    let server = ServerProcess::start(&[]).await;
    let output = tempfile::tempdir().expect("a directory for the output");
    let (stdout_path, stderr_path) = (output.path().join("stdout"), output.path().join("stderr"));
    let mut child = Command::new("node")
        .arg("--test")
        .args(test_files(&kit))
        .current_dir(&kit)
        .env("BASE_URL", &server.address)
        .env("JWT_SECRET", TEST_JWT_SECRET)
        .env("DEMO_PASSWORD", DEMO_PASSWORD)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("a file for stdout"))
        .stderr(std::fs::File::create(&stderr_path).expect("a file for stderr"))
        .spawn()
        .unwrap_or_else(|error| panic!("node runs ({error}); the client kit's tests need Node.js 18 or later"));
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the tests' status") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let status =
        status.unwrap_or_else(|| panic!("the kit's tests did not finish within {LIMIT:?}:\n{stdout}\n{stderr}"));
    assert!(status.success(), "the kit's tests pass ({status}):\n{stdout}\n{stderr}");
    assert!(stdout.contains("# fail 0"), "the kit's tests ran and none failed:\n{stdout}");
}
