//! Schema and migrations. `PRAGMA user_version` is the schema version; each entry of
//! [`MIGRATIONS`] upgrades by one, inside one IMMEDIATE transaction.

use rusqlite::Connection;

use crate::config::DEFAULT_MAX_ACTIVE;
use crate::error::Result;

/// Every migration, in order. Never edit a shipped one: add the next.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE queue_settings (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    max_active       INTEGER NOT NULL CHECK (max_active >= 0),
    paused           INTEGER NOT NULL DEFAULT 0,
    -- id of the newest token ever admitted; admission is FIFO, so every token below it
    -- has left the queue (admitted or expired while waiting).
    admitted_through INTEGER NOT NULL DEFAULT 0
);
INSERT INTO queue_settings (id, max_active) VALUES (1, __MAX_ACTIVE__);

CREATE TABLE concerts (
    id    INTEGER PRIMARY KEY,
    title TEXT NOT NULL
);

CREATE TABLE concert_options (
    id           INTEGER PRIMARY KEY,
    concert_id   INTEGER NOT NULL REFERENCES concerts (id),
    concert_date TEXT NOT NULL,
    price        INTEGER NOT NULL CHECK (price > 0)
);
CREATE INDEX concert_options_by_concert ON concert_options (concert_id, concert_date);

CREATE TABLE seats (
    id             INTEGER PRIMARY KEY,
    option_id      INTEGER NOT NULL REFERENCES concert_options (id),
    seat_number    TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    reservation_id INTEGER,
    held_until     INTEGER,
    version        INTEGER NOT NULL DEFAULT 0,
    fence          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (option_id, seat_number)
);
CREATE INDEX seats_by_option_status ON seats (option_id, status);
CREATE INDEX seats_held_until ON seats (held_until) WHERE status = 'HELD';

-- id is the token's place in issue order: rows are never deleted, so ids are dense.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY,
    token       TEXT NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('WAITING', 'ACTIVE', 'EXPIRED')),
    issued_at   INTEGER NOT NULL,
    admitted_at INTEGER,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX tokens_by_user ON tokens (user_id, status);
CREATE INDEX tokens_by_status ON tokens (status, id);
CREATE INDEX tokens_by_expiry ON tokens (status, expires_at);
CREATE INDEX tokens_admitted_at ON tokens (admitted_at) WHERE admitted_at IS NOT NULL;

