//! Real-browser tests: headless Chromium, driven over WebDriver (chromedriver, which the
//! test starts itself), against the example binaries.
//!
//! What a browser adds to the black-box suite: its own cookie jar obeying the `Set-Cookie`
//! the apps send, real form submission (the sessions page works without JavaScript), and
//! real cross-origin rules (`Origin`, `Sec-Fetch-Site`, `SameSite`).
//!
//! - `*_revocation_reaches_the_other_browser`: two browsers sign in as alice; browser 1
//!   signs browser 2 out from the sessions page, then browser 2 (signed in again) signs
//!   out everywhere; each time the other browser's next navigation lands on the login
//!   page and its jar has lost the session cookie.
//! - `*_cross_origin_form_cannot_sign_out`: a page on another origin auto-posts a form to
//!   "Sign out everywhere", once with a made-up CSRF token and once with the real one;
//!   the session survives both.
//! - `*_sso_then_provider_logout`: the browser signs in through a real OpenID provider
//!   (oidc-provider, started by the test, as `tests/tests/idp.rs` does: Node.js needed),
//!   lands on the app signed in, then signs out at the provider's end-session page; the
//!   provider's back-channel logout token revokes the session, and the browser's next
//!   navigation lands on the login page.
//! - `sessions_page_screenshots`: alice with a desktop browser, a phone and an agent; the
//!   sessions page is shot at desktop and phone size, and written to
//!   `docs/sessions-page.png` and `docs/sessions-page-mobile.png` when
//!   `UPDATE_SCREENSHOT=1`.
//!
//! Without `chromium` and `chromedriver` on the `PATH` (Debian: `apt-get install chromium
//! chromium-driver`; or set `CHROMIUM` and `CHROMEDRIVER` to their paths) each test prints
//! `skipping: chromium/chromedriver not installed` and passes, unless `BROWSER_TESTS=1`,
//! which makes a missing browser a failure (CI sets it).

#[path = "../../session-idp/tests/support/mod.rs"]
mod idp_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use session_conformance::{App, Browser as HttpBrowser, COOKIE_NAME, Framework, Target};

/// How long to wait for one expected page or state.
const WAIT: Duration = Duration::from_secs(30);
/// How long one whole scenario may take.
const SCENARIO: Duration = Duration::from_secs(240);
/// How long chromedriver may take to say it listens.
const DRIVER_READY: Duration = Duration::from_secs(30);

/// The sessions page and its forms (`session-core/src/page.rs`).
const SESSIONS_PAGE: &str = "/account/sessions";
const REVOKE_ALL: &str = "/account/sessions/revoke-all";

const DESKTOP_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) \
                         AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 \
                         Safari/604.1";
const AGENT_NAME: &str = "Claude (research assistant)";

