//! The store's SQL. Written against the default schema, `session_revocation`; a store with
//! another schema renders every statement once, at construction, with its own name.
//!
//! Every value is a bound parameter; the only text ever put into a statement is the schema
//! name, which [`valid_identifier`] restricts to lowercase letters, digits and `_`.

use session_core::store::SessionFilter;
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};
use time::OffsetDateTime;

use crate::SCHEMA;

/// The sessions table's columns, in [`crate::rows::SessionRow`]'s order.
macro_rules! session_columns {
    () => {
        "id, secret_hash, user_id, kind, agent_id, agent_name, created_at, last_active_at, \
         expires_at, user_agent, ip, revoked_at, revocation_reason, epoch, idp_issuer, \
         idp_subject, idp_sid"
    };
}

/// An event's id: its transaction id and sequence number, zero-padded, so that ids sort as
/// strings in (xid, seq) order.
macro_rules! event_id {
    ($t:literal) => {
        concat!(
            "lpad(",
            $t,
            ".xid::text, 20, '0') || '-' || lpad(",
            $t,
            ".seq::text, 19, '0')"
        )
    };
}

/// An event row's columns, in [`crate::rows::EventRow`]'s order.
macro_rules! event_columns {
    ($t:literal) => {
        concat!(
            event_id!($t),
            " AS event_id, ",
            $t,
            ".event_type, ",
            $t,
            ".occurred_at, ",
            $t,
            ".session_id, ",
            $t,
            ".user_id, ",
            $t,
            ".session_kind, ",
            $t,
            ".agent_id, ",
            $t,
            ".reason, ",
            $t,
            ".actor"
        )
    };
}

/// What a revocation's `UPDATE … RETURNING` (CTE `r`) returns: the session's columns, and
/// the position its event will take, drawn here (the transaction's id, the next number of
/// the events' sequence) so that the result needs no join with the insert's.
macro_rules! revoked_returning {
    () => {
        "RETURNING s.id, s.user_id, s.kind, s.agent_id, s.agent_name, s.expires_at,
                  pg_current_xact_id() AS xid,
                  nextval('session_revocation.events_seq_seq') AS seq"
    };
}

/// The columns of an ended session ([`crate::rows::RevokedRow`]) from CTE `r`.
macro_rules! revoked_select {
    () => {
        concat!(
            "SELECT r.id, r.user_id, r.kind, r.agent_id, r.agent_name, r.expires_at, ",
            event_id!("r"),
            " AS event_id FROM r"
        )
    };
}

/// The events of the sessions in CTE `r`, as `session.revoked` with reason `$2`, actor `$3`,
/// at `$1`, at the positions `r` drew. (A data-modifying CTE runs to completion whether or
/// not the main query reads it.)
macro_rules! revoked_events {
    () => {
        "e AS (
            INSERT INTO session_revocation.events
                (xid, seq, event_type, occurred_at, session_id, user_id, session_kind, agent_id,
                 reason, actor)
            OVERRIDING SYSTEM VALUE
            SELECT r.xid, r.seq, 'session.revoked', $1, r.id, r.user_id, r.kind, r.agent_id, $2, $3
              FROM r
        ) "
    };
}

const USER_STATE: &str = "SELECT epoch, disabled FROM session_revocation.users WHERE user_id = $1";

const SET_DISABLED: &str = "INSERT INTO session_revocation.users AS u (user_id, disabled)
    VALUES ($1, $2)
    ON CONFLICT ON CONSTRAINT users_pkey DO UPDATE SET disabled = EXCLUDED.disabled";

const CREATE: &str = "SELECT outcome, id, user_id, kind, agent_id, agent_name, expires_at, event_id
    FROM session_revocation.create_session(
        $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

const LOAD: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM session_revocation.sessions WHERE id = $1"
);

const TOUCH: &str = "UPDATE session_revocation.sessions SET last_active_at = $2
    WHERE id = $1 AND last_active_at < $2";

const LIST_ACTIVE: &str = concat!(
    "SELECT ",
    session_columns!(),
    " FROM session_revocation.sessions
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
      ORDER BY created_at DESC, id DESC LIMIT $3"
);

