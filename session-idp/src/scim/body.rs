//! SCIM response bodies: errors (RFC 7644 section 3.12) and the User resource.

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

/// The SCIM media type.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";
/// The schema URI of SCIM error bodies.
pub const SCIM_ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The schema URI of the core User resource.
pub const SCIM_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Whether a request's `Content-Type` is one a SCIM server accepts: `application/scim+json`
/// or `application/json` (parameters such as `charset` allowed).
///
/// ```
/// use session_idp::scim::is_scim_content_type;
///
/// assert!(is_scim_content_type(Some("application/scim+json; charset=utf-8")));
/// assert!(is_scim_content_type(Some("application/json")));
/// assert!(!is_scim_content_type(Some("text/plain")));
/// assert!(!is_scim_content_type(None));
/// ```
#[must_use]
pub fn is_scim_content_type(content_type: Option<&str>) -> bool {
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    media_type.is_some_and(|m| {
        m.eq_ignore_ascii_case(SCIM_CONTENT_TYPE) || m.eq_ignore_ascii_case("application/json")
    })
}

/// A SCIM error: status, optional `scimType`, detail. Its body is
/// `{"schemas": [Error], "status": "404", "scimType": …, "detail": …}` (`status` a string,
/// as RFC 7644 requires; `scimType` left out when there is none).
///
/// ```
/// use session_idp::scim::ScimError;
///
/// let err = ScimError::not_found("mallory");
/// assert_eq!(err.status(), 404);
/// assert_eq!(
///     err.to_json(),
///     r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"User mallory not found"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM error {status}: {detail}")]
pub struct ScimError {
    status: u16,
    scim_type: Option<&'static str>,
    detail: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    schemas: [&'static str; 1],
    status: String,
    #[serde(rename = "scimType", skip_serializing_if = "Option::is_none")]
    scim_type: Option<&'static str>,
    detail: &'a str,
}

impl ScimError {
    /// An error with `status`, `scimType` (one of RFC 7644's, such as `invalidSyntax`,
    /// `invalidValue`, `noTarget`, `mutability`) and `detail`.
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// `400 invalidSyntax`: the body is not a PatchOp request.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    /// `400 invalidValue`: a value of the wrong type (`active: "maybe"`).
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    /// `401`: no bearer token, or the wrong one.
    #[must_use]
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            None,
            "Authorization failure: a valid bearer token is required",
        )
    }

    /// `404`: no such user.
    #[must_use]
    pub fn not_found(id: &str) -> Self {
        Self::new(404, None, format!("User {id} not found"))
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `scimType`, if any.
    #[must_use]
    pub fn scim_type(&self) -> Option<&'static str> {
        self.scim_type
    }

    /// The detail message.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The JSON body.
    #[must_use]
    pub fn to_json(&self) -> String {
        let body = ErrorBody {
            schemas: [SCIM_ERROR_SCHEMA],
            status: self.status.to_string(),
            scim_type: self.scim_type,
            detail: &self.detail,
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// The whole answer: status, `Content-Type: application/scim+json`, the body; a 401
    /// also carries `WWW-Authenticate: Bearer`.
    #[must_use]
    pub fn into_response(self) -> Response<String> {
        let mut response = scim_response(self.status, self.to_json());
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The SCIM User resource as this crate reports it: `schemas`, `id`, `userName`, `active`,
/// and `meta.resourceType`.
///
/// ```
/// use session_idp::scim::ScimUser;
///
/// assert_eq!(
///     ScimUser::new("alice", "alice", false).to_json(),
///     r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"alice","userName":"alice","active":false,"meta":{"resourceType":"User"}}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScimUser {
    /// The SCIM id.
    pub id: String,
    /// `userName`.
    pub user_name: String,
    /// `active`.
    pub active: bool,
}

#[derive(Serialize)]
struct UserBody<'a> {
    schemas: [&'static str; 1],
    id: &'a str,
    #[serde(rename = "userName")]
    user_name: &'a str,
    active: bool,
    meta: Meta,
}

#[derive(Serialize)]
struct Meta {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
}

impl ScimUser {
    /// A user.
    pub fn new(id: impl Into<String>, user_name: impl Into<String>, active: bool) -> Self {
        Self {
            id: id.into(),
            user_name: user_name.into(),
            active,
        }
    }

    /// The JSON body.
    #[must_use]
    pub fn to_json(&self) -> String {
        let body = UserBody {
            schemas: [SCIM_USER_SCHEMA],
            id: &self.id,
            user_name: &self.user_name,
            active: self.active,
            meta: Meta {
                resource_type: "User",
            },
        };
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// The answer with `status` (200 for a `PATCH`), `Content-Type: application/scim+json`.
    #[must_use]
    pub fn into_response(self, status: u16) -> Response<String> {
        scim_response(status, self.to_json())
    }
}

fn scim_response(status: u16, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}
