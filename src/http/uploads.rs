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
use crate::domain::Attachment;
use crate::error::http::{rest_envelope, HttpError, Protocol};
use crate::error::{AppError, ErrorCode};
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
        return match services.attachments.upload(&session, file_name.as_deref(), chunks).await {
            Ok(attachment) => rest_envelope(StatusCode::OK, "上传成功", &uploaded(&attachment), None),
            Err(UploadRefused::TooLarge { max_bytes }) => too_large(max_bytes),
            Err(UploadRefused::Unsupported(message)) => unsupported(message),
            Err(UploadRefused::Failed(error)) => error.into_response(),
        };
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
