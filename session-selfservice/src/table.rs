//! The route table: each route declared once (method, path, who may call it, the
//! operation, its description), from which `session-tower` builds the axum router,
//! `session-actix` the actix-web resources, and [`openapi`](crate::openapi) the document.
//!
//! An adapter turns its framework's request into a [`Call`] and calls
//! [`RouteTable::call`]; the table applies the route's [`Access`] (the session gate, or the
//! app's own check) and runs the operation, which answers with a [`Reply`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use session_core::gate::{Admission, GateCheck, GateMode, RequestHead};
use session_core::{ClientInfo, Reply, Session, SessionGate, SessionKind};

use crate::views::codes;

/// The largest request body a table route reads; a longer one is answered 413.
pub const MAX_BODY: usize = 64 * 1024;

/// An operation's answer, later.
pub type OpFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What a route runs once its access is granted.
pub type Operation = Arc<dyn Fn(Call) -> OpFuture + Send + Sync>;

/// An app's own check for a route (an admin token, a SCIM token): `Err(reply)` refuses.
pub type Guard = Arc<dyn Fn(&Call) -> Result<(), Reply> + Send + Sync>;

/// Who may call a route.
#[derive(Clone)]
#[non_exhaustive]
pub enum Access {
    /// Anyone; no session is looked at.
    Public,
    /// Anyone, but a state-changing request from another site is refused (login CSRF);
    /// the session, if any, is handed to the operation.
    Form,
    /// A valid session: a user's through the cookie, an agent's through the bearer header.
    Session,
    /// A user's own session: an agent gets 403 `user_session_required`.
    UserSession,
    /// The app's own check (exempt from the cross-site rule: such routes authenticate by
    /// a bearer token, not an ambient cookie).
    Guarded(Guard),
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "Public",
            Self::Form => "Form",
            Self::Session => "Session",
            Self::UserSession => "UserSession",
            Self::Guarded(_) => "Guarded",
        })
    }
}

/// One route.
#[derive(Clone)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path, with `{name}` for a path parameter (both axum's and actix's syntax).
    pub path: String,
    /// Who may call it.
    pub access: Access,
    /// A stable name (the OpenAPI `operationId`).
    pub operation_id: &'static str,
    /// Whether an HTML page answers (a browser navigation), as opposed to JSON.
    pub html: bool,
    /// The OpenAPI description of the operation, if it is part of the API.
    #[cfg(feature = "openapi")]
    pub openapi: Option<fn() -> utoipa::openapi::path::Operation>,
    op: Operation,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .field("operation_id", &self.operation_id)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// A route running `op`.
    pub fn new<F, Fut>(
        method: Method,
        path: impl Into<String>,
        access: Access,
        operation_id: &'static str,
        op: F,
    ) -> Self
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        Self {
            method,
            path: path.into(),
            access,
            operation_id,
            html: false,
            #[cfg(feature = "openapi")]
            openapi: None,
            op: Arc::new(move |call| Box::pin(op(call))),
        }
    }

    /// Marks the route as an HTML page (left out of the OpenAPI document).
    #[must_use]
    pub fn html(mut self) -> Self {
        self.html = true;
        self
    }

    /// Attaches the OpenAPI description of the operation.
    #[cfg(feature = "openapi")]
    #[must_use]
    pub fn documented(mut self, operation: fn() -> utoipa::openapi::path::Operation) -> Self {
        self.openapi = Some(operation);
        self
    }
}

/// A request as a table operation sees it, whatever the framework.
#[derive(Clone)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// The path and query, as requested.
    pub path_and_query: String,
    /// The path parameters, by name.
    pub params: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (at most [`MAX_BODY`] bytes).
    pub body: Bytes,
    /// The client's IP address, when the server knows it.
    pub peer: Option<IpAddr>,
    /// The session, once the route's access granted it.
    pub session: Option<Session>,
}

impl fmt::Debug for Call {
    // Not the headers or body: they may hold tokens and passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("method", &self.method)
            .field("params", &self.params)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// A call with no body, headers or parameters (tests, and adapters filling it in).
    #[must_use]
    pub fn new(method: Method, path_and_query: impl Into<String>) -> Self {
        Self {
            method,
            path_and_query: path_and_query.into(),
            params: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            peer: None,
            session: None,
        }
    }

    /// A path parameter.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query string, without the `?`.
    #[must_use]
    pub fn query(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or("", |(_, query)| query)
    }

    /// The query parsed as `T`.
    ///
    /// # Errors
    ///
    /// 400 `invalid_query` when it does not parse.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Reply> {
        serde_urlencoded::from_str(self.query())
            .map_err(|_| Reply::error(StatusCode::BAD_REQUEST, codes::INVALID_QUERY))
    }

    /// The body as JSON (whatever the `Content-Type`, an empty body as `null`).
    ///
    /// # Errors
    ///
    /// 422 `invalid_body` when it does not parse as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Reply> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body)
            .map_err(|_| Reply::error(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_BODY))
    }

    /// The body as a form (`application/x-www-form-urlencoded`).
    ///
    /// # Errors
    ///
    /// 422 `invalid_body` when it does not parse as `T`.
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, Reply> {
        serde_urlencoded::from_bytes(&self.body)
            .map_err(|_| Reply::error(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_BODY))
    }

    /// The body as JSON when `Content-Type` says so, else as a form.
    ///
    /// # Errors
    ///
    /// 422 `invalid_body` when it does not parse as `T`.
    pub fn json_or_form<T: DeserializeOwned>(&self) -> Result<T, Reply> {
        let json = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|c| {
                let c = c.as_bytes();
                c.starts_with(b"application/json") || c.starts_with(b"application/scim+json")
            });
        if json { self.json() } else { self.form() }
    }

    /// The client details a new session records: `User-Agent` and the peer's IP.
    #[must_use]
    pub fn client_info(&self) -> ClientInfo {
        ClientInfo::from_request(
            self.headers
                .get(http::header::USER_AGENT)
                .map(http::HeaderValue::as_bytes),
            self.peer,
        )
    }

    /// The session (routes whose access grants one always have it).
    ///
    /// # Panics
    ///
    /// Never for a route with [`Access::Session`] or [`Access::UserSession`]: the table
    /// fills it in before the operation runs.
    #[must_use]
    pub fn session(&self) -> &Session {
        self.session
            .as_ref()
            .expect("the route's access put a session in the call")
    }
}

