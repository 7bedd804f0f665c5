//! What every axum app does with sessions besides checking them, answering with axum's
//! own response type: sign in (setting the cookie), sign out (clearing it), sign out
//! everywhere. The decisions are core's ([`SessionGate::sign_in`] and friends); these
//! only translate.
//!
//! ```
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//! use axum::{Form, Router, extract::State, http::{HeaderMap, Request, StatusCode}, body::Body, routing::post};
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, UserId};
//! use session_tower::{SessionLayer, ValidSession};
//! use tower::ServiceExt as _;
//!
//! #[derive(serde::Deserialize)]
//! struct Login { username: String, password: String, return_to: Option<String> }
//!
//! async fn login(State(gate): State<SessionGate>, headers: HeaderMap, current: Option<ValidSession>, Form(form): Form<Login>) -> axum::response::Response {
//!     let user = UserId::from(form.username.as_str());
//!     let epoch = match gate.manager().login_epoch(&user).await {
//!         Ok(epoch) => epoch,
//!         Err(e) => return session_tower::respond(gate.error_reply(&e)),
//!     };
//!     if form.password != "correct horse" {
//!         return StatusCode::UNAUTHORIZED.into_response();
//!     }
//!     let client = session_tower::client_info(&headers, None);
//!     let current = current.map(|ValidSession(s)| s);
//!     session_tower::sign_in(&gate, epoch, user, client, form.return_to.as_deref(), current.as_ref()).await
//! }
//!
//! async fn logout(State(gate): State<SessionGate>, ValidSession(s): ValidSession) -> axum::response::Response {
//!     session_tower::sign_out(&gate, &s, "/login").await
//! }
//! # use axum::response::IntoResponse as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
//! let gate = SessionGate::new(manager);
//! let app = Router::new()
//!     // Public: the login form (its POST is held to the cross-site rule: login CSRF).
//!     .route("/login", post(login))
//!     .layer(SessionLayer::new(gate.clone()).optional().guard_forms())
//!     // Behind a session: everything merged after this line's layer.
//!     .merge(Router::new().route("/logout", post(logout)).layer(SessionLayer::new(gate.clone())))
//!     .with_state(gate);
//! let response = app
//!     .oneshot(
//!         Request::post("/login")
//!             .header("content-type", "application/x-www-form-urlencoded")
//!             .body(Body::from("username=alice&password=correct+horse&return_to=%2Fhome"))?,
//!     )
//!     .await?;
//! assert_eq!(response.status(), StatusCode::SEE_OTHER);
//! assert_eq!(response.headers()["location"], "/home");
//! assert!(response.headers()["set-cookie"].to_str()?.starts_with("__Host-session="));
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, header::USER_AGENT};
use session_core::{ClientInfo, LoginEpoch, Reply, Session, SessionGate, UserId};

use crate::response::reply_response;

/// The client details a new session records: `User-Agent` and the peer's IP (known when
/// the app is served with `into_make_service_with_connect_info::<SocketAddr>()`: take it
/// with the `ConnectInfo<SocketAddr>` extractor).
#[must_use]
pub fn client_info(headers: &HeaderMap, peer: Option<SocketAddr>) -> ClientInfo {
    ClientInfo::from_request(
        headers.get(USER_AGENT).map(|v| v.as_bytes()),
        peer.map(|addr| addr.ip()),
    )
}

/// A core [`Reply`] as an axum response.
#[must_use]
pub fn respond(reply: Reply) -> Response<Body> {
    reply_response(reply).map(Body::new)
}

/// Signs `user` in once the app has checked the credentials: see [`SessionGate::sign_in`].
/// 303 to `return_to` (local paths only, else `/`) with the session cookie; the session
/// the request came with (`replacing`) is revoked.
pub async fn sign_in(
    gate: &SessionGate,
    epoch: LoginEpoch,
    user: UserId,
    client: ClientInfo,
    return_to: Option<&str>,
    replacing: Option<&Session>,
) -> Response<Body> {
    respond(
        gate.sign_in(epoch, user, client, return_to, replacing)
            .await,
    )
}

/// Signs this session out: 303 to `to` with the cookie cleared. See
/// [`SessionGate::sign_out`].
pub async fn sign_out(gate: &SessionGate, session: &Session, to: &str) -> Response<Body> {
    respond(gate.sign_out(session, to).await)
}

/// Signs the user out everywhere (every session and agent): 303 to `to` with the cookie
/// cleared. See [`SessionGate::sign_out_everywhere`].
pub async fn sign_out_everywhere(
    gate: &SessionGate,
    session: &Session,
    to: &str,
) -> Response<Body> {
    respond(gate.sign_out_everywhere(session, to).await)
}

/// The `Set-Cookie` header value that deletes the session cookie, for an answer of the
/// app's own.
#[must_use]
pub fn clear_cookie(gate: &SessionGate) -> HeaderValue {
    gate.clear_cookie()
}
