//! A browser over reqwest that keeps the session cookie itself, its answers read whole,
//! and the log of every exchange for checks over a whole walk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::cookie::{COOKIE_NAME, SetCookie, is_session_cookie};

/// The `Accept` header a browser sends when it navigates to a page.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Whether [`Browser::send`] logs every answer to [`EXCHANGES`].
static RECORDING: AtomicBool = AtomicBool::new(false);

/// The answers logged while [`RECORDING`], in the order they arrived.
static EXCHANGES: Mutex<Vec<Exchange>> = Mutex::new(Vec::new());

/// One request and its whole answer, as logged while [`record_exchanges`] is on.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request's method.
    pub method: Method,
    /// The request's URL.
    pub url: reqwest::Url,
    /// The answer.
    pub reply: Reply,
}

impl Exchange {
    /// `METHOD /path?query`, for messages.
    pub fn request_line(&self) -> String {
        match self.url.query() {
            Some(query) => format!("{} {}?{query}", self.method, self.url.path()),
            None => format!("{} {}", self.method, self.url.path()),
        }
    }
}

/// Turns the log of every answer any [`Browser`] of this process receives on or off.
/// Turning it off keeps what was logged.
pub fn record_exchanges(on: bool) {
    RECORDING.store(on, Ordering::SeqCst);
}

/// Takes the logged exchanges with the app at `base_url` ([`App::base_url`](crate::App::base_url)) out of the log,
/// in order, leaving those with other apps (tests running in parallel) in place.
pub fn take_exchanges(base_url: &str) -> Vec<Exchange> {
    let base = reqwest::Url::parse(base_url).expect("a base URL");
    let mut log = EXCHANGES.lock().unwrap_or_else(PoisonError::into_inner);
    let (mine, others) = log
        .drain(..)
        .partition(|e: &Exchange| e.url.origin() == base.origin());
    *log = others;
    mine
}

/// A browser: one user agent with its own session cookie jar.
///
/// Redirects are not followed and reqwest's cookie store is not used; each answer's
/// `Set-Cookie` for [`COOKIE_NAME`] updates [`Browser::token`] (`Max-Age=0` or an empty
/// value deletes it), and every request carries `Cookie: session=TOKEN` while there is one.
#[derive(Debug, Clone)]
pub struct Browser {
    client: reqwest::Client,
    base_url: String,
    user_agent: String,
    token: Option<String>,
    /// The name the app gave the session cookie (it is sent back under it).
    cookie_name: String,
}