/// One session: `$1` at, `$2` reason, `$3` actor, `$4` the id.
const REVOKE: &str = concat!(
    "WITH r AS (
        UPDATE session_revocation.sessions AS s SET revoked_at = $1, revocation_reason = $2
         WHERE s.id = $4 AND s.revoked_at IS NULL
        ",
    revoked_returning!(),
    "
    ), ",
    revoked_events!(),
    revoked_select!()
);

const REVOKE_MANY: &str = "SELECT id, user_id, kind, agent_id, agent_name, expires_at, event_id
    FROM session_revocation.revoke_sessions($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const REPORT_EXPIRED: &str = concat!(
    "WITH r AS (
        UPDATE session_revocation.sessions SET expiry_reported = true
         WHERE id = $1 AND NOT expiry_reported
        RETURNING id, user_id, kind, agent_id
    ), e AS (
        INSERT INTO session_revocation.events
            (event_type, occurred_at, session_id, user_id, session_kind, agent_id, reason, actor)
        SELECT 'session.expired', $2, r.id, r.user_id, r.kind, r.agent_id, NULL, 'system' FROM r
        RETURNING *
    ) SELECT ",
    event_columns!("e"),
    " FROM e"
);

const APPEND_EVENT: &str = concat!(
    "INSERT INTO session_revocation.events AS e
        (event_type, occurred_at, session_id, user_id, session_kind, agent_id, reason, actor)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     RETURNING ",
    event_id!("e")
);

const PURGE: &str = "WITH s AS (
        DELETE FROM session_revocation.sessions
         WHERE LEAST(COALESCE(revoked_at, expires_at), expires_at) <= $1
        RETURNING 1
    ), e AS (
        DELETE FROM session_revocation.events WHERE occurred_at <= $2 RETURNING 1
    ), m AS (
        DELETE FROM session_revocation.first_use WHERE until <= $3 RETURNING 1
    )
    SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM e), (SELECT count(*) FROM m)";

const FIRST_USE: &str = "INSERT INTO session_revocation.first_use AS f (key, until)
    VALUES ($1, $2)
    ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until WHERE f.until <= now()
    RETURNING true";

const TRY_LEASE: &str = "INSERT INTO session_revocation.leases AS l (name, holder, until)
    VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
     WHERE l.holder = EXCLUDED.holder OR l.until <= clock_timestamp()
    RETURNING true";

const RELEASE_LEASE: &str = "DELETE FROM session_revocation.leases WHERE name = $1 AND holder = $2";

const LOAD_CURSOR: &str = "SELECT event_id FROM session_revocation.cursors WHERE name = $1";

const SAVE_CURSOR: &str = "INSERT INTO session_revocation.cursors (name, event_id) VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET event_id = EXCLUDED.event_id";

/// `(xid, seq)` of an event id made by this store.
pub(crate) fn parse_event_id(id: &str) -> Option<(u64, i64)> {
    let (xid, seq) = id.split_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(xid, 20) || !digits(seq, 19) {
        return None;
    }
    Some((xid.parse().ok()?, seq.parse().ok()?))
}

/// Whether `name` can name a schema or channel as is: lowercase ASCII letters, digits and
/// `_`, not starting with a digit, at most 63 bytes (PostgreSQL's identifier length).
#[must_use]
pub(crate) fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `template`, written for the default schema, for `schema`.
pub(crate) fn render(template: &str, schema: &str) -> String {
    if schema == SCHEMA {
        template.to_owned()
    } else {
        template.replace("session_revocation.", &format!("{schema}."))
    }
}

/// A value bound to a statement built at run time.
pub(crate) enum Bind {
    Text(String),
    Time(OffsetDateTime),
    Int(i64),
}

/// The store's statements, rendered for its schema.
#[derive(Debug)]
pub(crate) struct Statements {
    schema: String,
    pub user_state: SqlStr,
    pub set_disabled: SqlStr,
    pub create: SqlStr,
    pub load: SqlStr,
    pub touch: SqlStr,
    pub list_active: SqlStr,
    pub revoke: SqlStr,
    pub revoke_many: SqlStr,
    pub report_expired: SqlStr,
    pub append_event: SqlStr,
    pub purge: SqlStr,
    pub first_use: SqlStr,
    pub try_lease: SqlStr,
    pub release_lease: SqlStr,
    pub load_cursor: SqlStr,
    pub save_cursor: SqlStr,
}

