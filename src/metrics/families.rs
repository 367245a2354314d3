//! The declaration of every metric family the code records into: name, type, help, label names
//! and, for histograms, buckets. One table, so `/metrics`, the README's list and the debug checks
//! of the call sites all read the same names.

/// What kind of metric a family is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A declared metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// Histogram bucket upper bounds, in seconds (empty for counters and gauges).
    pub buckets: &'static [f64],
}

/// Request-sized latencies: 1 ms to 10 s.
pub const REQUEST_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Backend-call latencies: 100 µs to 5 s.
pub const CALL_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

const fn family(name: &'static str, kind: Kind, help: &'static str, labels: &'static [&'static str]) -> Family {
    Family { name, kind, help, labels, buckets: &[] }
}

const fn histogram_family(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
) -> Family {
    Family { name, kind: Kind::Histogram, help, labels, buckets }
}

/// Every metric the code records into, in the order `/metrics` shows them; the process metrics
/// and `provider_desk_build_info` follow (see `process.rs`). The README's Monitoring section lists
/// them all.
pub const FAMILIES: &[Family] = &[
    family(
        "http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by method, route (the router's path pattern) and status code.",
        &["method", "route", "status"],
    ),
    histogram_family(
        "http_request_duration_seconds",
        "Time from receiving an HTTP request to sending its response head.",
        &["method", "route", "status"],
        REQUEST_BUCKETS,
    ),
    family("http_requests_in_flight", Kind::Gauge, "HTTP requests being handled now.", &[]),
    family(
        "graphql_operations_total",
        Kind::Counter,
        "GraphQL queries and mutations run (POST /graphql and the REST endpoints), by operation name and \
         outcome: ok, or the first error's code.",
        &["operation", "outcome"],
    ),
    histogram_family(
        "graphql_operation_duration_seconds",
        "Time to parse, validate and run a GraphQL query or mutation.",
        &["operation"],
        REQUEST_BUCKETS,
    ),
    family("graphql_subscriptions_active", Kind::Gauge, "GraphQL subscriptions running now.", &[]),
    family("websocket_connections", Kind::Gauge, "Open WebSocket connections on /graphql/ws.", &[]),
    histogram_family(
        "store_call_duration_seconds",
        "Time of one call to the main store (a SQLite read or write transaction, a MongoDB operation).",
        &["adapter", "outcome"],
        CALL_BUCKETS,
    ),
    histogram_family(
        "redis_call_duration_seconds",
        "Time of one Redis call: a token-store command (tokens) or an event-bus publish (publish).",
        &["purpose", "outcome"],
        CALL_BUCKETS,
    ),
    family(
        "typing_signals_total",
        Kind::Counter,
        "Typing signals this process received, by direction (out: the provider's typing mutation; in: the PC \
         system's POST /integrations/cs/typing) and outcome (forwarded; throttled: within a second of the last).",
        &["direction", "outcome"],
    ),
    family(
        "realtime_events_published_total",
        Kind::Counter,
        "Events handed to this process's subscribers, by kind and origin (local: written here; remote: \
         from another process over Redis).",
        &["kind", "origin"],
    ),
    family(
        "realtime_subscriber_lags_total",
        Kind::Counter,
        "Times a live subscriber fell behind the live stream (buffer overrun or a missed cursor) and \
         switched to reading the event log.",
        &[],
    ),
    family(
        "realtime_subscriber_catch_ups_total",
        Kind::Counter,
        "Times a subscriber reading the event log (after lagging, or replaying from a cursor) caught up and \
         went live again.",
        &[],
    ),
    family(
        "realtime_replays_refused_total",
        Kind::Counter,
        "Subscriptions refused because their `after` cursor was outside the replay window \
         (EVENT_REPLAY_MAX_EVENTS, EVENT_REPLAY_MAX_AGE_HOURS, or the events it missed deleted).",
        &[],
    ),
    family("realtime_subscribers_behind", Kind::Gauge, "Subscribers reading the event log now, not yet live.", &[]),
    family(
        "outbox_backlog",
        Kind::Gauge,
        "Integration messages waiting in the outbox (read from the store at most every 5 s).",
        &[],
    ),
    family(
        "outbox_dead_letters",
        Kind::Gauge,
        "Integration messages the outbox gave up on (read from the store at most every 5 s).",
        &[],
    ),
    family(
        "outbox_deliveries_total",
        Kind::Counter,
        "Delivery attempts this process made, by target (cs, wechat) and outcome (delivered, retry, dead_letter, \
         expired: an ephemeral delivery such as chat.typing dropped unsent).",
        &["target", "outcome"],
    ),
    family(
        "outbox_failure_streak",
        Kind::Gauge,
        "Delivery attempts to a target (cs, wechat) that failed in a row in this process (the receiver down, \
         5xx, a timeout); 0 once it answers.",
        &["target"],
    ),
    family(
        "retention_pruned_total",
        Kind::Counter,
        "Rows the prune jobs run by this process deleted, by table (outbox, events, idempotency_keys, \
         revoked_access_tokens, refresh_tokens, token_families).",
        &["table"],
    ),
    family(
        "rate_limit_refusals_total",
        Kind::Counter,
        "Requests refused by a limit, by scope (ip, webhook, provider, login, subscriptions, ban, deny_list).",
        &["scope"],
    ),
    family(
        "bad_requests_total",
        Kind::Counter,
        "Malformed requests no working client sends, by reason (body_too_large, malformed_body, \
         json_too_deep, graphql_limits, forged_token, bad_signature); they count toward a ban.",
        &["reason"],
    ),
    family(
        "ip_bans_total",
        Kind::Counter,
        "Client addresses banned for a while for hitting limits or sending malformed requests again and again.",
        &[],
    ),
];
