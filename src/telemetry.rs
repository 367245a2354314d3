//! Logging: the subscriber (plain text, or one JSON object per line with `LOG_FORMAT=json`), and
//! the context of the HTTP request being handled (its request id, and the provider once known),
//! which the request log line reports.
//!
//! The HTTP layer opens the context around each request ([`RequestContext::scope`]); whatever
//! learns who the caller is inside it ([`note_provider`]: token verification, sign-in) says so.
//! Nothing here ever sees a token or a password: only ids are recorded.

use crate::domain::Id;
use crate::limits::BadRequest;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

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

/// What the log knows about the request being handled.
#[derive(Debug)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    provider: Mutex<Option<Id>>,
    bad_request: Mutex<Option<BadRequest>>,
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

impl RequestContext {
    pub fn new(request_id: Arc<str>) -> Arc<RequestContext> {
        Arc::new(RequestContext { request_id, provider: Mutex::new(None), bad_request: Mutex::new(None) })
    }

    /// Runs `future` (the handling of one request) with this context as the current one.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The provider the request acts for, once known.
    pub fn provider(&self) -> Option<Id> {
        self.provider.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// What made the request malformed, if something did.
    pub fn bad_request(&self) -> Option<BadRequest> {
        *self.bad_request.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Records that the current request acts for `provider` (no-op outside a request).
pub fn note_provider(provider: &Id) {
    let _ = CURRENT.try_with(|context| {
        *context.provider.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(provider.clone());
    });
}

/// Records that the current request is malformed in a way no working client's is (no-op outside
/// a request); the edge counts it toward a ban once the request is answered.
pub fn note_bad_request(what: BadRequest) {
    let _ = CURRENT.try_with(|context| {
        *context.bad_request.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(what);
    });
}

/// What made the current request malformed, if something did.
pub fn current_bad_request() -> Option<BadRequest> {
    CURRENT.try_with(|context| context.bad_request()).ok().flatten()
}

/// The provider the current request acts for, once known.
pub fn current_provider() -> Option<Id> {
    CURRENT.try_with(|context| context.provider()).ok().flatten()
}

/// The current request's id, if there is one.
pub fn current_request_id() -> Option<Arc<str>> {
    CURRENT.try_with(|context| Arc::clone(&context.request_id)).ok()
}
