//! Logging: the subscriber (plain text, or one JSON object per line with `LOG_FORMAT=json`).
//!
//! What the log says about the request being handled (its id, the provider once known) lives in
//! [`context`](crate::context), a leaf every layer may reach; this module only sets up where and
//! how lines are written, once per process.

use std::io::IsTerminal;

/// The format is a setting (`LOG_FORMAT`), so it lives in the configuration, a leaf module.
pub use crate::config::LogFormat;

/// Where log lines go: standard output for the server, standard error for the other commands
/// (whose standard output is their answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// Installs the process's log subscriber; the filter comes from `RUST_LOG` (default `info`).
pub fn init(format: LogFormat, target: LogTarget) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let terminal = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    // Colours only for a person at a terminal, never into a file or a log collector.
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(terminal);
    let result = match (format, target) {
        (LogFormat::Text, LogTarget::Stdout) => builder.try_init(),
        (LogFormat::Text, LogTarget::Stderr) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json, LogTarget::Stdout) => {
            builder.json().flatten_event(true).with_current_span(false).with_span_list(true).try_init()
        }
        (LogFormat::Json, LogTarget::Stderr) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .try_init(),
    };
    if let Err(error) = result {
        eprintln!("provider-desk: logging not set up: {error}");
    }
}
