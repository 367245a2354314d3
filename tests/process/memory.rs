//! The server's allocator as a process shows it: transparent huge pages are off for the server
//! (each would make a touched byte cost 2 MiB of resident memory), unless the operator turns them
//! back on through mimalloc's own variable.

use crate::support::*;

/// The `THP_enabled` field of a process's `/proc/<pid>/status`: 0 once it disabled them.
fn huge_pages_enabled(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process status is readable");
    let line = status.lines().find(|line| line.starts_with("THP_enabled:")).expect("the kernel reports THP_enabled");
    line.trim_start_matches("THP_enabled:").trim().to_owned()
}

#[tokio::test]
async fn the_server_runs_without_transparent_huge_pages_unless_mimalloc_is_told_otherwise() {
    let server = ServerProcess::start(&[]).await;
    assert_eq!(huge_pages_enabled(server.pid()), "0", "off by default");
    assert_eq!(server.api.get(None, "/healthz").await.status, 200);

    let allowed = ServerProcess::start(&[("MIMALLOC_ALLOW_THP", "1")]).await;
    assert_eq!(huge_pages_enabled(allowed.pid()), "1", "the operator's MIMALLOC_ALLOW_THP=1 keeps them");
    assert_eq!(allowed.api.get(None, "/healthz").await.status, 200);
}
