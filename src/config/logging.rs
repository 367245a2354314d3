//! Logging settings: the format of the log lines (`LOG_FORMAT`).
//!
//! [`LogFormat`] lives here, not beside the log subscriber in `telemetry` (which re-exports it),
//! so that configuration stays a leaf that imports nothing above it.

use super::reader::{ConfigError, Reader};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line: the event's fields at the top level, and `spans` listing the
    /// spans it happened in (the `request` span carries the request id).
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` or `json`.
    pub fn parse(value: &str) -> Option<LogFormat> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" | "plain" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    pub(super) fn read(env: &Reader) -> Result<LogFormat, ConfigError> {
        env.parsed("LOG_FORMAT", LogFormat::Text, "expected text or json", LogFormat::parse)
    }
}
