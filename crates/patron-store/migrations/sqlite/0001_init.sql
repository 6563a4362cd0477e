-- Patron schema, SQLite dialect. Keep in step with ../postgres/0001_init.sql.
-- Conventions: times are BIGINT milliseconds since 1970-01-01 UTC; money is BIGINT minor units
-- with an ISO 4217 `currency`; columns ending in _enc hold AES-256-GCM ciphertext of personal
-- data and columns ending in _hash hold keyed HMAC-SHA256 blind indexes of it; every
-- customer-owned table carries customer_id, the future partition key.

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE customers (
    customer_id     INTEGER PRIMARY KEY,
    name_enc        BLOB,
    email_enc       BLOB,
    phone_enc       BLOB,
    birth_date_enc  BLOB,
    address_enc     BLOB,
    gender          TEXT,
    city            TEXT,
    country         TEXT,
    records         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE source_records (
    record_id          INTEGER PRIMARY KEY,
    source             TEXT NOT NULL,
    source_id          TEXT NOT NULL,
    customer_id        INTEGER,
    name_enc           BLOB,
    email_enc          BLOB,
    phone_enc          BLOB,
    birth_date_enc     BLOB,
    address_enc        BLOB,
    gender             TEXT,
    city               TEXT,
    country            TEXT,
    email_hash         BLOB,
    phone_hash         BLOB,
    name_tokens        BLOB,
    raw_enc            BLOB NOT NULL,
    source_created_at  INTEGER,
    received_at        INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (source, source_id)
);
CREATE INDEX source_records_customer ON source_records (customer_id);

CREATE TABLE identities (
    customer_id  INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    value_hash   BLOB NOT NULL,
    PRIMARY KEY (customer_id, kind, value_hash)
);
CREATE INDEX identities_lookup ON identities (value_hash);

CREATE TABLE name_index (
    customer_id  INTEGER NOT NULL,
    token_hash   BLOB NOT NULL,
    PRIMARY KEY (customer_id, token_hash)
);
CREATE INDEX name_index_lookup ON name_index (token_hash);

CREATE TABLE products (
    product_id   TEXT PRIMARY KEY,
    sku          TEXT,
    name         TEXT NOT NULL,
    category     TEXT,
    brand        TEXT,
    price_minor  INTEGER,
    currency     TEXT,
    active       INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE orders (
    source              TEXT NOT NULL,
    order_id            TEXT NOT NULL,
    customer_source_id  TEXT NOT NULL,
    customer_id         INTEGER,
    placed_at           INTEGER NOT NULL,
    status              TEXT NOT NULL,
    currency            TEXT NOT NULL,
    PRIMARY KEY (source, order_id)
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_customer_source ON orders (source, customer_source_id);

-- One line per product of an order: the same product twice in an order is one line with the
-- summed quantity, so re-importing, fixing or splitting an order's rows never loses a line.
CREATE TABLE order_lines (
    source            TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    customer_id       INTEGER,
    product_id        TEXT NOT NULL,
    quantity          INTEGER NOT NULL,
    unit_price_minor  INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    PRIMARY KEY (source, order_id, product_id)
);
CREATE INDEX order_lines_customer ON order_lines (customer_id);

CREATE TABLE events (
    event_id      INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL UNIQUE,
    customer_id   INTEGER,
    source        TEXT NOT NULL,
    user_id       TEXT,
    anonymous_id  TEXT,
    kind          TEXT NOT NULL,
    name          TEXT,
    properties_enc  BLOB,
    occurred_at   INTEGER NOT NULL,
    received_at   INTEGER NOT NULL
);
CREATE INDEX events_customer ON events (customer_id);

CREATE TABLE segments (
    segment_id   INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    definition   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE segment_members (
    customer_id  INTEGER NOT NULL,
    segment_id   INTEGER NOT NULL,
    since        INTEGER NOT NULL,
    PRIMARY KEY (customer_id, segment_id)
);
CREATE INDEX segment_members_segment ON segment_members (segment_id);

CREATE TABLE customer_metrics (
    customer_id     INTEGER PRIMARY KEY,
    recency_days    INTEGER NOT NULL,
    frequency       INTEGER NOT NULL,
    monetary_minor  INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    r               INTEGER NOT NULL,
    f               INTEGER NOT NULL,
    m               INTEGER NOT NULL,
    rfm_segment     TEXT NOT NULL,
    computed_at     INTEGER NOT NULL
);

CREATE TABLE customer_predictions (
    customer_id             INTEGER PRIMARY KEY,
    model                   TEXT NOT NULL,
    expected_purchases_90d  REAL NOT NULL,
    clv_12m_minor           INTEGER NOT NULL,
    currency                TEXT NOT NULL,
    computed_at             INTEGER NOT NULL
);

CREATE TABLE recommendations (
    customer_id  INTEGER NOT NULL,
    rank         INTEGER NOT NULL,
    product_id   TEXT NOT NULL,
    score        REAL NOT NULL,
    reason       TEXT NOT NULL,
    computed_at  INTEGER NOT NULL,
    PRIMARY KEY (customer_id, rank)
);

CREATE TABLE tickets (
    ticket_id           INTEGER PRIMARY KEY,
    customer_id         INTEGER,
    source              TEXT NOT NULL,
    ticket_ref          TEXT NOT NULL,
    customer_source_id  TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body_enc     BLOB,
    status       TEXT NOT NULL,
    priority     TEXT NOT NULL,
    channel      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX tickets_customer ON tickets (customer_id);
CREATE UNIQUE INDEX tickets_ref ON tickets (source, ticket_ref);

CREATE TABLE api_keys (
    key_id        INTEGER PRIMARY KEY,
    key_hash      BLOB NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    role          TEXT NOT NULL,
    name          TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);

CREATE TABLE users (
    user_id        INTEGER PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    audit_id  INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    detail    TEXT
);

CREATE TABLE quarantine (
    quarantine_id  INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    file           TEXT NOT NULL,
    row_no         INTEGER NOT NULL,
    source         TEXT,
    source_id      TEXT,
    field          TEXT NOT NULL,
    value_enc      BLOB,
    reason         TEXT NOT NULL,
    whole_row      INTEGER NOT NULL,
    raw_enc        BLOB,
    entry_hash     BLOB NOT NULL
);

-- The same rejected value or row quarantined again (a re-import) is one entry.
CREATE UNIQUE INDEX quarantine_entry ON quarantine (kind, entry_hash);
CREATE INDEX quarantine_record ON quarantine (kind, source, source_id);

CREATE TABLE jobs (
    job_id       INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    summary      TEXT
);
