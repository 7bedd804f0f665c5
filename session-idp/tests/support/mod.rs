//! Test support: free ports, a tiny HTTP server for key sets, and the oidc-provider harness
//! (also included by the workspace's conformance tests, `tests/tests/idp.rs`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A free port on 127.0.0.1 (never the ports of the workspace's Redis or PostgreSQL).
pub fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port != 6379 && port != 5432 {
            return port;
        }
    }
}

/// A JWKS endpoint on 127.0.0.1 whose document the test can swap, counting its requests.
pub struct JwksServer {
    pub url: String,
    pub document: Arc<Mutex<serde_json::Value>>,
    pub hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(document: serde_json::Value) -> Self {
        let document = Arc::new(Mutex::new(document));
        let hits = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (doc, count) = (doc.clone(), count.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    axum::Json(doc.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url,
            document,
            hits,
        }
    }

    pub fn set(&self, document: serde_json::Value) {
        *self.document.lock().unwrap() = document;
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// oidc-provider (npm), started from `tests/provider/` on a free port; killed on drop.
pub struct Provider {
    pub issuer: String,
    child: Child,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client the provider knows.
pub struct ProviderClient<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub redirect_uri: &'a str,
    pub backchannel_logout_uri: &'a str,
}

/// `session-idp/tests/provider`, from this crate's tests or from the workspace's
/// conformance tests, which include this module too.
fn provider_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["tests/provider", "../session-idp/tests/provider"]
        .iter()
        .map(|dir| manifest.join(dir))
        .find(|dir| dir.join("provider.js").exists())
        .expect("session-idp/tests/provider")
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `npm ci` once per test process, when `node_modules` is missing.
fn install() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut done = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *done || provider_dir().join("node_modules/oidc-provider").exists() {
        *done = true;
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(provider_dir())
        .status()
        .expect("npm ci could not start");
    assert!(
        status.success(),
        "npm ci failed in {}",
        provider_dir().display()
    );
    *done = true;
}

impl Provider {
    /// Starts the provider for an app at `public_url` registered as `client_id`, with the
    /// redirect URI `PUBLIC_URL/oidc/callback` and the back-channel logout URI
    /// `PUBLIC_URL/oidc/backchannel-logout`; `None` as [`Provider::start`].
    pub fn for_app(public_url: &str, client_id: &str, client_secret: &str) -> Option<Self> {
        Self::start(&ProviderClient {
            client_id,
            client_secret,
            redirect_uri: &format!("{public_url}/oidc/callback"),
            backchannel_logout_uri: &format!("{public_url}/oidc/backchannel-logout"),
        })
    }

    /// Starts the provider, or `None` (with the reason printed) when Node.js or npm is
    /// missing and `IDP_TESTS=1` is not set; with `IDP_TESTS=1` a missing Node.js fails.
    pub fn start(client: &ProviderClient<'_>) -> Option<Self> {
        if !(have("node") && have("npm")) {
            let required = std::env::var("IDP_TESTS").is_ok_and(|v| v == "1");
            assert!(!required, "IDP_TESTS=1 but node/npm are not on PATH");
            // Written to the process's stderr directly, past the test harness's capture, so
            // the skip shows in `cargo test` output.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipped: node and npm are needed to run oidc-provider (IDP_TESTS=1 makes this a failure)\n",
            );
            return None;
        }
        install();
        let port = free_port();
        let mut child = Command::new("node")
            .arg("provider.js")
            .current_dir(provider_dir())
            .env("PROVIDER_PORT", port.to_string())
            .env("CLIENT_ID", client.client_id)
            .env("CLIENT_SECRET", client.client_secret)
            .env("REDIRECT_URI", client.redirect_uri)
            .env("BACKCHANNEL_LOGOUT_URI", client.backchannel_logout_uri)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node could not start");
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("oidc-provider listening on ") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(issuer.to_owned());
                    }
                } else {
                    println!("[oidc-provider] {line}");
                }
            }
        });
        let mut provider = Self {
            issuer: String::new(),
            child,
        };
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(issuer) => {
                provider.issuer = issuer;
                Some(provider)
            }
            Err(_) => panic!("oidc-provider did not print its readiness line within 30 s"),
        }
    }
}

// The provider's dev interaction pages, driven as a browser would.

/// The first `action="…"` of a form in `html`, made absolute against `base`.
pub fn form_action(html: &str, base: &reqwest::Url) -> reqwest::Url {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    base.join(&html[start..end].replace("&amp;", "&")).unwrap()
}

/// The value of the hidden input `name` in `html`.
pub fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden input") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// Drives the provider's dev interactions (login form: any name; then consent) until it
/// redirects to `redirect_uri`; returns that URL.
pub async fn sign_in_at_provider(
    browser: &reqwest::Client,
    authorization_url: &str,
    redirect_uri: &str,
    user: &str,
) -> reqwest::Url {
    let mut response = browser.get(authorization_url).send().await.unwrap();
    for _ in 0..12 {
        let url = response.url().clone();
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            let next = url.join(&location).unwrap();
            if next.as_str().starts_with(redirect_uri) {
                return next;
            }
            response = browser.get(next).send().await.unwrap();
            continue;
        }
        assert_eq!(response.status(), 200, "unexpected answer at {url}");
        let html = response.text().await.unwrap();
        let action = form_action(&html, &url);
        let form: Vec<(&str, &str)> = if html.contains("name=\"login\"") {
            vec![("prompt", "login"), ("login", user), ("password", "any")]
        } else if html.contains("value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            panic!("an interaction page this test does not know: {html:.400}");
        };
        response = browser.post(action).form(&form).send().await.unwrap();
    }
    panic!("the provider never redirected back to the client");
}

/// Signs out at the provider as `browser`: its end-session page for `client_id`, then the
/// confirm form. The provider POSTs its logout tokens before it answers the confirm.
pub async fn sign_out_at_provider(browser: &reqwest::Client, issuer: &str, client_id: &str) {
    let page = browser
        .get(format!("{issuer}/session/end?client_id={client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page_url = page.url().clone();
    let html = page.text().await.unwrap();
    let xsrf = hidden_value(&html, "xsrf");
    let confirm = browser
        .post(form_action(&html, &page_url))
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    assert!(
        confirm.status().is_redirection(),
        "confirm answered {}",
        confirm.status()
    );
}

/// A receiver of POSTs to `path` on `listener`: each one's `Content-Type` and body go to
/// the returned channel, and it is answered 200 with `Cache-Control: no-store` (what a
/// back-channel logout endpoint says; a push transmitter takes any 2xx).
pub fn record_posts(
    listener: tokio::net::TcpListener,
    path: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        path,
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let _ = tx.send((content_type, body.to_vec()));
                    session_idp::backchannel::logout_ok()
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    rx
}
