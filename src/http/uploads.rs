//! The attachment routes: `POST /api/uploads` (multipart/form-data, one part named `file`, as
//! `wx.uploadFile` sends it) and the signed downloads `GET /files/:id` and
//! `GET /files/:id/thumbnail` (`?exp=&sig=`).
//!
//! The design choice: these are plain axum routes, not REST operations over GraphQL, because
//! their bodies are bytes, not JSON. The upload is never buffered: the edge leaves its body alone
//! (see [`UPLOADS_PATH`] in `edge`), a declared length far over `UPLOAD_MAX_BYTES` is refused
//! before a byte is read, and otherwise the part is streamed to the service, which refuses at the
//! first byte past the limit. Downloads stream the blob, answer one `Range` with 206, and carry
//! the headers an `<image>` tag, a PDF viewer and a browser need (`ETag`, `Cache-Control: private`,
//! an RFC 6266 `Content-Disposition`, `nosniff`).

use super::AppState;
use crate::config::IntegrationSettings;
use crate::domain::Attachment;
use crate::error::http::{rest_envelope, HttpError, Protocol};
use crate::error::{AppError, ErrorCode};
use crate::integration::signature::{SignatureError, StreamingVerifier, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::service::attachments::{UploadRefused, Variant};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

/// The upload route, which the edge does not buffer.
pub const UPLOADS_PATH: &str = "/api/uploads";

/// What a multipart body may add to the file it carries (boundaries, part headers, small form
/// fields that `wx.uploadFile` sends beside the file).
const MULTIPART_OVERHEAD_BYTES: u64 = 64 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(UPLOADS_PATH, post(upload).layer(DefaultBodyLimit::disable()))
        .route("/files/{id}", get(download_file))
        .route("/files/{id}/thumbnail", get(download_thumbnail))
        .method_not_allowed_fallback(crate::rest::method_not_allowed)
}

/// The answer to an upload: the attachment as a client uses it.
pub fn uploaded(attachment: &Attachment) -> Value {
    let mut data = json!({
        "attachmentId": attachment.id.as_str(),
        "fileName": attachment.file_name,
        "contentType": attachment.content_type,
        "size": attachment.size,
    });
    if let (Some(width), Some(height)) = (attachment.width, attachment.height) {
        data["width"] = json!(width);
        data["height"] = json!(height);
    }
    data
}