impl Browser {
    /// A browser for the app at `base_url` sending `user_agent`, with an empty jar.
    ///
    /// # Panics
    ///
    /// When reqwest cannot build a client.
    pub fn new(base_url: &str, user_agent: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            // Servers drop idle keep-alive connections (actix after 5 s); a request sent
            // on one just then fails. Reusing only fresh ones keeps slow tests steady.
            .pool_idle_timeout(Duration::from_secs(1))
            .build()
            .expect("a reqwest client");
        Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            user_agent: user_agent.to_owned(),
            token: None,
            cookie_name: COOKIE_NAME.to_owned(),
        }
    }

    /// This browser, jar and all, talking to the app at `base_url` (the same app restarted
    /// on another port).
    #[must_use]
    pub fn pointed_at(&self, base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            ..self.clone()
        }
    }

    /// The `User-Agent` this browser sends.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The session cookie's value in the jar.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Puts `token` in the jar (or empties it), e.g. to replay a cookie the app deleted.
    pub fn set_token(&mut self, token: Option<&str>) {
        self.token = token.map(str::to_owned);
    }

    /// A request to `path` carrying this browser's `User-Agent` and session cookie.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.bare_request(method, path);
        match &self.token {
            Some(token) => builder.header(header::COOKIE, format!("{}={token}", self.cookie_name)),
            None => builder,
        }
    }

    /// A request to `path` carrying this browser's `User-Agent` and no cookie, for
    /// tests that write the `Cookie` header themselves.
    pub fn bare_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
            .header(header::USER_AGENT, &self.user_agent)
    }

    /// Sends `request`, reads the whole answer and applies its session `Set-Cookie`; logs
    /// the exchange while [`record_exchanges`] is on.
    ///
    /// # Panics
    ///
    /// When the request fails at the HTTP level (connection refused or reset, timeout).
    pub async fn send(&mut self, request: RequestBuilder) -> Reply {
        let (client, request) = request.build_split();
        let request = request.expect("a well-formed request");
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = client.execute(request).await.expect("the app answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the whole body").to_vec();
        let reply = Reply {
            status,
            headers,
            body,
        };
        if RECORDING.load(Ordering::SeqCst) {
            EXCHANGES
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Exchange {
                    method,
                    url,
                    reply: reply.clone(),
                });
        }
        for cookie in reply.set_cookies() {
            if is_session_cookie(&cookie.name) {
                self.cookie_name.clone_from(&cookie.name);
                if cookie.value.is_empty() || cookie.attr("max-age") == Some("0") {
                    self.token = None;
                } else {
                    self.token = Some(cookie.value.clone());
                }
            }
        }
        reply
    }

    /// `GET path` as an API call (`Accept: application/json`).
    pub async fn get(&mut self, path: &str) -> Reply {
        let request = self
            .request(Method::GET, path)
            .header(header::ACCEPT, "application/json");
        self.send(request).await
    }

    /// `GET path` as a browser navigation (`Accept: text/html,…`).
    pub async fn navigate(&mut self, path: &str) -> Reply {
        let request = self
            .request(Method::GET, path)
            .header(header::ACCEPT, BROWSER_ACCEPT);
        self.send(request).await
    }

    /// `POST path` with an empty body.
    pub async fn post(&mut self, path: &str) -> Reply {
        let request = self.request(Method::POST, path);
        self.send(request).await
    }

    /// `POST path` with an `application/x-www-form-urlencoded` body.
    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Reply {
        let request = self.request(Method::POST, path).form(form);
        self.send(request).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&mut self, path: &str, body: &Value) -> Reply {
        let request = self.request(Method::POST, path).json(body);
        self.send(request).await
    }

    /// `DELETE path`.
    pub async fn delete(&mut self, path: &str) -> Reply {
        let request = self.request(Method::DELETE, path);
        self.send(request).await
    }

    /// `POST /login` with `username` and `password`, sending the current cookie if any.
    pub async fn login(&mut self, username: &str, password: &str) -> Reply {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }
}

/// A whole answer: status, headers and body, read before any assertion.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// All headers, repeated ones included.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When the body is not JSON; the message shows it.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts the status, showing the body when it differs.
    ///
    /// # Panics
    ///
    /// When the status is not `expected`.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; headers {:?}, body {:?}",
            self.headers,
            self.text()
        );
        self
    }

    /// Every value of header `name`, as text.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The only value of header `name`, if there is exactly one.
    ///
    /// # Panics
    ///
    /// When the header is repeated.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<String> {
        let all = self.header_all(name);
        assert!(all.len() <= 1, "header {name} is repeated: {all:?}");
        all.into_iter().next()
    }

    /// The `Content-Type` without parameters, lowercased (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
    }

    /// The raw `Set-Cookie` header values.
    pub fn raw_set_cookies(&self) -> Vec<String> {
        self.header_all(header::SET_COOKIE.as_str())
    }

    /// The `Set-Cookie` header values, parsed.
    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.raw_set_cookies()
            .iter()
            .map(|raw| SetCookie::parse(raw))
            .collect()
    }

    /// The one `Set-Cookie` for [`COOKIE_NAME`], if any.
    ///
    /// # Panics
    ///
    /// When there are several.
    #[track_caller]
    pub fn session_cookie(&self) -> Option<SetCookie> {
        let mut cookies: Vec<_> = self
            .set_cookies()
            .into_iter()
            .filter(|c| is_session_cookie(&c.name))
            .collect();
        assert!(
            cookies.len() <= 1,
            "several Set-Cookie for {COOKIE_NAME}: {:?}",
            self.raw_set_cookies()
        );
        cookies.pop()
    }
}
