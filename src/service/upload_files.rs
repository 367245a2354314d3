//! The file work of an upload, apart from its rules: measuring and thumbnailing an image under
//! decode limits (run on the blocking pool by the caller), the name kept for a file, and the
//! temporary file an upload is streamed into.
//!
//! The design choice: everything here is synchronous or plain file I/O with no store and no
//! session, so [`super::attachments`] keeps only what an upload means and these stay testable alone.

use crate::domain::attachment::{FileKind, THUMBNAIL_WIDTH};
use crate::domain::new_id;
use crate::error::{AppError, AppResult};
use std::path::{Path, PathBuf};

/// The most memory one image decode may allocate: a long phone screenshot (1080 × 30,000 RGBA is
/// 124 MiB) fits, a decompression bomb does not.
const MAX_DECODE_BYTES: u64 = 160 * 1024 * 1024;
/// The largest side of an image accepted for decoding.
const MAX_IMAGE_SIDE: u32 = 40_000;
/// The longest file name kept, in characters.
const MAX_FILE_NAME_CHARS: usize = 120;

/// An image's size and its JPEG thumbnail.
pub(super) struct Measured {
    pub width: u32,
    pub height: u32,
    pub thumbnail: Vec<u8>,
}

pub(super) fn measure_image(path: &Path, kind: FileKind) -> Option<Measured> {
    let format = match kind {
        FileKind::Png => image::ImageFormat::Png,
        FileKind::Jpeg => image::ImageFormat::Jpeg,
        FileKind::Gif => image::ImageFormat::Gif,
        FileKind::Webp => image::ImageFormat::WebP,
        _ => return None,
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let reader = |limits: image::Limits| -> Option<image::ImageReader<std::io::BufReader<std::fs::File>>> {
        let mut reader = image::ImageReader::open(path).ok()?;
        reader.set_format(format);
        reader.limits(limits);
        Some(reader)
    };
    let (width, height) = reader(limits.clone())?.into_dimensions().ok()?;
    // RGBA at 4 bytes a pixel: refused before the decoder allocates anything.
    if u64::from(width) * u64::from(height) * 4 > MAX_DECODE_BYTES {
        return None;
    }
    let image = reader(limits)?.decode().ok()?;
    let small = if width > THUMBNAIL_WIDTH { image.thumbnail(THUMBNAIL_WIDTH, u32::MAX) } else { image };
    let mut thumbnail = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail, 80);
    small.to_rgb8().write_with_encoder(encoder).ok()?;
    Some(Measured { width, height, thumbnail })
}

/// The name kept for `Content-Disposition`: the last part of what the client sent, without
/// control characters, at most [`MAX_FILE_NAME_CHARS`] characters.
pub(super) fn clean_file_name(name: Option<&str>) -> String {
    let name = name.unwrap_or_default();
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        return "file".to_owned();
    }
    let count = trimmed.chars().count();
    if count <= MAX_FILE_NAME_CHARS {
        return trimmed.to_owned();
    }
    // Keep the extension: it is what tells a spreadsheet from a document.
    let extension = trimmed.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| ext.chars().count() <= 10);
    let keep = MAX_FILE_NAME_CHARS - extension.map_or(0, |ext| ext.chars().count() + 1);
    let stem: String = trimmed.chars().take(keep).collect();
    extension.map_or(stem.clone(), |ext| format!("{stem}.{ext}"))
}

pub(super) fn upload_broken(detail: &str) -> String {
    tracing::debug!(%detail, "an upload could not be read");
    "上传中断或请求格式不正确".to_owned()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn io_error(what: &str, error: std::io::Error) -> AppError {
    AppError::internal(format!("attachments: {what}: {error}"))
}

/// A temporary file under the uploads' directory, removed when dropped unless a blob put moved it.
pub(super) struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub async fn create(directory: &Path) -> AppResult<TempFile> {
        tokio::fs::create_dir_all(directory).await.map_err(|e| io_error("creating the upload directory", e))?;
        Ok(TempFile { path: directory.join(new_id("up").as_str()) })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_keeps_its_last_part_and_its_extension_and_loses_control_characters() {
        assert_eq!(clean_file_name(Some("C:\\Users\\me\\库存 截图.png")), "库存 截图.png");
        assert_eq!(clean_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_file_name(Some("a\u{0}b\r\n.txt")), "ab.txt");
        assert_eq!(clean_file_name(None), "file");
        let long = format!("{}.xlsx", "报".repeat(300));
        let cleaned = clean_file_name(Some(&long));
        assert_eq!(cleaned.chars().count(), MAX_FILE_NAME_CHARS);
        assert!(cleaned.ends_with(".xlsx"));
    }
}
