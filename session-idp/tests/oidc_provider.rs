//! Against a real OpenID provider (oidc-provider from npm, started on a free port): the
//! code flow with PKCE through its dev interactions, then a sign-out at the provider, whose
//! back-channel logout token this test receives over HTTP and validates.
//!
//! Skipped (with a printed reason) without Node.js; `IDP_TESTS=1` makes that a failure.

mod support;

use std::time::Duration;

use session_idp::backchannel::{LogoutTokenValidator, parse_logout_request};
use session_idp::jwks::Jwks;
use session_idp::oidc::{OidcClient, OidcConfig, OidcError};
use session_idp::replay::MemoryReplayGuard;
use session_idp::token::TokenError;
use support::{Provider, free_port, record_posts, sign_in_at_provider, sign_out_at_provider};
use time::OffsetDateTime;
use tokio::sync::mpsc;

const CLIENT_ID: &str = "session-idp-test";
const CLIENT_SECRET: &str = "a-client-secret-for-tests-only";
const STATE_KEY: [u8; 32] = [42; 32];

/// The app side: receives back-channel logout requests and hands them to the test.
async fn start_app(port: u16) -> mpsc::UnboundedReceiver<(Option<String>, Vec<u8>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    record_posts(listener, "/oidc/backchannel-logout")
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn sign_in_then_back_channel_logout_with_a_real_provider() {
    let app_port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{app_port}/oidc/callback");
    let app_url = format!("http://127.0.0.1:{app_port}");
    let Some(provider) = Provider::for_app(&app_url, CLIENT_ID, CLIENT_SECRET) else {
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
    sign_out_at_provider(&browser, &provider.issuer, CLIENT_ID).await;

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
