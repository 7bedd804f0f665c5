//! The actix-web resources built from a route table: each path of a
//! [`RouteTable`](session_selfservice::RouteTable) becomes one resource whose handlers turn
//! the request into a [`Call`] and the table's [`Reply`] into a response.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{App, test};
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
//! use session_selfservice::SelfService;
//!
//! # #[actix_web::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
//! let service = SelfService::new(SessionGate::new(manager)).with_prefix("/account-api");
//! let app = test::init_service(App::new().configure(session_actix::routes(service.routes()))).await;
//! let response = test::call_service(&app, test::TestRequest::get().uri("/account-api/sessions").to_request()).await;
//! assert_eq!(response.status(), 401);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use actix_web::web::{self, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use session_core::Reply;
use session_core::http::{self as http1, HeaderMap};
use session_selfservice::table::MAX_BODY;
use session_selfservice::views::codes;
use session_selfservice::{Call, RouteTable, SelfService};

use crate::response::reply_response;

/// The routes of `table`, to register with `App::configure` (or `Scope::configure`).
/// Each route checks its own access (the session gate, or the app's check), so it needs no
/// [`SessionCheck`](crate::SessionCheck) of yours.
///
/// # Panics
///
/// When two routes of `table` share a method and path (a set-up mistake), naming them;
/// check first with [`RouteTable::check_clashes`].
pub fn routes(table: RouteTable) -> impl FnOnce(&mut web::ServiceConfig) {
    if let Err(clash) = table.check_clashes([]) {
        panic!("{clash}");
    }
    move |cfg| {
        let table = Arc::new(table);
        for (path, entries) in table.by_path() {
            let mut resource = web::resource(path);
            for (index, route) in entries {
                let Ok(method) =
                    actix_web::http::Method::from_bytes(route.method.as_str().as_bytes())
                else {
                    continue;
                };
                let table = table.clone();
                resource = resource.route(web::method(method).to(
                    move |req: HttpRequest, payload: Payload| {
                        let table = table.clone();
                        async move { dispatch(&table, index, req, payload).await }
                    },
                ));
            }
            cfg.service(resource);
        }
    }
}

/// [`routes`] of the self-service table: `/me`, `/agent/me`, `/logout`, `/sessions`,
/// `/sessions/{id}`, `/sessions/revoke-others`, `/sessions/revoke-all`, `/agents`,
/// `/agents/{agent_id}` and the sessions page `/account/sessions` with its forms, each under
/// the service's prefix ([`SelfService::with_prefix`]). actix serves a path from the first
/// resource registered for it, so a route of yours at one of these paths, registered
/// earlier, hides ours without a word: mount them under a prefix (`with_prefix("/auth")`).
pub fn self_service(service: SelfService) -> impl FnOnce(&mut web::ServiceConfig) {
    routes(service.routes())
}

async fn read_body(mut payload: Payload) -> Option<bytes::Bytes> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > MAX_BODY {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body.freeze())
}

async fn dispatch(
    table: &RouteTable,
    index: usize,
    req: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    let Some(body) = read_body(payload).await else {
        return reply_response(Reply::error(
            http1::StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
        ));
    };
    let mut headers = HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            http1::HeaderName::from_bytes(name.as_str().as_bytes()),
            http1::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    let call = Call {
        method: http1::Method::from_bytes(req.method().as_str().as_bytes())
            .unwrap_or(http1::Method::GET),
        path_and_query: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        params: req
            .match_info()
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
        headers,
        body,
        peer: req.peer_addr().map(|a| a.ip()),
        session: None,
    };
    reply_response(table.call(index, call).await)
}