fn too_large(max_bytes: u64) -> Response {
    crate::context::note_bad_request(crate::context::BadRequest::BodyTooLarge);
    let message = format!("文件过大，不能超过{}MB", max_bytes.div_ceil(1024 * 1024));
    let mut response = HttpError::new(Protocol::Rest, ErrorCode::BadUserInput, message)
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into_response();
    // The rest of the body is not read: the connection cannot carry another request.
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn unsupported(message: &'static str) -> Response {
    HttpError::new(Protocol::Rest, ErrorCode::BadUserInput, message)
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .into_response()
}

async fn upload(State(state): State<AppState>, headers: HeaderMap, request: axum::extract::Request) -> Response {
    let services = &state.services;
    let session = match crate::graphql::authenticate(services, &headers).await.0 {
        Ok(session) => session,
        Err(error) => return error.into_response(),
    };
    let client = request.extensions().get::<crate::service::ClientInfo>().cloned().unwrap_or_default();
    if let Err(refusal) = services.guard.check_provider(&session.provider_id, client.ip, 1).await {
        return AppError::from(refusal).into_response();
    }
    let max_bytes = services.attachments.max_bytes();
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes + MULTIPART_OVERHEAD_BYTES) {
        return too_large(max_bytes);
    }
    let mut multipart = match <Multipart as axum::extract::FromRequest<AppState>>::from_request(request, &state).await {
        Ok(multipart) => multipart,
        Err(rejection) => {
            tracing::debug!(%rejection, "an upload is not multipart");
            return unsupported("请求体应为 multipart/form-data，文件放在名为 file 的字段中");
        }
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return AppError::bad_input("file", "缺少文件（字段名应为 file）").into_response(),
            Err(error) => {
                tracing::debug!(%error, "an upload could not be read");
                return AppError::BadInput { field: None, message: "上传中断或请求格式不正确".to_owned() }
                    .into_response();
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field.file_name().map(str::to_owned);
        let chunks = field.map_err(|error| error.to_string());
        return match services.attachments.upload(&session.provider_id, file_name.as_deref(), chunks).await {
            Ok(attachment) => rest_envelope(StatusCode::OK, "上传成功", &uploaded(&attachment), None),
            Err(UploadRefused::TooLarge { max_bytes }) => too_large(max_bytes),
            Err(UploadRefused::Unsupported(message)) => unsupported(message),
            Err(UploadRefused::Failed(error)) => error.into_response(),
        };
    }
}

/// `POST /integrations/cs/uploads`, signed like the other webhooks of the PC customer-service
/// system (on when `CS_WEBHOOK_SECRET` is set): a multipart body with a `serviceProviderId` part
/// first, then the `file` part; the attachment belongs to that provider, for the
/// `attachmentIds` of a customer's message to it.
pub fn customer_service_routes(settings: &IntegrationSettings) -> Router<AppState> {
    let Some(secret) = settings.cs_secret.clone() else { return Router::new() };
    let tolerance = settings.signature_tolerance;
    let handler = move |State(state): State<AppState>, headers: HeaderMap, request: axum::extract::Request| {
        let secret = secret.clone();
        async move { customer_service_upload(state, secret.as_bytes(), tolerance, headers, request).await }
    };
    Router::new().route(CS_UPLOADS_PATH, post(handler).layer(DefaultBodyLimit::disable()))
}

/// The PC system's upload route, which the edge does not buffer either.
pub const CS_UPLOADS_PATH: &str = "/integrations/cs/uploads";

fn webhook_envelope(status: StatusCode, message: &str, data: Value) -> Response {
    (status, axum::Json(json!({ "code": status.as_u16(), "message": message, "data": data }))).into_response()
}

fn signature_refused(error: SignatureError) -> Response {
    let message = match error {
        SignatureError::Malformed => "缺少签名或签名格式不正确（需要X-PD-Timestamp与X-PD-Signature）",
        SignatureError::Stale => "签名时间戳已过期或与服务器时间相差过大",
        SignatureError::Mismatch => "签名无效",
    };
    crate::context::note_bad_request(crate::context::BadRequest::BadSignature);
    webhook_envelope(StatusCode::UNAUTHORIZED, message, Value::Null)
}

/// The body is streamed to a temporary file while its HMAC is computed (nothing is read into
/// memory whole, and nothing is stored, before the signature holds), then read back as multipart.
async fn customer_service_upload(
    state: AppState,
    secret: &[u8],
    tolerance: std::time::Duration,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    use tokio::io::AsyncWriteExt;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let verifier = StreamingVerifier::start(secret, header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER), now, tolerance);
    let mut verifier = match verifier {
        Ok(verifier) => verifier,
        Err(error) => return signature_refused(error),
    };
    let attachments = &state.services.attachments;
    let limit = attachments.max_bytes() + MULTIPART_OVERHEAD_BYTES;
    let path = match attachments.temp_file().await {
        Ok(path) => path,
        Err(error) => return error.into_response(),
    };
    let _removed = RemovedOnDrop(path.clone());
    let written = async {
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| AppError::internal(e.to_string()))?;
        let mut body = request.into_body().into_data_stream();
        let mut size = 0u64;
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            let chunk =
                chunk.map_err(|_| AppError::BadInput { field: None, message: "无法读取请求体".to_owned() })?;
            size += chunk.len() as u64;
            if size > limit {
                return Ok(false);
            }
            verifier.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| AppError::internal(e.to_string()))?;
        }
        file.flush().await.map_err(|e| AppError::internal(e.to_string()))?;
        Ok::<_, AppError>(true)
    }
    .await;
    match written {
        Ok(true) => {}
        Ok(false) => return too_large(attachments.max_bytes()),
        Err(error) => return webhook_failure(error),
    }
    if let Err(error) = verifier.finish() {
        return signature_refused(error);
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        Err(error) => return webhook_failure(AppError::internal(error.to_string())),
    };
    let mut replayed = axum::extract::Request::new(Body::from_stream(ReaderStream::new(file)));
    if let Some(content_type) = headers.get(header::CONTENT_TYPE) {
        replayed.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
    }
    let Ok(mut multipart) = <Multipart as axum::extract::FromRequest<AppState>>::from_request(replayed, &state).await
    else {
        return unsupported("请求体应为 multipart/form-data：先 serviceProviderId，再名为 file 的文件");
    };
    let mut provider = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return webhook_failure(AppError::bad_input("file", "缺少文件（字段名应为 file）")),
            Err(_) => {
                return webhook_failure(AppError::BadInput { field: None, message: "请求格式不正确".to_owned() })
            }
        };
        match field.name() {
            Some("serviceProviderId") => {
                let text = field.text().await.unwrap_or_default();
                match crate::service::input::id(text.trim(), "serviceProviderId", "服务商ID") {
                    Ok(id) => provider = Some(id),
                    Err(error) => return webhook_failure(error),
                }
            }
            Some("file") => {
                let Some(provider) = provider else {
                    return webhook_failure(AppError::bad_input(
                        "serviceProviderId",
                        "缺少 serviceProviderId（应在 file 之前）",
                    ));
                };
                match state.services.store.providers_by_ids(std::slice::from_ref(&provider)).await {
                    Ok(found) if !found.is_empty() => {}
                    Ok(_) => return webhook_failure(AppError::NotFound("服务商")),
                    Err(error) => return webhook_failure(error),
                }
                let file_name = field.file_name().map(str::to_owned);
                let chunks = field.map_err(|error| error.to_string());
                return match attachments.upload(&provider, file_name.as_deref(), chunks).await {
                    Ok(attachment) => webhook_envelope(StatusCode::OK, "上传成功", uploaded(&attachment)),
                    Err(UploadRefused::TooLarge { max_bytes }) => too_large(max_bytes),
                    Err(UploadRefused::Unsupported(message)) => unsupported(message),
                    Err(UploadRefused::Failed(error)) => webhook_failure(error),
                };
            }
            _ => continue,
        }
    }
}

