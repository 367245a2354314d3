//! Upload settings: how large an uploaded file may be, how long a signed download URL lives, when
//! an attachment nobody used is deleted, and the public address that makes URLs absolute for the
//! other systems.
//!
//! The upload limit is its own, apart from the 64 KiB of the JSON API: a screenshot is megabytes,
//! a JSON body never is, and raising one must not raise the other.

use super::reader::{ConfigError, Reader};
use std::time::Duration;

/// `UPLOAD_MAX_BYTES` unless set: 10 MiB, a long screenshot or a spreadsheet export.
pub const DEFAULT_UPLOAD_MAX_BYTES: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// `UPLOAD_MAX_BYTES`: the largest file `POST /api/uploads` accepts.
    pub max_bytes: u64,
    /// `ATTACHMENT_URL_TTL_SECONDS`: how long a signed download URL works.
    pub url_ttl: Duration,
    /// `ATTACHMENT_ORPHAN_HOURS`: an attachment no message, reply or ticket uses is deleted this
    /// long after its upload.
    pub orphan_after: Duration,
    /// `PUBLIC_BASE_URL`: the server's address as the other systems reach it, e.g.
    /// `https://desk.example.com`; the webhooks' attachment URLs are relative without it.
    pub public_base_url: Option<String>,
}

impl UploadSettings {
    pub(super) fn read(env: &Reader) -> Result<UploadSettings, ConfigError> {
        Ok(UploadSettings {
            max_bytes: env.number_in("UPLOAD_MAX_BYTES", 1_024..=1_073_741_824, DEFAULT_UPLOAD_MAX_BYTES)?,
            url_ttl: env.secs("ATTACHMENT_URL_TTL_SECONDS", 10..=7 * 24 * 3_600, Duration::from_secs(3_600))?,
            orphan_after: env
                .number_in::<u64>("ATTACHMENT_ORPHAN_HOURS", 1..=8_760, 24)
                .map(|hours| Duration::from_secs(hours * 3_600))?,
            public_base_url: env.http_url("PUBLIC_BASE_URL")?.map(|url| url.trim_end_matches('/').to_owned()),
        })
    }
}

impl Default for UploadSettings {
    fn default() -> UploadSettings {
        UploadSettings {
            max_bytes: DEFAULT_UPLOAD_MAX_BYTES,
            url_ttl: Duration::from_secs(3_600),
            orphan_after: Duration::from_secs(24 * 3_600),
            public_base_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<UploadSettings, ConfigError> {
        let lookup = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        UploadSettings::read(&Reader::new(&lookup))
    }

    #[test]
    fn the_upload_limits_default_safely_and_a_bad_value_names_its_variable() {
        let defaults = read(&[]).unwrap();
        assert_eq!(defaults.max_bytes, 10 * 1024 * 1024);
        assert_eq!(defaults.url_ttl, Duration::from_secs(3_600));
        assert_eq!(defaults.orphan_after, Duration::from_secs(24 * 3_600));
        assert!(defaults.public_base_url.is_none());
        let set = read(&[("PUBLIC_BASE_URL", "https://desk.example.com/"), ("UPLOAD_MAX_BYTES", "2048")]).unwrap();
        assert_eq!(set.public_base_url.as_deref(), Some("https://desk.example.com"), "no trailing slash");
        assert_eq!(set.max_bytes, 2048);
        let error = read(&[("ATTACHMENT_URL_TTL_SECONDS", "0")]).unwrap_err();
        assert!(error.to_string().contains("ATTACHMENT_URL_TTL_SECONDS"), "{error}");
        assert!(read(&[("PUBLIC_BASE_URL", "desk.example.com")]).is_err());
    }
}
