-- session-postgres v2: the event log (an outbox), identity-provider links, the users table
-- (epoch and disabled mark), replay marks, leases and cursors.
--
-- Every name is qualified with the schema `session_revocation`; a store built with another
-- schema runs this text with that name in its place (see `PostgresStore::migrate`).

-- Sessions: the epoch they were issued at, the identity-provider session they came
-- through, the IP as a sortable key (for CIDR filters), and whether their expiry was logged.
ALTER TABLE session_revocation.sessions
    ADD COLUMN epoch           bigint  NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    ADD COLUMN idp_issuer      text,
    ADD COLUMN idp_subject     text,
    ADD COLUMN idp_sid         text,
    -- 32 lowercase hex digits of the address as IPv6 (IPv4 mapped): `session_core::store::ip_key`.
    -- A network is a range of keys, so a CIDR filter is a BETWEEN on a btree index.
    ADD COLUMN ip_key          text COLLATE "C" CHECK (ip_key ~ '^[0-9a-f]{32}$'),
    ADD COLUMN expiry_reported boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT sessions_idp_fields CHECK (
        (idp_issuer IS NULL) = (idp_subject IS NULL)
        AND (idp_sid IS NULL OR idp_issuer IS NOT NULL)
    );

-- The purge deletes by end of life (revocation or expiry, whichever came first).
DROP INDEX session_revocation.sessions_expires_at_idx;
CREATE INDEX sessions_ended_at_idx ON session_revocation.sessions
    ((LEAST(COALESCE(revoked_at, expires_at), expires_at)));
-- Incident-wide revocation by network, among live sessions.
CREATE INDEX sessions_ip_key_idx ON session_revocation.sessions (ip_key)
    WHERE revoked_at IS NULL AND ip_key IS NOT NULL;
-- Identity-provider logouts and filters by issuer and provider session.
CREATE INDEX sessions_idp_idx ON session_revocation.sessions (idp_issuer, idp_sid)
    WHERE idp_issuer IS NOT NULL;
-- Incident-wide revocation by issue time, among live sessions.
CREATE INDEX sessions_created_at_idx ON session_revocation.sessions (created_at)
    WHERE revoked_at IS NULL;

-- What the store knows of a user beyond their sessions. Rows are never deleted: an epoch
-- that went back to 0 would let a login that raced a revoke-all win.
ALTER TABLE session_revocation.user_epochs RENAME TO users;
ALTER TABLE session_revocation.users RENAME CONSTRAINT user_epochs_pkey TO users_pkey;
ALTER TABLE session_revocation.users
    ALTER COLUMN epoch SET DEFAULT 0,
    ADD COLUMN disabled boolean NOT NULL DEFAULT false;

-- The event log. An event's position is (xid, seq): the id of the transaction that wrote
-- it, then a sequence number. Readers of the log are served only events whose xid is below
-- the oldest transaction still running (`pg_snapshot_xmin(pg_current_snapshot())`): every
-- transaction that can still write an event has an xid at or above it, so a cursor never
-- moves past an event that commits later. The event's id is both numbers, zero-padded, so
-- that ids sort as strings in log order: `XXXXXXXXXXXXXXXXXXXX-SSSSSSSSSSSSSSSSSSS`.
CREATE TABLE session_revocation.events (
    xid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    event_type   text        NOT NULL CHECK (event_type IN
                     ('session.created', 'session.revoked', 'session.expired', 'session.suspicious')),
    occurred_at  timestamptz NOT NULL,
    session_id   uuid        NOT NULL,
    user_id      text        NOT NULL,
    session_kind text        NOT NULL CHECK (session_kind IN ('user', 'agent')),
    agent_id     text,
    reason       text,
    actor        text        NOT NULL,
    PRIMARY KEY (xid, seq)
);
-- The audit: one user's events, newest first.
CREATE INDEX events_user_idx ON session_revocation.events (user_id, xid, seq);
-- The purge of old events.
CREATE INDEX events_occurred_at_idx ON session_revocation.events (occurred_at);

-- Replay protection (logout tokens, security event tokens): a key is used once while its
-- mark lives.
CREATE TABLE session_revocation.first_use (
    key   text        PRIMARY KEY,
    until timestamptz NOT NULL
);
CREATE INDEX first_use_until_idx ON session_revocation.first_use (until);

