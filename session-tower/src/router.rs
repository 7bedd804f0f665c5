//! The axum router built from a route table: each route of a
//! [`RouteTable`](session_selfservice::RouteTable) becomes an axum route whose handler
//! turns the request into a [`Call`] and the table's [`Reply`] into a response.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, body::Body, http::{Request, StatusCode}};
//! use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
//! use session_selfservice::SelfService;
//! use tower::ServiceExt as _;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
//! let service = SelfService::new(SessionGate::new(manager)).with_prefix("/account-api");
//! let app: Router = Router::new().merge(session_tower::routes(service.routes()));
//! let response = app
//!     .oneshot(Request::get("/account-api/sessions").body(Body::empty())?)
//!     .await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request};
use axum::http::{Response, StatusCode};
use axum::routing::{MethodFilter, MethodRouter};
use session_core::Reply;
use session_selfservice::table::MAX_BODY;
use session_selfservice::views::codes;
use session_selfservice::{Call, RouteTable, SelfService};

use crate::response::reply_response;

fn respond(reply: Reply) -> Response<Body> {
    reply_response(reply).map(Body::new)
}

/// The routes of `table` as an axum router. Each route checks its own access (the
/// session gate, or the app's check), so it needs no [`SessionLayer`](crate::SessionLayer)
/// of yours; new sessions record the client's IP when the app is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
///
/// # Panics
///
/// When two routes of `table` share a method and path (a set-up mistake), naming them;
/// check first with [`RouteTable::check_clashes`].
pub fn routes<S>(table: RouteTable) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    if let Err(clash) = table.check_clashes([]) {
        panic!("{clash}");
    }
    let table = Arc::new(table);
    let mut router = Router::new();
    for (path, entries) in table.by_path() {
        let mut methods = MethodRouter::new();
        for (index, route) in entries {
            let Ok(filter) = MethodFilter::try_from(route.method.clone()) else {
                panic!("axum cannot route the method {}", route.method);
            };
            let table = table.clone();
            methods = methods.on(filter, move |req: Request| {
                let table = table.clone();
                async move { dispatch(&table, index, req).await }
            });
        }
        router = router.route(path, methods);
    }
    router
}

/// Merges the routes of `table` into `app`, saying what to do when one of them clashes
/// with a route of the app's: where axum's `Router::merge` panics with "Overlapping method
/// route", this panics (at start-up, while the router is built) naming the path and how to
/// mount the session routes under a prefix.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::get};
/// use session_core::{KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager};
/// use session_selfservice::SelfService;
///
/// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
/// let service = SelfService::new(SessionGate::new(manager));
/// let app: Router = Router::new().route("/me", get(|| async { "the app's own /me" }));
///
/// let mount = || session_tower::mount(app.clone(), service.routes());
/// let clash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(mount));
/// let message = clash.unwrap_err().downcast::<String>().unwrap();
/// assert!(message.contains("/me") && message.contains("with_prefix"), "{message}");
///
/// // Under a prefix, both live.
/// let _app = session_tower::mount(app, service.with_prefix("/auth").routes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
///
/// When a route of `table` has the method and path of one of `app`'s, or as [`routes`].
pub fn mount<S>(app: Router<S>, table: RouteTable) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let ours = routes(table);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| app.merge(ours))) {
        Ok(router) => router,
        Err(payload) => {
            let axum_says = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("a route clash");
            panic!(
                "the session routes clash with the app's own ({axum_says}): mount them under a \
                 prefix, `SelfService::new(gate).with_prefix(\"/auth\")` or \
                 `RouteTable::with_prefix(\"/auth\")`, or rename your route"
            )
        }
    }
}

/// [`routes`] of the self-service table: `/me`, `/agent/me`, `/logout`, `/sessions`,
/// `/sessions/{id}`, `/sessions/revoke-others`, `/sessions/revoke-all`, `/agents`,
/// `/agents/{agent_id}` and the sessions page `/account/sessions` with its forms, each under
/// the service's prefix ([`SelfService::with_prefix`]). Beside routes of your own, merge
/// with [`mount`], which names a clash.
pub fn self_service<S>(service: SelfService) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes(service.routes())
}

async fn dispatch(table: &RouteTable, index: usize, req: Request) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let params = Path::<Vec<(String, String)>>::from_request_parts(&mut parts, &())
        .await
        .map(|Path(params)| params)
        .unwrap_or_default();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return respond(Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BODY_TOO_LARGE,
        ));
    };
    let call = Call {
        method: parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        params,
        headers: parts.headers,
        body,
        peer,
        session: None,
    };
    respond(table.call(index, call).await)
}
