//! The OpenAPI 3.1 document of a route table ([`openapi`]), generated with
//! [utoipa](https://docs.rs/utoipa): every JSON route the table holds, with its method and
//! path **taken from the table** (the same entries the axum router and the actix resources
//! are built from), its rejection (401 `{"error": CODE}`, the codes from
//! [`RejectionCode`]), its 403 for a cross-site state change, its 503, and the security
//! schemes: the session cookie (`session_cookie`), an agent's bearer token
//! (`agent_bearer`), the admin's bearer token (`admin_bearer`). The HTML sessions page and
//! its form actions are not described: they are pages, not an API.
//!
//! # Why the operations are described on stand-ins
//!
//! utoipa can annotate real handler functions, but these routes are run by the table, not
//! by handlers of one framework, and utoipa's `axum_extras` and `actix_extras` features
//! cannot both be enabled in one build. So each operation's description (summary, bodies,
//! answers) sits on a stand-in function below; the table attaches it to its route by
//! `operationId`, and a test checks that the stand-in's own method and path agree with the
//! table's. What keeps the description true:
//!
//! - every JSON body is a type of [`views`](crate::views) that the routes serialize and
//!   whose schema is derived from it;
//! - the `error` codes are taken from [`RejectionCode`] and [`codes`], the constants the
//!   answers use;
//! - `session-conformance`'s schema test checks every JSON answer of both example apps
//!   against the served document.

use std::borrow::Cow;

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Components, Info, OpenApi, Paths};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToResponse, ToSchema};

use session_core::{CookieConfig, EventType, RejectionCode, SessionKind};

use crate::table::RouteTable;
use crate::views::{
    AdminRevoke, AdminSessionView, AgentGrant, AgentGranted, AgentMeView, ErrorBody, EventsPage,
    MatchedCount, MeView, RevokeMatching, Revoked, SessionView, codes,
};

/// The name of the security scheme of the session cookie.
pub const COOKIE_SCHEME: &str = "session_cookie";
/// The name of the security scheme of an agent's bearer token.
pub const BEARER_SCHEME: &str = "agent_bearer";
/// The name of the security scheme of the admin routes' bearer token.
pub const ADMIN_SCHEME: &str = "admin_bearer";

/// The schema of a [`SessionKind`]: the string `user` or `agent`.
#[must_use]
pub fn session_kind_schema() -> Schema {
    kind_schema(&[SessionKind::User, SessionKind::Agent])
}

/// The schema of the `kind` of an agent's own view: the string `agent`.
#[must_use]
pub fn agent_kind_schema() -> Schema {
    kind_schema(&[SessionKind::Agent])
}

fn kind_schema(kinds: &[SessionKind]) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(kinds.iter().map(|k| k.as_str())))
        .into()
}

/// The schema of `{"error": CODE}` with CODE one of `codes`, described by `description`.
#[must_use]
pub fn error_schema<'a>(description: &str, codes: impl IntoIterator<Item = &'a str>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "error",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes)),
        )
        .required("error")
        .into()
}

/// The codes of a JSON rejection with `status` (401, 403 or 503).
fn rejection_codes(status: http::StatusCode) -> impl Iterator<Item = &'static str> {
    RejectionCode::ALL
        .iter()
        .copied()
        .filter(move |c| c.status() == status)
        .map(RejectionCode::as_str)
}

