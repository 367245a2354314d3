-- The embedded store's schema. Applied at every start; every statement is idempotent.
-- Times are RFC 3339 UTC strings of one fixed width, so they sort as text.

CREATE TABLE IF NOT EXISTS providers (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    name           TEXT NOT NULL,
    contact_person TEXT NOT NULL,
    phone          TEXT NOT NULL,
    email          TEXT NOT NULL UNIQUE,
    region         TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS providers_by_created ON providers (created_at, username);

CREATE TABLE IF NOT EXISTS customers (
    id                    TEXT PRIMARY KEY,
    service_provider_id   TEXT NOT NULL REFERENCES providers(id),
    service_provider_name TEXT NOT NULL,
    name                  TEXT NOT NULL,
    contact_person        TEXT NOT NULL,
    phone                 TEXT NOT NULL,
    email                 TEXT NOT NULL,
    region                TEXT NOT NULL,
    software_version      TEXT NOT NULL,
    port_count            INTEGER NOT NULL,
    purchase_date         TEXT NOT NULL,
    expiry_date           TEXT NOT NULL,
    status                TEXT NOT NULL,
    login_frequency       INTEGER NOT NULL,
    feature_usage         INTEGER NOT NULL,
    data_input            INTEGER NOT NULL,
    training_completion   INTEGER NOT NULL,
    usage_updated_at      TEXT NOT NULL,
    last_active_time      TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_by_provider_updated ON customers (service_provider_id, updated_at DESC, id);
CREATE INDEX IF NOT EXISTS customers_by_provider_expiry ON customers (service_provider_id, expiry_date);

CREATE TABLE IF NOT EXISTS tickets (
    id                  TEXT PRIMARY KEY,
    service_provider_id TEXT NOT NULL REFERENCES providers(id),
    customer_id         TEXT NOT NULL REFERENCES customers(id),
    customer_name       TEXT NOT NULL,
    title               TEXT NOT NULL,
    content             TEXT NOT NULL,
    type                TEXT NOT NULL,
    status              TEXT NOT NULL,
    escalation_status   TEXT NOT NULL,
    escalation_reason   TEXT,
    escalated_at        TEXT,
    assignee_id         TEXT,
    assignee_name       TEXT,
    resolution          TEXT,
    resolved_at         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    version             INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tickets_by_provider_updated ON tickets (service_provider_id, updated_at DESC, id);
CREATE INDEX IF NOT EXISTS tickets_by_customer_status ON tickets (customer_id, status);
-- Each of the ticket list's filters narrows an index in the list's order (query_plans test).
CREATE INDEX IF NOT EXISTS tickets_by_provider_status_updated ON tickets (service_provider_id, status, updated_at DESC, id);
CREATE INDEX IF NOT EXISTS tickets_by_provider_customer_updated
    ON tickets (service_provider_id, customer_id, updated_at DESC, id);
CREATE INDEX IF NOT EXISTS tickets_by_provider_type_updated ON tickets (service_provider_id, type, updated_at DESC, id);

CREATE TABLE IF NOT EXISTS ticket_history (
    id            TEXT PRIMARY KEY,
    ticket_id     TEXT NOT NULL REFERENCES tickets(id),
    operator_id   TEXT NOT NULL,
    operator_name TEXT NOT NULL,
    action        TEXT NOT NULL,
    content       TEXT NOT NULL,
    timestamp     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_history_by_ticket ON ticket_history (ticket_id);

CREATE TABLE IF NOT EXISTS notifications (
    id                    TEXT PRIMARY KEY,
    service_provider_id   TEXT NOT NULL REFERENCES providers(id),
    type                  TEXT NOT NULL,
    title                 TEXT NOT NULL,
    content               TEXT NOT NULL,
    related_customer_id   TEXT,
    related_customer_name TEXT,
    related_ticket_id     TEXT,
    read_status           TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    read_at               TEXT
);
-- The list's order ends with the id; the first two indexes lacked it, and the new ones (which
-- they are prefixes of) replace them.
DROP INDEX IF EXISTS notifications_by_provider_created;
DROP INDEX IF EXISTS notifications_by_provider_read;
CREATE INDEX IF NOT EXISTS notifications_by_provider_created_id
    ON notifications (service_provider_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS notifications_by_provider_read_created
    ON notifications (service_provider_id, read_status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS notifications_by_provider_type_created
    ON notifications (service_provider_id, type, created_at DESC, id DESC);

CREATE TABLE IF NOT EXISTS chat_messages (
    id                    TEXT PRIMARY KEY,
    service_provider_id   TEXT NOT NULL REFERENCES providers(id),
    service_provider_name TEXT NOT NULL,
    customer_id           TEXT NOT NULL REFERENCES customers(id),
    customer_name         TEXT NOT NULL,
    sender_type           TEXT NOT NULL,
    content               TEXT NOT NULL,
    timestamp             TEXT NOT NULL,
    status                TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_by_conversation ON chat_messages (service_provider_id, customer_id, timestamp);

CREATE TABLE IF NOT EXISTS revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS token_families (
    id         TEXT PRIMARY KEY,
    revoked_at TEXT
);

CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families(id),
    provider_id TEXT NOT NULL REFERENCES providers(id),
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_provider ON refresh_tokens (provider_id);

-- The event log: a provider's cursors run 1, 2, 3, ... in commit order (see domain::event).
CREATE TABLE IF NOT EXISTS events (
    provider_id TEXT NOT NULL,
    cursor      INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    customer_id TEXT,
    at          TEXT NOT NULL,
    PRIMARY KEY (provider_id, cursor)
) WITHOUT ROWID;

-- Client-chosen keys of writes that may be retried, what the first request created, and the
-- first answer with the fingerprint of its request (`fingerprint` and `answer` are added by
-- `idempotency::add_answer_columns` to tables made before them).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    provider_id TEXT NOT NULL,
    key         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (provider_id, key)
) WITHOUT ROWID;

-- Customers whose stored status lags behind their expiry date (the status job).
CREATE INDEX IF NOT EXISTS customers_by_expiry_status ON customers (expiry_date, status);

-- The outbox (see domain::outbox): deliveries to other systems, written in the transaction of the
-- change that caused them. Its times are Unix milliseconds (backoff and leases need less than a
-- second). The dispatcher claims the first pending delivery of each ordering key. `expires_at`
-- (an ephemeral delivery's deadline) and its index are added by `outbox::add_expiry_column`.
CREATE TABLE IF NOT EXISTS outbox (
    id              TEXT PRIMARY KEY,
    target          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    provider_id     TEXT NOT NULL,
    customer_id     TEXT,
    ordering_key    TEXT NOT NULL,
    sequence        INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    dead_at         INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (status, ordering_key, sequence, id);
CREATE INDEX IF NOT EXISTS outbox_by_status_time ON outbox (status, delivered_at);

-- Named leases: one server process at a time runs a scheduled job. `until` in Unix milliseconds.
CREATE TABLE IF NOT EXISTS leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until INTEGER NOT NULL
) WITHOUT ROWID;

-- The WeChat openid of each provider's mini-program user (bindWechat).
CREATE TABLE IF NOT EXISTS wechat_bindings (
    provider_id TEXT PRIMARY KEY REFERENCES providers(id),
    openid      TEXT NOT NULL,
    bound_at    TEXT NOT NULL
) WITHOUT ROWID;
-- The audit log (spec 6.3): every mutation and sign-in attempt. No foreign key on the provider: a
-- sign-in with an unknown username is logged without one.
CREATE TABLE IF NOT EXISTS audit_log (
    id                  TEXT PRIMARY KEY,
    at                  TEXT NOT NULL,
    service_provider_id TEXT,
    username            TEXT,
    operation           TEXT NOT NULL,
    target_id           TEXT,
    ip                  TEXT,
    result              TEXT NOT NULL,
    request_id          TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_provider_at ON audit_log (service_provider_id, at DESC, id DESC);

-- A provider's canned replies (quick replies). The unique index refuses a second reply with the
-- same short code from one provider, and serves the list, which is ordered by short code.
CREATE TABLE IF NOT EXISTS canned_replies (
    id                  TEXT PRIMARY KEY,
    service_provider_id TEXT NOT NULL REFERENCES providers(id),
    short_code          TEXT NOT NULL,
    title               TEXT NOT NULL,
    content             TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    version             INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS canned_replies_by_provider_short_code
    ON canned_replies (service_provider_id, short_code);

-- The prune jobs (retention port) find what is due through these, a batch at a time.
CREATE INDEX IF NOT EXISTS events_by_at ON events (at);
CREATE INDEX IF NOT EXISTS idempotency_keys_by_created ON idempotency_keys (created_at);
CREATE INDEX IF NOT EXISTS revoked_access_tokens_by_expiry ON revoked_access_tokens (expires_at);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_expiry ON refresh_tokens (expires_at);
CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family_id);

-- Search (see store::sqlite::search): an FTS5 index of character n-grams as ASCII tokens, and what
-- each of its rows shows, under the same key (the hit's time in milliseconds times 2^20 plus a
-- sequence), so the index's rowid order is newest first. A ticket reply is a row of its own
-- (kind 'reply', owner_id its ticket), written once. A store written before these tables gains
-- them here and is indexed at open.
CREATE TABLE IF NOT EXISTS search_docs (
    key         INTEGER PRIMARY KEY,
    provider_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    owner_id    TEXT,
    customer_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    texts       TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS search_docs_by_entity ON search_docs (kind, entity_id);
CREATE VIRTUAL TABLE IF NOT EXISTS search_index USING fts5 (
    scope, text_bigrams, text_unigrams, tail_bigrams, tail_unigrams,
    content = '', contentless_delete = 1, tokenize = 'ascii', detail = 'full'
);
