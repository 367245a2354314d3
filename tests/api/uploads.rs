//! Uploads and downloads through the real server: `POST /api/uploads` (multipart, as
//! `wx.uploadFile` sends it) types files by their bytes, refuses what is not on the allow list
//! with 415 and what is over `UPLOAD_MAX_BYTES` with 413 before reading it whole; the signed
//! `/files/...` URLs stream the bytes and a thumbnail, answer a `Range` with 206, refuse an
//! expired or forged signature with 403, and a deleted attachment with 404.

use crate::support::*;
use provider_desk::domain::{now, Id};
use provider_desk::service::attachments::Variant;
use provider_desk::service::jobs::Job;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUNDARY: &str = "----wxUploadBoundary7MA4YWxkTrZu0gW";

/// A multipart body with one `file` part, and a form field beside it as `wx.uploadFile` sends.
pub fn multipart(file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\ndemo\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub async fn upload(api: &Api, token: &str, file_name: &str, bytes: &[u8]) -> Answer {
    upload_as(api, Some(token), file_name, bytes).await
}

async fn upload_as(api: &Api, token: Option<&str>, file_name: &str, bytes: &[u8]) -> Answer {
    let mut request = api
        .client
        .post(api.url("/api/uploads"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(file_name, bytes));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Answer::read(request.send().await.unwrap()).await
}

/// A PNG of `width` × `height` of noise, which PNG cannot compress (a photo more than a drawing).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let image = image::RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

async fn bytes_of(api: &Api, path: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = api.client.get(api.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn attachment_id(answer: &Answer) -> Id {
    Id::parse(answer.body["data"]["attachmentId"].as_str().expect("an attachment id")).unwrap()
}

#[tokio::test]
async fn a_png_is_typed_by_its_bytes_measured_and_served_whole_in_part_and_as_a_smaller_thumbnail() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let picture = png(800, 600);
    let answer = upload(&app, &token, "库存 截图.png", &picture).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let data = &answer.body["data"];
    assert_eq!(data["fileName"], "库存 截图.png");
    assert_eq!(data["contentType"], "image/png");
    assert_eq!(data["size"], picture.len() as u64);
    assert_eq!((data["width"].as_u64(), data["height"].as_u64()), (Some(800), Some(600)));

    let id = attachment_id(&answer);
    let url = app.services.attachments.url_expiring(&id, Variant::File, now().timestamp() + 60);
    let (status, headers, bytes) = bytes_of(&app, &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, picture, "the same bytes");
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert!(header("cache-control").starts_with("private, max-age="), "{}", header("cache-control"));
    assert_eq!(header("etag").len(), 66, "the quoted SHA-256");
    let disposition = header("content-disposition");
    assert!(disposition.contains("filename*=UTF-8''%E5%BA%93%E5%AD%98%20%E6%88%AA%E5%9B%BE.png"), "{disposition}");

    let (status, headers, part) = bytes_of(&app, &url, &[("range", "bytes=0-99")]).await;
    assert_eq!(status, 206);
    assert_eq!(part, picture[..100]);
    let content_range = headers.get("content-range").unwrap().to_str().unwrap();
    assert_eq!(content_range, format!("bytes 0-99/{}", picture.len()));
    let (status, _, _) = bytes_of(&app, &url, &[("if-none-match", &header("etag"))]).await;
    assert_eq!(status, 304, "a cached copy is still good");

    let thumbnail_url = app.services.attachments.url_expiring(&id, Variant::Thumbnail, now().timestamp() + 60);
    let (status, headers, thumbnail) = bytes_of(&app, &thumbnail_url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("content-type").unwrap(), "image/jpeg");
    let small = image::load_from_memory(&thumbnail).expect("the thumbnail is an image");
    assert_eq!((small.width(), small.height()), (320, 240), "320 px wide, aspect kept");
    assert!(thumbnail.len() < picture.len());
    app.stop().await;
}

#[tokio::test]
async fn an_svg_named_png_html_and_executables_are_refused_with_415_and_text_and_pdf_pass() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect/></svg>"#;
    for (name, bytes) in [
        ("screenshot.png", &svg[..]),
        ("page.txt", b"<!doctype html><script>alert(1)</script>"),
        ("setup.png", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"),
        ("tools.zip", b"PK\x03\x04\x14\x00\x00\x00"),
    ] {
        let answer = upload(&app, &token, name, bytes).await;
        assert_eq!(answer.status, 415, "{name}: {}", answer.text);
        assert_eq!(answer.body["code"], 415);
        assert!(has_chinese(answer.body["message"].as_str().unwrap()), "{}", answer.text);
    }
    let text = upload(&app, &token, "日志.csv", "商品,库存\n螺丝,10\n".as_bytes()).await;
    assert_eq!(text.body["data"]["contentType"], "text/csv; charset=utf-8", "{}", text.text);
    assert!(text.body["data"].get("width").is_none());
    let pdf = upload(&app, &token, "report", b"%PDF-1.7\n1 0 obj\n").await;
    assert_eq!(pdf.body["data"]["contentType"], "application/pdf", "{}", pdf.text);
    let id = attachment_id(&pdf);
    let thumbnail = app.services.attachments.url_expiring(&id, Variant::Thumbnail, now().timestamp() + 60);
    assert_eq!(bytes_of(&app, &thumbnail, &[]).await.0, 404, "no thumbnail but for images");
    app.stop().await;
}

#[tokio::test]
async fn an_upload_needs_a_token_and_a_file_part() {
    let app = TestApp::spawn().await;
    assert_eq!(upload_as(&app, None, "a.txt", b"hello").await.status, 401);
    let token = app.login("demo-a").await;
    let json = app.post(Some(&token), "/api/uploads", serde_json::json!({ "file": "x" })).await;
    assert_eq!(json.status, 415, "{}", json.text);
    app.stop().await;
}

/// Sends the head of a `length`-byte upload over a raw connection, then up to `sent` bytes of it,
/// and reads what the server answers meanwhile.
async fn raw_upload(app: &TestApp, token: &str, declared: Option<u64>, sent: usize) -> String {
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let length = declared
        .map(|n| format!("content-length: {n}\r\n"))
        .unwrap_or_else(|| "transfer-encoding: chunked\r\n".to_owned());
    let head = format!(
        "POST /api/uploads HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary={BOUNDARY}\r\n{length}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let part = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n\r\n");
    let chunk = vec![b'a'; 64 * 1024];
    let mut written = 0;
    let mut first = Some(part.into_bytes());
    // Stops writing when the server has answered and closed (a write then fails).
    while written < sent {
        let mut piece = first.take().unwrap_or_default();
        piece.extend_from_slice(&chunk);
        let framed = if declared.is_some() {
            piece
        } else {
            let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
            framed.extend_from_slice(&piece);
            framed.extend_from_slice(b"\r\n");
            framed
        };
        if stream.write_all(&framed).await.is_err() {
            break;
        }
        written += chunk.len();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_20_mib_upload_is_refused_with_413_before_it_is_read_whole() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let twenty_mib = 20 * 1024 * 1024;
    // Declared: refused at once, with nothing of the body sent.
    let answer = raw_upload(&app, &token, Some(twenty_mib), 0).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("文件过大，不能超过10MB"), "{answer}");
    // Chunked, so no length is declared: refused at the limit, after 10 of the 20 MiB.
    let answer = raw_upload(&app, &token, None, twenty_mib as usize).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn an_expired_or_forged_url_is_403_and_an_unknown_or_orphaned_attachment_404() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let answer = upload(&app, &token, "a.png", &png(40, 30)).await;
    let id = attachment_id(&answer);
    let attachments = &app.services.attachments;
    let expired = attachments.url_expiring(&id, Variant::File, now().timestamp() - 1);
    assert_eq!(bytes_of(&app, &expired, &[]).await.0, 403);
    let good = attachments.url_expiring(&id, Variant::File, now().timestamp() + 60);
    let forged = good.replace("exp=", "exp=1");
    assert_eq!(bytes_of(&app, &forged, &[]).await.0, 403);
    let thumbnail_with_file_signature = good.replace("?exp", "/thumbnail?exp");
    assert_eq!(bytes_of(&app, &thumbnail_with_file_signature, &[]).await.0, 403, "the variant is signed");
    let unsigned = format!("/files/{id}");
    let refused = app.get(None, &unsigned).await;
    assert_eq!(refused.status, 403);
    assert!(has_chinese(refused.body["message"].as_str().unwrap()), "{}", refused.text);
    let unknown = attachments.url_expiring(&Id::parse("att0000").unwrap(), Variant::File, now().timestamp() + 60);
    assert_eq!(bytes_of(&app, &unknown, &[]).await.0, 404);

    assert_eq!(bytes_of(&app, &good, &[]).await.0, 200);
    let jobs = &app.services.jobs;
    let not_yet = jobs.run_now(Job::AttachmentOrphans, "test").await.unwrap().unwrap();
    assert_eq!(not_yet.changed, 0, "uploaded just now: {}", not_yet.summary);
    app.clock().advance(std::time::Duration::from_secs(25 * 3600));
    let ran = jobs.run_now(Job::AttachmentOrphans, "test").await.unwrap();
    assert!(ran.unwrap().changed >= 1);
    assert_eq!(bytes_of(&app, &good, &[]).await.0, 404, "gone after the job");
    app.stop().await;
}

const SEND_WITH_ATTACHMENTS: &str = "mutation($customerId: ID!, $content: String, $ids: [ID!]) {
    sendChatMessage(customerId: $customerId, content: $content, attachmentIds: $ids) {
        id content attachments { id fileName contentType size width height url thumbnailUrl }
    }
}";

const CHAT_SUBSCRIPTION: &str = "subscription($customerId: ID, $after: String) {
    chatMessages(customerId: $customerId, after: $after) {
        message { id content attachments { id fileName contentType size width height url thumbnailUrl } }
    }
}";

#[tokio::test]
async fn a_png_sent_in_chat_reaches_a_subscriber_whose_urls_download_the_file_and_a_smaller_image() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let picture = png(640, 480);
    let uploaded = upload(&app, &token, "报错截图.png", &picture).await;
    let id = uploaded.body["data"]["attachmentId"].as_str().unwrap().to_owned();

    let mut ws = WsClient::connect(&app, &token).await;
    let provider = Id::parse("sp001").unwrap();
    let after = app.services.store.latest_cursor(&provider).await.unwrap().to_string();
    ws.subscribe("chat", CHAT_SUBSCRIPTION, serde_json::json!({ "customerId": "c001", "after": after })).await;

    let variables = serde_json::json!({ "customerId": "c001", "ids": [id] });
    let sent = app.data(&token, SEND_WITH_ATTACHMENTS, variables).await["sendChatMessage"].clone();
    assert_eq!(sent["content"], "", "no text needed with an attachment");
    assert_eq!(sent["attachments"][0]["id"], id.as_str());

    let event = ws.next_event("chat").await;
    assert_eq!(event["message"]["id"], sent["id"], "{event}");
    let attachment = &event["message"]["attachments"][0];
    assert_eq!(attachment["fileName"], "报错截图.png");
    assert_eq!((attachment["width"].as_u64(), attachment["height"].as_u64()), (Some(640), Some(480)));
    let (status, _, bytes) = bytes_of(&app, attachment["url"].as_str().unwrap(), &[]).await;
    assert_eq!((status, bytes == picture), (200, true), "the url downloads the same bytes");
    let (status, _, thumbnail) = bytes_of(&app, attachment["thumbnailUrl"].as_str().unwrap(), &[]).await;
    assert_eq!(status, 200);
    let small = image::load_from_memory(&thumbnail).unwrap();
    assert_eq!((small.width(), small.height()), (320, 240), "a smaller image");

    // A used attachment outlives the orphan job.
    app.services.attachments.delete_orphans(now() + chrono::Duration::hours(48)).await.unwrap();
    assert_eq!(bytes_of(&app, attachment["url"].as_str().unwrap(), &[]).await.0, 200);
    ws.close().await;
    app.stop().await;
}

