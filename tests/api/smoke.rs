use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_signed_in_provider_sees_its_profile() {
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    let data = app.data(&token, "{ me { id username name } }", json!({})).await;
    assert_eq!(data["me"]["username"], "demo-a");
    assert_eq!(data["me"]["id"], "sp001");
}
