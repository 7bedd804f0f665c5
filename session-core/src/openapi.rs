//! An OpenAPI 3.1 description of the self-service JSON routes, generated with
//! [utoipa](https://docs.rs/utoipa): [`self_service_openapi`].
//!
//! `GET /me`, `GET /agent/me`, `POST /logout`, `GET /sessions`, `DELETE /sessions/{id}`,
//! `POST /sessions/revoke-others`, `POST /sessions/revoke-all`, `POST /agents` and
//! `DELETE /agents/{agent_id}`, each with its rejection (401 `{"error": CODE}`, the codes
//! from [`RejectionCode`]) and its 503, under two security schemes: the session cookie
//! (`session_cookie`) and an agent's bearer token (`agent_bearer`). The HTML sessions page
//! and its form actions are not described: they are pages, not an API.
//!
//! # Why the operations are described here, not on the handlers
//!
//! utoipa can annotate real handler functions, but these routes are mounted by two
//! adapters, `session_tower::self_service` (axum) and `session_actix::self_service`
//! (actix-web), whose handlers are closures or one-line functions around [`SelfService`];
//! annotating one adapter's handlers would describe one framework, and utoipa's
//! `axum_extras` and `actix_extras` features cannot both be enabled in one build. Every
//! answer is built here in the core by [`SelfService`], so the routes are described once,
//! on stand-in functions next to it, and the adapters stay free of utoipa. What keeps the
//! description true:
//!
//! - every JSON body is a type of [`selfservice`](crate::selfservice) ([`SessionView`],
//!   [`MeView`], [`AgentMeView`], [`AgentGranted`], [`Revoked`], [`ErrorBody`]) that
//!   [`SelfService`] serializes and whose schema is derived from it;
//! - the `error` codes are taken from [`RejectionCode`] and
//!   [`selfservice::codes`](crate::selfservice::codes), the constants the answers use;
//! - `session-conformance`'s schema test checks every JSON answer of both example apps
//!   against the served document.
//!
//! [`SelfService`]: crate::SelfService

use std::borrow::Cow;

use utoipa::openapi::content::Content;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::config::CookieConfig;
use crate::model::SessionKind;
use crate::rejection::RejectionCode;
use crate::selfservice::{
    AgentGrant, AgentGranted, AgentMeView, ErrorBody, MeView, Revoked, SessionView, codes,
};

/// The name of the security scheme of the session cookie.
pub const COOKIE_SCHEME: &str = "session_cookie";
/// The name of the security scheme of an agent's bearer token.
pub const BEARER_SCHEME: &str = "agent_bearer";

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

/// The codes of a JSON rejection with `status` (401 or 503).
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
    UserSessionRequired("An agent session may read but not manage the user's sessions and agents.")
        => [codes::USER_SESSION_REQUIRED];
    InvalidAgentName("The agent's name is empty (once trimmed) or longer than 200 bytes.")
        => [codes::INVALID_AGENT_NAME];
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
/// the module documentation for why they are not the adapters' handlers).
#[expect(
    dead_code,
    reason = "never called: only their #[utoipa::path] descriptions are used"
)]
mod operations {
    use super::{
        AgentGrant, AgentGranted, AgentMeView, InvalidAgentName, LoginRedirect, MeView, NotFound,
        Revoked, ServiceUnavailable, SessionView, Unauthorized, UserSessionRequired,
    };

    pub(super) const TAG_SESSIONS: &str = "sessions";
    pub(super) const TAG_AGENTS: &str = "agents";

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
    pub(super) fn me() {}

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
    pub(super) fn agent_me() {}

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
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn logout() {}

