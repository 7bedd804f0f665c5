-- session-postgres: sessions, per-user revocation epochs, and the revoke-all function.
-- Everything lives in the `session_revocation` schema (created by the migrator, which also
-- keeps its own bookkeeping table there), so nothing collides with the application's tables.

CREATE TABLE session_revocation.sessions (
    id                uuid        PRIMARY KEY,
    -- SHA-256 of the token's secret; the token itself is never stored.
    secret_hash       bytea       NOT NULL CHECK (octet_length(secret_hash) = 32),
    user_id           text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('user', 'agent')),
    agent_id          text,
    agent_name        text,
    created_at        timestamptz NOT NULL,
    last_active_at    timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    user_agent        text,
    ip                text,
    revoked_at        timestamptz,
    revocation_reason text,
    CONSTRAINT sessions_agent_fields CHECK (
        (kind = 'agent') = (agent_id IS NOT NULL AND agent_name IS NOT NULL)
        AND (kind = 'agent' OR (agent_id IS NULL AND agent_name IS NULL))
    ),
    CONSTRAINT sessions_revocation_fields CHECK (
        (revoked_at IS NULL) = (revocation_reason IS NULL)
    )
);

-- Revoke-all, revoke-others, list: by user, never a scan of all sessions.
CREATE INDEX sessions_user_id_idx ON session_revocation.sessions (user_id);
-- Purge of expired sessions.
CREATE INDEX sessions_expires_at_idx ON session_revocation.sessions (expires_at);

-- A user's revocation epoch; no row means 0. Rows are never deleted: an epoch that went
-- back to 0 would let a login that raced a revoke-all win.
CREATE TABLE session_revocation.user_epochs (
    user_id text   PRIMARY KEY,
    epoch   bigint NOT NULL CHECK (epoch >= 0)
);

-- Revoke-all in one statement: first move the epoch (which locks the user's epoch row, so it
-- waits for a login that holds it), then revoke. The function is VOLATILE, so in READ
-- COMMITTED its second statement takes a fresh snapshot and sees every session a login
-- committed before the epoch moved; a single statement (one snapshot) would miss them.
CREATE FUNCTION session_revocation.revoke_all_sessions(
    p_user_id text,
    p_except  uuid,
    p_reason  text,
    p_at      timestamptz
) RETURNS SETOF session_revocation.sessions
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO session_revocation.user_epochs AS e (user_id, epoch)
    VALUES (p_user_id, 1)
    ON CONFLICT (user_id) DO UPDATE SET epoch = e.epoch + 1;

    RETURN QUERY
    UPDATE session_revocation.sessions AS s
       SET revoked_at = p_at, revocation_reason = p_reason
     WHERE s.user_id = p_user_id
       AND s.revoked_at IS NULL
       AND s.expires_at > p_at
       AND (p_except IS NULL OR s.id <> p_except)
    RETURNING s.*;
END
$$;
