//! Against a real OpenID provider (oidc-provider from npm, started on a free port): the
//! code flow with PKCE through its dev interactions, then a sign-out at the provider, whose
//! back-channel logout token this test receives over HTTP and validates.
//!
//! Skipped (with a printed reason) without Node.js; `IDP_TESTS=1` makes that a failure.

mod support;

use std::time::Duration;

use axum::http::HeaderMap;
use session_idp::backchannel::{LogoutTokenValidator, parse_logout_request};
use session_idp::jwks::Jwks;
use session_idp::oidc::{OidcClient, OidcConfig, OidcError};
use session_idp::replay::MemoryReplayGuard;
use session_idp::token::TokenError;
use support::{Provider, ProviderClient, free_port};
use time::OffsetDateTime;
use tokio::sync::mpsc;

const CLIENT_ID: &str = "session-idp-test";
const CLIENT_SECRET: &str = "a-client-secret-for-tests-only";
const STATE_KEY: [u8; 32] = [42; 32];

/// The app side: receives back-channel logout requests and hands them to the test.
async fn start_app(port: u16) -> mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/oidc/backchannel-logout",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let tx = tx.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = tx.send((content_type, body.to_vec()));
                session_idp::backchannel::logout_ok()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    rx
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The first `action="…"` of a form in `html`, made absolute against `base`.
fn form_action(html: &str, base: &reqwest::Url) -> reqwest::Url {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = start + html[start..].find('"').unwrap();
    base.join(&html[start..end].replace("&amp;", "&")).unwrap()
}

/// The value of the hidden input `name` in `html`.
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the hidden input") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_owned()
}

/// Drives the provider's dev interactions (login form: any name; then consent) until it
/// redirects to `redirect_uri`; returns that URL.
async fn sign_in_at_provider(
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

#[tokio::test]
async fn sign_in_then_back_channel_logout_with_a_real_provider() {
    let app_port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{app_port}/oidc/callback");
    let backchannel_uri = format!("http://127.0.0.1:{app_port}/oidc/backchannel-logout");
    let Some(provider) = Provider::start(&ProviderClient {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uri: &redirect_uri,
        backchannel_logout_uri: &backchannel_uri,
    }) else {
        return;
    };
    let mut logout_requests = start_app(app_port).await;

    // Discovery.
    let config = OidcConfig::new(&provider.issuer, CLIENT_ID, &redirect_uri, &STATE_KEY)
        .unwrap()
        .with_client_secret(CLIENT_SECRET);
    let client = OidcClient::discover(config).await.unwrap();
    assert_eq!(client.issuer(), provider.issuer);
    assert_eq!(client.jwks_uri(), format!("{}/jwks", provider.issuer));
    assert!(client.backchannel_logout_supported());
    let end_session = client
        .end_session_endpoint()
        .expect("an end_session_endpoint")
        .to_owned();
    assert_eq!(end_session, format!("{}/session/end", provider.issuer));

    // The code flow.
    let start = client
        .begin(Some("/account/sessions"), OffsetDateTime::now_utc())
        .unwrap();
    // Debug shows no secret: not the browser state, not the client secret or state key.
    let shown = format!("{start:?} {client:?}");
    assert!(
        !shown.contains(&start.browser_state) && !shown.contains(CLIENT_SECRET),
        "{shown}"
    );
    let authorization_url = reqwest::Url::parse(&start.authorization_url).unwrap();
    let params: std::collections::HashMap<_, _> =
        authorization_url.query_pairs().into_owned().collect();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], redirect_uri);
    assert!(params.contains_key("state") && params.contains_key("nonce"));
    assert!(params["scope"].split(' ').any(|s| s == "openid"));

    let browser = browser();
    let callback =
        sign_in_at_provider(&browser, &start.authorization_url, &redirect_uri, "alice").await;
    let query = callback.query().unwrap().to_owned();

    // A callback whose state is not this browser's is refused before any exchange.
    let other = client.begin(None, OffsetDateTime::now_utc()).unwrap();
    let err = client
        .finish(&query, &other.browser_state, OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::StateMismatch), "{err:?}");

    let identity = client
        .finish(&query, &start.browser_state, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(identity.issuer, provider.issuer);
    assert_eq!(identity.subject, "alice");
    let sid = identity
        .session_id
        .clone()
        .expect("the provider sends sid (backchannel_logout_session_required)");
    assert_eq!(identity.return_to, "/account/sessions");

    // The same code again: the provider refuses it.
    let err = client
        .finish(&query, &start.browser_state, OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::CodeRejected(_)), "{err:?}");
    assert_eq!(err.status(), 400);

    // Sign out at the provider: its end-session page, then the confirm form.
    let page = browser
        .get(format!("{end_session}?client_id={CLIENT_ID}"))
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

    // The provider POSTed a logout token to the app (before answering the confirm).
    let (content_type, body) =
        tokio::time::timeout(Duration::from_secs(10), logout_requests.recv())
            .await
            .unwrap()
            .unwrap();
    let token = parse_logout_request(content_type.as_deref(), &body).unwrap();
    let validator = LogoutTokenValidator::new(
        client.issuer(),
        CLIENT_ID,
        Jwks::url(client.jwks_uri()),
        MemoryReplayGuard::new(),
    );
    let logout = validator
        .validate(&token, OffsetDateTime::now_utc())
        .await
        .unwrap();
    assert_eq!(logout.issuer, provider.issuer);
    assert_eq!(logout.session_id.as_deref(), Some(sid.as_str()));
    assert_eq!(logout.subject.as_deref(), Some("alice"));
    assert!(logout.expires_at.is_some());

    // Delivered twice, it is a replay.
    let again = validator
        .validate(&token, OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(again, TokenError::Replayed));
    // Another client's validator refuses it (aud).
    let other_client = LogoutTokenValidator::new(
        client.issuer(),
        "another-client",
        Jwks::url(client.jwks_uri()),
        MemoryReplayGuard::new(),
    );
    let err = other_client
        .validate(&token, OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::WrongAudience));
}
