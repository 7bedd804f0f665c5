//! RFC 8935 push delivery of SETs, both sides, as `http` values.

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::Value;

use super::CaepError;
use crate::token::{MAX_TOKEN_BYTES, TokenError};

/// The media type of a SET in a push request.
pub const SECEVENT_CONTENT_TYPE: &str = "application/secevent+jwt";

/// The delivery of `set` to a receiver's push `endpoint` (RFC 8935 section 2): `POST`,
/// `Content-Type: application/secevent+jwt`, `Accept: application/json`, the SET as the
/// body, and `authorization` (such as `Bearer …`) when the receiver asks for one.
///
/// ```
/// use session_idp::caep::push_request;
///
/// let request = push_request("https://rp.example/caep", "h.p.s", Some("Bearer t")).unwrap();
/// assert_eq!(request.method(), "POST");
/// assert_eq!(request.headers()["content-type"], "application/secevent+jwt");
/// assert_eq!(request.body(), "h.p.s");
/// // The credential is marked sensitive (kept out of HTTP/2 header tables and logs).
/// assert!(request.headers()["authorization"].is_sensitive());
/// ```
pub fn push_request(
    endpoint: &str,
    set: &str,
    authorization: Option<&str>,
) -> Result<Request<String>, CaepError> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(endpoint)
        .header(header::CONTENT_TYPE, SECEVENT_CONTENT_TYPE)
        .header(header::ACCEPT, "application/json");
    if let Some(credential) = authorization {
        let mut value = HeaderValue::from_str(credential)
            .map_err(|_| CaepError::InvalidRequest("the authorization value is invalid".into()))?;
        value.set_sensitive(true);
        builder = builder.header(header::AUTHORIZATION, value);
    }
    builder
        .body(set.to_owned())
        .map_err(|_| CaepError::InvalidRequest("the endpoint is invalid".into()))
}

/// What a receiver answered to a push.
///
/// ```
/// use session_idp::caep::PushOutcome;
///
/// assert_eq!(PushOutcome::from_response(202, b""), PushOutcome::Accepted);
/// assert_eq!(
///     PushOutcome::from_response(400, br#"{"err":"invalid_audience","description":"not us"}"#),
///     PushOutcome::Rejected { err: "invalid_audience".into(), description: Some("not us".into()) }
/// );
/// assert_eq!(PushOutcome::from_response(503, b""), PushOutcome::Failed { status: 503 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// `202 Accepted` (or another 2xx): delivered.
    Accepted,
    /// `400` with an RFC 8935 error: the receiver refused this SET; sending it again will
    /// not help.
    Rejected {
        /// `err`: `invalid_request`, `invalid_key`, `invalid_issuer`, `invalid_audience`,
        /// `authentication_failed` or `access_denied`.
        err: String,
        /// `description`, when given.
        description: Option<String>,
    },
    /// Any other answer: worth retrying later.
    Failed {
        /// The status received.
        status: u16,
    },
}

impl PushOutcome {
    /// Reads a receiver's answer from its status and body.
    #[must_use]
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        if (200..300).contains(&status) {
            return Self::Accepted;
        }
        if status == 400
            && let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body)
            && let Some(err) = obj.get("err").and_then(Value::as_str)
        {
            return Self::Rejected {
                err: err.to_owned(),
                description: obj
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
        }
        Self::Failed { status }
    }
}

/// Why a push request carries no SET to validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The `Content-Type` is not `application/secevent+jwt`.
    #[error("the content type must be application/secevent+jwt")]
    WrongContentType,
    /// The body is empty, not UTF-8, or too large.
    #[error("the body is not a SET")]
    MalformedBody,
}

/// Takes the SET out of an RFC 8935 push request (`content_type` is its `Content-Type`).
///
/// ```
/// use session_idp::caep::{parse_push_request, PushError};
///
/// assert_eq!(parse_push_request(Some("application/secevent+jwt"), b"h.p.s"), Ok("h.p.s"));
/// assert_eq!(parse_push_request(Some("text/plain"), b"h.p.s"), Err(PushError::WrongContentType));
/// ```
pub fn parse_push_request<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<&'a str, PushError> {
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case(SECEVENT_CONTENT_TYPE)) {
        return Err(PushError::WrongContentType);
    }
    if body.is_empty() || body.len() > MAX_TOKEN_BYTES {
        return Err(PushError::MalformedBody);
    }
    std::str::from_utf8(body)
        .map(str::trim)
        .map_err(|_| PushError::MalformedBody)
}

/// The answer to a SET accepted: `202 Accepted`, no body.
///
/// ```
/// assert_eq!(session_idp::caep::push_accepted().status(), 202);
/// ```
#[must_use]
pub fn push_accepted() -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::ACCEPTED;
    response
}

/// The answer to a push refused (RFC 8935 section 2.3): `400` with
/// `{"err": …, "description": …}`, `err` chosen from the failure (`invalid_key` for
/// signature and key problems, `invalid_issuer`, `invalid_audience`, else
/// `invalid_request`). A failure of ours ([`TokenError::is_server_error`]) is no verdict
/// on the SET: `503 Service Unavailable` with `Retry-After`, so the transmitter retries.
///
/// ```
/// use session_idp::caep::push_error;
/// use session_idp::token::TokenError;
///
/// let answer = push_error(&TokenError::WrongAudience);
/// assert_eq!(answer.status(), 400);
/// assert_eq!(answer.headers()["content-type"], "application/json");
/// assert_eq!(answer.body(), r#"{"err":"invalid_audience","description":"the token's audience is wrong"}"#);
/// ```
#[must_use]
pub fn push_error(err: &(dyn std::error::Error + 'static)) -> Response<String> {
    let token_error = err.downcast_ref::<TokenError>();
    if token_error.is_some_and(TokenError::is_server_error) {
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        return response;
    }
    let code = match token_error {
        Some(
            TokenError::AlgNone
            | TokenError::AlgorithmNotAllowed(_)
            | TokenError::UnknownKey
            | TokenError::KeyMismatch
            | TokenError::BadSignature,
        ) => "invalid_key",
        Some(TokenError::WrongIssuer) => "invalid_issuer",
        Some(TokenError::WrongAudience) => "invalid_audience",
        _ => "invalid_request",
    };
    #[derive(serde::Serialize)]
    struct Body<'a> {
        err: &'a str,
        description: String,
    }
    let body = Body {
        err: code,
        description: err.to_string(),
    };
    let mut response = Response::new(serde_json::to_string(&body).unwrap_or_default());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
