//! Turning core's framework-neutral rejection into an `http` response.

use bytes::Bytes;
use http::Response;
use http_body_util::Full;
use session_core::Rejection;

/// The response for a rejection: its status, headers and body. Allocates no body.
///
/// `B` is any body made from [`Bytes`]: `axum::body::Body`, or `Full<Bytes>`.
#[must_use]
pub fn rejection_response<B: From<Bytes>>(rejection: &Rejection) -> Response<B> {
    let mut response = Response::new(B::from(rejection.body_bytes()));
    *response.status_mut() = rejection.status();
    let headers = response.headers_mut();
    for (name, value) in rejection.headers() {
        headers.append(name, value);
    }
    response
}

/// The response for a self-service [`Reply`](session_core::Reply).
#[must_use]
pub fn reply_response(reply: session_core::Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        headers.append(name, value);
    }
    response
}
