//! Harness for the black-box conformance suite: start an example app on port 0 and talk
//! to it the way a browser would.
//!
//! [`App::spawn`] finds the example binary (`axum-app`, `actix-app`) next to the test
//! executable, running `cargo build -p NAME` first (once per test process, a no-op when
//! it is fresh, so a stale binary is never tested; see [`ensure_built`]), starts it on
//! `127.0.0.1:0` with `SESSION_COOKIE_SECURE=false`, and waits for its
//! `listening on http://ADDR` line. [`Browser`] is a reqwest client with redirects off and
//! no cookie store: it keeps the session cookie itself, so a test sees every raw
//! `Set-Cookie` an answer carried, and can replay a cookie the app asked it to delete.
//! While [`record_exchanges`] is on, every answer any browser receives is also logged, for
//! checks over a whole walk ([`take_exchanges`]; the OpenAPI schema test uses it).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() {
//! use session_conformance::App;
//!
//! let app = App::spawn("axum-app", &[]);
//! let mut browser = app.browser("conformance-test/1.0");
//! let reply = browser.login("alice", "alice-password").await;
//! assert_eq!(reply.status.as_u16(), 303);
//! assert_eq!(browser.get("/me").await.status.as_u16(), 200);
//! # }
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

mod in_process;

/// The README's quick starts, compiled as doctests so they cannot rot.
#[doc = include_str!("../../README.md")]
mod readme {}

pub use in_process::Framework;

use example_support::{Demo, Settings};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// Name of the session cookie the example apps set with `SESSION_COOKIE_SECURE=false` (the
/// harness's default).
pub const COOKIE_NAME: &str = "session";

/// Name of the session cookie with `Secure` (the apps' own default): `__Host-` prefixed.
pub const SECURE_COOKIE_NAME: &str = "__Host-session";

/// Whether `name` is one of the session cookie's names.
#[must_use]
pub fn is_session_cookie(name: &str) -> bool {
    name == COOKIE_NAME || name == SECURE_COOKIE_NAME
}

/// What the app prints once it accepts connections; the address follows it.
pub const READY_MARKER: &str = "listening on http://";

/// How long [`App::spawn`] waits for the readiness line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `Accept` header a browser sends when it navigates to a page.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// Environment variables of the contract. They are removed from what the app inherits,
/// so a developer's shell cannot change what a test sees.
const CONTRACT_ENV: &[&str] = &[
    "BIND",
    "PORT",
    "SESSION_STORE",
    "SESSION_KEYS",
    "SESSION_COOKIE_SECURE",
    "SESSION_TTL_SECS",
    "SESSION_IDLE_SECS",
    "SESSION_CACHE_SECS",
    "ADMIN_TOKEN",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "PUBLIC_URL",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "SCIM_TOKEN",
    "CAEP_TRANSMITTER_ISSUER",
    "CAEP_TRANSMITTER_JWKS_URL",
    "CAEP_AUDIENCE",
    "CAEP_RECEIVER_URL",
    "CAEP_RECEIVER_AUDIENCE",
    "CAEP_SIGNING_KEY",
];

/// Binaries already built by this test process, so that parallel tests build each once.
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

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

/// Takes the logged exchanges with the app at `base_url` ([`App::base_url`]) out of the log,
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

/// Where a scenario runs: an example binary in its own process, or an example app's
/// router served from inside the test process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The binary `axum-app` or `actix-app`, configured by environment variables.
    Binary(Framework),
    /// The same app served in this process, configured by the same variables.
    InProcess(Framework),
}

impl Target {
    /// The framework that serves the app.
    #[must_use]
    pub fn framework(self) -> Framework {
        match self {
            Self::Binary(f) | Self::InProcess(f) => f,
        }
    }
}

/// A running example app, stopped when dropped.
#[derive(Debug)]
pub struct App {
    runner: Runner,
    base_url: String,
    output: Arc<Mutex<String>>,
}

#[derive(Debug)]
enum Runner {
    Process {
        child: Child,
        readers: Vec<JoinHandle<()>>,
    },
    /// Held for its `Drop`, which stops the server.
    InProcess(#[allow(dead_code)] in_process::Server),
}

impl App {
    /// Starts the app of `target` configured by `envs` (over the harness defaults, as
    /// [`App::spawn`]).
    ///
    /// # Panics
    ///
    /// As [`App::spawn`], or when `envs` do not configure a valid app.
    pub async fn start(target: Target, envs: &[(&str, &str)]) -> Self {
        Self::start_with(target, envs, &[]).await
    }

    /// As [`App::start`], leaving out the variables in `unset` (see [`App::spawn_with`]).
    ///
    /// # Panics
    ///
    /// As [`App::start`].
    pub async fn start_with(target: Target, envs: &[(&str, &str)], unset: &[&str]) -> Self {
        match target {
            Target::Binary(framework) => Self::spawn_with(framework.binary(), envs, unset),
            Target::InProcess(framework) => {
                let defaults = [("SESSION_COOKIE_SECURE", "false")];
                let vars: Vec<(&str, &str)> = defaults
                    .iter()
                    .chain(envs)
                    .copied()
                    .filter(|(name, _)| !unset.contains(name))
                    .collect();
                let settings = Settings::from_lookup(0, |name| {
                    vars.iter()
                        .rev()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| (*v).to_owned())
                })
                .expect("valid settings");
                let demo = Demo::open(&settings)
                    .await
                    .expect("the configured store opens");
                Self::serve(framework, demo)
            }
        }
    }