/// Declares schema-only types, each with the schema [`error_schema`] of its codes.
macro_rules! error_schemas {
    ($($name:ident($description:literal) => $codes:expr;)*) => {$(
        #[doc = concat!("The schema of `{\"error\": CODE}` for: ", $description)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                error_schema($description, $codes).into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )*};
}

error_schemas! {
    SessionRejection(
        "A refused session: missing, invalid (unknown, malformed or forged), expired or revoked."
    ) => rejection_codes(http::StatusCode::UNAUTHORIZED);
    StoreUnavailable("The session store could not answer; try again.")
        => rejection_codes(http::StatusCode::SERVICE_UNAVAILABLE);
    NotFound("An unknown id, or another user's session or agent.") => [codes::NOT_FOUND];
    UserSessionRequired("An agent session may not use the user's session-management routes.")
        => [codes::USER_SESSION_REQUIRED];
    Forbidden("An agent session may not manage the user's sessions and agents; or the request came from another site (nothing was changed).")
        => [codes::USER_SESSION_REQUIRED, RejectionCode::CrossSiteRequest.as_str()];
    InvalidAgentName("The agent's name is empty (once trimmed) or longer than 200 bytes; or the body is not the JSON object.")
        => [codes::INVALID_AGENT_NAME, codes::INVALID_BODY];
    CrossSite("A state-changing request with the session cookie came from another site; nothing was changed.")
        => rejection_codes(http::StatusCode::FORBIDDEN);
    InvalidBody("The body could not be parsed.") => [codes::INVALID_BODY];
    BodyTooLarge("The body is larger than the route reads (64 KiB).") => [codes::BODY_TOO_LARGE];
    InvalidQuery("The query string could not be parsed.") => [codes::INVALID_QUERY];
    BadFilter("No field to match, or a field that does not parse.")
        => [codes::EMPTY_FILTER, codes::INVALID_BODY];
}

/// The answer of `POST /admin/revoke-matching`: [`Revoked`], or [`MatchedCount`] for a dry
/// run.
#[derive(Clone, Copy, Debug)]
pub struct MatchingAnswer;

impl PartialSchema for MatchingAnswer {
    fn schema() -> RefOr<Schema> {
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(Ref::from_schema_name(Revoked::name()))
            .item(Ref::from_schema_name(MatchedCount::name()))
            .description(Some("How many were revoked, or matched on a dry run."))
            .into()
    }
}

impl ToSchema for MatchingAnswer {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("MatchingAnswer")
    }
}

/// The schema of one event (`session_core::SessionEvent`, which core serializes without
/// depending on utoipa; a test checks the two agree).
#[derive(Clone, Copy, Debug)]
pub struct EventSchema;

impl PartialSchema for EventSchema {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let nullable = |description: &str| {
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::String,
                    Type::Null,
                ]))
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("One event of the log."))
            .property("id", string("Its id: ids sort, as strings, in log order."))
            .property(
                "type",
                string("What happened.").enum_values(Some(EventType::ALL.map(EventType::as_str))),
            )
            .property(
                "occurred_at",
                string("When (RFC 3339, UTC).").format(Some(
                    utoipa::openapi::SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::DateTime,
                    ),
                )),
            )
            .property("session_id", string("The session (a UUID)."))
            .property(
                "user_id",
                string("Its user (for an agent, the user it acts for)."),
            )
            .property(
                "session_kind",
                string("`user` or `agent`.").enum_values(Some(["user", "agent"])),
            )
            .property("agent_id", nullable("The agent, for agent sessions."))
            .property("reason", nullable("Why, for revocations."))
            .property(
                "actor",
                string("Who caused it.")
                    .enum_values(Some(["user", "agent", "admin", "system", "idp"])),
            )
            .required("id")
            .required("type")
            .required("occurred_at")
            .required("session_id")
            .required("user_id")
            .required("session_kind")
            .required("agent_id")
            .required("reason")
            .required("actor")
            .into()
    }
}

impl ToSchema for EventSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Event")
    }
}

fn header(description: &str) -> Header {
    let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
    header.description = Some(description.to_owned());
    header
}

fn json_content<T: ToSchema>() -> Content {
    Content::new(Some(Ref::from_schema_name(T::name())))
}

/// The 401 of a refused session (reusable response `Unauthorized`).
#[derive(Clone, Copy, Debug)]
pub struct Unauthorized;

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "The session is refused: no token, or a token that is unknown, malformed, \
                 forged, expired, idle-timed-out or revoked.",
            )
            .header("Cache-Control", header("`no-store`."))
            .header(
                "Set-Cookie",
                header(
                    "Deletes the session cookie (`Max-Age=0`, an `Expires` in the past); only \
                     when the request carried one.",
                ),
            )
            .header(
                "WWW-Authenticate",
                header(
                    "`Bearer error=\"invalid_token\"` when a bearer token was refused, `Bearer` \
                     when the request carried no token.",
                ),
            )
            .content("application/json", json_content::<SessionRejection>())
            .build();
        ("Unauthorized", response.into())
    }
}

/// The 503 of a store that cannot answer (reusable response `ServiceUnavailable`).
#[derive(Clone, Copy, Debug)]
pub struct ServiceUnavailable;