// ---------------------------------------------------------------------------------------
// The scenarios.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_revocation_reaches_the_other_browser() {
    revocation_reaches_the_other_browser(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_revocation_reaches_the_other_browser() {
    revocation_reaches_the_other_browser(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_cross_origin_form_cannot_sign_out() {
    cross_origin_form_cannot_sign_out(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_cross_origin_form_cannot_sign_out() {
    cross_origin_form_cannot_sign_out(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_sso_then_provider_logout() {
    sso_then_provider_logout(Framework::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_sso_then_provider_logout() {
    sso_then_provider_logout(Framework::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_page_screenshots() {
    let Some(tools) = Tools::find() else { return };
    let app = App::start(Target::Binary(Framework::Axum), &[]).await;
    let base = app.base_url().to_owned();
    let driver = Driver::start(&tools);
    // Twice the pixels, so that the images stay sharp on high-density screens.
    let flags = |user_agent: &str| {
        [
            format!("--user-agent={user_agent}"),
            "--force-device-scale-factor=2".to_owned(),
        ]
    };
    let desktop = driver.open("desktop", &base, &flags(DESKTOP_UA)).await;
    let phone = driver.open("phone", &base, &flags(IPHONE_UA)).await;

    within_deadline(async {
        // Oldest first, so that the page (newest first) reads: this desktop, the agent,
        // the phone.
        phone.login("alice").await;
        let cookie = phone
            .session_cookie()
            .await
            .expect("the phone holds a session cookie after login");
        let mut api = HttpBrowser::new(&base, "conformance-test/1.0");
        api.set_token(Some(&cookie));
        api.post_json("/agents", &json!({ "name": AGENT_NAME }))
            .await
            .assert_status(201);
        desktop.login("alice").await;

        desktop.set_viewport(1100, 900).await;
        desktop.goto(SESSIONS_PAGE).await;
        let rows = desktop
            .wait_rows("three sessions", |rows| rows.len() == 3)
            .await;
        let kinds: Vec<_> = rows.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["user", "agent", "user"], "{rows:?}");
        assert!(
            rows[0].current && !rows[1].current && !rows[2].current,
            "{rows:?}"
        );
        // Device names as page.rs shows them ("Chrome 131 on macOS", badges after); this
        // device first, then newest first.
        let shows = |row: &Row, words: &[&str]| words.iter().all(|w| row.device.contains(w));
        assert!(shows(&rows[0], &["Chrome 131", "This device"]), "{rows:?}");
        assert!(shows(&rows[1], &[AGENT_NAME, "Agent"]), "{rows:?}");
        assert!(shows(&rows[2], &["Safari", "iOS"]), "{rows:?}");
        let shot = desktop.screenshot().await;
        save_screenshot("sessions-page.png", &shot);

        phone.set_viewport(390, 844).await;
        phone.goto(SESSIONS_PAGE).await;
        let rows = phone
            .wait_rows("three sessions", |rows| rows.len() == 3)
            .await;
        assert!(
            rows[0].current && shows(&rows[0], &["Safari", "iOS", "This device"]),
            "the phone's own session comes first: {rows:?}"
        );
        let shot = phone.screenshot().await;
        save_screenshot("sessions-page-mobile.png", &shot);
    })
    .await;

    desktop.close().await;
    phone.close().await;
}

async fn revocation_reaches_the_other_browser(framework: Framework) {
    let Some(tools) = Tools::find() else { return };
    let app = App::start(Target::Binary(framework), &[]).await;
    let driver = Driver::start(&tools);
    let b1 = driver.open("browser 1", app.base_url(), &[]).await;
    let b2 = driver.open("browser 2", app.base_url(), &[]).await;

    within_deadline(async {
        b1.login("alice").await;
        b2.login("alice").await;
        let me1 = b1.me().await;
        let me2 = b2.me().await;
        assert_ne!(
            me1["session_id"], me2["session_id"],
            "two logins, two sessions"
        );

        // Browser 1 signs browser 2 out from the sessions page.
        b1.goto(SESSIONS_PAGE).await;
        let rows = b1
            .wait_rows("both sessions listed", |rows| rows.len() == 2)
            .await;
        let others: Vec<_> = rows
            .iter()
            .filter(|r| !r.current && r.kind == "user")
            .collect();
        assert_eq!(others.len(), 1, "one other user session: {rows:?}");
        let other = others[0].id.clone();
        assert_eq!(
            Value::from(other.as_str()),
            me2["session_id"],
            "the other row is browser 2's session"
        );
        let button = b1
            .client
            .find(Locator::Css(&format!(
                "li.session[data-session-id='{other}'] form button[type=submit]"
            )))
            .await
            .expect("a Sign out button on the other session's row");
        assert_eq!(button.text().await.ok().as_deref(), Some("Sign out"));
        button.click().await.expect("click Sign out");
        let rows = b1
            .wait_rows("the page reloaded without browser 2's session", |rows| {
                rows.len() == 1 && rows.iter().all(|r| r.id != other)
            })
            .await;
        assert!(rows[0].current, "{rows:?}");

        // Browser 2's next navigation finds itself signed out.
        b2.assert_signed_out().await;

        // Browser 2 signs in again (on the login page it was sent to), then signs out
        // everywhere.
        b2.submit_login("alice").await;
        b2.wait_page("/", "a[href='/account/sessions']").await;
        let me2 = b2.me().await;
        assert_eq!(me2["user_id"], "alice");
        b2.goto(SESSIONS_PAGE).await;
        b2.wait_rows("both sessions listed", |rows| rows.len() == 2)
            .await;
        b2.click(&format!("form[action='{REVOKE_ALL}'] button[type=submit]"))
            .await;
        b2.wait_page("/login", "input#username").await;
        assert_eq!(
            b2.session_cookie().await,
            None,
            "sign-out everywhere clears the cookie"
        );

        // Browser 1's next navigation finds itself signed out too.
        b1.assert_signed_out().await;
    })
    .await;

    b1.close().await;
    b2.close().await;
}

async fn sso_then_provider_logout(framework: Framework) {
    const CLIENT_ID: &str = "example-app";
    const CLIENT_SECRET: &str = "example-app-secret-for-browser-tests";
    let Some(tools) = Tools::find() else { return };
    let port = idp_support::free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let Some(provider) = idp_support::Provider::for_app(&public_url, CLIENT_ID, CLIENT_SECRET)
    else {
        return;
    };
    let port = port.to_string();
    let app = App::spawn(
        framework.binary(),
        &[
            ("PORT", &port),
            ("PUBLIC_URL", &public_url),
            ("OIDC_ISSUER", &provider.issuer),
            ("OIDC_CLIENT_ID", CLIENT_ID),
            ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );
    assert_eq!(app.base_url(), public_url);
    let driver = Driver::start(&tools);
    let tab = driver.open("browser", app.base_url(), &[]).await;

    within_deadline(async {
        tab.goto("/login/oidc?return_to=/").await;
        tab.sign_in_at_provider(&provider.issuer, "alice").await;
        tab.wait_page("/", "a[href='/account/sessions']").await;
        assert_eq!(tab.text("h1").await, "Hello, alice");
        let me = tab.me().await;
        assert_eq!(me["user_id"], "alice", "{me}");
        assert!(tab.session_cookie().await.is_some());

        tab.sign_out_at_provider(&provider.issuer, CLIENT_ID).await;
        tab.assert_signed_out().await;
    })
    .await;
    tab.close().await;
}

async fn cross_origin_form_cannot_sign_out(framework: Framework) {
    let Some(tools) = Tools::find() else { return };
    let app = App::start(Target::Binary(framework), &[]).await;
    let driver = Driver::start(&tools);
    let b1 = driver.open("browser 1", app.base_url(), &[]).await;

    within_deadline(async {
        b1.login("alice").await;
        let me = b1.me().await;
        b1.goto(SESSIONS_PAGE).await;
        b1.wait_rows("the session listed", |rows| rows.len() == 1)
            .await;
        let real_token = b1
            .client
            .execute(
                &format!(
                    "return document.querySelector(\"form[action='{REVOKE_ALL}'] \
                     input[name=csrf]\").value"
                ),
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("the sessions page's CSRF token");

        // Another origin (same host, another port: same-site, so the `SameSite=Lax`
        // cookie does travel with the POST, and only the app's own checks stand in the
        // way). Once with a made-up token, once with the real one, as if it leaked.
        for (label, token) in [("made-up token", "forged"), ("leaked token", &*real_token)] {
            let evil = EvilSite::serve(&app.url(REVOKE_ALL), token);
            b1.client
                .goto(&evil.url)
                .await
                .unwrap_or_else(|e| panic!("open the other origin's page: {e}"));
            // The form posts itself; the gate refuses it (403 `cross_site_request`)
            // before the CSRF token or the session is even looked at.
            b1.wait_page(REVOKE_ALL, "body").await;
            let answer = b1.text("body").await;
            assert!(answer.contains("cross_site_request"), "{label}: {answer}");
            let me_after = b1.me().await;
            assert_eq!(me_after["user_id"], "alice", "{label}: still signed in");
            assert_eq!(
                me_after["session_id"], me["session_id"],
                "{label}: the same session"
            );
            assert!(
                b1.session_cookie().await.is_some(),
                "{label}: the cookie is still in the jar"
            );
            assert!(
                evil.hits() >= 1,
                "{label}: the other origin's page was served"
            );
        }
    })
    .await;

    b1.close().await;
}

// ---------------------------------------------------------------------------------------
// Chromium and chromedriver.
// ---------------------------------------------------------------------------------------

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

impl Tools {
    /// The browser and its driver (`CHROMIUM` and `CHROMEDRIVER` name other binaries);
    /// `None`, after printing why, when they are missing and `BROWSER_TESTS` is not `1`.
    fn find() -> Option<Self> {
        let chromium = program(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let chromedriver = program("CHROMEDRIVER", &["chromedriver"]);
        match (chromium, chromedriver) {
            (Some(chromium), Some(chromedriver)) => Some(Self {
                chromium,
                chromedriver,
            }),
            (chromium, chromedriver) => {
                let required = std::env::var("BROWSER_TESTS").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "BROWSER_TESTS=1, but chromium ({chromium:?}) or chromedriver \
                     ({chromedriver:?}) is not installed"
                );
                println!("skipping: chromium/chromedriver not installed");
                None
            }
        }
    }
}

/// The file named by the variable `env` when it is set, else the first of `names` on the
/// `PATH`.
fn program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A chromedriver on a free port; asked to shut down (closing its browsers) and then
/// killed when dropped, also when a test fails.
struct Driver {
    child: Child,
    port: u16,
    chromium: PathBuf,
    /// The browsers' profiles, removed once the browsers are gone.
    profiles: Mutex<Vec<Profile>>,
    _output: JoinHandle<()>,
}

impl Driver {
    /// Starts chromedriver on a port of its choosing. `--port=0` now and then fails with
    /// "IPv4 port not available" (its own pick raced another process): try again then.
    fn start(tools: &Tools) -> Self {
        let mut failures = Vec::new();
        for _ in 0..5 {
            match Self::try_start(tools) {
                Ok(driver) => return driver,
                Err(seen) => failures.push(seen),
            }
        }
        panic!("chromedriver did not start within {DRIVER_READY:?} in 5 tries: {failures:#?}");
    }

    fn try_start(tools: &Tools) -> Result<Self, Vec<String>> {
        let mut child = Command::new(&tools.chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tools.chromedriver.display()));
        let stdout = child.stdout.take().expect("chromedriver's stdout");
        let (tx, rx) = mpsc::channel();
        // Read every line (so a full pipe never blocks chromedriver), pass them on while
        // someone listens.
        let output = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + DRIVER_READY;
        let mut seen = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = line
                        .split("started successfully on port ")
                        .nth(1)
                        .and_then(|rest| rest.trim_end_matches(['.', ' ']).parse().ok())
                    {
                        break port;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(seen);
                }
            }
        };
        Ok(Self {
            child,
            port,
            chromium: tools.chromium.clone(),
            profiles: Mutex::default(),
            _output: output,
        })
    }

    /// A new browser with its own profile, started with the common flags and `extra`.
    async fn open(&self, name: &'static str, base: &str, extra: &[String]) -> Tab {
        let profile = Profile::new();
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1100,900".to_owned(),
            // For the screenshots: phones and Macs overlay their scrollbars.
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.dir.display()),
        ];
        self.profiles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(profile);
        args.extend_from_slice(extra);
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| panic!("{name}: chromedriver starts no browser: {e}"));
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(30)),
                Some(Duration::ZERO),
            ))
            .await
            .unwrap_or_else(|e| panic!("{name}: set timeouts: {e}"));
        Tab {
            name,
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver's own endpoint: quit every session (their browsers with them),
        // then exit.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read(&mut [0; 512]);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The profiles' `Drop` removes them, now that no browser writes there.
        self.profiles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// A temporary `--user-data-dir`, removed when dropped.
struct Profile {
    dir: PathBuf,
}

impl Profile {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "session-browser-test-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self { dir }
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `scenario`, failing when it takes longer than [`SCENARIO`].
async fn within_deadline(scenario: impl Future<Output = ()>) {
    if tokio::time::timeout(SCENARIO, scenario).await.is_err() {
        panic!("the scenario took longer than {SCENARIO:?}");
    }
}

// ---------------------------------------------------------------------------------------
// One browser.
// ---------------------------------------------------------------------------------------

/// A browser session: one Chromium with its own profile, on the app at `base`.
struct Tab {
    name: &'static str,
    client: Client,
    base: String,
}

/// One `li.session` of the sessions page.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    kind: String,
    current: bool,
    /// The text of the row's `.device` line (name and badges).
    device: String,
}

impl Tab {
    async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("{}: open {url}: {e}", self.name));
    }

    /// Polls until the browser shows `path` on the app and an element matching `css`;
    /// returns the URL's query pairs.
    async fn wait_page(&self, path: &str, css: &str) -> Vec<(String, String)> {
        let wait = Wait::new(self, format!("the page {path} with `{css}`"));
        loop {
            if let Ok(url) = self.client.current_url().await
                && url.as_str().starts_with(&self.base)
                && url.path() == path
                && self.client.find(Locator::Css(css)).await.is_ok()
            {
                return url
                    .query_pairs()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect();
            }
            wait.tick().await;
        }
    }

    /// Fills in the login form on the current page and submits it.
    async fn submit_login(&self, user: &str) {
        let field = |css: &'static str| async move {
            self.client
                .wait()
                .at_most(WAIT)
                .for_element(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("{}: no `{css}` on the login page: {e}", self.name))
        };
        let username = field("form[action='/login'] input#username").await;
        username.clear().await.expect("clear the user name");
        username.send_keys(user).await.expect("type the user name");
        let password = field("form[action='/login'] input#password").await;
        password.clear().await.expect("clear the password");
        password
            .send_keys(&format!("{user}-password"))
            .await
            .expect("type the password");
        self.click("form[action='/login'] button[type=submit]")
            .await;
    }

    /// Signs in through the login form and waits for the home page.
    async fn login(&self, user: &str) {
        self.goto("/login").await;
        self.submit_login(user).await;
        self.wait_page("/", "a[href='/account/sessions']").await;
        let heading = self.text("h1").await;
        assert_eq!(heading, format!("Hello, {user}"), "{}", self.name);
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no `{css}`: {e}", self.name))
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click `{css}`: {e}", self.name));
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no `{css}`: {e}", self.name))
            .text()
            .await
            .unwrap_or_else(|e| panic!("{}: text of `{css}`: {e}", self.name))
    }

    /// Navigates to `/me` and reads the JSON the browser shows.
    async fn me(&self) -> Value {
        self.goto("/me").await;
        let wait = Wait::new(self, "the JSON of /me".to_owned());
        loop {
            if let Ok(url) = self.client.current_url().await
                && url.path() == "/me"
                && let Ok(text) = self
                    .client
                    .execute(
                        "return document.body ? document.body.innerText : ''",
                        vec![],
                    )
                    .await
                && let Some(text) = text.as_str()
                && let (Some(start), Some(end)) = (text.find('{'), text.rfind('}'))
                && let Ok(json) = serde_json::from_str::<Value>(&text[start..=end])
            {
                return json;
            }
            wait.tick().await;
        }
    }

    /// The `session` cookie in the browser's jar for the app, per WebDriver.
    async fn session_cookie(&self) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .unwrap_or_else(|e| panic!("{}: get cookies: {e}", self.name))
            .into_iter()
            .find(|c| c.name() == COOKIE_NAME)
            .map(|c| c.value().to_owned())
    }

    /// On the provider's pages (oidc-provider's dev interactions: a login form that takes
    /// any name, then consent), signs in as `user`, until the provider sends the browser
    /// back to the app.
    async fn sign_in_at_provider(&self, issuer: &str, user: &str) {
        let wait = Wait::new(
            self,
            format!("the provider at {issuer} to send {user} back"),
        );
        let mut acted_on: Option<String> = None;
        loop {
            let url = self.client.current_url().await.map(|u| u.to_string());
            let Ok(url) = url else {
                wait.tick().await;
                continue;
            };
            if url.starts_with(&self.base) {
                return;
            }
            if url.starts_with(issuer) && acted_on.as_deref() != Some(url.as_str()) {
                if let Ok(login) = self.client.find(Locator::Css("input[name=login]")).await {
                    login.send_keys(user).await.expect("type the login");
                    self.client
                        .find(Locator::Css("input[name=password]"))
                        .await
                        .expect("a password field")
                        .send_keys("any")
                        .await
                        .expect("type the password");
                    self.click("form button[type=submit]").await;
                    acted_on = Some(url);
                } else if self
                    .client
                    .find(Locator::Css("form button[type=submit]"))
                    .await
                    .is_ok()
                {
                    // Consent.
                    self.click("form button[type=submit]").await;
                    acted_on = Some(url);
                }
            }
            wait.tick().await;
        }
    }

    /// Signs out at the provider: its end-session page for `client_id`, "Yes, sign me
    /// out", and waits for its answer (sent once its logout tokens have been POSTed).
    async fn sign_out_at_provider(&self, issuer: &str, client_id: &str) {
        let end = format!("{issuer}/session/end?client_id={client_id}");
        self.client
            .goto(&end)
            .await
            .unwrap_or_else(|e| panic!("{}: open {end}: {e}", self.name));
        let yes = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("button[name=logout][value=yes]"))
            .await
            .unwrap_or_else(|e| panic!("{}: no sign-out button at the provider: {e}", self.name));
        yes.click().await.expect("click Yes, sign me out");
        let wait = Wait::new(self, "the provider's answer to the sign-out".to_owned());
        loop {
            if let Ok(url) = self.client.current_url().await
                && url.path().starts_with("/session/end/success")
            {
                return;
            }
            wait.tick().await;
        }
    }

    /// The next navigation to `/` lands on the login page, with `return_to=/` and the
    /// reason, which the page puts in words; the jar holds no session cookie.
    async fn assert_signed_out(&self) {
        self.goto("/").await;
        let query = self.wait_page("/login", "input#username").await;
        assert_eq!(
            query,
            [
                ("return_to".to_owned(), "/".to_owned()),
                ("reason".to_owned(), "session_revoked".to_owned())
            ],
            "{}: sent to the login page with return_to and why",
            self.name
        );
        let page = self.text("body").await;
        assert!(
            page.contains("ended from another device"),
            "{}: the login page says why: {page}",
            self.name
        );
        assert_eq!(
            self.session_cookie().await,
            None,
            "{}: the session cookie is gone from the jar",
            self.name
        );
    }

    /// The rows of the sessions page, once the browser shows it and `ready` accepts them.
    async fn wait_rows(&self, what: &str, ready: impl Fn(&[Row]) -> bool) -> Vec<Row> {
        const ROWS: &str = "return location.pathname === '/account/sessions' && \
            document.readyState === 'complete' ? \
            [...document.querySelectorAll('li.session')].map(li => ({ \
                id: li.dataset.sessionId, kind: li.dataset.kind, \
                current: li.classList.contains('current'), \
                device: li.querySelector('.device')?.textContent ?? '' })) : null";
        let wait = Wait::new(self, format!("the sessions page: {what}"));
        loop {
            if let Ok(Value::Array(items)) = self.client.execute(ROWS, vec![]).await {
                let rows: Vec<Row> = items
                    .iter()
                    .map(|r| Row {
                        id: r["id"].as_str().unwrap_or_default().to_owned(),
                        kind: r["kind"].as_str().unwrap_or_default().to_owned(),
                        current: r["current"].as_bool().unwrap_or_default(),
                        device: r["device"].as_str().unwrap_or_default().trim().to_owned(),
                    })
                    .collect();
                if ready(&rows) {
                    return rows;
                }
            }
            wait.tick().await;
        }
    }

    /// Resizes the window so that the viewport is `width` x `height` CSS pixels.
    async fn set_viewport(&self, width: u32, height: u32) {
        let (mut window_width, mut window_height) = (width, height);
        for _ in 0..3 {
            self.client
                .set_window_size(window_width, window_height)
                .await
                .unwrap_or_else(|e| panic!("{}: resize the window: {e}", self.name));
            let inner = self
                .client
                .execute("return [window.innerWidth, window.innerHeight]", vec![])
                .await
                .unwrap_or_else(|e| panic!("{}: read the viewport size: {e}", self.name));
            let inner: Vec<u32> = inner
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
                .collect();
            let [inner_width, inner_height] = inner[..] else {
                panic!("{}: no viewport size: {inner:?}", self.name)
            };
            if (inner_width, inner_height) == (width, height) {
                return;
            }
            // The window's frame takes the difference.
            window_width = (window_width + width).saturating_sub(inner_width);
            window_height = (window_height + height).saturating_sub(inner_height);
        }
        panic!("{}: cannot make the viewport {width}x{height}", self.name);
    }

    /// A PNG of the viewport.
    async fn screenshot(&self) -> Vec<u8> {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot: {e}", self.name));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{}: not a PNG",
            self.name
        );
        png
    }

    /// Ends the browser session (the driver's shutdown does it on failure).
    async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(15), self.client.close()).await;
    }
}

