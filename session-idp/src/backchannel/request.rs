//! The back-channel logout request body and the answers the specification prescribes.

use std::error::Error as StdError;

use http::{HeaderValue, Response, StatusCode, header};

use crate::token::{MAX_TOKEN_BYTES, TokenError};

/// Why a back-channel logout request carries no usable `logout_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutRequestError {
    /// The body is not `application/x-www-form-urlencoded`.
    #[error("the request body must be application/x-www-form-urlencoded")]
    WrongContentType,
    /// The body is not a valid form, or too large.
    #[error("the request body is not a valid form")]
    MalformedBody,
    /// No `logout_token` field.
    #[error("the logout_token parameter is missing")]
    MissingToken,
    /// More than one `logout_token` field.
    #[error("the logout_token parameter is repeated")]
    RepeatedToken,
}

/// Takes the `logout_token` out of a back-channel logout request: `content_type` is the
/// request's `Content-Type` (media type `application/x-www-form-urlencoded`, parameters
/// allowed), `body` its bytes.
///
/// ```
/// use session_idp::backchannel::{parse_logout_request, LogoutRequestError};
///
/// let form = Some("application/x-www-form-urlencoded");
/// assert_eq!(parse_logout_request(form, b"logout_token=a.b.c").unwrap(), "a.b.c");
/// assert_eq!(parse_logout_request(form, b"x=1"), Err(LogoutRequestError::MissingToken));
/// assert_eq!(
///     parse_logout_request(Some("application/json"), b"{}"),
///     Err(LogoutRequestError::WrongContentType)
/// );
/// ```
pub fn parse_logout_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<String, LogoutRequestError> {
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|m| m.eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return Err(LogoutRequestError::WrongContentType);
    }
    if body.len() > MAX_TOKEN_BYTES * 2 {
        return Err(LogoutRequestError::MalformedBody);
    }
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| LogoutRequestError::MalformedBody)?;
    let mut tokens = fields
        .into_iter()
        .filter(|(name, _)| name == "logout_token");
    match (tokens.next(), tokens.next()) {
        (Some((_, token)), None) if !token.is_empty() => Ok(token),
        (Some(_), None) | (None, _) => Err(LogoutRequestError::MissingToken),
        (Some(_), Some(_)) => Err(LogoutRequestError::RepeatedToken),
    }
}

/// The answer to a logout that succeeded: `200 OK`, `Cache-Control: no-store`, no body.
///
/// ```
/// let answer = session_idp::backchannel::logout_ok();
/// assert_eq!(answer.status(), 200);
/// assert_eq!(answer.headers()["cache-control"], "no-store");
/// assert_eq!(answer.body(), "");
/// ```
#[must_use]
pub fn logout_ok() -> Response<String> {
    let mut response = Response::new(String::new());
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The answer to a logout request that was refused or failed: `400 Bad Request` (the
/// specification's answer to both), `Cache-Control: no-store`, and a JSON body
/// `{"error": "invalid_request", "error_description": …}`. When the failure was ours
/// ([`TokenError::is_server_error`]: keys unreachable, replay store down) the error code
/// is `temporarily_unavailable` instead, so the provider's logs tell the two apart. The
/// description never contains the token.
///
/// ```
/// use session_idp::backchannel::{logout_error, LogoutRequestError};
///
/// let answer = logout_error(&LogoutRequestError::MissingToken);
/// assert_eq!(answer.status(), 400);
/// assert_eq!(answer.headers()["content-type"], "application/json");
/// assert_eq!(
///     answer.body(),
///     r#"{"error":"invalid_request","error_description":"the logout_token parameter is missing"}"#
/// );
/// ```
#[must_use]
pub fn logout_error(err: &(dyn StdError + 'static)) -> Response<String> {
    let ours = err
        .downcast_ref::<TokenError>()
        .is_some_and(TokenError::is_server_error);
    let code = if ours {
        "temporarily_unavailable"
    } else {
        "invalid_request"
    };
    #[derive(serde::Serialize)]
    struct Body<'a> {
        error: &'a str,
        error_description: String,
    }
    let body = Body {
        error: code,
        error_description: err.to_string(),
    };
    let mut response = Response::new(serde_json::to_string(&body).unwrap_or_default());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_shapes() {
        let form = Some("Application/X-WWW-Form-Urlencoded; charset=utf-8");
        assert_eq!(
            parse_logout_request(form, b"logout_token=a%2Eb.c&x=1").unwrap(),
            "a.b.c"
        );
        assert_eq!(
            parse_logout_request(form, b"logout_token=a&logout_token=b"),
            Err(LogoutRequestError::RepeatedToken)
        );
        assert_eq!(
            parse_logout_request(form, b"logout_token="),
            Err(LogoutRequestError::MissingToken)
        );
        assert_eq!(
            parse_logout_request(None, b"logout_token=a"),
            Err(LogoutRequestError::WrongContentType)
        );
        assert_eq!(
            parse_logout_request(form, &vec![b'a'; 40_000]),
            Err(LogoutRequestError::MalformedBody)
        );
    }

    #[test]
    fn server_failures_say_so() {
        let answer = logout_error(&TokenError::JwksUnavailable("down".into()));
        assert_eq!(answer.status(), 400);
        assert!(
            answer
                .body()
                .starts_with(r#"{"error":"temporarily_unavailable""#)
        );
    }
}
