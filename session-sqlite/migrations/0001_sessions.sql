-- Sessions and per-user revocation epochs.
--
-- Timestamps are INTEGER unix nanoseconds (UTC), so they round-trip exactly and compare
-- as integers in SQL. `secret_hash` is the SHA-256 of the token's secret: the token and
-- its secret are never stored.

CREATE TABLE sessions (
    id                TEXT    NOT NULL PRIMARY KEY,  -- hyphenated UUID
    secret_hash       BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    user_id           TEXT    NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('user', 'agent')),
    agent_id          TEXT,
    agent_name        TEXT,
    created_at        INTEGER NOT NULL,
    last_active_at    INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    user_agent        TEXT,
    ip                TEXT,
    revoked_at        INTEGER,
    revocation_reason TEXT,
    CHECK ((kind = 'user') = (agent_id IS NULL AND agent_name IS NULL)),
    CHECK ((kind = 'agent') = (agent_id IS NOT NULL AND agent_name IS NOT NULL)),
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
) STRICT;

-- Revoke-all, revoke-others and the session list go through the user's index, never a
-- scan of every session.
CREATE INDEX sessions_user_id ON sessions (user_id);
-- Clean-up deletes by expiry.
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- A user's revocation epoch: moved by every revoke-all, so a login that read the epoch
-- before the revocation cannot create a session after it. A missing row is epoch 0.
CREATE TABLE user_epochs (
    user_id TEXT    NOT NULL PRIMARY KEY,
    epoch   INTEGER NOT NULL CHECK (epoch >= 0)
) STRICT;