impl<'r> ToResponse<'r> for ServiceUnavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "The session store could not answer. The cookie is not cleared: an outage \
                 signs no one out.",
            )
            .header("Retry-After", header("Seconds to wait before retrying."))
            .content("application/json", json_content::<StoreUnavailable>())
            .build();
        ("ServiceUnavailable", response.into())
    }
}

/// The 303 of a refused browser navigation (reusable response `LoginRedirect`).
#[derive(Clone, Copy, Debug)]
pub struct LoginRedirect;

impl<'r> ToResponse<'r> for LoginRedirect {
    fn response() -> (&'r str, RefOr<Response>) {
        let response = ResponseBuilder::new()
            .description(
                "A refused `GET` whose `Accept` includes `text/html` (a browser navigation), \
                 when the app has a login page: to the login page with `return_to`, clearing \
                 the cookie as the 401 does. No body.",
            )
            .header("Location", header("`/login?return_to=PATH`."))
            .header("Set-Cookie", header("As for the 401."))
            .build();
        ("LoginRedirect", response.into())
    }
}

/// The operations: stand-in functions that carry the `#[utoipa::path]` descriptions (see
/// the module documentation for why they are not handlers).
#[expect(
    dead_code,
    reason = "never called: only their #[utoipa::path] descriptions are used"
)]
pub(crate) mod operations {
    use super::{
        AdminRevoke, AdminSessionView, AgentGrant, AgentGranted, AgentMeView, BadFilter,
        BodyTooLarge, EventSchema, EventsPage, Forbidden, InvalidAgentName, InvalidBody,
        InvalidQuery, LoginRedirect, MatchingAnswer, MeView, NotFound, RevokeMatching, Revoked,
        ServiceUnavailable, SessionView, Unauthorized, UserSessionRequired,
    };

    pub(crate) const TAG_SESSIONS: &str = "sessions";
    pub(crate) const TAG_AGENTS: &str = "agents";
    pub(crate) const TAG_ADMIN: &str = "admin";