    /// Serves `demo` with `framework` from inside this process: share one [`Demo`] between
    /// frameworks, or give it a store that counts calls or fails.
    #[must_use]
    pub fn serve(framework: Framework, demo: Demo) -> Self {
        let (server, addr) = in_process::Server::start(framework, demo);
        Self {
            runner: Runner::InProcess(server),
            base_url: format!("http://{addr}"),
            output: Arc::default(),
        }
    }

    /// Starts `binary_name` with `PORT=0`, `BIND=127.0.0.1`, `SESSION_COOKIE_SECURE=false`
    /// and then `envs` (which may override those), and waits for it to be ready.
    ///
    /// # Panics
    ///
    /// When the binary cannot be built or started, or prints no readiness line within
    /// [`READY_TIMEOUT`]; the panic message holds everything it printed.
    pub fn spawn(binary_name: &str, envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(binary_name, envs, &[])
    }

    /// Like [`App::spawn`], but first leaves out the variables named in `unset`, even the
    /// defaults: `App::spawn_with("axum-app", &[], &["SESSION_COOKIE_SECURE"])` runs the
    /// app with its own default (a `Secure` cookie).
    ///
    /// # Panics
    ///
    /// As [`App::spawn`].
    pub fn spawn_with(binary_name: &str, envs: &[(&str, &str)], unset: &[&str]) -> Self {
        Self::spawn_inner(binary_name, envs, unset, None)
    }

    /// Like [`App::spawn`], with `dir` as the working directory (for programs that keep
    /// files beside them, such as the README's SQLite database).
    ///
    /// # Panics
    ///
    /// As [`App::spawn`].
    pub fn spawn_in(binary_name: &str, dir: &Path, envs: &[(&str, &str)]) -> Self {
        Self::spawn_inner(binary_name, envs, &[], Some(dir))
    }

    fn spawn_inner(
        binary_name: &str,
        envs: &[(&str, &str)],
        unset: &[&str],
        dir: Option<&Path>,
    ) -> Self {
        let binary = ensure_built(binary_name);
        let mut command = Command::new(&binary);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        for name in CONTRACT_ENV {
            command.env_remove(name);
        }
        let defaults = [
            ("PORT", "0"),
            ("BIND", "127.0.0.1"),
            ("SESSION_COOKIE_SECURE", "false"),
        ];
        for (name, value) in defaults.iter().chain(envs) {
            if !unset.contains(name) {
                command.env(name, value);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));

        let output = Arc::new(Mutex::new(String::new()));
        let (lines_tx, lines_rx) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(drain(stdout, lines_tx.clone(), Arc::clone(&output)));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(drain(stderr, lines_tx, Arc::clone(&output)));
        }

        let deadline = Instant::now() + READY_TIMEOUT;
        let base_url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = parse_ready_line(&line) {
                        break format!("http://{addr}");
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{binary_name} printed no `{READY_MARKER}` line within {READY_TIMEOUT:?}; \
                         its output:\n{}",
                        lock(&output)
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait();
                    panic!(
                        "{binary_name} closed its output before it was ready ({status:?}); \
                         its output:\n{}",
                        lock(&output)
                    );
                }
            }
        };
        Self {
            runner: Runner::Process { child, readers },
            base_url,
            output,
        }
    }

    /// `http://ADDR:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Everything the app printed so far, stdout and stderr interleaved by line.
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// A fresh browser, with an empty cookie jar, that sends `user_agent`.
    pub fn browser(&self, user_agent: &str) -> Browser {
        Browser::new(&self.base_url, user_agent)
    }

    /// A browser signed in as the demo user `user` (password `USER-password`).
    ///
    /// ```no_run
    /// # async fn run() {
    /// let app = session_conformance::App::spawn("axum-app", &[]);
    /// let mut alice = app.signed_in("alice", "conformance-test/1.0").await;
    /// assert_eq!(alice.get("/me").await.json()["user_id"], "alice");
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When the login is not a 303 with the session cookie.
    pub async fn signed_in(&self, user: &str, user_agent: &str) -> Browser {
        let mut browser = self.browser(user_agent);
        browser
            .login(user, &format!("{user}-password"))
            .await
            .assert_status(303);
        assert!(browser.token().is_some(), "{user} has a session cookie");
        browser
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let Runner::Process { child, readers } = &mut self.runner else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        // The pipes close with the process; wait a little for the last lines, but never
        // hang on a reader (a grandchild could still hold a pipe).
        let deadline = Instant::now() + Duration::from_secs(1);
        while readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        for reader in readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        if thread::panicking() {
            eprintln!("--- output of the app at {} ---", self.base_url);
            eprintln!("{}", lock(&self.output));
        }
    }
}

