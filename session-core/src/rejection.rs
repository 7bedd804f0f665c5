//! The framework-neutral answer to a request whose session is not accepted: status,
//! headers and body, which each adapter copies into its own response type.
//!
//! | case | status | headers | body |
//! | --- | --- | --- | --- |
//! | cookie session refused | 401 | `Cache-Control: no-store`, the deleting `Set-Cookie` | `{"error": CODE}` |
//! | bearer session refused | 401 | `Cache-Control: no-store`, `WWW-Authenticate: Bearer error="invalid_token"` | `{"error": CODE}` |
//! | no token | 401 | `Cache-Control: no-store`, `WWW-Authenticate: Bearer` | `{"error": "session_missing"}` |
//! | HTML navigation refused | 303 to the login page with `return_to` | as above, no body | empty |
//! | store unavailable | 503 | `Cache-Control: no-store`, `Retry-After` (never a `Set-Cookie`) | `{"error": "session_store_unavailable"}` |
//! | state change from another site | 403 | `Cache-Control: no-store` | `{"error": "cross_site_request"}` |

use http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderName, LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE,
};
use http::{HeaderValue, StatusCode};

/// The machine-readable reason in a rejection's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionCode {
    /// No session token came with the request.
    SessionMissing,
    /// The token is malformed, forged or unknown.
    SessionInvalid,
    /// The session is past its lifetime or idle timeout.
    SessionExpired,
    /// The session was revoked.
    SessionRevoked,
    /// The store could not answer (503).
    StoreUnavailable,
    /// A state-changing request with the session cookie came from another site (403).
    CrossSiteRequest,
}

impl RejectionCode {
    /// Every code.
    pub const ALL: &'static [Self] = &[
        Self::SessionMissing,
        Self::SessionInvalid,
        Self::SessionExpired,
        Self::SessionRevoked,
        Self::StoreUnavailable,
        Self::CrossSiteRequest,
    ];

    /// The status a JSON rejection with this code has: 401, 503 for
    /// [`RejectionCode::StoreUnavailable`], 403 for [`RejectionCode::CrossSiteRequest`]. (A
    /// refused HTML navigation is a 303 instead.)
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::SessionMissing
            | Self::SessionInvalid
            | Self::SessionExpired
            | Self::SessionRevoked => StatusCode::UNAUTHORIZED,
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::CrossSiteRequest => StatusCode::FORBIDDEN,
        }
    }

    /// The code's wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SessionMissing => "session_missing",
            Self::SessionInvalid => "session_invalid",
            Self::SessionExpired => "session_expired",
            Self::SessionRevoked => "session_revoked",
            Self::StoreUnavailable => "session_store_unavailable",
            Self::CrossSiteRequest => "cross_site_request",
        }
    }

    /// The JSON body `{"error":"…"}`.
    #[must_use]
    pub const fn json_body(self) -> &'static str {
        match self {
            Self::SessionMissing => r#"{"error":"session_missing"}"#,
            Self::SessionInvalid => r#"{"error":"session_invalid"}"#,
            Self::SessionExpired => r#"{"error":"session_expired"}"#,
            Self::SessionRevoked => r#"{"error":"session_revoked"}"#,
            Self::StoreUnavailable => r#"{"error":"session_store_unavailable"}"#,
            Self::CrossSiteRequest => r#"{"error":"cross_site_request"}"#,
        }
    }
}

/// A rejection, ready to be turned into any framework's response.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) code: RejectionCode,
    pub(crate) set_cookie: Option<HeaderValue>,
    pub(crate) www_authenticate: Option<HeaderValue>,
    pub(crate) location: Option<HeaderValue>,
    pub(crate) retry_after: Option<HeaderValue>,
    /// A body of the app's own ([`SessionGate::with_rejection_body`]), with its content
    /// type; `None`: the JSON `{"error": CODE}`.
    ///
    /// [`SessionGate::with_rejection_body`]: crate::SessionGate::with_rejection_body
    pub(crate) custom: Option<std::sync::Arc<(HeaderValue, bytes::Bytes)>>,
}

/// How an app shapes the body of the gate's rejections; see
/// [`SessionGate::with_rejection_body`](crate::SessionGate::with_rejection_body).
pub type RejectionBody =
    std::sync::Arc<dyn Fn(&Rejection) -> Option<(HeaderValue, bytes::Bytes)> + Send + Sync>;

impl Rejection {
    /// The status: 401, 303 (HTML navigation to the login page) or 503.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Why.
    #[must_use]
    pub fn code(&self) -> RejectionCode {
        self.code
    }

    /// Whether the rejection deletes the session cookie.
    #[must_use]
    pub fn clears_cookie(&self) -> bool {
        self.set_cookie.is_some()
    }

    /// The response headers, `Content-Type` included when there is a body.
    pub fn headers(&self) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
        let json = match &self.custom {
            Some(custom) => Some((CONTENT_TYPE, custom.0.clone())),
            None => (!self.body().is_empty())
                .then(|| (CONTENT_TYPE, HeaderValue::from_static("application/json"))),
        };
        [
            Some((CACHE_CONTROL, HeaderValue::from_static("no-store"))),
            json,
            self.set_cookie.clone().map(|v| (SET_COOKIE, v)),
            self.www_authenticate.clone().map(|v| (WWW_AUTHENTICATE, v)),
            self.location.clone().map(|v| (LOCATION, v)),
            self.retry_after.clone().map(|v| (RETRY_AFTER, v)),
        ]
        .into_iter()
        .flatten()
    }

    /// The body as bytes: the app's own body when it set one, else [`Rejection::body`].
    /// Cheap: a static slice, or a reference-counted buffer.
    #[must_use]
    pub fn body_bytes(&self) -> bytes::Bytes {
        match &self.custom {
            Some(custom) => custom.1.clone(),
            None => bytes::Bytes::from_static(self.body().as_bytes()),
        }
    }

    /// The default body: `{"error":"…"}`, or empty for a redirect.
    #[must_use]
    pub fn body(&self) -> &'static str {
        if self.location.is_some() {
            ""
        } else {
            self.code.json_body()
        }
    }
}