CREATE TABLE reservations (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL,
    seat_id    INTEGER NOT NULL REFERENCES seats (id),
    option_id  INTEGER NOT NULL REFERENCES concert_options (id),
    status     TEXT NOT NULL CHECK (status IN ('HELD', 'PAID', 'EXPIRED', 'CANCELLED')),
    held_until INTEGER NOT NULL,
    price      INTEGER NOT NULL CHECK (price > 0),
    created_at INTEGER NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0,
    fence      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX reservations_by_user ON reservations (user_id, status);
CREATE INDEX reservations_by_seat ON reservations (seat_id, status);
CREATE INDEX reservations_held_until ON reservations (held_until) WHERE status = 'HELD';

CREATE TABLE wallets (
    user_id INTEGER PRIMARY KEY,
    balance INTEGER NOT NULL CHECK (balance >= 0 AND balance <= 100000000000000),
    version INTEGER NOT NULL DEFAULT 0,
    fence   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE ledger (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('CHARGE', 'PAYMENT', 'USE')),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL,
    at            INTEGER NOT NULL
);
CREATE INDEX ledger_by_user ON ledger (user_id, id);

CREATE TABLE payments (
    id             INTEGER PRIMARY KEY,
    reservation_id INTEGER NOT NULL UNIQUE REFERENCES reservations (id),
    user_id        INTEGER NOT NULL,
    amount         INTEGER NOT NULL CHECK (amount > 0),
    paid_at        INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    key            TEXT PRIMARY KEY,
    user_id        INTEGER NOT NULL,
    reservation_id INTEGER NOT NULL,
    amount         INTEGER NOT NULL,
    payment_id     INTEGER NOT NULL REFERENCES payments (id),
    balance        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
"#,
    r#"
-- Rows with status ACTIVE, kept by triggers so no writer can forget it. Live ACTIVE tokens are
-- this minus the few ACTIVE rows whose time ran out and that no sweep has expired yet: counting
-- them walks only those, where counting live ones walked up to max-active rows on every
-- admission and status poll.
ALTER TABLE queue_settings ADD COLUMN active_rows INTEGER NOT NULL DEFAULT 0;
UPDATE queue_settings SET active_rows = (SELECT count(*) FROM tokens WHERE status = 'ACTIVE');
-- Sales per date (revenue) join payments to reservations by date.
CREATE INDEX reservations_by_option ON reservations (option_id, status);
CREATE TRIGGER tokens_active_insert AFTER INSERT ON tokens WHEN NEW.status = 'ACTIVE'
BEGIN
    UPDATE queue_settings SET active_rows = active_rows + 1 WHERE id = 1;
END;
CREATE TRIGGER tokens_active_update AFTER UPDATE OF status ON tokens WHEN (OLD.status = 'ACTIVE') != (NEW.status = 'ACTIVE')
BEGIN
    UPDATE queue_settings SET active_rows = active_rows + (NEW.status = 'ACTIVE') - (OLD.status = 'ACTIVE') WHERE id = 1;
END;
CREATE TRIGGER tokens_active_delete AFTER DELETE ON tokens WHEN OLD.status = 'ACTIVE'
BEGIN
    UPDATE queue_settings SET active_rows = active_rows - 1 WHERE id = 1;
END;
"#,
    r#"
-- Tokens are looked up by their first 8 characters and then compared whole in constant time
-- (see queue::find_token), so lookup timing says nothing about the rest of a token.
ALTER TABLE tokens ADD COLUMN selector TEXT;
UPDATE tokens SET selector = substr(token, 1, 8);
CREATE INDEX tokens_by_selector ON tokens (selector);
"#,
    r#"
-- The whole token was indexed too (UNIQUE), though lookups go by selector alone: a second index
-- of random keys that every issued token dirtied a page of. The table is rebuilt without it,
-- with the same rows, indexes and triggers. (122 random bits make a repeat a non-event, and a
-- lookup compares the whole token anyway.)
CREATE TABLE tokens_v4 (
    id          INTEGER PRIMARY KEY,
    token       TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('WAITING', 'ACTIVE', 'EXPIRED')),
    issued_at   INTEGER NOT NULL,
    admitted_at INTEGER,
    expires_at  INTEGER NOT NULL,
    selector    TEXT NOT NULL
);
INSERT INTO tokens_v4 (id, token, user_id, status, issued_at, admitted_at, expires_at, selector)
    SELECT id, token, user_id, status, issued_at, admitted_at, expires_at, substr(token, 1, 8) FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v4 RENAME TO tokens;
CREATE INDEX tokens_by_user ON tokens (user_id, status);
CREATE INDEX tokens_by_status ON tokens (status, id);
CREATE INDEX tokens_by_expiry ON tokens (status, expires_at);
CREATE INDEX tokens_admitted_at ON tokens (admitted_at) WHERE admitted_at IS NOT NULL;
CREATE INDEX tokens_by_selector ON tokens (selector);
CREATE TRIGGER tokens_active_insert AFTER INSERT ON tokens WHEN NEW.status = 'ACTIVE'
BEGIN
    UPDATE queue_settings SET active_rows = active_rows + 1 WHERE id = 1;
END;
CREATE TRIGGER tokens_active_update AFTER UPDATE OF status ON tokens WHEN (OLD.status = 'ACTIVE') != (NEW.status = 'ACTIVE')
BEGIN
    UPDATE queue_settings SET active_rows = active_rows + (NEW.status = 'ACTIVE') - (OLD.status = 'ACTIVE') WHERE id = 1;
END;
CREATE TRIGGER tokens_active_delete AFTER DELETE ON tokens WHEN OLD.status = 'ACTIVE'
BEGIN
    UPDATE queue_settings SET active_rows = active_rows - 1 WHERE id = 1;
END;
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`]. Safe to call from several processes at once.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(crate::Error::Internal(format!(
            "database schema version {current} is newer than this build ({SCHEMA_VERSION})"
        )));
    }
    for migration in &MIGRATIONS[usize::try_from(current).unwrap_or(0)..] {
        tx.execute_batch(&migration.replace("__MAX_ACTIVE__", &DEFAULT_MAX_ACTIVE.to_string()))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}
