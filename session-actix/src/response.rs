//! Turning core's framework-neutral answers into actix-web responses.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use session_core::{Rejection, Reply};

fn build<'a>(
    status: u16,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::with_body(status, body).map_into_boxed_body();
    let map = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            actix_web::http::header::HeaderName::from_bytes(name.as_bytes()),
            actix_web::http::header::HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    response
}

/// The response for a rejection: status, headers and body, as core words them.
#[must_use]
pub fn rejection_response(rejection: &Rejection) -> HttpResponse {
    let headers: Vec<_> = rejection.headers().collect();
    build(
        rejection.status().as_u16(),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        rejection.body_bytes(),
    )
}

/// The response for a self-service [`Reply`].
#[must_use]
pub fn reply_response(reply: Reply) -> HttpResponse {
    build(
        reply.status.as_u16(),
        reply
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
        reply.body,
    )
}
