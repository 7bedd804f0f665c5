-- session-postgres v2, fixes to its two functions (v2 as first shipped is kept as is, so
-- that databases that applied it migrate on):
--
-- - create_session: the cap's eviction read the live sessions, then updated them by id; a
--   revocation committed in between was overwritten (reason session_limit) and logged a
--   second time. The UPDATE now also requires revoked_at IS NULL, which PostgreSQL rechecks
--   on the newest row version, so such a session is left as its revocation left it.
-- - both: each event's position is drawn in the UPDATE, so the result needs no join.

-- Revocations draw each event's position (the transaction's id, the next number of the
-- events' sequence) in the UPDATE's RETURNING, so the result needs no join with the insert.
-- A data-modifying CTE runs to completion whether or not the main query reads it.

-- A bulk revocation of one user's sessions, with their events, in one call. For the scope
-- 'all' it first moves the user's epoch (and sets the disabled mark when asked), which
-- locks the user's row: a login holding it finishes first. The function is VOLATILE, so
-- in READ COMMITTED its second statement takes a fresh snapshot and sees every session a
-- login committed before the epoch moved; a single statement (one snapshot) would miss them.
CREATE OR REPLACE FUNCTION session_revocation.revoke_sessions(
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
        RETURNING s.id, s.user_id, s.kind, s.agent_id, s.agent_name, s.expires_at,
                  pg_current_xact_id() AS xid,
                  nextval('session_revocation.events_seq_seq') AS seq
    ), e AS (
        INSERT INTO session_revocation.events
            (xid, seq, event_type, occurred_at, session_id, user_id, session_kind, agent_id,
             reason, actor)
        OVERRIDING SYSTEM VALUE
        SELECT r.xid, r.seq, 'session.revoked', p_at, r.id, r.user_id, r.kind, r.agent_id,
               p_reason, p_actor
          FROM r
    )
    SELECT r.id, r.user_id, r.kind, r.agent_id, r.agent_name, r.expires_at,
           lpad(r.xid::text, 20, '0') || '-' || lpad(r.seq::text, 19, '0')
      FROM r;
END
$$;

-- A new session, in one call: lock the user's row (creating it), check the disabled mark,
-- the expected epoch and the granting session, revoke the oldest user sessions beyond the
-- cap (with their events), insert the session at the current epoch, log session.created.
-- Returns one row per outcome: ('created', event id), ('evicted', …) per session the cap
-- ended, or one of 'user_disabled', 'epoch_moved', 'grantor_gone' (nothing written).
CREATE OR REPLACE FUNCTION session_revocation.create_session(
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
              FROM live WHERE s.id = live.id AND s.revoked_at IS NULL
            RETURNING s.id, s.user_id, s.kind, s.agent_id, s.agent_name, s.expires_at,
                      pg_current_xact_id() AS xid,
                      nextval('session_revocation.events_seq_seq') AS seq
        ), e AS (
            INSERT INTO session_revocation.events
                (xid, seq, event_type, occurred_at, session_id, user_id, session_kind, agent_id,
                 reason, actor)
            OVERRIDING SYSTEM VALUE
            SELECT r.xid, r.seq, 'session.revoked', p_created_at, r.id, r.user_id, r.kind,
                   r.agent_id, 'session_limit', 'system'
              FROM r
        )
        SELECT 'evicted', r.id, r.user_id, r.kind, r.agent_id, r.agent_name, r.expires_at,
               lpad(r.xid::text, 20, '0') || '-' || lpad(r.seq::text, 19, '0')
          FROM r;
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