impl Statements {
    pub(crate) fn new(schema: &str) -> Self {
        let r = |t: &str| AssertSqlSafe(render(t, schema)).into_sql_str();
        Self {
            schema: schema.to_owned(),
            user_state: r(USER_STATE),
            set_disabled: r(SET_DISABLED),
            create: r(CREATE),
            load: r(LOAD),
            touch: r(TOUCH),
            list_active: r(LIST_ACTIVE),
            revoke: r(REVOKE),
            revoke_many: r(REVOKE_MANY),
            report_expired: r(REPORT_EXPIRED),
            append_event: r(APPEND_EVENT),
            purge: r(PURGE),
            first_use: r(FIRST_USE),
            try_lease: r(TRY_LEASE),
            release_lease: r(RELEASE_LEASE),
            load_cursor: r(LOAD_CURSOR),
            save_cursor: r(SAVE_CURSOR),
        }
    }

    fn schema(&self, template: &str) -> String {
        render(template, &self.schema)
    }

    /// The events API: oldest first after `after`, only events no running transaction can
    /// still precede (xid below the oldest running one).
    pub(crate) fn events(
        &self,
        after: Option<&str>,
        event_type: Option<&str>,
        limit: i64,
    ) -> (String, Vec<Bind>) {
        let mut sql = String::from(concat!(
            "SELECT ",
            event_columns!("ev"),
            " FROM session_revocation.events AS ev
             WHERE ev.xid < pg_snapshot_xmin(pg_current_snapshot())"
        ));
        let mut binds = Vec::new();
        cursor_condition(&mut sql, &mut binds, after, ">");
        if let Some(t) = event_type {
            binds.push(Bind::Text(t.to_owned()));
            sql.push_str(&format!(" AND ev.event_type = ${}", binds.len()));
        }
        binds.push(Bind::Int(limit));
        sql.push_str(&format!(" ORDER BY ev.xid, ev.seq LIMIT ${}", binds.len()));
        (self.schema(&sql), binds)
    }

    /// The audit: one user's events, newest first, before `before`.
    pub(crate) fn audit(
        &self,
        user: &str,
        before: Option<&str>,
        limit: i64,
    ) -> (String, Vec<Bind>) {
        let mut sql = String::from(concat!(
            "SELECT ",
            event_columns!("ev"),
            " FROM session_revocation.events AS ev WHERE ev.user_id = $1"
        ));
        let mut binds = vec![Bind::Text(user.to_owned())];
        cursor_condition(&mut sql, &mut binds, before, "<");
        binds.push(Bind::Int(limit));
        sql.push_str(&format!(
            " ORDER BY ev.xid DESC, ev.seq DESC LIMIT ${}",
            binds.len()
        ));
        (self.schema(&sql), binds)
    }

