//! [`Admin`]: the routes an operator uses — read the event log and a user's audit trail,
//! list and revoke a user's sessions (offboarding), and revoke across all users in an
//! incident. The app protects them with its own check ([`Admin::new`]); unauthorized
//! requests get 404, so the routes do not reveal that they exist.

use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use session_core::events::{AuditQuery, EventQuery};
use session_core::store::{IpRange, SessionFilter};
use session_core::{
    Actor, EventId, EventType, Reply, RevocationReason, RevokeScope, SessionGate, SessionId, UserId,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::table::{Access, Call, Route, RouteTable};
use crate::views::{
    AdminRevoke, AdminSessionView, EventsPage, MatchedCount, RevokeMatching, Revoked, codes,
};

/// The default and the largest page of `GET /admin/events`.
pub const EVENTS_PAGE: (usize, usize) = (100, 1000);

/// A bearer token an app checks requests against (an admin token, a SCIM token): kept as
/// its SHA-256 and compared digest to digest in constant time, so neither its length nor
/// its bytes leak through timing. Its `Debug` prints nothing of it.
///
/// ```
/// use session_selfservice::BearerToken;
/// use session_core::http::HeaderMap;
///
/// let token = BearerToken::new("a-token-of-at-least-32-bytes-long!!").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Bearer a-token-of-at-least-32-bytes-long!!".parse().unwrap());
/// assert!(token.matches(&headers));
/// headers.insert("authorization", "Bearer nope".parse().unwrap());
/// assert!(!token.matches(&headers));
/// assert!(BearerToken::new("short").is_err());
/// assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
/// ```
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

/// The shortest bearer token accepted, in bytes.
pub const MIN_BEARER_TOKEN_LEN: usize = 32;

impl BearerToken {
    /// Keeps the digest of `token`.
    ///
    /// # Errors
    ///
    /// [`session_core::ConfigError::Invalid`] for a token shorter than
    /// [`MIN_BEARER_TOKEN_LEN`] bytes.
    pub fn new(token: &str) -> Result<Self, session_core::ConfigError> {
        if token.len() < MIN_BEARER_TOKEN_LEN {
            return Err(session_core::ConfigError::Invalid(
                "bearer token: at least 32 bytes",
            ));
        }
        Ok(Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether `headers` carry `Authorization: Bearer TOKEN` with this token.
    #[must_use]
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(http::header::AUTHORIZATION)
            .map(http::HeaderValue::as_bytes)
        else {
            return false;
        };
        let Some(token) = given
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .map(|_| &given[7..])
        else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(token.trim_ascii()).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// The admin routes, over a gate (for its manager).
///
/// | route | answer |
/// | --- | --- |
/// | `GET /admin/events?after=CURSOR&limit=N&type=T` | `{"data": [event…], "next_cursor"}`, oldest first (limit default 100, at most 1000) |
/// | `GET /admin/audit?user_id=U&before=CURSOR&limit=N` | that user's events, newest first |
/// | `GET /admin/users/{user_id}/sessions` | the user's active sessions |
/// | `DELETE /admin/sessions/{session_id}` | revokes it (reason `admin_revoked`): 204, or 404 |
/// | `POST /admin/users/{user_id}/revoke-all` | revokes all the user's sessions (JSON `{"reason"}` optional, default `admin_revoked`): `{"revoked": N}` |
/// | `POST /admin/revoke-matching` | revokes every active session matching the filter (reason `risk_detected`), or counts them with `dry_run`: `{"revoked": N}` / `{"matched": N}`; 400 without a field to match |
///
/// Every revocation records actor `admin`.
///
/// ```
/// use std::sync::Arc;
/// use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
/// use session_selfservice::{Admin, BearerToken};
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let token = BearerToken::new("an-admin-token-of-at-least-32-bytes")?;
/// let admin = Admin::new(SessionGate::new(manager), move |headers| token.matches(headers));
/// assert_eq!(admin.routes().routes().len(), 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Admin {
    gate: SessionGate,
    authorize: Arc<dyn Fn(&HeaderMap) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<String>,
    limit: Option<usize>,
    #[serde(rename = "type")]
    event_type: Option<String>,
}

#[derive(Deserialize)]
struct AuditParams {
    user_id: String,
    before: Option<String>,
    limit: Option<usize>,
}

impl Admin {
    /// Admin routes over `gate`'s manager, for requests that `authorize` accepts (by their
    /// headers: an admin token, a signed header from a gateway, …).
    pub fn new(
        gate: SessionGate,
        authorize: impl Fn(&HeaderMap) -> bool + Send + Sync + 'static,
    ) -> Self {
        Self {
            gate,
            authorize: Arc::new(authorize),
        }
    }

    fn op<F, Fut>(&self, method: Method, path: &str, id: &'static str, f: F) -> Route
    where
        F: Fn(Self, Call) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Reply> + Send + 'static,
    {
        let authorize = self.authorize.clone();
        let guard = Access::Guarded(Arc::new(move |call: &Call| {
            if authorize(&call.headers) {
                Ok(())
            } else {
                Err(Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND))
            }
        }));
        let admin = self.clone();
        Route::new(method, path, guard, id, move |call| f(admin.clone(), call))
    }

    /// The route table.
    #[must_use]
    pub fn routes(&self) -> RouteTable {
        let table = RouteTable::new(self.gate.clone())
            .route(self.op(
                Method::GET,
                "/admin/events",
                "admin_events",
                |a, c| async move { a.events(&c).await },
            ))
            .route(self.op(
                Method::GET,
                "/admin/audit",
                "admin_audit",
                |a, c| async move { a.audit(&c).await },
            ))
            .route(self.op(
                Method::GET,
                "/admin/users/{user_id}/sessions",
                "admin_user_sessions",
                |a, c| async move { a.user_sessions(c.param("user_id").unwrap_or("")).await },
            ))
            .route(self.op(
                Method::DELETE,
                "/admin/sessions/{session_id}",
                "admin_revoke_session",
                |a, c| async move { a.revoke_session(c.param("session_id").unwrap_or("")).await },
            ))
            .route(self.op(
                Method::POST,
                "/admin/users/{user_id}/revoke-all",
                "admin_revoke_all",
                |a, c| async move {
                    match c.json::<Option<AdminRevoke>>() {
                        Ok(body) => {
                            let reason = body.unwrap_or_default().reason;
                            a.revoke_all(c.param("user_id").unwrap_or(""), reason.as_deref())
                                .await
                        }
                        Err(reply) => reply,
                    }
                },
            ))
            .route(self.op(
                Method::POST,
                "/admin/revoke-matching",
                "admin_revoke_matching",
                |a, c| async move {
                    match c.json::<RevokeMatching>() {
                        Ok(body) => a.revoke_matching(&body).await,
                        Err(reply) => reply,
                    }
                },
            ));
        #[cfg(feature = "openapi")]
        let table = crate::openapi::document_admin(table);
        table
    }

    fn error(&self, err: &session_core::SessionError) -> Reply {
        self.gate.error_reply(err)
    }

    /// `GET /admin/events`.
    pub async fn events(&self, call: &Call) -> Reply {
        let q: EventsQuery = match call.query_as() {
            Ok(q) => q,
            Err(reply) => return reply,
        };
        let event_type = match q.event_type.as_deref().map(EventType::parse) {
            None => None,
            Some(Some(t)) => Some(t),
            Some(None) => return Reply::error(StatusCode::BAD_REQUEST, codes::INVALID_QUERY),
        };
        let (default, max) = EVENTS_PAGE;
        let limit = q.limit.unwrap_or(default).clamp(1, max);
        let query = EventQuery {
            after: q.after.clone().map(EventId::new),
            limit,
            event_type,
        };
        match self.gate.manager().events(&query).await {
            Ok(data) => {
                let next_cursor = data.last().map(|e| e.id.as_str().to_owned()).or(q.after);
                Reply::json(StatusCode::OK, &EventsPage { data, next_cursor })
            }
            Err(e) => self.error(&e),
        }
    }

    /// `GET /admin/audit`.
    pub async fn audit(&self, call: &Call) -> Reply {
        let q: AuditParams = match call.query_as() {
            Ok(q) => q,
            Err(reply) => return reply,
        };
        let (default, max) = EVENTS_PAGE;
        let query = AuditQuery {
            user_id: UserId::from(q.user_id),
            before: q.before.map(EventId::new),
            limit: q.limit.unwrap_or(default).clamp(1, max),
        };
        match self.gate.manager().audit(&query).await {
            Ok(events) => Reply::json(StatusCode::OK, &events),
            Err(e) => self.error(&e),
        }
    }

    /// `GET /admin/users/{user_id}/sessions`.
    pub async fn user_sessions(&self, user_id: &str) -> Reply {
        match self.gate.manager().list(&UserId::from(user_id)).await {
            Ok(records) => {
                let views: Vec<AdminSessionView> =
                    records.iter().map(AdminSessionView::new).collect();
                Reply::json(StatusCode::OK, &views)
            }
            Err(e) => self.error(&e),
        }
    }

    /// `DELETE /admin/sessions/{session_id}`.
    pub async fn revoke_session(&self, session_id: &str) -> Reply {
        let Ok(id) = session_id.parse::<SessionId>() else {
            return Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND);
        };
        match self
            .gate
            .manager()
            .revoke(id, RevocationReason::AdminRevoked, Actor::Admin)
            .await
        {
            Ok(true) => Reply::empty(StatusCode::NO_CONTENT),
            Ok(false) => Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND),
            Err(e) => self.error(&e),
        }
    }

    /// `POST /admin/users/{user_id}/revoke-all`.
    pub async fn revoke_all(&self, user_id: &str, reason: Option<&str>) -> Reply {
        let reason = reason.map_or(RevocationReason::AdminRevoked, RevocationReason::parse);
        match self
            .gate
            .manager()
            .revoke_all(
                &UserId::from(user_id),
                RevokeScope::All,
                None,
                reason,
                Actor::Admin,
            )
            .await
        {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n as u64 }),
            Err(e) => self.error(&e),
        }
    }

    /// `POST /admin/revoke-matching`.
    pub async fn revoke_matching(&self, body: &RevokeMatching) -> Reply {
        let bad = || Reply::error(StatusCode::BAD_REQUEST, codes::INVALID_BODY);
        let created_before = match body.created_before.as_deref() {
            None => None,
            Some(t) => {
                match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                {
                    Ok(t) => Some(t),
                    Err(_) => return bad(),
                }
            }
        };
        let ip = match body.ip.as_deref() {
            None => None,
            Some(net) => match net.parse::<IpRange>() {
                Ok(range) => Some(range),
                Err(_) => return bad(),
            },
        };
        let filter = SessionFilter {
            created_before,
            ip,
            user_agent: body.user_agent.clone().filter(|ua| !ua.is_empty()),
            kind: body.kind,
            ..SessionFilter::default()
        };
        if filter.is_empty() {
            return Reply::error(StatusCode::BAD_REQUEST, codes::EMPTY_FILTER);
        }
        match self
            .gate
            .manager()
            .revoke_matching(
                &filter,
                RevocationReason::RiskDetected,
                Actor::Admin,
                body.dry_run,
            )
            .await
        {
            Ok(m) if body.dry_run => {
                Reply::json(StatusCode::OK, &MatchedCount { matched: m.matched })
            }
            Ok(m) => Reply::json(
                StatusCode::OK,
                &Revoked {
                    revoked: m.revoked.len() as u64,
                },
            ),
            Err(e) => self.error(&e),
        }
    }
}
