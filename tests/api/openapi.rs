//! The OpenAPI document the server serves is valid OpenAPI 3, as a real validator
//! (`openapi-spec-validator`, which `scripts/test` installs) judges it.

use crate::support::*;
use std::path::PathBuf;
use std::process::Command;

/// The validator: `OPENAPI_SPEC_VALIDATOR`, or the one `scripts/test` installs, or one on PATH.
fn validator() -> PathBuf {
    if let Some(path) = std::env::var_os("OPENAPI_SPEC_VALIDATOR") {
        return PathBuf::from(path);
    }
    let installed = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cache/provider-desk/venv/bin/openapi-spec-validator"));
    match installed {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("openapi-spec-validator"),
    }
}

#[tokio::test]
async fn the_served_openapi_document_passes_an_openapi_3_validator() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(format!("{}/api/openapi.json", app.address)).await.expect("the server answers");
    assert!(response.status().is_success());
    let document = response.text().await.expect("a body");
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), &document).expect("the document is written");

    let output = Command::new(validator()).arg(file.path()).output().unwrap_or_else(|error| {
        panic!("openapi-spec-validator cannot run ({error}); scripts/test installs it into ~/.cache/provider-desk/venv")
    });
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the validator refused the document:\n{printed}");
    assert!(printed.contains("OK"), "the validator says OK: {printed}");
}