    /// Who is signed in
    ///
    /// The session making the request: its user, id and kind.
    #[utoipa::path(
        get,
        path = "/me",
        tag = TAG_SESSIONS,
        operation_id = "me",
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 200, description = "The session.", body = MeView),
            (status = 303, response = LoginRedirect),
            (status = 401, response = Unauthorized),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn me() {}

    /// An agent's view of itself
    ///
    /// For an agent's bearer token: the agent, the user it acts for and its session. A user
    /// session is refused like an invalid bearer token.
    #[utoipa::path(
        get,
        path = "/agent/me",
        tag = TAG_AGENTS,
        operation_id = "agent_me",
        security(("agent_bearer" = [])),
        responses(
            (status = 200, description = "The agent session.", body = AgentMeView),
            (status = 303, response = LoginRedirect),
            (status = 401, response = Unauthorized),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn agent_me() {}

    /// Sign out
    ///
    /// Revokes the session making the request (reason `signed_out`), clears the cookie and
    /// sends the browser to the login page.
    #[utoipa::path(
        post,
        path = "/logout",
        tag = TAG_SESSIONS,
        operation_id = "logout",
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 303, description = "Signed out.", headers(
                ("Location" = String, description = "The login page (`/login`)."),
                ("Set-Cookie" = String, description = "Deletes the session cookie."),
            )),
            (status = 401, response = Unauthorized),
            (status = 403, description = "A cross-site request.", body = Forbidden),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn logout() {}

    /// The user's sessions
    ///
    /// The user's active sessions, user and agent sessions, newest first; `current` marks the
    /// one making the request.
    #[utoipa::path(
        get,
        path = "/sessions",
        tag = TAG_SESSIONS,
        operation_id = "list_sessions",
        security(("session_cookie" = [])),
        responses(
            (status = 200, description = "The active sessions, newest first.", body = [SessionView]),
            (status = 303, response = LoginRedirect),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session.", body = UserSessionRequired),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn list_sessions() {}

    /// Sign one session out
    ///
    /// Revokes one of the user's own sessions (reason `revoked_by_user`). Nothing is revoked
    /// for an unknown id or another user's session.
    #[utoipa::path(
        delete,
        path = "/sessions/{id}",
        tag = TAG_SESSIONS,
        operation_id = "revoke_session",
        params(("id" = String, Path, description = "The session's id, from `GET /sessions`.")),
        security(("session_cookie" = [])),
        responses(
            (status = 204, description = "Revoked.", headers(
                ("Set-Cookie" = String, description = "Deletes the session cookie, when the revoked session is the current one."),
            )),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session, or a cross-site request.", body = Forbidden),
            (status = 404, description = "Unknown id, or another user's session.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn revoke_session() {}

    /// Sign out the other sessions
    ///
    /// Revokes every other user session of this user (not agents; reason `revoked_by_user`).
    #[utoipa::path(
        post,
        path = "/sessions/revoke-others",
        tag = TAG_SESSIONS,
        operation_id = "revoke_other_sessions",
        security(("session_cookie" = [])),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session, or a cross-site request.", body = Forbidden),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn revoke_other_sessions() {}

    /// Sign out everywhere
    ///
    /// Revokes all this user's sessions, agents and the current one included (reason
    /// `signed_out_everywhere`), and clears the cookie.
    #[utoipa::path(
        post,
        path = "/sessions/revoke-all",
        tag = TAG_SESSIONS,
        operation_id = "revoke_all_sessions",
        security(("session_cookie" = [])),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked, headers(
                ("Set-Cookie" = String, description = "Deletes the session cookie."),
            )),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session, or a cross-site request.", body = Forbidden),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn revoke_all_sessions() {}

    /// Grant an agent
    ///
    /// Starts an agent session acting for the user. The token is in this answer only. The
    /// grant is refused (401, `session_revoked`) if this session ended meanwhile or is older
    /// than the user's last "sign out everywhere".
    #[utoipa::path(
        post,
        path = "/agents",
        tag = TAG_AGENTS,
        operation_id = "grant_agent",
        request_body(content = AgentGrant, content_type = "application/json"),
        security(("session_cookie" = [])),
        responses(
            (status = 201, description = "The agent session and its bearer token, shown this once.", body = AgentGranted),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session, or a cross-site request.", body = Forbidden),
            (status = 413, description = "The body is larger than 64 KiB.", body = BodyTooLarge),
            (status = 422, description = "The body is not the JSON object, or the name is empty (once trimmed) or longer than 200 bytes.", content((InvalidAgentName = "application/json"))),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn grant_agent() {}

    /// Disconnect an agent
    ///
    /// Revokes every session of one of the user's agents (reason `agent_disconnected`).
    #[utoipa::path(
        delete,
        path = "/agents/{agent_id}",
        tag = TAG_AGENTS,
        operation_id = "disconnect_agent",
        params(("agent_id" = String, Path, description = "The agent's id, from `POST /agents`.")),
        security(("session_cookie" = [])),
        responses(
            (status = 204, description = "Disconnected."),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session, or a cross-site request.", body = Forbidden),
            (status = 404, description = "Unknown agent, or another user's.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn disconnect_agent() {}

    /// Read the event log (admin)
    ///
    /// Every event, oldest first, after a cursor: pass the previous page's `next_cursor`
    /// as `after`. The log never skips an event that commits late. Without the admin
    /// token the route answers 404.
    #[utoipa::path(
        get,
        path = "/admin/events",
        tag = TAG_ADMIN,
        operation_id = "admin_events",
        params(
            ("after" = Option<String>, Query, description = "Only events after this id."),
            ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)."),
            ("type" = Option<String>, Query, description = "Only events of this type (`session.revoked`, …)."),
        ),
        security(("admin_bearer" = [])),
        responses(
            (status = 200, description = "A page of the log.", body = EventsPage),
            (status = 400, description = "A query that does not parse.", body = InvalidQuery),
            (status = 404, description = "No admin token, or a wrong one.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn admin_events() {}

    /// A user's audit trail (admin)
    ///
    /// That user's events, newest first; page back with `before`.
    #[utoipa::path(
        get,
        path = "/admin/audit",
        tag = TAG_ADMIN,
        operation_id = "admin_audit",
        params(
            ("user_id" = String, Query, description = "Whose events."),
            ("before" = Option<String>, Query, description = "Only events before this id."),
            ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)."),
        ),
        security(("admin_bearer" = [])),
        responses(
            (status = 200, description = "The user's events, newest first.", body = [EventSchema]),
            (status = 400, description = "No `user_id`, or a query that does not parse.", body = InvalidQuery),
            (status = 404, description = "No admin token, or a wrong one.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn admin_audit() {}

    /// A user's sessions (admin)
    ///
    /// The user's active sessions, as `GET /sessions` shows them, without `current`.
    #[utoipa::path(
        get,
        path = "/admin/users/{user_id}/sessions",
        tag = TAG_ADMIN,
        operation_id = "admin_user_sessions",
        params(("user_id" = String, Path, description = "The user.")),
        security(("admin_bearer" = [])),
        responses(
            (status = 200, description = "The active sessions, newest first.", body = [AdminSessionView]),
            (status = 404, description = "No admin token, or a wrong one.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn admin_user_sessions() {}

    /// Revoke one session (admin)
    ///
    /// Revokes the session (reason `admin_revoked`, actor `admin`).
    #[utoipa::path(
        delete,
        path = "/admin/sessions/{session_id}",
        tag = TAG_ADMIN,
        operation_id = "admin_revoke_session",
        params(("session_id" = String, Path, description = "The session.")),
        security(("admin_bearer" = [])),
        responses(
            (status = 204, description = "Revoked."),
            (status = 404, description = "Unknown or already ended; or no admin token, or a wrong one.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn admin_revoke_session() {}

    /// Sign a user out everywhere (admin)
    ///
    /// Revokes all sessions of the user, agents included, with the reason given (default
    /// `admin_revoked`), actor `admin`: offboarding.
    #[utoipa::path(
        post,
        path = "/admin/users/{user_id}/revoke-all",
        tag = TAG_ADMIN,
        operation_id = "admin_revoke_all",
        params(("user_id" = String, Path, description = "The user.")),
        request_body(content = Option<AdminRevoke>, content_type = "application/json", description = "Optional."),
        security(("admin_bearer" = [])),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked),
            (status = 404, description = "No admin token, or a wrong one.", body = NotFound),
            (status = 422, description = "A body that is not the JSON object.", body = InvalidBody),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn admin_revoke_all() {}

    /// Revoke across all users (admin)
    ///
    /// Incident response: revokes every active session, of any user, that matches all the
    /// fields given (reason `risk_detected`, actor `admin`), in one store operation; with
    /// `dry_run` only counts them.
    #[utoipa::path(
        post,
        path = "/admin/revoke-matching",
        tag = TAG_ADMIN,
        operation_id = "admin_revoke_matching",
        request_body(content = RevokeMatching, content_type = "application/json"),
        security(("admin_bearer" = [])),
        responses(
            (status = 200, description = "`{\"revoked\": N}`, or `{\"matched\": N}` for a dry run.", body = MatchingAnswer),
            (status = 400, description = "No field to match, or a field that does not parse.", body = BadFilter),
            (status = 404, description = "No admin token, or a wrong one.", body = NotFound),
            (status = 422, description = "A body that is not the JSON object.", body = InvalidBody),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(crate) fn admin_revoke_matching() {}
}

use operations::{TAG_ADMIN, TAG_AGENTS, TAG_SESSIONS};

/// Attaches each route's description, by `operationId`.
/// An operation's id and its description.
type Described = (&'static str, fn() -> Operation);

fn attach(table: RouteTable, ops: &[Described]) -> RouteTable {
    table.documented_with(|id| ops.iter().find(|(n, _)| *n == id).map(|(_, f)| *f))
}

/// The self-service routes' descriptions.
pub(crate) const SELF_SERVICE: [Described; 9] = {
    use operations::*;
    [
        ("me", <__path_me as utoipa::Path>::operation),
        ("agent_me", <__path_agent_me as utoipa::Path>::operation),
        ("logout", <__path_logout as utoipa::Path>::operation),
        (
            "list_sessions",
            <__path_list_sessions as utoipa::Path>::operation,
        ),
        (
            "revoke_session",
            <__path_revoke_session as utoipa::Path>::operation,
        ),
        (
            "revoke_other_sessions",
            <__path_revoke_other_sessions as utoipa::Path>::operation,
        ),
        (
            "revoke_all_sessions",
            <__path_revoke_all_sessions as utoipa::Path>::operation,
        ),
        (
            "grant_agent",
            <__path_grant_agent as utoipa::Path>::operation,
        ),
        (
            "disconnect_agent",
            <__path_disconnect_agent as utoipa::Path>::operation,
        ),
    ]
};

/// The admin routes' descriptions.
pub(crate) const ADMIN: [Described; 6] = {
    use operations::*;
    [
        (
            "admin_events",
            <__path_admin_events as utoipa::Path>::operation,
        ),
        (
            "admin_audit",
            <__path_admin_audit as utoipa::Path>::operation,
        ),
        (
            "admin_user_sessions",
            <__path_admin_user_sessions as utoipa::Path>::operation,
        ),
        (
            "admin_revoke_session",
            <__path_admin_revoke_session as utoipa::Path>::operation,
        ),
        (
            "admin_revoke_all",
            <__path_admin_revoke_all as utoipa::Path>::operation,
        ),
        (
            "admin_revoke_matching",
            <__path_admin_revoke_matching as utoipa::Path>::operation,
        ),
    ]
};

pub(crate) fn document_self_service(table: RouteTable) -> RouteTable {
    attach(table, &SELF_SERVICE)
}

pub(crate) fn document_admin(table: RouteTable) -> RouteTable {
    attach(table, &ADMIN)
}

/// Adds the security schemes: the session cookie and the agent bearer token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            COOKIE_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                CookieConfig::new().name(),
                "The session cookie set by `POST /login` (its name is the app's choice; \
                 `__Host-session` by default).",
            ))),
        );
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An agent session's token, from `POST /agents`: \
                         `Authorization: Bearer TOKEN`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            ADMIN_SCHEME,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The app's admin credential (the example apps: `ADMIN_TOKEN`).",
                    ))
                    .build(),
            ),
        );
    }
}

fn http_method(method: &http::Method) -> Option<HttpMethod> {
    Some(match *method {
        http::Method::GET => HttpMethod::Get,
        http::Method::POST => HttpMethod::Post,
        http::Method::PUT => HttpMethod::Put,
        http::Method::DELETE => HttpMethod::Delete,
        http::Method::PATCH => HttpMethod::Patch,
        http::Method::HEAD => HttpMethod::Head,
        http::Method::OPTIONS => HttpMethod::Options,
        http::Method::TRACE => HttpMethod::Trace,
        _ => return None,
    })
}

/// The components every document shares: the bodies' schemas, the reusable responses, the
/// security schemes, the tags.
fn components() -> Components {
    fn schema<T: ToSchema>(c: &mut Components) {
        c.schemas.insert(T::name().into_owned(), T::schema());
    }
    fn response<'r, T: ToResponse<'r>>(c: &mut Components) {
        let (name, response) = T::response();
        c.responses.insert(name.to_owned(), response);
    }
    let mut c = Components::new();
    schema::<SessionView>(&mut c);
    schema::<AdminSessionView>(&mut c);
    schema::<MeView>(&mut c);
    schema::<AgentMeView>(&mut c);
    schema::<AgentGrant>(&mut c);
    schema::<AgentGranted>(&mut c);
    schema::<Revoked>(&mut c);
    schema::<MatchedCount>(&mut c);
    schema::<MatchingAnswer>(&mut c);
    schema::<EventsPage>(&mut c);
    schema::<EventSchema>(&mut c);
    schema::<AdminRevoke>(&mut c);
    schema::<RevokeMatching>(&mut c);
    schema::<ErrorBody<'_>>(&mut c);
    schema::<SessionRejection>(&mut c);
    schema::<StoreUnavailable>(&mut c);
    schema::<NotFound>(&mut c);
    schema::<UserSessionRequired>(&mut c);
    schema::<Forbidden>(&mut c);
    schema::<InvalidAgentName>(&mut c);
    schema::<CrossSite>(&mut c);
    schema::<InvalidBody>(&mut c);
    schema::<BodyTooLarge>(&mut c);
    schema::<InvalidQuery>(&mut c);
    schema::<BadFilter>(&mut c);
    response::<Unauthorized>(&mut c);
    response::<ServiceUnavailable>(&mut c);
    response::<LoginRedirect>(&mut c);
    c
}

/// The OpenAPI 3.1 document of `table`'s JSON routes: their methods and paths from the
/// table, their descriptions from the stand-ins. Its `info` is this crate's; set the
/// app's own, and merge in the app's own routes ([`OpenApi::merge`]).
///
/// ```
/// use std::sync::Arc;
/// use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
/// use session_selfservice::{SelfService, openapi};
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let table = SelfService::new(SessionGate::new(manager)).with_prefix("/auth").routes();
/// let doc = openapi::openapi(&table);
/// assert!(openapi::routes(&doc).contains(&"GET /auth/sessions".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn openapi(table: &RouteTable) -> OpenApi {
    let mut paths = Paths::new();
    for route in table.routes() {
        let (Some(describe), Some(method)) = (route.openapi, http_method(&route.method)) else {
            continue;
        };
        let mut operation = describe();
        if route.operation_id == "admin_revoke_all" {
            // The body is optional, which `#[utoipa::path]` only says of an `Option` (that
            // would also allow a JSON `null`, which the route accepts too).
            if let Some(RefOr::T(body)) = operation.request_body.as_mut() {
                body.required = Some(utoipa::openapi::Required::False);
            }
        }
        paths.add_path_operation(&route.path, vec![method], operation);
    }
    let mut doc = OpenApi::new(
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        paths,
    );
    doc.components = Some(components());
    SecuritySchemes.modify(&mut doc);
    doc.tags = Some(vec![
        utoipa::openapi::tag::TagBuilder::new()
            .name(TAG_SESSIONS)
            .description(Some("The signed-in user's sessions."))
            .build(),
        utoipa::openapi::tag::TagBuilder::new()
            .name(TAG_AGENTS)
            .description(Some(
                "Agents: delegates acting for a user with a bearer token.",
            ))
            .build(),
        utoipa::openapi::tag::TagBuilder::new()
            .name(TAG_ADMIN)
            .description(Some(
                "Operators: the event log, audit trails, offboarding, incident response.",
            ))
            .build(),
    ]);
    doc
}