fn webhook_failure(error: AppError) -> Response {
    if error.code().is_server_fault() {
        tracing::error!(code = error.code().as_str(), detail = %error.operator_detail(), "an upload of the PC system failed");
    }
    webhook_envelope(error.http_status(), &error.to_string(), Value::Null)
}

/// Removes a temporary file when the request is done with it, however it ends.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Deserialize)]
struct Signed {
    exp: Option<String>,
    sig: Option<String>,
}

async fn download_file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    download(state, &id, Variant::File, signed, &headers).await
}

async fn download_thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    download(state, &id, Variant::Thumbnail, signed, &headers).await
}

async fn download(state: AppState, id: &str, variant: Variant, signed: Signed, headers: &HeaderMap) -> Response {
    let attachments = &state.services.attachments;
    let download = match attachments.download(id, variant, signed.exp.as_deref(), signed.sig.as_deref()).await {
        Ok(download) => download,
        Err(error) => return error.into_response(),
    };
    let etag = format!("\"{}\"", download.sha256);
    let cache = format!("private, max-age={}", attachments.url_ttl().as_secs());
    let mut response_headers = HeaderMap::new();
    let mut set = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            response_headers.insert(name, value);
        }
    };
    set(header::ETAG, &etag);
    set(header::CACHE_CONTROL, &cache);
    set(header::ACCEPT_RANGES, "bytes");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::CONTENT_TYPE, &download.content_type);
    set(header::CONTENT_DISPOSITION, &content_disposition(&download.attachment, variant));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag)) {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let size = download.size;
    let (status, start, length) = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => (StatusCode::OK, 0, size),
        Some(range) => match byte_range(range, size) {
            Range::Whole => (StatusCode::OK, 0, size),
            Range::Part(start, end) => {
                set(header::CONTENT_RANGE, &format!("bytes {start}-{end}/{size}"));
                (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
            }
            Range::Unsatisfiable => {
                set(header::CONTENT_RANGE, &format!("bytes */{size}"));
                return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response();
            }
        },
    };
    let reader = match attachments.open(&download, start).await {
        Ok(reader) => reader,
        Err(error) => return error.into_response(),
    };
    set(header::CONTENT_LENGTH, &length.to_string());
    let body = Body::from_stream(ReaderStream::new(reader.take(length)));
    (status, response_headers, body).into_response()
}

/// `inline` (images and PDFs open in place), with an ASCII fallback name and the UTF-8 one
/// (RFC 6266, RFC 8187).
fn content_disposition(attachment: &Attachment, variant: Variant) -> String {
    let name = match variant {
        Variant::File => attachment.file_name.clone(),
        Variant::Thumbnail => format!("thumbnail-{}.jpg", attachment.id),
    };
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let disposition =
        if attachment.is_image() || attachment.content_type == "application/pdf" || variant == Variant::Thumbnail {
            "inline"
        } else {
            "attachment"
        };
    format!("{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No usable single range: the whole file (several ranges are answered whole too).
    Whole,
    /// From and to, both inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// A `Range: bytes=a-b` header (also `a-` and `-n`) for a file of `size` bytes.
fn byte_range(header: &str, size: u64) -> Range {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return Range::Whole };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((from, to)) = spec.trim().split_once('-') else { return Range::Whole };
    let (from, to) = (from.trim(), to.trim());
    let parsed = |text: &str| text.parse::<u64>().ok();
    match (from.is_empty(), to.is_empty()) {
        (true, false) => match parsed(to) {
            Some(0) => Range::Unsatisfiable,
            Some(_) if size == 0 => Range::Unsatisfiable,
            Some(suffix) => Range::Part(size.saturating_sub(suffix), size - 1),
            None => Range::Whole,
        },
        (false, _) => {
            let Some(start) = parsed(from) else { return Range::Whole };
            let end = if to.is_empty() { Some(u64::MAX) } else { parsed(to) };
            match end {
                None => Range::Whole,
                Some(end) if end < start => Range::Whole,
                Some(_) if start >= size => Range::Unsatisfiable,
                Some(end) => Range::Part(start, end.min(size - 1)),
            }
        }
        (true, true) => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_byte_range_is_served_in_part_and_anything_else_whole_or_refused() {
        assert_eq!(byte_range("bytes=0-99", 1000), Range::Part(0, 99));
        assert_eq!(byte_range("bytes=900-", 1000), Range::Part(900, 999));
        assert_eq!(byte_range("bytes=-100", 1000), Range::Part(900, 999));
        assert_eq!(byte_range("bytes=990-2000", 1000), Range::Part(990, 999));
        assert_eq!(byte_range("bytes=0-1,5-9", 1000), Range::Whole);
        assert_eq!(byte_range("items=0-1", 1000), Range::Whole);
        assert_eq!(byte_range("bytes=9-1", 1000), Range::Whole);
        assert_eq!(byte_range("bytes=1000-", 1000), Range::Unsatisfiable);
    }
}