-- Leases (one webhook worker at a time), timed by the database's clock.
CREATE TABLE session_revocation.leases (
    name   text        PRIMARY KEY,
    holder text        NOT NULL,
    until  timestamptz NOT NULL
);

-- Saved positions in the log.
CREATE TABLE session_revocation.cursors (
    name     text PRIMARY KEY,
    event_id text NOT NULL
);

-- The v1 revoke-all, superseded by revoke_sessions.
DROP FUNCTION session_revocation.revoke_all_sessions(text, uuid, text, timestamptz);

-- A bulk revocation of one user's sessions, with their events, in one call. For the scope
-- 'all' it first moves the user's epoch (and sets the disabled mark when asked), which
-- locks the user's row: a login holding it finishes first. The function is VOLATILE, so
-- in READ COMMITTED its second statement takes a fresh snapshot and sees every session a
-- login committed before the epoch moved; a single statement (one snapshot) would miss them.
CREATE FUNCTION session_revocation.revoke_sessions(
    p_user_id text,
    p_scope   text,        -- 'all', 'user', 'agent' or 'idp'
    p_agent   text,        -- scope 'agent'
    p_issuer  text,        -- scope 'idp'
    p_subject text,        -- scope 'idp', optional
    p_sid     text,        -- scope 'idp', optional
    p_except  uuid,
    p_reason  text,
    p_actor   text,
    p_at      timestamptz,
    p_disable boolean
) RETURNS TABLE (
    id uuid, user_id text, kind text, agent_id text, agent_name text,
    expires_at timestamptz, event_id text
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF p_scope = 'all' THEN
        INSERT INTO session_revocation.users AS u (user_id, epoch, disabled)
        VALUES (p_user_id, 1, p_disable)
        ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET epoch = u.epoch + 1, disabled = u.disabled OR p_disable;
    END IF;

    RETURN QUERY
    WITH r AS (
        UPDATE session_revocation.sessions AS s
           SET revoked_at = p_at, revocation_reason = p_reason
         WHERE s.user_id = p_user_id
           AND s.revoked_at IS NULL
           AND s.expires_at > p_at
           AND (p_except IS NULL OR s.id <> p_except)
           AND CASE p_scope
                   WHEN 'all' THEN true
                   WHEN 'user' THEN s.kind = 'user'
                   WHEN 'agent' THEN s.agent_id = p_agent
                   WHEN 'idp' THEN s.idp_issuer = p_issuer
                       AND (p_subject IS NULL OR s.idp_subject = p_subject)
                       AND (p_sid IS NULL OR s.idp_sid = p_sid)
                   ELSE false
               END
        RETURNING s.id, s.user_id, s.kind, s.agent_id, s.agent_name, s.expires_at
    ), e AS (
        INSERT INTO session_revocation.events
            (event_type, occurred_at, session_id, user_id, session_kind, agent_id, reason, actor)
        SELECT 'session.revoked', p_at, r.id, r.user_id, r.kind, r.agent_id, p_reason, p_actor
          FROM r
        RETURNING events.session_id, events.xid, events.seq
    )
    SELECT r.id, r.user_id, r.kind, r.agent_id, r.agent_name, r.expires_at,
           lpad(e.xid::text, 20, '0') || '-' || lpad(e.seq::text, 19, '0')
      FROM r JOIN e ON e.session_id = r.id;
END
$$;

-- A new session, in one call: lock the user's row (creating it), check the disabled mark,
-- the expected epoch and the granting session, revoke the oldest user sessions beyond the
-- cap (with their events), insert the session at the current epoch, log session.created.
-- Returns one row per outcome: ('created', event id), ('evicted', …) per session the cap
-- ended, or one of 'user_disabled', 'epoch_moved', 'grantor_gone' (nothing written).
CREATE FUNCTION session_revocation.create_session(
    p_id             uuid,
    p_secret_hash    bytea,
    p_user_id        text,
    p_kind           text,
    p_agent_id       text,
    p_agent_name     text,
    p_created_at     timestamptz,
    p_last_active_at timestamptz,
    p_expires_at     timestamptz,
    p_user_agent     text,
    p_ip             text,
    p_ip_key         text,
    p_idp_issuer     text,
    p_idp_subject    text,
    p_idp_sid        text,
    p_expected_epoch bigint,
    p_granted_by     uuid,
    p_max_user       integer,
    p_actor          text
) RETURNS TABLE (
    outcome text, id uuid, user_id text, kind text, agent_id text, agent_name text,
    expires_at timestamptz, event_id text
)
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_epoch    bigint;
    v_disabled boolean;
    v_grantor  boolean;
    v_xid      xid8;
    v_seq      bigint;
BEGIN
    INSERT INTO session_revocation.users (user_id) VALUES (p_user_id)
    ON CONFLICT ON CONSTRAINT users_pkey DO NOTHING;
    SELECT u.epoch, u.disabled INTO v_epoch, v_disabled
      FROM session_revocation.users AS u WHERE u.user_id = p_user_id FOR UPDATE;
    IF v_disabled THEN
        RETURN QUERY SELECT 'user_disabled', NULL::uuid, NULL, NULL, NULL, NULL, NULL::timestamptz, NULL;
        RETURN;
    END IF;
    IF p_expected_epoch IS NOT NULL AND p_expected_epoch <> v_epoch THEN
        RETURN QUERY SELECT 'epoch_moved', NULL::uuid, NULL, NULL, NULL, NULL, NULL::timestamptz, NULL;
        RETURN;
    END IF;
    IF p_granted_by IS NOT NULL THEN
        SELECT EXISTS (
            SELECT 1 FROM session_revocation.sessions AS g
             WHERE g.id = p_granted_by AND g.user_id = p_user_id AND g.revoked_at IS NULL
               AND g.expires_at > p_created_at AND g.epoch = v_epoch
        ) INTO v_grantor;
        IF NOT v_grantor THEN
            RETURN QUERY SELECT 'grantor_gone', NULL::uuid, NULL, NULL, NULL, NULL, NULL::timestamptz, NULL;
            RETURN;
        END IF;
    END IF;
    IF p_max_user IS NOT NULL AND p_kind = 'user' THEN
        RETURN QUERY
        WITH live AS (
            SELECT s.id FROM session_revocation.sessions AS s
             WHERE s.user_id = p_user_id AND s.kind = 'user' AND s.revoked_at IS NULL
               AND s.expires_at > p_created_at
             ORDER BY s.created_at DESC, s.id DESC
            OFFSET GREATEST(p_max_user - 1, 0)
        ), r AS (
            UPDATE session_revocation.sessions AS s
               SET revoked_at = p_created_at, revocation_reason = 'session_limit'
              FROM live WHERE s.id = live.id
            RETURNING s.id, s.user_id, s.kind, s.agent_id, s.agent_name, s.expires_at
        ), e AS (
            INSERT INTO session_revocation.events
                (event_type, occurred_at, session_id, user_id, session_kind, agent_id, reason, actor)
            SELECT 'session.revoked', p_created_at, r.id, r.user_id, r.kind, r.agent_id,
                   'session_limit', 'system'
              FROM r
            RETURNING events.session_id, events.xid, events.seq
        )
        SELECT 'evicted', r.id, r.user_id, r.kind, r.agent_id, r.agent_name, r.expires_at,
               lpad(e.xid::text, 20, '0') || '-' || lpad(e.seq::text, 19, '0')
          FROM r JOIN e ON e.session_id = r.id;
    END IF;
    INSERT INTO session_revocation.sessions
        (id, secret_hash, user_id, kind, agent_id, agent_name, created_at, last_active_at,
         expires_at, user_agent, ip, ip_key, idp_issuer, idp_subject, idp_sid, epoch)
    VALUES (p_id, p_secret_hash, p_user_id, p_kind, p_agent_id, p_agent_name, p_created_at,
            p_last_active_at, p_expires_at, p_user_agent, p_ip, p_ip_key, p_idp_issuer,
            p_idp_subject, p_idp_sid, v_epoch);
    INSERT INTO session_revocation.events
        (event_type, occurred_at, session_id, user_id, session_kind, agent_id, reason, actor)
    VALUES ('session.created', p_created_at, p_id, p_user_id, p_kind, p_agent_id, NULL, p_actor)
    RETURNING events.xid, events.seq INTO v_xid, v_seq;
    RETURN QUERY SELECT 'created', p_id, p_user_id, p_kind, p_agent_id, p_agent_name, p_expires_at,
        lpad(v_xid::text, 20, '0') || '-' || lpad(v_seq::text, 19, '0');
END
$$;