    /// Incident-wide revocation (or, `dry_run`, its count): one statement over all users,
    /// the filter evaluated by the server. Only the filter's fields appear in the statement,
    /// so each combination gets a plan that uses its indexes. `$1` at, then (revocation)
    /// `$2` reason, `$3` actor.
    pub(crate) fn revoke_matching(
        &self,
        filter: &SessionFilter,
        at: OffsetDateTime,
        reason: &str,
        actor: &str,
        dry_run: bool,
    ) -> (String, Vec<Bind>) {
        let mut binds = vec![Bind::Time(at)];
        if !dry_run {
            binds.push(Bind::Text(reason.to_owned()));
            binds.push(Bind::Text(actor.to_owned()));
        }
        let conds = String::from("s.revoked_at IS NULL AND s.expires_at > $1");
        let mut conds = conds;
        if let Some(t) = filter.created_before {
            add(&mut conds, &mut binds, "s.created_at < $?", Bind::Time(t));
        }
        if let Some(net) = filter.ip {
            add(
                &mut conds,
                &mut binds,
                "s.ip_key >= $?",
                Bind::Text(net.lo_key()),
            );
            add(
                &mut conds,
                &mut binds,
                "s.ip_key <= $?",
                Bind::Text(net.hi_key()),
            );
        }
        if let Some(ua) = &filter.user_agent {
            // strpos: a plain substring, byte for byte (LIKE would read % and _).
            add(
                &mut conds,
                &mut binds,
                "strpos(s.user_agent, $?) > 0",
                Bind::Text(ua.clone()),
            );
        }
        if let Some(kind) = filter.kind {
            add(
                &mut conds,
                &mut binds,
                "s.kind = $?",
                Bind::Text(kind.as_str().to_owned()),
            );
        }
        if let Some(issuer) = &filter.idp_issuer {
            add(
                &mut conds,
                &mut binds,
                "s.idp_issuer = $?",
                Bind::Text(issuer.clone()),
            );
        }
        if let Some(sid) = &filter.idp_sid {
            add(
                &mut conds,
                &mut binds,
                "s.idp_sid = $?",
                Bind::Text(sid.clone()),
            );
        }
        let sql = if dry_run {
            format!("SELECT count(*) FROM session_revocation.sessions AS s WHERE {conds}")
        } else {
            format!(
                concat!(
                    "WITH r AS (
                        UPDATE session_revocation.sessions AS s
                           SET revoked_at = $1, revocation_reason = $2
                         WHERE {} ",
                    revoked_returning!(),
                    "
                    ), ",
                    revoked_events!(),
                    revoked_select!()
                ),
                conds
            )
        };
        (self.schema(&sql), binds)
    }
}

/// Adds ` AND template` to `conds`, with `$?` the placeholder of `value`.
fn add(conds: &mut String, binds: &mut Vec<Bind>, template: &str, value: Bind) {
    binds.push(value);
    conds.push_str(" AND ");
    conds.push_str(&template.replace("$?", &format!("${}", binds.len())));
}

/// Adds the cursor condition: by `(xid, seq)` on the primary key for an id of ours, or by
/// the id's text for anything else (still correct, as ids compare as strings, but a scan).
fn cursor_condition(sql: &mut String, binds: &mut Vec<Bind>, cursor: Option<&str>, op: &str) {
    let Some(cursor) = cursor else { return };
    if let Some((xid, seq)) = parse_event_id(cursor) {
        // Without the zeros: xid8's input reads a leading 0 as octal.
        binds.push(Bind::Text(xid.to_string()));
        binds.push(Bind::Int(seq));
        let n = binds.len();
        sql.push_str(&format!(
            " AND (ev.xid, ev.seq) {op} (${}::text::xid8, ${n})",
            n - 1
        ));
    } else {
        binds.push(Bind::Text(cursor.to_owned()));
        sql.push_str(&format!(
            concat!(" AND (", event_id!("ev"), ") COLLATE \"C\" {} ${}"),
            op,
            binds.len()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_parse_back() {
        let id = format!("{:020}-{:019}", 4_294_967_301u64, 42);
        assert_eq!(parse_event_id(&id), Some((4_294_967_301, 42)));
        for bad in [
            "",
            "00000000000000000042",
            "0000000000000000004-0000000000000000042",
            "0000000000000000000x-0000000000000000042",
            "99999999999999999999-0000000000000000042",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn identifiers_are_plain() {
        assert!(valid_identifier("session_revocation"));
        assert!(valid_identifier("t_1"));
        for bad in ["", "1abc", "Public", "a-b", "a.b", "a\"b", &"a".repeat(64)] {
            assert!(!valid_identifier(bad), "{bad:?}");
        }
    }

    #[test]
    fn rendering_replaces_only_the_schema() {
        let s = Statements::new("other_schema");
        assert!(!s.load.as_str().contains("session_revocation."));
        assert!(s.load.as_str().contains("other_schema.sessions"));
        let (sql, _) = s.revoke_matching(
            &SessionFilter {
                user_agent: Some("x".into()),
                ..SessionFilter::default()
            },
            OffsetDateTime::UNIX_EPOCH,
            "risk_detected",
            "admin",
            false,
        );
        assert!(sql.contains("other_schema.events") && sql.contains("strpos"));
        assert!(!sql.contains("session_revocation."));
    }
}
