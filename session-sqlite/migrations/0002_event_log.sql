-- Store trait v2: the event log (an outbox, written in the transaction of each change), the
-- record's epoch and identity-provider link, the network key, users (epoch and disabled
-- mark), expiry reports, replay marks, leases and cursors.
--
-- Timestamps are INTEGER unix nanoseconds (UTC), as in 0001.

-- The user's epoch when the session was issued (agent grants need the current one).
ALTER TABLE sessions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0 CHECK (epoch >= 0);
-- The identity-provider session it was signed in through (OpenID Connect `iss`, `sub`,
-- `sid`): all NULL for a password session.
ALTER TABLE sessions ADD COLUMN idp_issuer TEXT;
ALTER TABLE sessions ADD COLUMN idp_subject TEXT
    CHECK ((idp_issuer IS NULL) = (idp_subject IS NULL));
ALTER TABLE sessions ADD COLUMN idp_sid TEXT
    CHECK (idp_sid IS NULL OR idp_issuer IS NOT NULL);
-- `session_core::store::ip_key(ip)`: 32 lowercase hex digits (IPv4 mapped into IPv6), so a
-- network is a range of keys compared as text. '' when `ip` is not an address; NULL when
-- there is no `ip`, or (rows written under 0001 only) until `SqliteStore::migrate` fills it
-- in: SQL cannot parse an IPv6 address.
ALTER TABLE sessions ADD COLUMN ip_key TEXT CHECK (ip_key IS NULL OR length(ip_key) IN (0, 32));
-- Whether `session.expired` was logged for it (once per session, by any node).
ALTER TABLE sessions ADD COLUMN expiry_reported INTEGER NOT NULL DEFAULT 0
    CHECK (expiry_reported IN (0, 1));

-- The purge deletes by the end of a session's life: its revocation, or its expiry if
-- earlier. The expression is written the same way in the DELETE, so this index serves it.
DROP INDEX sessions_expires_at;
CREATE INDEX sessions_ended_at ON sessions (min(coalesce(revoked_at, expires_at), expires_at));
-- Back-channel logout and incident filters by provider session.
CREATE INDEX sessions_idp ON sessions (idp_issuer, idp_sid) WHERE idp_issuer IS NOT NULL;
-- Rows whose `ip_key` is still to be computed (from 0001): empty once `migrate` ran, and
-- new rows never enter it, so it costs nothing and finds them without a scan.
CREATE INDEX sessions_ip_key_pending ON sessions (id) WHERE ip IS NOT NULL AND ip_key IS NULL;

-- What the store knows of a user beyond their sessions. A missing row is epoch 0, enabled.
CREATE TABLE users (
    user_id  TEXT    NOT NULL PRIMARY KEY,
    epoch    INTEGER NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT, WITHOUT ROWID;
INSERT INTO users (user_id, epoch) SELECT user_id, epoch FROM user_epochs;
DROP TABLE user_epochs;

-- The event log. AUTOINCREMENT, not a plain rowid: a plain rowid reuses the largest id
-- once the newest rows are deleted (the purge deletes by age, and an event's time is the
-- caller's), and a reused id would sit behind a reader's cursor. Ids are allocated under
-- SQLite's single write lock and committed in that order (see the crate docs: the outbox
-- gap cannot happen here). The API shows them as 20 zero-padded digits.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT    NOT NULL CHECK (type IN ('session.created', 'session.revoked',
                                                  'session.expired', 'session.suspicious')),
    occurred_at  INTEGER NOT NULL,
    session_id   TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    session_kind TEXT    NOT NULL CHECK (session_kind IN ('user', 'agent')),
    agent_id     TEXT,
    reason       TEXT,
    actor        TEXT    NOT NULL CHECK (actor IN ('user', 'agent', 'admin', 'idp', 'system'))
) STRICT;
-- The audit: one user's events, newest first, through the index (never a scan of the log).
CREATE INDEX events_user ON events (user_id, id);
-- The events API filtered by type.
CREATE INDEX events_type ON events (type, id);
-- The purge deletes by age.
CREATE INDEX events_occurred_at ON events (occurred_at);

-- Replay marks (logout tokens, security event tokens): a key is used once until `until`.
CREATE TABLE first_use (
    key   TEXT    NOT NULL PRIMARY KEY,
    until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX first_use_until ON first_use (until);

-- Leases (one webhook worker at a time): held by `holder` until `until`.
CREATE TABLE leases (
    name   TEXT    NOT NULL PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Saved positions in the log.
CREATE TABLE cursors (
    name     TEXT NOT NULL PRIMARY KEY,
    event_id TEXT NOT NULL
) STRICT, WITHOUT ROWID;
