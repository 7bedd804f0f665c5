//! The OpenAPI descriptions of the identity-provider routes that are part of the API
//! (back-channel logout, SCIM). The sign-in routes are browser navigations, left out of
//! the document like the other pages. Bodies are described inline: the shared component
//! list belongs to `session-selfservice`.

#![expect(
    dead_code,
    reason = "the structs and functions exist for their #[utoipa] descriptions only"
)]

use session_selfservice::openapi::{BodyTooLarge, ServiceUnavailable};
use utoipa::ToSchema;
use utoipa::openapi::path::Operation;

/// A refused logout token.
#[derive(ToSchema)]
struct LogoutRefused {
    /// `invalid_request` (the token or the request is invalid), or
    /// `temporarily_unavailable` (the provider's keys or the replay store could not be
    /// reached: the token was not judged).
    #[schema(pattern = "^(invalid_request|temporarily_unavailable)$")]
    error: String,
    /// Why, in words (never any part of the token).
    error_description: String,
}

/// `application/x-www-form-urlencoded` with the logout token.
#[derive(ToSchema)]
struct LogoutRequest {
    /// The logout token (a JWT signed by the provider).
    logout_token: String,
}

/// A SCIM PatchOp request (RFC 7644 section 3.5.2); only `active` is acted on.
#[derive(ToSchema)]
struct PatchOp {
    /// Must contain `urn:ietf:params:scim:api:messages:2.0:PatchOp`.
    schemas: Vec<String>,
    /// The operations: `op` (`add`, `replace`, `remove`, any case), `path`, `value`.
    #[schema(rename = "Operations", value_type = Vec<Object>)]
    operations: Vec<String>,
}

/// The SCIM User as this app reports it.
#[derive(ToSchema)]
struct ScimUser {
    /// `["urn:ietf:params:scim:schemas:core:2.0:User"]`.
    schemas: Vec<String>,
    /// The SCIM id: the user name.
    id: String,
    /// The user name.
    #[schema(rename = "userName")]
    user_name: String,
    /// Whether the user may sign in.
    active: bool,
    /// `{"resourceType": "User"}`.
    #[schema(value_type = Object)]
    meta: String,
}

/// A SCIM error (RFC 7644 section 3.12).
#[derive(ToSchema)]
struct ScimError {
    /// `["urn:ietf:params:scim:api:messages:2.0:Error"]`.
    schemas: Vec<String>,
    /// The HTTP status, as a string.
    status: String,
    /// `invalidSyntax`, `invalidValue`, … when there is one.
    #[schema(rename = "scimType")]
    scim_type: Option<String>,
    /// Why.
    detail: String,
}

/// Back-channel logout
///
/// OpenID Connect Back-Channel Logout 1.0: the provider POSTs a logout token when a user
/// signs out there. A valid token revokes the sessions it names (with a `sid`, those
/// signed in under that provider session; with only a `sub`, every session that user
/// signed in through the provider; password sessions never), reason `idp_logout`, actor
/// `idp`. Exempt from the cross-site rule: the token is the credential.
#[utoipa::path(
    post,
    path = "/oidc/backchannel-logout",
    tag = "identity provider",
    operation_id = "oidc_backchannel_logout",
    request_body(content = inline(LogoutRequest), content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The sessions the token names are revoked. `Cache-Control: no-store`."),
        (status = 400, description = "The token or the request is invalid: nothing revoked. `Cache-Control: no-store`.", body = inline(LogoutRefused)),
        (status = 503, response = ServiceUnavailable),
    )
)]
fn oidc_backchannel_logout() {}

/// Deprovision or reactivate a user
///
/// SCIM 2.0 PatchOp: `active` set to `false` revokes all the user's sessions and agents
/// (`user_deprovisioned`, actor `idp`) and refuses their logins until `active` is `true`
/// again. Other attributes are ignored. `Authorization: Bearer $SCIM_TOKEN`.
#[utoipa::path(
    patch,
    path = "/scim/v2/Users/{id}",
    tag = "identity provider",
    operation_id = "scim_patch_user",
    params(("id" = String, Path, description = "The SCIM id: the user name.")),
    request_body(content = inline(PatchOp), content_type = "application/scim+json"),
    responses(
        (status = 200, description = "The user.", body = inline(ScimUser), content_type = "application/scim+json"),
        (status = 400, description = "Not a PatchOp, or a bad `active` value.", body = inline(ScimError), content_type = "application/scim+json"),
        (status = 401, description = "No SCIM bearer token, or the wrong one.", body = inline(ScimError), content_type = "application/scim+json"),
        (status = 404, description = "No such user.", body = inline(ScimError), content_type = "application/scim+json"),
        (status = 413, description = "The body is larger than 64 KiB (answered before the token is checked).", body = BodyTooLarge),
        (status = 415, description = "The body is not `application/scim+json` or `application/json`.", body = inline(ScimError), content_type = "application/scim+json"),
        (status = 503, response = ServiceUnavailable),
    )
)]
fn scim_patch_user() {}

/// Delete a user
///
/// As a deactivation: all the user's sessions and agents revoked, their logins refused.
/// `Authorization: Bearer $SCIM_TOKEN`.
#[utoipa::path(
    delete,
    path = "/scim/v2/Users/{id}",
    tag = "identity provider",
    operation_id = "scim_delete_user",
    params(("id" = String, Path, description = "The SCIM id: the user name.")),
    responses(
        (status = 204, description = "Deactivated."),
        (status = 401, description = "No SCIM bearer token, or the wrong one.", body = inline(ScimError), content_type = "application/scim+json"),
        (status = 404, description = "No such user.", body = inline(ScimError), content_type = "application/scim+json"),
        (status = 503, response = ServiceUnavailable),
    )
)]
fn scim_delete_user() {}

pub(super) fn backchannel_logout() -> Operation {
    <__path_oidc_backchannel_logout as utoipa::Path>::operation()
}

pub(super) fn scim_patch_user_op() -> Operation {
    <__path_scim_patch_user as utoipa::Path>::operation()
}

pub(super) fn scim_delete_user_op() -> Operation {
    <__path_scim_delete_user as utoipa::Path>::operation()
}

/// A refused push (RFC 8935 section 2.3).
#[derive(ToSchema)]
struct PushRefused {
    /// `invalid_request`, `invalid_key`, `invalid_issuer` or `invalid_audience`.
    err: String,
    /// Why, in words.
    description: String,
}

/// Receive a CAEP event
///
/// RFC 8935 push of a Security Event Token from the configured transmitter
/// (`CAEP_TRANSMITTER_ISSUER`). A `session-revoked` event about a user revokes that user's
/// sessions, not their agents (`idp_logout`, actor `idp`); other events are acknowledged
/// and ignored. Exempt from the cross-site rule: the signed token is the credential.
#[utoipa::path(
    post,
    path = "/caep/events",
    tag = "identity provider",
    operation_id = "caep_events",
    request_body(content = String, content_type = "application/secevent+jwt"),
    responses(
        (status = 202, description = "Accepted."),
        (status = 400, description = "Not a valid SET for this receiver: nothing revoked.", body = inline(PushRefused)),
        (status = 503, description = "The transmitter's keys or the store could not be reached: retry."),
    )
)]
fn caep_events() {}

pub(crate) fn caep_events_op() -> Operation {
    <__path_caep_events as utoipa::Path>::operation()
}