/// Every operation of `doc` as `METHOD /path`, sorted: what a test compares with the
/// routes it expects.
#[must_use]
pub fn routes(doc: &utoipa::openapi::OpenApi) -> Vec<String> {
    let mut routes: Vec<String> = doc
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            let value = serde_json::to_value(item).unwrap_or_default();
            let methods: Vec<String> = value
                .as_object()
                .map(|m| {
                    m.keys()
                        .filter(|k| {
                            matches!(
                                k.as_str(),
                                "get"
                                    | "put"
                                    | "post"
                                    | "delete"
                                    | "options"
                                    | "head"
                                    | "patch"
                                    | "trace"
                            )
                        })
                        .map(|k| k.to_uppercase())
                        .collect()
                })
                .unwrap_or_default();
            methods.into_iter().map(move |m| format!("{m} {path}"))
        })
        .collect();
    routes.sort();
    routes
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn table() -> RouteTable {
        use std::sync::Arc;
        let manager = session_core::SessionManager::new(
            Arc::new(session_core::MemoryStore::new()),
            session_core::KeySet::random(),
            session_core::SessionConfig::new(),
        )
        .unwrap();
        let gate = session_core::SessionGate::new(manager);
        crate::SelfService::new(gate.clone())
            .routes()
            .merge(crate::Admin::new(gate, |_| false).routes())
    }

    fn doc() -> Value {
        serde_json::to_value(openapi(&table())).expect("the document serializes")
    }

    #[test]
    fn every_stand_in_agrees_with_its_route() {
        use utoipa::openapi::path::HttpMethod;
        let table = table();
        let describe = |id: &str| {
            SELF_SERVICE
                .iter()
                .chain(ADMIN.iter())
                .find(|(n, _)| *n == id)
                .map(|(_, f)| f)
        };
        // Each stand-in's own path and method (from its `#[utoipa::path]`), by operationId.
        macro_rules! stand_ins {
            ($($name:ident),*) => {
                [$((stringify!($name), <operations::$name as utoipa::Path>::path(), <operations::$name as utoipa::Path>::methods())),*]
            };
        }
        let declared = {
            stand_ins!(
                __path_me,
                __path_agent_me,
                __path_logout,
                __path_list_sessions,
                __path_revoke_session,
                __path_revoke_other_sessions,
                __path_revoke_all_sessions,
                __path_grant_agent,
                __path_disconnect_agent,
                __path_admin_events,
                __path_admin_audit,
                __path_admin_user_sessions,
                __path_admin_revoke_session,
                __path_admin_revoke_all,
                __path_admin_revoke_matching
            )
        };
        let mut documented = 0;
        for route in table.routes() {
            let Some(_) = describe(route.operation_id) else {
                assert!(
                    route.html,
                    "{} {} is JSON but undocumented",
                    route.method, route.path
                );
                continue;
            };
            documented += 1;
            let (_, path, methods) = declared
                .iter()
                .find(|(n, _, _)| n.trim_start_matches("__path_") == route.operation_id)
                .expect("a stand-in");
            assert_eq!(path, &route.path, "{}", route.operation_id);
            assert_eq!(methods.len(), 1);
            assert_eq!(
                http_method(&route.method).map(|m| std::mem::discriminant(&m)),
                Some(std::mem::discriminant(&methods[0])),
                "{}",
                route.operation_id
            );
            let _: &HttpMethod = &methods[0];
        }
        assert_eq!(documented, 15);
    }

    #[test]
    fn is_openapi_3_1_with_every_route() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = routes(&openapi(&table()));
        assert_eq!(
            routes,
            [
                "DELETE /admin/sessions/{session_id}",
                "DELETE /agents/{agent_id}",
                "DELETE /sessions/{id}",
                "GET /admin/audit",
                "GET /admin/events",
                "GET /admin/users/{user_id}/sessions",
                "GET /agent/me",
                "GET /me",
                "GET /sessions",
                "POST /admin/revoke-matching",
                "POST /admin/users/{user_id}/revoke-all",
                "POST /agents",
                "POST /logout",
                "POST /sessions/revoke-all",
                "POST /sessions/revoke-others",
            ]
        );
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let responses = &op["responses"];
                let admin = path.starts_with("/admin/");
                if !admin {
                    assert_eq!(
                        responses["401"]["$ref"], "#/components/responses/Unauthorized",
                        "{method} {path}"
                    );
                }
                assert_eq!(
                    responses["503"]["$ref"], "#/components/responses/ServiceUnavailable",
                    "{method} {path}"
                );
                let security = op["security"].as_array().expect("security");
                assert!(!security.is_empty(), "{method} {path}");
                for requirement in security {
                    for scheme in requirement.as_object().expect("requirement").keys() {
                        let allowed: &[&str] = if admin {
                            &[ADMIN_SCHEME]
                        } else {
                            &[COOKIE_SCHEME, BEARER_SCHEME]
                        };
                        assert!(
                            allowed.contains(&scheme.as_str()),
                            "{method} {path}: {scheme}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_event_schema_is_the_events_shape() {
        let event = session_core::SessionEvent::about(
            session_core::EventId::new("1"),
            EventType::Revoked,
            session_core::SessionId::random(),
            &session_core::Principal::user("alice"),
            None,
            session_core::Actor::User,
            time::OffsetDateTime::UNIX_EPOCH,
        );
        let json = serde_json::to_value(&event).unwrap();
        let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        keys.sort();
        let schema = serde_json::to_value(EventSchema::schema()).unwrap();
        let mut props: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        props.sort();
        assert_eq!(keys, props);
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        required.sort_unstable();
        assert_eq!(
            required,
            keys.iter().map(|k| k.as_str()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn error_codes_come_from_the_code() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["SessionRejection"]["properties"]["error"]["enum"],
            json!([
                "session_missing",
                "session_invalid",
                "session_expired",
                "session_revoked"
            ])
        );
        assert_eq!(
            schemas["StoreUnavailable"]["properties"]["error"]["enum"],
            json!(["session_store_unavailable"])
        );
        assert_eq!(
            schemas["SessionRejection"]["description"],
            "A refused session: missing, invalid (unknown, malformed or forged), expired or revoked."
        );
        assert_eq!(
            schemas["SessionView"]["properties"]["kind"]["enum"],
            json!(["user", "agent"])
        );
        assert_eq!(
            doc["components"]["securitySchemes"][COOKIE_SCHEME],
            json!({
                "type": "apiKey",
                "in": "cookie",
                "name": "__Host-session",
                "description": "The session cookie set by `POST /login` (its name is the app's \
                                choice; `__Host-session` by default)."
            })
        );
    }
}
