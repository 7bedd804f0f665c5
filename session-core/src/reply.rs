//! [`Reply`]: a framework-neutral HTTP response (status, headers, body), which each adapter
//! turns into its own response type. Rejections ([`Rejection`]) convert into it.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, LOCATION};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

use crate::rejection::Rejection;

/// A response, whatever the framework.
///
/// ```
/// use session_core::Reply;
/// use session_core::http::StatusCode;
///
/// let reply = Reply::json(StatusCode::OK, &serde_json::json!({"revoked": 2}));
/// assert_eq!(reply.status, StatusCode::OK);
/// assert_eq!(reply.body, r#"{"revoked":2}"#);
/// assert_eq!(reply.header("content-type").unwrap(), "application/json");
///
/// let page = Reply::html(StatusCode::OK, "<p>hi</p>".into());
/// assert_eq!(page.header("x-frame-options").unwrap(), "DENY");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers, in order.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body.
    pub body: String,
}

/// `{"error": CODE}`: the body of every JSON failure.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// The security headers of every HTML answer: no framing (clickjacking), no referrer
/// leaking a path, and a content policy that allows the page's own inline style only.
const HTML_HEADERS: [(HeaderName, &str); 4] = [
    (
        http::header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (http::header::X_FRAME_OPTIONS, "DENY"),
    (http::header::REFERRER_POLICY, "no-referrer"),
    (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

impl Reply {
    /// A JSON reply, `Cache-Control: no-store`.
    #[must_use]
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        // Our views serialize infallibly (strings, numbers, maps with string keys).
        let body = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        Self {
            status,
            headers: vec![
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        }
    }

    /// A JSON reply from JSON text the caller made, `Cache-Control: no-store`.
    #[must_use]
    pub fn json_text(status: StatusCode, json: String) -> Self {
        let mut reply = Self::json(status, &());
        reply.body = json;
        reply
    }

    /// `{"error": code}` with `status`.
    #[must_use]
    pub fn error(status: StatusCode, code: &str) -> Self {
        Self::json(status, &ErrorBody { error: code })
    }

    /// An HTML page, `Cache-Control: no-store`, with the security headers every page
    /// carries (`Content-Security-Policy` with `frame-ancestors 'none'`,
    /// `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`).
    #[must_use]
    pub fn html(status: StatusCode, body: String) -> Self {
        let mut headers = vec![
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ];
        headers.extend(
            HTML_HEADERS
                .iter()
                .map(|(n, v)| (n.clone(), HeaderValue::from_static(v))),
        );
        Self {
            status,
            headers,
            body,
        }
    }

    /// No body.
    #[must_use]
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A 303 to `location`, which must be a local path (pass outside input through
    /// [`local_redirect`](crate::local_redirect) first); anything that is not valid header
    /// text becomes `/`.
    #[must_use]
    pub fn see_other(location: &str) -> Self {
        Self::empty(StatusCode::SEE_OTHER).with_header(
            LOCATION,
            HeaderValue::try_from(location).unwrap_or(HeaderValue::from_static("/")),
        )
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The first value of header `name` (lowercase).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, v)| v)
    }
}

impl From<Rejection> for Reply {
    fn from(rejection: Rejection) -> Self {
        Self::from(&rejection)
    }
}

impl From<&Rejection> for Reply {
    fn from(rejection: &Rejection) -> Self {
        Self {
            status: rejection.status(),
            headers: rejection.headers().collect(),
            body: String::from_utf8_lossy(&rejection.body_bytes()).into_owned(),
        }
    }
}

/// The `error` codes of JSON failures that are not session rejections (for those, see
/// [`RejectionCode`](crate::RejectionCode)).
pub mod codes {
    /// 404: an unknown id, or another user's session or agent.
    pub const NOT_FOUND: &str = "not_found";
    /// 403: an agent session tried to manage the user's sessions or agents.
    pub const USER_SESSION_REQUIRED: &str = "user_session_required";
    /// 409: a login that a "sign out everywhere" or password reset overtook.
    pub const LOGIN_SUPERSEDED: &str = "login_superseded";
    /// 403: the user is deprovisioned and cannot sign in until reactivated.
    pub const USER_DISABLED: &str = "user_disabled";
    /// 422: a body that does not parse as the route expects.
    pub const INVALID_BODY: &str = "invalid_body";
    /// 400: a query string that does not parse as the route expects.
    pub const INVALID_QUERY: &str = "invalid_query";
    /// 413: a body larger than the route reads.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
}