impl RequestHead for Call {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.headers
            .get_all(name)
            .into_iter()
            .map(http::HeaderValue::as_bytes)
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn client_ip(&self) -> Option<IpAddr> {
        self.peer
    }

    fn path_and_query(&self) -> &str {
        &self.path_and_query
    }
}

/// A set of routes over one session gate.
#[derive(Clone)]
pub struct RouteTable {
    gate: SessionGate,
    routes: Vec<Route>,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteTable")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

/// Two routes with the same method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteClash {
    /// The method.
    pub method: Method,
    /// The path.
    pub path: String,
}

impl std::error::Error for RouteClash {}

impl fmt::Display for RouteClash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "two routes for {} {}: mount the session routes under a prefix \
             (`with_prefix(\"/account\")`) or rename your own route",
            self.method, self.path
        )
    }
}

impl RouteTable {
    /// An empty table whose session routes are checked by `gate`.
    #[must_use]
    pub fn new(gate: SessionGate) -> Self {
        Self {
            gate,
            routes: Vec::new(),
        }
    }

    /// The gate.
    #[must_use]
    pub fn gate(&self) -> &SessionGate {
        &self.gate
    }

    /// Adds a route.
    #[must_use]
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds every route of `other` (whose gate must check the same sessions).
    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        self.routes.extend(other.routes);
        self
    }

    /// Puts every path under `prefix` (`/auth`: `/sessions` becomes `/auth/sessions`).
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        let prefix = prefix.trim_end_matches('/');
        for route in &mut self.routes {
            route.path = format!("{prefix}{}", route.path);
        }
        self
    }

    /// Attaches OpenAPI descriptions: `describe(operation_id)` for every route that has
    /// none yet.
    #[cfg(feature = "openapi")]
    #[must_use]
    pub fn documented_with(
        mut self,
        describe: impl Fn(&str) -> Option<fn() -> utoipa::openapi::path::Operation>,
    ) -> Self {
        for route in &mut self.routes {
            if route.openapi.is_none() {
                route.openapi = describe(route.operation_id);
            }
        }
        self
    }

    /// The routes, in the order they were added.
    #[must_use]
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The routes grouped by path (frameworks mount one resource per path), with each
    /// route's index for [`RouteTable::call`].
    #[must_use]
    pub fn by_path(&self) -> BTreeMap<&str, Vec<(usize, &Route)>> {
        let mut paths: BTreeMap<&str, Vec<(usize, &Route)>> = BTreeMap::new();
        for (i, route) in self.routes.iter().enumerate() {
            paths
                .entry(route.path.as_str())
                .or_default()
                .push((i, route));
        }
        paths
    }

    /// Checks that no two routes share a method and path, here or with `others` (an
    /// app's own routes).
    ///
    /// # Errors
    ///
    /// The first clash, named.
    pub fn check_clashes<'a>(
        &'a self,
        others: impl IntoIterator<Item = (&'a Method, &'a str)>,
    ) -> Result<(), RouteClash> {
        let mut seen = std::collections::HashSet::new();
        let mine = self.routes.iter().map(|r| (&r.method, r.path.as_str()));
        for (method, path) in mine.chain(others) {
            if !seen.insert((method.clone(), path.to_owned())) {
                return Err(RouteClash {
                    method: method.clone(),
                    path: path.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Runs route `index` for `call`: its access first (the gate, or the app's check),
    /// then its operation. An index out of range is a 404.
    pub async fn call(&self, index: usize, mut call: Call) -> Reply {
        let Some(route) = self.routes.get(index) else {
            return Reply::error(StatusCode::NOT_FOUND, codes::NOT_FOUND);
        };
        let mode = match &route.access {
            Access::Public => return (route.op)(call).await,
            Access::Guarded(guard) => match guard(&call) {
                Ok(()) => return (route.op)(call).await,
                Err(reply) => return reply,
            },
            Access::Form => GateMode::REQUIRED.optional().guarding_forms(),
            Access::Session | Access::UserSession => GateMode::REQUIRED,
        };
        let admission = match self.gate.check(&call, mode) {
            GateCheck::Decided(admission) => admission,
            GateCheck::NeedsLoad(pending) => self.gate.finish(pending).await,
        };
        match admission {
            Admission::Admit(session) => {
                if matches!(route.access, Access::UserSession)
                    && session.kind() == SessionKind::Agent
                {
                    return Reply::error(StatusCode::FORBIDDEN, codes::USER_SESSION_REQUIRED);
                }
                call.session = Some(session);
            }
            Admission::AdmitWithout(_) => {}
            Admission::Refuse(rejection) => return rejection.into(),
        }
        (route.op)(call).await
    }
}
