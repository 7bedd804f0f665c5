//! The example apps' OpenAPI 3.1 document, served at `GET /openapi.json`: built from the
//! same route table the apps mount, so every JSON route it holds is described, with the
//! method and path the apps serve. The library describes its own routes; this module
//! describes the example's (`POST /password-reset`, `GET /openapi.json`).

use std::sync::Arc;

use session_selfservice::RouteTable;
use session_selfservice::openapi::ServiceUnavailable;
use session_selfservice::views::Revoked;
use utoipa::openapi::Info;
use utoipa::openapi::path::Operation;

use crate::PasswordResetForm;

/// The title of the document.
pub const TITLE: &str = "session-revocation example app";

#[expect(
    dead_code,
    reason = "never called: only their #[utoipa::path] descriptions are used"
)]
mod operations {
    use session_selfservice::openapi::{CrossSite, InvalidBody};

    use super::{PasswordResetForm, Revoked, ServiceUnavailable};

    /// Reset a password
    ///
    /// Sets the user's password and revokes all of that user's sessions, agents included
    /// (reason `password_reset`). A stand-in for an emailed reset link: it asks for no
    /// proof, which only a demo may do. An unknown user gets `{"revoked": 0}`. If the
    /// revocation fails after the password changed, the answer is 503 and the revocation is
    /// retried until it holds.
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
            (status = 403, description = "A cross-site request.", body = CrossSite),
            (status = 422, description = "The body is neither the form nor the JSON.", body = InvalidBody),
            (status = 503, response = ServiceUnavailable),
        )
    )]
    pub(super) fn password_reset() {}

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

/// Attaches the example's own routes' descriptions to `table`.
#[must_use]
pub fn document(table: RouteTable) -> RouteTable {
    table.documented_with(|id| match id {
        "password_reset" => Some(
            <operations::__path_password_reset as utoipa::Path>::operation as fn() -> Operation,
        ),
        "openapi" => Some(<operations::__path_openapi as utoipa::Path>::operation),
        _ => None,
    })
}

/// The document of `table` (with `GET /openapi.json` itself), with the example app's
/// `info`, as JSON.
#[must_use]
pub fn openapi_json(table: &RouteTable) -> Arc<String> {
    let mut doc = session_selfservice::openapi::openapi(table);
    doc.paths.add_path_operation(
        "/openapi.json",
        vec![utoipa::openapi::path::HttpMethod::Get],
        <operations::__path_openapi as utoipa::Path>::operation(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert(
        "PasswordResetForm".into(),
        <PasswordResetForm as utoipa::PartialSchema>::schema(),
    );
    let mut info = Info::new(TITLE, env!("CARGO_PKG_VERSION"));
    info.description = Some(
        "The JSON routes of the session-revocation example apps (`axum-app`, `actix-app`): \
         session self-service, agents, password reset, and the admin routes (with \
         `ADMIN_TOKEN`)."
            .to_owned(),
    );
    doc.info = info;
    Arc::new(doc.to_json().unwrap_or_default())
}