fn lock(output: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    output.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `pipe` line by line until it closes: each line goes to `output`, and to `lines`
/// while someone still listens there.
fn drain(
    pipe: impl Read + Send + 'static,
    lines: mpsc::Sender<String>,
    output: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    lock(&output).push_str(&line);
                    let _ = lines.send(line);
                }
            }
        }
    })
}

/// The address after [`READY_MARKER`] in `line`, if it has one: `127.0.0.1:43121` from
/// `INFO axum_app: listening on http://127.0.0.1:43121/`.
pub fn parse_ready_line(line: &str) -> Option<&str> {
    let start = line.find(READY_MARKER)? + READY_MARKER.len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\u{1b}')
        .unwrap_or(rest.len());
    let addr = rest[..end].trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != ']');
    (!addr.is_empty()).then_some(addr)
}

/// The path of `binary_name` in the target directory of the running test executable,
/// built first with `cargo build -p binary_name` (once per test process) so that the
/// suite never runs a stale binary.
///
/// Set `CONFORMANCE_NO_BUILD=1` to skip the build when the binary is already there.
///
/// # Panics
///
/// When the build fails or leaves no binary where the test executable's profile
/// directory says it should be.
pub fn ensure_built(binary_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    // .../target/<profile>/deps/<test>  →  .../target/<profile>
    let mut profile_dir = exe.parent().expect("the test executable's directory");
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().expect("the profile directory");
    }
    let binary = profile_dir.join(format!("{binary_name}{}", std::env::consts::EXE_SUFFIX));

    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if built.iter().any(|name| name == binary_name) {
        return binary;
    }
    let skip = std::env::var_os("CONFORMANCE_NO_BUILD").is_some_and(|v| v != "0");
    if !(skip && binary.is_file()) {
        cargo_build(binary_name, profile_dir);
    }
    assert!(
        binary.is_file(),
        "`cargo build -p {binary_name}` left no {}",
        binary.display()
    );
    built.push(binary_name.to_owned());
    binary
}

fn cargo_build(binary_name: &str, profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "-p", binary_name]);
    if let Some(profile) = profile_dir.file_name().and_then(|p| p.to_str()) {
        match profile {
            "debug" => {}
            "release" => {
                command.arg("--release");
            }
            other => {
                command.args(["--profile", other]);
            }
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cargo build -p {binary_name}`: {e}"));
    assert!(
        out.status.success(),
        "`cargo build -p {binary_name}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
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

/// One `Set-Cookie` header, split into name, value and attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// The header as received.
    pub raw: String,
    /// The cookie name.
    pub name: String,
    /// The cookie value (may be empty).
    pub value: String,
    /// Attributes in order, names lowercased, values as sent (`None` for flags).
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    /// Parses a `Set-Cookie` value (RFC 6265 §5.2, without validation).
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';');
        let pair = parts.next().unwrap_or("");
        let (name, value) = pair.split_once('=').unwrap_or(("", pair));
        let attributes = parts
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_owned())),
                None => (a.to_ascii_lowercase(), None),
            })
            .collect();
        Self {
            raw: raw.to_owned(),
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
        }
    }

    /// The value of attribute `name` (case-insensitive); `Some("")` for a flag.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Whether flag or attribute `name` is present (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// The attribute names, lowercased and sorted, each once per occurrence.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.attributes.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        names
    }

    /// The `Expires` attribute as a time, if present and an HTTP date.
    pub fn expires(&self) -> Option<SystemTime> {
        self.attr("expires")
            .and_then(|v| httpdate::parse_http_date(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_address_is_parsed() {
        assert_eq!(
            parse_ready_line("listening on http://127.0.0.1:43121"),
            Some("127.0.0.1:43121")
        );
        assert_eq!(
            parse_ready_line(
                "2025-01-01T00:00:00Z  INFO axum_app: listening on http://127.0.0.1:5/ now"
            ),
            Some("127.0.0.1:5")
        );
        assert_eq!(
            parse_ready_line("listening on http://[::1]:8080."),
            Some("[::1]:8080")
        );
        assert_eq!(parse_ready_line("starting"), None);
        assert_eq!(parse_ready_line("listening on http://"), None);
    }

    #[test]
    fn deleting_cookie_is_parsed() {
        let c = SetCookie::parse(
            "session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(c.name, "session");
        assert_eq!(c.value, "");
        assert_eq!(c.attr("path"), Some("/"));
        assert_eq!(c.attr("Max-Age"), Some("0"));
        assert_eq!(c.attr("httponly"), Some(""));
        assert!(!c.has("secure"));
        assert_eq!(c.expires(), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(
            c.attribute_names(),
            ["expires", "httponly", "max-age", "path", "samesite"]
        );
    }

    #[test]
    fn cookie_value_may_contain_equals() {
        let c = SetCookie::parse("session=abc==; Secure");
        assert_eq!(c.value, "abc==");
        assert!(c.has("Secure"));
    }
}