    /// The user's sessions
    ///
    /// The user's active sessions, user and agent sessions, newest first; `current` marks the
    /// one making the request.
    #[utoipa::path(
        get,
        path = "/sessions",
        tag = TAG_SESSIONS,
        operation_id = "list_sessions",
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 200, description = "The active sessions, newest first.", body = [SessionView]),
            (status = 303, response = LoginRedirect),
            (status = 401, response = Unauthorized),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn list_sessions() {}

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
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 204, description = "Revoked.", headers(
                ("Set-Cookie" = String, description = "Deletes the session cookie, when the revoked session is the current one."),
            )),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session.", body = UserSessionRequired),
            (status = 404, description = "Unknown id, or another user's session.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn revoke_session() {}

    /// Sign out the other sessions
    ///
    /// Revokes every other user session of this user (not agents; reason `revoked_by_user`).
    #[utoipa::path(
        post,
        path = "/sessions/revoke-others",
        tag = TAG_SESSIONS,
        operation_id = "revoke_other_sessions",
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session.", body = UserSessionRequired),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn revoke_other_sessions() {}

    /// Sign out everywhere
    ///
    /// Revokes all this user's sessions, agents and the current one included (reason
    /// `signed_out_everywhere`), and clears the cookie.
    #[utoipa::path(
        post,
        path = "/sessions/revoke-all",
        tag = TAG_SESSIONS,
        operation_id = "revoke_all_sessions",
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked, headers(
                ("Set-Cookie" = String, description = "Deletes the session cookie."),
            )),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session.", body = UserSessionRequired),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn revoke_all_sessions() {}

    /// Grant an agent
    ///
    /// Starts an agent session acting for the user. The token is in this answer only.
    #[utoipa::path(
        post,
        path = "/agents",
        tag = TAG_AGENTS,
        operation_id = "grant_agent",
        request_body(content = AgentGrant, content_type = "application/json"),
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 201, description = "The agent session and its bearer token, shown this once.", body = AgentGranted),
            (status = 400, description = "The body is not JSON, or (actix-web) not `application/json`: refused by the framework's JSON extractor.", content(("text/plain"))),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session.", body = UserSessionRequired),
            (status = 415, description = "(axum) The body is not `application/json`.", content(("text/plain"))),
            (status = 422, description = "The name is empty (once trimmed) or longer than 200 bytes. (axum also answers 422, in plain text, to JSON without a string `name`.)", content((InvalidAgentName = "application/json"), ("text/plain"))),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn grant_agent() {}

    /// Disconnect an agent
    ///
    /// Revokes every session of one of the user's agents (reason `agent_disconnected`).
    #[utoipa::path(
        delete,
        path = "/agents/{agent_id}",
        tag = TAG_AGENTS,
        operation_id = "disconnect_agent",
        params(("agent_id" = String, Path, description = "The agent's id, from `POST /agents`.")),
        security(("session_cookie" = []), ("agent_bearer" = [])),
        responses(
            (status = 204, description = "Disconnected."),
            (status = 401, response = Unauthorized),
            (status = 403, description = "An agent session.", body = UserSessionRequired),
            (status = 404, description = "Unknown agent, or another user's.", body = NotFound),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn disconnect_agent() {}
}

use operations::{TAG_AGENTS, TAG_SESSIONS};

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
                 `session` by default).",
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
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        operations::me,
        operations::agent_me,
        operations::logout,
        operations::list_sessions,
        operations::revoke_session,
        operations::revoke_other_sessions,
        operations::revoke_all_sessions,
        operations::grant_agent,
        operations::disconnect_agent,
    ),
    components(
        schemas(
            SessionView,
            MeView,
            AgentMeView,
            AgentGrant,
            AgentGranted,
            Revoked,
            ErrorBody,
            SessionRejection,
            StoreUnavailable,
            NotFound,
            UserSessionRequired,
            InvalidAgentName,
        ),
        responses(Unauthorized, ServiceUnavailable, LoginRedirect),
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = TAG_SESSIONS, description = "The signed-in user's sessions."),
        (name = TAG_AGENTS, description = "Agents: delegates acting for a user with a bearer token."),
    )
)]
struct SelfServiceApi;

/// The OpenAPI 3.1 document of the self-service JSON routes (see the [module](self)
/// documentation). Its `info` is `session-core`'s; an app merges it into its own document
/// ([`utoipa::openapi::OpenApi::merge`]) and sets its own `info`.
#[must_use]
pub fn self_service_openapi() -> utoipa::openapi::OpenApi {
    SelfServiceApi::openapi()
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

    fn doc() -> Value {
        serde_json::to_value(self_service_openapi()).expect("the document serializes")
    }

    #[test]
    fn is_openapi_3_1_with_every_route() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        let routes = routes(&self_service_openapi());
        assert_eq!(
            routes,
            [
                "DELETE /agents/{agent_id}",
                "DELETE /sessions/{id}",
                "GET /agent/me",
                "GET /me",
                "GET /sessions",
                "POST /agents",
                "POST /logout",
                "POST /sessions/revoke-all",
                "POST /sessions/revoke-others",
            ]
        );
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let responses = &op["responses"];
                assert_eq!(
                    responses["401"]["$ref"], "#/components/responses/Unauthorized",
                    "{method} {path}"
                );
                assert_eq!(
                    responses["503"]["$ref"], "#/components/responses/ServiceUnavailable",
                    "{method} {path}"
                );
                let security = op["security"].as_array().expect("security");
                assert!(!security.is_empty(), "{method} {path}");
                for requirement in security {
                    for scheme in requirement.as_object().expect("requirement").keys() {
                        assert!(
                            [COOKIE_SCHEME, BEARER_SCHEME].contains(&scheme.as_str()),
                            "{method} {path}: {scheme}"
                        );
                    }
                }
            }
        }
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
                "name": "session",
                "description": "The session cookie set by `POST /login` (its name is the app's \
                                choice; `session` by default)."
            })
        );
    }
}
