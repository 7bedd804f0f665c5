//! What every actix-web app does with sessions besides checking them, answering with
//! actix's own types: sign in (setting the cookie), sign out (clearing it), sign out
//! everywhere. The decisions are core's ([`SessionGate::sign_in`] and friends); these only
//! translate, so no app meets two versions of the `http` crate.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{App, HttpRequest, HttpResponse, test, web};
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, UserId};
//! use session_actix::{SessionCheck, ValidSession};
//!
//! #[derive(serde::Deserialize)]
//! struct Login { username: String, password: String, return_to: Option<String> }
//!
//! async fn login(gate: web::Data<SessionGate>, req: HttpRequest, current: Option<ValidSession>, form: web::Form<Login>) -> HttpResponse {
//!     let user = UserId::from(form.username.as_str());
//!     let epoch = match gate.manager().login_epoch(&user).await {
//!         Ok(epoch) => epoch,
//!         Err(e) => return session_actix::respond(gate.error_reply(&e)),
//!     };
//!     if form.password != "correct horse" {
//!         return HttpResponse::Unauthorized().finish();
//!     }
//!     let current = current.map(|ValidSession(s)| s);
//!     session_actix::sign_in(&gate, epoch, user, session_actix::client_info(&req), form.return_to.as_deref(), current.as_ref()).await
//! }
//!
//! async fn logout(gate: web::Data<SessionGate>, ValidSession(s): ValidSession) -> HttpResponse {
//!     session_actix::sign_out(&gate, &s, "/login").await
//! }
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
//! let gate = SessionGate::new(manager);
//! let app = test::init_service(
//!     App::new()
//!         .app_data(web::Data::new(gate.clone()))
//!         // Public: the login form (its POST is held to the cross-site rule: login CSRF).
//!         .service(web::resource("/login").wrap(SessionCheck::new(gate.clone()).optional().guard_forms()).post(login))
//!         // Behind a session.
//!         .service(web::resource("/logout").wrap(SessionCheck::new(gate)).post(logout)),
//! )
//! .await;
//! let req = test::TestRequest::post()
//!     .uri("/login")
//!     .set_form([("username", "alice"), ("password", "correct horse"), ("return_to", "/home")])
//!     .to_request();
//! let response = test::call_service(&app, req).await;
//! assert_eq!(response.status(), 303);
//! assert_eq!(response.headers().get("location").unwrap(), "/home");
//! assert!(response.headers().get("set-cookie").unwrap().to_str()?.starts_with("__Host-session="));
//! # Ok(())
//! # }
//! ```

use actix_web::http::header::{HeaderName, HeaderValue, SET_COOKIE};
use actix_web::{HttpRequest, HttpResponse};
use session_core::{ClientInfo, LoginEpoch, Reply, Session, SessionGate, UserId};

use crate::response::reply_response;

/// The client details a new session records: `User-Agent` and the peer's IP.
#[must_use]
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo::from_request(
        req.headers().get("user-agent").map(|v| v.as_bytes()),
        req.peer_addr().map(|a| a.ip()),
    )
}

/// A core [`Reply`] as an actix response.
#[must_use]
pub fn respond(reply: Reply) -> HttpResponse {
    reply_response(reply)
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
) -> HttpResponse {
    respond(
        gate.sign_in(epoch, user, client, return_to, replacing)
            .await,
    )
}

/// Signs this session out: 303 to `to` with the cookie cleared. See
/// [`SessionGate::sign_out`].
pub async fn sign_out(gate: &SessionGate, session: &Session, to: &str) -> HttpResponse {
    respond(gate.sign_out(session, to).await)
}

/// Signs the user out everywhere (every session and agent): 303 to `to` with the cookie
/// cleared. See [`SessionGate::sign_out_everywhere`].
pub async fn sign_out_everywhere(gate: &SessionGate, session: &Session, to: &str) -> HttpResponse {
    respond(gate.sign_out_everywhere(session, to).await)
}

/// The `Set-Cookie` header that deletes the session cookie, in actix's types, for an
/// answer of the app's own: `HttpResponse::Ok().insert_header(clear_cookie(&gate))`.
#[must_use]
pub fn clear_cookie(gate: &SessionGate) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_bytes(gate.clear_cookie().as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    (SET_COOKIE, value)
}

/// The `Set-Cookie` header delivering a new session's token, in actix's types (for apps
/// that issue sessions themselves rather than through [`sign_in`]).
#[must_use]
pub fn session_cookie(
    gate: &SessionGate,
    token: &session_core::SessionToken,
) -> (HeaderName, HeaderValue) {
    let value = HeaderValue::from_bytes(gate.session_cookie(token).as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    (SET_COOKIE, value)
}