/// A deadline for one expected state; its panic shows where the browser is.
struct Wait<'a> {
    tab: &'a Tab,
    what: String,
    deadline: Instant,
}

impl<'a> Wait<'a> {
    fn new(tab: &'a Tab, what: String) -> Self {
        Self {
            tab,
            what,
            deadline: Instant::now() + WAIT,
        }
    }

    /// Sleeps a little, or fails once the deadline has passed.
    async fn tick(&self) {
        if Instant::now() < self.deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        let url = self
            .tab
            .client
            .current_url()
            .await
            .map_or_else(|e| format!("(no URL: {e})"), |u| u.to_string());
        let text = self
            .tab
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(|s| s.chars().take(2000).collect::<String>()))
            .unwrap_or_default();
        panic!(
            "{}: waited {WAIT:?} for {}; the browser is at {url} showing:\n{text}",
            self.tab.name, self.what
        );
    }
}

// ---------------------------------------------------------------------------------------
// Another origin, and the screenshots.
// ---------------------------------------------------------------------------------------

/// A one-page site on another port of 127.0.0.1: its page auto-submits a form POST to
/// `action` carrying `csrf`. Stopped when dropped.
struct EvilSite {
    url: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<JoinHandle<()>>,
}

impl EvilSite {
    fn serve(action: &str, csrf: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("bound address").port();
        let page = format!(
            "<!doctype html><html><head><title>You won a prize</title></head>\
             <body onload=\"document.forms[0].submit()\">\
             <form method=\"post\" action=\"{}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Claim</button></form></body></html>",
            html_escape(action),
            html_escape(csrf)
        );
        let page = Arc::new(page);
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hits, stop) = (Arc::clone(&hits), Arc::clone(&stop));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // One thread per connection: the browser may open a connection it
                    // never uses (preconnect), which must not hold up the next one.
                    let (hits, page) = (Arc::clone(&hits), Arc::clone(&page));
                    thread::spawn(move || answer(stream, &page, &hits));
                }
            })
        };
        Self {
            url: format!("http://127.0.0.1:{port}/"),
            hits,
            stop,
            port,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for EvilSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head from `stream` and answers it: the page for `GET /`, else 404.
fn answer(mut stream: TcpStream, page: &str, hits: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let response = if request_line.starts_with("GET / ") {
        hits.fetch_add(1, Ordering::SeqCst);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    };
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Writes `png` to `docs/NAME` at the workspace root when `UPDATE_SCREENSHOT=1`.
fn save_screenshot(name: &str, png: &[u8]) {
    if !std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        return;
    }
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).unwrap_or_else(|e| panic!("create {}: {e}", docs.display()));
    let path = docs.join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    println!("wrote {}", path.display());
}
