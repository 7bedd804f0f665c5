//! The example apps' OpenAPI 3.1 document: `session-core`'s self-service routes
//! ([`session_core::openapi::self_service_openapi`]) and the example's own JSON routes,
//! `POST /password-reset`, `POST /admin/users/{user_id}/revoke-all` and
//! `GET /openapi.json`. Both apps serve [`openapi_json`] at `GET /openapi.json`.
//!
//! As in `session-core`, the operations are described on stand-in functions (the two
//! apps each have their own handlers, which call [`Demo`](crate::Demo)); the bodies'
//! schemas are derived from the types those handlers parse and answer with.

use std::borrow::Cow;

use session_core::openapi::{ServiceUnavailable, error_schema};
use session_core::selfservice::Revoked;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Info, RefOr, Required, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::{AdminRevoke, INVALID_BODY, PasswordResetForm};

/// The name of the security scheme of the admin routes (`ADMIN_TOKEN`).
pub const ADMIN_SCHEME: &str = "admin_bearer";

const ADMIN_REVOKE_ALL: &str = "/admin/users/{user_id}/revoke-all";

/// The title of the document.
pub const TITLE: &str = "session-revocation example app";

/// The schema of `{"error": "invalid_body"}`.
#[derive(Clone, Copy, Debug)]
pub struct InvalidBody;

impl PartialSchema for InvalidBody {
    fn schema() -> RefOr<Schema> {
        error_schema("The body could not be parsed.", [INVALID_BODY]).into()
    }
}

impl ToSchema for InvalidBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("InvalidBody")
    }
}

#[expect(
    dead_code,
    reason = "never called: only their #[utoipa::path] descriptions are used"
)]
mod operations {
    use super::{AdminRevoke, InvalidBody, PasswordResetForm, Revoked, ServiceUnavailable};

    /// Reset a password
    ///
    /// Sets the user's password and revokes all of that user's sessions, agents included
    /// (reason `password_reset`). A stand-in for an emailed reset link: it asks for no
    /// proof, which only a demo may do. An unknown user gets `{"revoked": 0}`.
    #[utoipa::path(
        post,
        path = "/password-reset",
        tag = "account",
        operation_id = "password_reset",
        request_body(
            description = "A form or a JSON object.",
            content(
                (PasswordResetForm = "application/json"),
                (PasswordResetForm = "application/x-www-form-urlencoded"),
            ),
        ),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked),
            (status = 422, description = "The body is neither the form nor the JSON.", body = InvalidBody),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn password_reset() {}

    /// Sign a user out everywhere (admin)
    ///
    /// Revokes all sessions of the user, agents included, with the reason given (default
    /// `admin_revoked`). Only with `Authorization: Bearer ADMIN_TOKEN`; without it, or when
    /// the app has no `ADMIN_TOKEN`, the route answers 404.
    #[utoipa::path(
        post,
        path = "/admin/users/{user_id}/revoke-all",
        tag = "admin",
        operation_id = "admin_revoke_all",
        params(("user_id" = String, Path, description = "The user.")),
        request_body(
            content = AdminRevoke,
            content_type = "application/json",
            description = "Optional: an empty body revokes with reason `admin_revoked`.",
        ),
        security(("admin_bearer" = [])),
        responses(
            (status = 200, description = "How many sessions were revoked.", body = Revoked),
            (status = 404, description = "No `ADMIN_TOKEN` configured, or not its bearer token. No body."),
            (status = 422, description = "The body is not the JSON object.", body = InvalidBody),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn admin_revoke_all() {}

    /// This document
    ///
    /// The OpenAPI 3.1 document of the app's JSON routes.
    #[utoipa::path(
        get,
        path = "/openapi.json",
        tag = "meta",
        operation_id = "openapi",
        responses(
            (status = 200, description = "The document.", body = Object, content_type = "application/json"),
        )
    )]
    pub(super) fn openapi() {}
}

/// Adds the admin security scheme, and makes the admin route's body optional (which
/// `#[utoipa::path]` only says of an `Option`, that would also allow a JSON `null`).
struct Finish;

impl Modify for Finish {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let body = openapi
            .paths
            .paths
            .get_mut(ADMIN_REVOKE_ALL)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut());
        if let Some(RefOr::T(body)) = body {
            body.required = Some(Required::False);
        }
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                ADMIN_SCHEME,
                SecurityScheme::Http(
                    Http::builder()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("`Authorization: Bearer ADMIN_TOKEN`."))
                        .build(),
                ),
            );
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(
        operations::password_reset,
        operations::admin_revoke_all,
        operations::openapi
    ),
    components(
        schemas(PasswordResetForm, AdminRevoke, Revoked, InvalidBody),
        responses(ServiceUnavailable)
    ),
    modifiers(&Finish),
    tags(
        (name = "account", description = "The demo's account routes."),
        (name = "admin", description = "Admin routes, enabled by `ADMIN_TOKEN`."),
        (name = "meta", description = "About the API."),
    )
)]
struct ExampleApi;

/// The whole document: the self-service routes and the example's own, with the example
/// app's `info`.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = session_core::openapi::self_service_openapi();
    doc.merge(ExampleApi::openapi());
    let mut info = Info::new(TITLE, env!("CARGO_PKG_VERSION"));
    info.description = Some(
        "The JSON routes of the session-revocation example apps (`axum-app`, `actix-app`): \
         session self-service, agents, password reset and admin revocation."
            .to_owned(),
    );
    doc.info = info;
    doc
}

/// [`openapi`] as JSON, as `GET /openapi.json` serves it.
///
/// # Panics
///
/// Never: the document always serializes.
#[must_use]
pub fn openapi_json() -> String {
    openapi().to_json().expect("the document serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_lists_every_json_route() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).expect("JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], TITLE);
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let routes = session_core::openapi::routes(&openapi());
        assert_eq!(
            routes,
            [
                "DELETE /agents/{agent_id}",
                "DELETE /sessions/{id}",
                "GET /agent/me",
                "GET /me",
                "GET /openapi.json",
                "GET /sessions",
                "POST /admin/users/{user_id}/revoke-all",
                "POST /agents",
                "POST /logout",
                "POST /password-reset",
                "POST /sessions/revoke-all",
                "POST /sessions/revoke-others",
            ]
        );
        let schemes = doc["components"]["securitySchemes"]
            .as_object()
            .expect("security schemes");
        assert!(schemes.contains_key(ADMIN_SCHEME));
        assert!(schemes.contains_key(session_core::openapi::COOKIE_SCHEME));
        assert!(schemes.contains_key(session_core::openapi::BEARER_SCHEME));
        let admin = &doc["paths"][ADMIN_REVOKE_ALL]["post"];
        assert_eq!(admin["requestBody"]["required"], false);
        assert_eq!(admin["security"][0][ADMIN_SCHEME], serde_json::json!([]));
    }
}