#[tokio::test]
async fn demo_b_gets_404_for_demo_a_attachment_and_the_text_rules_stand_without_attachments() {
    let app = TestApp::spawn().await;
    let token_a = app.login("demo-a").await;
    let token_b = app.login("demo-b").await;
    let uploaded = upload(&app, &token_a, "a.txt", b"hello").await;
    let id = uploaded.body["data"]["attachmentId"].as_str().unwrap().to_owned();

    let by_b = app
        .graphql(Some(&token_b), SEND_WITH_ATTACHMENTS, serde_json::json!({ "customerId": "c031", "ids": [id] }))
        .await;
    assert_error(&by_b, "NOT_FOUND");
    let rest = app
        .post(Some(&token_b), "/api/chat/send", serde_json::json!({ "customerId": "c031", "attachmentIds": [id] }))
        .await;
    assert_eq!(rest.status, 404, "{}", rest.text);

    let rest = app
        .post(Some(&token_a), "/api/chat/send", serde_json::json!({ "customerId": "c001", "attachmentIds": [id] }))
        .await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    assert_eq!(rest.body["data"]["content"], "", "no text needed with an attachment");
    let history = "query($customerId: ID!) { chatMessages(customerId: $customerId, pageSize: 1) {
        items { id attachments { id contentType thumbnailUrl } } } }";
    let page = app.data(&token_a, history, serde_json::json!({ "customerId": "c001" })).await;
    let latest = &page["chatMessages"]["items"][0];
    assert_eq!(latest["id"], rest.body["data"]["messageId"], "{page}");
    assert_eq!(latest["attachments"][0]["contentType"], "text/plain; charset=utf-8");
    assert!(latest["attachments"][0]["thumbnailUrl"].is_null(), "no thumbnail but for images");

    let ten: Vec<String> = (0..10).map(|n| format!("att{n:04}")).collect();
    let too_many = app
        .graphql(Some(&token_a), SEND_WITH_ATTACHMENTS, serde_json::json!({ "customerId": "c001", "ids": ten }))
        .await;
    assert_error(&too_many, "BAD_USER_INPUT");
    let empty = app.graphql(Some(&token_a), SEND_WITH_ATTACHMENTS, serde_json::json!({ "customerId": "c001" })).await;
    assert_error(&empty, "BAD_USER_INPUT");
    assert_eq!(
        error_message(&empty),
        "消息内容不能为空：请提供 content 或 cannedReplyId",
        "the spec's message, as before"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_upload_route_as_a_multipart_addition() {
    let app = TestApp::spawn().await;
    let document = app.get(None, "/api/openapi.json").await.body;
    let operation = &document["paths"]["/api/uploads"]["post"];
    assert_eq!(operation["x-addition"], true, "{operation}");
    let part = &operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"];
    assert_eq!(part["format"], "binary");
    for status in ["200", "413", "415"] {
        assert!(operation["responses"].get(status).is_some(), "{status} documented");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_pc_system_receives_the_attachment_in_the_chat_webhook_with_a_url_that_downloads_it() {
    use crate::integration::{integrated, pairs, Receiver};
    let receiver = Receiver::start().await;
    let settings = integrated(&receiver, &[]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login("demo-a").await;
    let picture = png(200, 100);
    let uploaded = upload(&app, &token, "出库单.png", &picture).await;
    let id = uploaded.body["data"]["attachmentId"].as_str().unwrap().to_owned();
    let variables = serde_json::json!({ "customerId": "c001", "content": "请看截图", "ids": [id] });
    app.data(&token, SEND_WITH_ATTACHMENTS, variables).await;

    let received = receiver.wait_for("the chat webhook", |r| r.iter().any(|r| r.path == "/hooks/cs")).await;
    let hook = received.iter().find(|r| r.path == "/hooks/cs").unwrap().json();
    assert_eq!(hook["type"], "chat.message", "{hook}");
    let attachment = &hook["data"]["attachments"][0];
    assert_eq!(attachment["id"], id.as_str(), "{hook}");
    assert_eq!(attachment["fileName"], "出库单.png");
    assert_eq!(attachment["contentType"], "image/png");
    assert_eq!(attachment["size"], picture.len() as u64);
    // Relative without PUBLIC_BASE_URL: the PC system puts the server's address in front.
    let url = attachment["url"].as_str().unwrap();
    assert!(url.starts_with("/files/"), "{url}");
    let (status, _, bytes) = bytes_of(&app, url, &[]).await;
    assert_eq!((status, bytes == picture), (200, true));
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_sent_again_carries_an_attachment_url_signed_for_that_attempt() {
    use crate::integration::{integrated, pairs, Receiver};
    let receiver = Receiver::start().await;
    // The first attempt is taken and answered 500; the retry follows more than a second later,
    // so a URL signed for it expires a whole second after the first one's.
    let settings = integrated(&receiver, &[("OUTBOX_BASE_DELAY_MS", "2400"), ("OUTBOX_MAX_DELAY_MS", "2400")]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login("demo-a").await;
    let picture = png(64, 64);
    let uploaded = upload(&app, &token, "盘点表.png", &picture).await;
    let id = uploaded.body["data"]["attachmentId"].as_str().unwrap().to_owned();
    receiver.take_then_fail(1);
    let variables = serde_json::json!({ "customerId": "c001", "content": "盘点表", "ids": [id] });
    app.data(&token, SEND_WITH_ATTACHMENTS, variables).await;

    let received = receiver
        .wait_for("the webhook and its retry", |r| r.iter().filter(|r| r.path == "/hooks/cs").count() >= 2)
        .await;
    let urls: Vec<String> = received
        .iter()
        .filter(|r| r.path == "/hooks/cs")
        .map(|r| r.json()["data"]["attachments"][0]["url"].as_str().expect("an attachment URL").to_owned())
        .collect();
    let expiry = |url: &str| -> i64 {
        let query = url.split_once('?').map(|(_, query)| query).unwrap_or_default();
        let exp = query.split('&').find_map(|pair| pair.strip_prefix("exp=")).expect("exp in the URL");
        exp.parse().expect("exp is a Unix time")
    };
    assert!(expiry(&urls[1]) > expiry(&urls[0]), "signed again for the retry: {urls:?}");
    let (status, _, bytes) = bytes_of(&app, &urls[1], &[]).await;
    assert_eq!((status, bytes == picture), (200, true), "the retry's URL downloads the file");
    app.stop().await;
}

#[tokio::test]
async fn the_pc_system_receives_a_tickets_and_a_replys_attachments_in_their_webhooks() {
    use crate::integration::{integrated, pairs, Receiver};
    let receiver = Receiver::start().await;
    let settings = integrated(&receiver, &[]);
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let token = app.login("demo-a").await;
    let upload_id = |answer: Answer| answer.body["data"]["attachmentId"].as_str().unwrap().to_owned();
    let picture = png(120, 80);
    let screenshot = upload_id(upload(&app, &token, "报错.png", &picture).await);
    let export = upload_id(upload(&app, &token, "导出.csv", "商品,库存\n".as_bytes()).await);
    let created = app
        .post(
            Some(&token),
            "/api/tickets",
            serde_json::json!({ "customerId": "c001", "title": "导出失败", "content": "见截图",
                "type": "system_issue", "attachmentIds": [screenshot] }),
        )
        .await;
    let ticket = created.body["data"]["ticketId"].as_str().unwrap().to_owned();
    let reply = serde_json::json!({ "content": "请看导出", "attachmentIds": [export] });
    assert_eq!(app.post(Some(&token), &format!("/api/tickets/{ticket}/reply"), reply).await.status, 200);

    let hooks_of = |received: &[crate::integration::Received], kind: &str| -> Vec<serde_json::Value> {
        received.iter().filter(|r| r.path == "/hooks/cs").map(|r| r.json()).filter(|h| h["type"] == kind).collect()
    };
    let received = receiver
        .wait_for("the ticket webhooks", |r| {
            !hooks_of(r, "ticket.created").is_empty() && !hooks_of(r, "ticket.replied").is_empty()
        })
        .await;
    let created = &hooks_of(&received, "ticket.created")[0];
    assert_eq!(created["data"]["attachments"][0]["id"], screenshot.as_str(), "{created}");
    let url = created["data"]["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(bytes_of(&app, url, &[]).await.2, picture);
    let replied = &hooks_of(&received, "ticket.replied")[0];
    let attachments = replied["data"]["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "the reply's own attachments, not the ticket's: {replied}");
    assert_eq!(attachments[0]["fileName"], "导出.csv");
    app.stop().await;
}

#[tokio::test]
async fn tickets_and_their_replies_carry_attachments_in_the_ticket_and_its_history() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let token_b = app.login("demo-b").await;
    let upload_id = |answer: Answer| answer.body["data"]["attachmentId"].as_str().unwrap().to_owned();
    let screenshot = upload_id(upload(&app, &token, "库存.png", &png(400, 200)).await);
    let export = upload_id(upload(&app, &token, "导出.csv", "商品,库存\n".as_bytes()).await);

    let created = app
        .post(
            Some(&token),
            "/api/tickets",
            serde_json::json!({ "customerId": "c001", "title": "库存不对", "content": "见截图",
                "type": "system_issue", "attachmentIds": [screenshot] }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let ticket = created.body["data"]["ticketId"].as_str().unwrap().to_owned();
    let reply = app
        .post(Some(&token), &format!("/api/tickets/{ticket}/reply"), serde_json::json!({ "attachmentIds": [export] }))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["data"]["content"], "[附件]", "a reply of attachments alone");

    let query = "query($id: ID!) { ticket(id: $id) {
        attachments { id thumbnailUrl } processingHistory { action attachments { id fileName url } } } }";
    let read = app.data(&token, query, serde_json::json!({ "id": ticket })).await["ticket"].clone();
    assert_eq!(read["attachments"][0]["id"], screenshot.as_str(), "{read}");
    assert!(read["attachments"][0]["thumbnailUrl"].is_string());
    let replied = read["processingHistory"].as_array().unwrap().iter().find(|e| e["action"] == "reply").unwrap();
    assert_eq!(replied["attachments"][0]["fileName"], "导出.csv", "{read}");
    let (status, _, bytes) = bytes_of(&app, replied["attachments"][0]["url"].as_str().unwrap(), &[]).await;
    assert_eq!((status, bytes), (200, "商品,库存\n".as_bytes().to_vec()));

    let by_b = app
        .post(
            Some(&token_b),
            "/api/tickets",
            serde_json::json!({ "customerId": "c031", "title": "t", "content": "c",
            "type": "system_issue", "attachmentIds": [screenshot] }),
        )
        .await;
    assert_eq!(by_b.status, 404, "another provider's attachment: {}", by_b.text);
    app.stop().await;
}

#[tokio::test]
async fn the_pc_system_uploads_a_file_signed_and_a_customer_message_carries_it_to_the_provider() {
    use crate::integration::{integrated, pairs, post_signed, Receiver};
    use hmac::Mac;
    let receiver = Receiver::start().await;
    let settings = integrated(&receiver, &[]);
    let secret = settings.iter().find(|(k, _)| k == "CS_WEBHOOK_SECRET").unwrap().1.clone();
    let app = TestApp::spawn_configured(&pairs(&settings)).await;
    let picture = png(300, 150);
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"serviceProviderId\"\r\n\r\nsp001\r\n")
            .into_bytes();
    body.extend_from_slice(
        &multipart("客户截图.png", &picture)
            [format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\ndemo\r\n").len()..],
    );
    let post = |body: Vec<u8>, signature: String, timestamp: String| {
        app.client
            .post(app.url("/integrations/cs/uploads"))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .header("x-pd-timestamp", timestamp)
            .header("x-pd-signature", signature)
            .body(body)
            .send()
    };
    let timestamp = now().timestamp().to_string();
    let sign = |body: &[u8]| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let digest: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={digest}")
    };
    let forged = post(body.clone(), sign(b"something else"), timestamp.clone()).await.unwrap();
    assert_eq!(forged.status(), 401);
    let answer = Answer::read(post(body.clone(), sign(&body), timestamp.clone()).await.unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let id = answer.body["data"]["attachmentId"].as_str().unwrap().to_owned();
    assert_eq!(answer.body["data"]["width"], 300);

    let message = serde_json::json!({ "messageId": "pc-att-1", "customerId": "c001", "attachmentIds": [id] });
    let (status, _, received) = post_signed(&app, "/integrations/cs/messages", &secret, &message).await;
    assert_eq!(status, 200, "{received}");
    let token = app.login("demo-a").await;
    let history = "query { chatMessages(customerId: \"c001\", pageSize: 1) { items { id senderType content attachments { id url } } } }";
    let latest = app.data(&token, history, serde_json::json!({})).await["chatMessages"]["items"][0].clone();
    assert_eq!(
        (latest["senderType"].as_str(), latest["content"].as_str()),
        (Some("CUSTOMER"), Some("[附件]")),
        "{latest}"
    );
    assert_eq!(latest["attachments"][0]["id"], id.as_str());
    let (status, _, bytes) = bytes_of(&app, latest["attachments"][0]["url"].as_str().unwrap(), &[]).await;
    assert_eq!((status, bytes == picture), (200, true));

    // For a customer of another provider, the attachment is not found.
    let other = serde_json::json!({ "messageId": "pc-att-2", "customerId": "c031", "attachmentIds": [id] });
    assert_eq!(post_signed(&app, "/integrations/cs/messages", &secret, &other).await.0, 404);
    app.stop().await;
}

/// Makes the store refuse every new attachment record, as a full disk or a lost primary would.
async fn refuse_new_attachments(app: &TestApp) {
    match &app.backend {
        Backend::Sqlite => {
            let connection = rusqlite::Connection::open(app.database_file()).expect("the database opens");
            connection
                .execute_batch(
                    "CREATE TRIGGER refuse_attachments BEFORE INSERT ON attachments
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                )
                .expect("the trigger is created");
        }
        Backend::Mongo { mongodb_uri, .. } => {
            use mongodb::bson::doc;
            let client = mongodb::Client::with_uri_str(mongodb_uri).await.expect("MongoDB answers");
            let database = client.database(&database_name(&app.data_dir));
            let never = doc! { "collMod": "attachments", "validator": { "refusedByTheTest": { "$exists": true } } };
            database.run_command(never).await.expect("the validator is set");
        }
    }
}

#[tokio::test]
async fn an_upload_whose_record_cannot_be_stored_fails_and_leaves_no_file_behind() {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn().await;
    let token = app.login(DEMO_A).await;
    refuse_new_attachments(&app).await;
    let picture = png(90, 60);
    let answer = upload(&app, &token, "库存.png", &picture).await;
    assert!(answer.status >= 500, "the upload fails: {} {}", answer.status, answer.text);
    let sha256: String = Sha256::digest(&picture).iter().map(|b| format!("{b:02x}")).collect();
    let blob = app.services.store.open_blob(&sha256, 0).await.expect("the store answers");
    assert!(blob.is_none(), "no file is kept that no attachment names");
    app.stop().await;
}

#[tokio::test]
async fn the_same_screenshot_uploaded_four_times_at_once_is_stored_for_each_and_kept_while_one_copy_is_used() {
    let app = TestApp::spawn().await;
    let token = app.login("demo-a").await;
    let picture = png(320, 200);
    let uploads = (0..4).map(|_| upload(&app, &token, "同一张截图.png", &picture));
    let answers = futures_util::future::join_all(uploads).await;
    let mut ids = Vec::new();
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
        ids.push(attachment_id(answer));
    }
    let distinct: std::collections::HashSet<&Id> = ids.iter().collect();
    assert_eq!(distinct.len(), 4, "an attachment for each upload");
    let url = |id: &Id| app.services.attachments.url_expiring(id, Variant::File, now().timestamp() + 48 * 3600);
    for id in &ids {
        assert_eq!(bytes_of(&app, &url(id), &[]).await.2, picture, "each downloads the whole picture");
    }

    let sent = app
        .post(
            Some(&token),
            "/api/chat/send",
            serde_json::json!({ "customerId": "c001", "attachmentIds": [ids[2].as_str()] }),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    app.clock().advance(std::time::Duration::from_secs(25 * 3600));
    let ran = app.services.jobs.run_now(Job::AttachmentOrphans, "test").await.unwrap().unwrap();
    assert_eq!(ran.changed, 3, "the three never sent: {}", ran.summary);
    for (index, id) in ids.iter().enumerate() {
        let (status, _, bytes) = bytes_of(&app, &url(id), &[]).await;
        if index == 2 {
            assert_eq!((status, bytes == picture), (200, true), "the copy sent in chat keeps the shared bytes");
        } else {
            assert_eq!(status, 404, "an unused copy is gone");
        }
    }
    app.stop().await;
}
