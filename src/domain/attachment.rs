//! Attachments: a file a provider uploaded (a screenshot, a PDF, a spreadsheet) and the rule that
//! says which files are accepted at all.
//!
//! The design choice: a file's type is what its own first bytes say ([`sniff`]), never the
//! client's `Content-Type` or extension, and only an allow list passes (PNG, JPEG, GIF, WebP, PDF,
//! XLSX/XLS, DOCX, CSV, TXT). The extension only narrows a container the bytes cannot tell apart
//! cheaply: a ZIP is XLSX or DOCX by its name, an OLE2 compound file is XLS by its name. Anything
//! that could run or render script in a browser (SVG, HTML, XML, executables) is refused. Bytes are
//! stored content-addressed: the metadata keeps the SHA-256 that names the blob.

use super::{Id, Timestamp};

/// The most attachments one message, reply or ticket carries (WeChat's image picker allows nine).
pub const MAX_ATTACHMENTS: usize = 9;

/// How many of a file's first bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The width of a thumbnail, in pixels (its height keeps the image's aspect).
pub const THUMBNAIL_WIDTH: u32 = 320;

/// What a thumbnail is encoded as.
pub const THUMBNAIL_CONTENT_TYPE: &str = "image/jpeg";

/// One uploaded file's metadata; the bytes live in the blob named by `sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub id: Id,
    /// The provider who uploaded it: the only one who may use or see it.
    pub service_provider_id: Id,
    /// The name the client gave, for `Content-Disposition`.
    pub file_name: String,
    /// The type [`sniff`] found.
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes: the blob's name.
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The thumbnail's blob (images only).
    pub thumbnail_sha256: Option<String>,
    pub thumbnail_size: Option<u64>,
    pub created_at: Timestamp,
    /// Whether a message, reply or ticket refers to it (an unused one is deleted after a while).
    pub used: bool,
}

impl Attachment {
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/")
    }
}

/// The kind of file the bytes were found to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    Xlsx,
    Xls,
    Docx,
    Csv,
    Text,
}

impl FileKind {
    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Gif => "image/gif",
            FileKind::Webp => "image/webp",
            FileKind::Pdf => "application/pdf",
            FileKind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            FileKind::Xls => "application/vnd.ms-excel",
            FileKind::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            FileKind::Csv => "text/csv; charset=utf-8",
            FileKind::Text => "text/plain; charset=utf-8",
        }
    }

    pub fn is_image(self) -> bool {
        matches!(self, FileKind::Png | FileKind::Jpeg | FileKind::Gif | FileKind::Webp)
    }
}

/// The type of a file from its first bytes (up to [`SNIFF_BYTES`]; `complete` when that is the
/// whole file) and its name; `None` for anything not on the allow list.
pub fn sniff(head: &[u8], file_name: &str, complete: bool) -> Option<FileKind> {
    let extension = file_name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(FileKind::Png);
    }
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(FileKind::Jpeg);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(FileKind::Gif);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(FileKind::Webp);
    }
    if head.starts_with(b"%PDF-") {
        return Some(FileKind::Pdf);
    }
    if head.starts_with(b"PK\x03\x04") {
        return match extension.as_str() {
            "xlsx" => Some(FileKind::Xlsx),
            "docx" => Some(FileKind::Docx),
            _ => None,
        };
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return (extension == "xls").then_some(FileKind::Xls);
    }
    if is_plain_text(head, complete) {
        return Some(if extension == "csv" { FileKind::Csv } else { FileKind::Text });
    }
    None
}

/// UTF-8 text with no NUL that does not open like markup (HTML, SVG and XML all open with `<`)
/// or a script (`#!`).
fn is_plain_text(head: &[u8], complete: bool) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A character cut by the end of the head is fine unless the head is the whole file.
        Err(error) => !complete && error.error_len().is_none(),
    };
    if !valid {
        return false;
    }
    let text = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |at| &text[at..]);
    !(start.starts_with(b"<") || start.starts_with(b"#!"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_pdf_and_text_are_known_by_their_bytes_whatever_their_name() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n....", "a.jpg", false), Some(FileKind::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0], "photo", false), Some(FileKind::Jpeg));
        assert_eq!(sniff(b"GIF89a....", "x.png", false), Some(FileKind::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 ", "x", false), Some(FileKind::Webp));
        assert_eq!(sniff(b"%PDF-1.7\n", "report.bin", false), Some(FileKind::Pdf));
        assert_eq!(sniff("库存,数量\n螺丝,10\n".as_bytes(), "stock.csv", true), Some(FileKind::Csv));
        assert_eq!(sniff(b"error log line\n", "log.txt", true), Some(FileKind::Text));
    }

    #[test]
    fn svg_html_xml_scripts_and_executables_are_refused_even_when_named_png() {
        for bytes in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"[..],
            b"  <?xml version=\"1.0\"?><svg/>",
            b"\xef\xbb\xbf<!DOCTYPE html><html></html>",
            b"#!/bin/sh\nrm -rf /\n",
            b"MZ\x90\0\x03\0\0\0",
            b"\x7fELF\x02\x01\x01\0",
            b"\xca\xfe\xba\xbe\0\0",
        ] {
            assert_eq!(sniff(bytes, "screenshot.png", true), None, "{bytes:?}");
        }
    }

    #[test]
    fn containers_are_accepted_only_with_the_name_that_says_what_they_hold() {
        assert_eq!(sniff(b"PK\x03\x04\x14\0", "stock.xlsx", false), Some(FileKind::Xlsx));
        assert_eq!(sniff(b"PK\x03\x04\x14\0", "Report.DOCX", false), Some(FileKind::Docx));
        assert_eq!(sniff(b"PK\x03\x04\x14\0", "tools.zip", false), None);
        let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0];
        assert_eq!(sniff(&ole, "old.xls", false), Some(FileKind::Xls));
        assert_eq!(sniff(&ole, "old.doc", false), None);
    }

    #[test]
    fn binary_or_broken_text_is_refused_but_a_character_cut_by_the_sniffed_head_is_not() {
        assert_eq!(sniff(b"abc\0def", "a.txt", true), None);
        assert_eq!(sniff(b"abc\xff\xfe", "a.txt", true), None);
        assert_eq!(sniff(b"", "empty.txt", true), None);
        let cut = &"库存".as_bytes()[..4];
        assert_eq!(sniff(cut, "a.txt", false), Some(FileKind::Text));
        assert_eq!(sniff(cut, "a.txt", true), None);
    }
}
