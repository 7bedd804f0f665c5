//! Logout-token validation against keys served over HTTP by a local JWKS endpoint: every
//! refusal case of Back-Channel Logout 1.0 section 2.6, each with its own error, and key
//! rollover.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use session_idp::backchannel::{BACKCHANNEL_LOGOUT_EVENT, LogoutTokenValidator, logout_error};
use session_idp::jwks::Jwks;
use session_idp::replay::MemoryReplayGuard;
use session_idp::token::TokenError;
use support::JwksServer;
use time::OffsetDateTime;

const ISS: &str = "https://op.test";
const AUD: &str = "client-1";

const RSA1: &str = include_str!("keys/rsa1.pem");
const RSA1_PUB: &str = include_str!("keys/rsa1.pub.pem");
const RSA2: &str = include_str!("keys/rsa2.pem");
const EC1: &str = include_str!("keys/ec1.pem");
const ED1: &str = include_str!("keys/ed1.pem");

fn rsa(pem: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap()
}

/// The public JWK of a private key, with its kid.
fn public(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

fn jwks_of(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

fn provider_keys() -> Value {
    jwks_of(&[
        public(&rsa(RSA1), Algorithm::RS256, "rsa1"),
        // A key published for PS256 only (its JWK says "alg": "PS256").
        public(&rsa(RSA2), Algorithm::PS256, "rsa2-ps"),
        public(
            &EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap(),
            Algorithm::ES256,
            "ec1",
        ),
        public(
            &EncodingKey::from_ed_pem(ED1.as_bytes()).unwrap(),
            Algorithm::EdDSA,
            "ed1",
        ),
    ])
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

static JTI: AtomicU64 = AtomicU64::new(0);

/// The claims of a valid logout token (a fresh jti each time).
fn claims() -> Value {
    let iat = now().unix_timestamp();
    json!({
        "iss": ISS,
        "aud": AUD,
        "iat": iat,
        "exp": iat + 120,
        "jti": format!("jti-{}", JTI.fetch_add(1, Ordering::SeqCst)),
        "sub": "alice",
        "sid": "sid-1",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn sign_with(
    alg: Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
    typ: Option<&str>,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(Into::into);
    header.typ = typ.map(Into::into);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// RS256 with rsa1, `typ: logout+jwt`.
fn sign(claims: &Value) -> String {
    sign_with(
        Algorithm::RS256,
        &rsa(RSA1),
        Some("rsa1"),
        Some("logout+jwt"),
        claims,
    )
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

struct Fixture {
    server: JwksServer,
    validator: LogoutTokenValidator,
    replay: Arc<MemoryReplayGuard>,
}

async fn fixture() -> Fixture {
    let server = JwksServer::start(provider_keys()).await;
    let replay = Arc::new(MemoryReplayGuard::new());
    let validator = LogoutTokenValidator::new(ISS, AUD, Jwks::url(&server.url), replay.clone());
    Fixture {
        server,
        validator,
        replay,
    }
}

impl Fixture {
    async fn refuse(&self, token: &str) -> TokenError {
        let err = self
            .validator
            .validate(token, now())
            .await
            .expect_err("the token must be refused");
        assert_eq!(
            self.replay.len(),
            0,
            "a refused token must not record its jti"
        );
        // The spec's answer: 400, no-store, invalid_request.
        let answer = logout_error(&err);
        assert_eq!(answer.status(), 400);
        assert_eq!(answer.headers()["cache-control"], "no-store");
        assert!(
            answer.body().starts_with(r#"{"error":"invalid_request""#),
            "{}",
            answer.body()
        );
        err
    }
}

#[tokio::test]
async fn a_valid_token_is_accepted_with_its_claims() {
    let f = fixture().await;
    let c = claims();
    let token = f.validator.validate(&sign(&c), now()).await.unwrap();
    assert_eq!(token.issuer, ISS);
    assert_eq!(token.subject.as_deref(), Some("alice"));
    assert_eq!(token.session_id.as_deref(), Some("sid-1"));
    assert_eq!(token.jti, c["jti"].as_str().unwrap());
    assert_eq!(token.issued_at.unix_timestamp(), c["iat"].as_i64().unwrap());
    assert_eq!(
        token.expires_at.map(|e| e.unix_timestamp()),
        c["exp"].as_i64()
    );
}

#[tokio::test]
async fn each_allowed_algorithm_and_key_type_is_accepted() {
    let f = fixture().await;
    let ec = EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap();
    let ed = EncodingKey::from_ed_pem(ED1.as_bytes()).unwrap();
    let tokens = [
        sign_with(
            Algorithm::ES256,
            &ec,
            Some("ec1"),
            Some("logout+jwt"),
            &claims(),
        ),
        sign_with(
            Algorithm::EdDSA,
            &ed,
            Some("ed1"),
            Some("logout+jwt"),
            &claims(),
        ),
        sign_with(
            Algorithm::PS256,
            &rsa(RSA2),
            Some("rsa2-ps"),
            Some("logout+jwt"),
            &claims(),
        ),
        // typ is optional; so is sub when sid is there, and sid when sub is.
        sign_with(
            Algorithm::RS256,
            &rsa(RSA1),
            Some("rsa1"),
            None,
            &without(claims(), "sub"),
        ),
        sign(&without(claims(), "sid")),
        // exp is optional (then the maximum age bounds the token).
        sign(&without(claims(), "exp")),
        // aud may be an array.
        sign(&with(claims(), "aud", json!(["other", AUD]))),
        // iat within the skew.
        sign(&with(claims(), "iat", json!(now().unix_timestamp() + 30))),
    ];
    for token in tokens {
        f.validator.validate(&token, now()).await.unwrap();
    }
}

#[tokio::test]
async fn refuses_a_bad_signature() {
    let f = fixture().await;
    // Signed with rsa2, claiming to be rsa1.
    let token = sign_with(
        Algorithm::RS256,
        &rsa(RSA2),
        Some("rsa1"),
        Some("logout+jwt"),
        &claims(),
    );
    assert!(matches!(f.refuse(&token).await, TokenError::BadSignature));
    // A valid token with one claim changed after signing.
    let token = sign(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("mallory")).to_string());
    parts[1] = &forged;
    assert!(matches!(
        f.refuse(&parts.join(".")).await,
        TokenError::BadSignature
    ));
}

#[tokio::test]
async fn refuses_an_unknown_kid_and_floods_cost_one_fetch() {
    let f = fixture().await;
    let token = sign_with(
        Algorithm::RS256,
        &rsa(RSA2),
        Some("nope"),
        Some("logout+jwt"),
        &claims(),
    );
    assert!(matches!(f.refuse(&token).await, TokenError::UnknownKey));
    let before = f.server.hits();
    for i in 0..50 {
        let token = sign_with(
            Algorithm::RS256,
            &rsa(RSA2),
            Some(&format!("made-up-{i}")),
            None,
            &claims(),
        );
        assert!(matches!(f.refuse(&token).await, TokenError::UnknownKey));
    }
    assert_eq!(
        f.server.hits() - before,
        0,
        "unknown kids within the refetch interval fetch nothing"
    );
    assert!(before <= 2, "first use fetched {before} times");
}

#[tokio::test]
async fn follows_key_rollover() {
    let server = JwksServer::start(provider_keys()).await;
    let jwks = Jwks::url(&server.url).with_refetch_interval(Duration::from_millis(200));
    let validator = LogoutTokenValidator::new(ISS, AUD, jwks, MemoryReplayGuard::new());
    validator.validate(&sign(&claims()), now()).await.unwrap();
    assert_eq!(server.hits(), 1);

    // The provider adds rsa2 and signs with it.
    let rotated = jwks_of(&[public(&rsa(RSA2), Algorithm::RS256, "rsa2")]);
    server.set(rotated);
    let token = sign_with(
        Algorithm::RS256,
        &rsa(RSA2),
        Some("rsa2"),
        Some("logout+jwt"),
        &claims(),
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let accepted = validator.validate(&token, now()).await.unwrap();
    assert_eq!(accepted.subject.as_deref(), Some("alice"));
    assert_eq!(server.hits(), 2);
    // rsa1 is gone from the new set: its tokens are refused now.
    let old = sign(&claims());
    assert!(matches!(
        validator.validate(&old, now()).await,
        Err(TokenError::UnknownKey)
    ));
}

#[tokio::test]
async fn refuses_alg_none() {
    let f = fixture().await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"logout+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    assert!(matches!(
        f.refuse(&format!("{header}.{payload}.")).await,
        TokenError::AlgNone
    ));
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"None","kid":"rsa1"}"#);
    assert!(matches!(
        f.refuse(&format!("{header}.{payload}.")).await,
        TokenError::AlgNone
    ));
}

#[tokio::test]
async fn refuses_hs256_keyed_with_the_public_key() {
    let f = fixture().await;
    // The classic confusion: HMAC keyed with the PEM text of the provider's public key.
    let pem_key = EncodingKey::from_secret(RSA1_PUB.as_bytes()).unwrap();
    let token = sign_with(
        Algorithm::HS256,
        &pem_key,
        Some("rsa1"),
        Some("logout+jwt"),
        &claims(),
    );
    assert!(matches!(f.refuse(&token).await, TokenError::AlgorithmNotAllowed(a) if a == "HS256"));

    // … and with the JWK's modulus, as text and as bytes.
    let jwk: Jwk = serde_json::from_value(public(&rsa(RSA1), Algorithm::RS256, "rsa1")).unwrap();
    let AlgorithmParameters::RSA(params) = &jwk.algorithm else {
        panic!("an RSA key")
    };
    for secret in [
        params.n.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(&params.n).unwrap(),
    ] {
        let key = EncodingKey::from_secret(&secret).unwrap();
        let token = sign_with(Algorithm::HS256, &key, Some("rsa1"), None, &claims());
        assert!(
            matches!(f.refuse(&token).await, TokenError::AlgorithmNotAllowed(a) if a == "HS256")
        );
    }
}

#[tokio::test]
async fn refuses_an_algorithm_off_the_allowlist_and_a_key_of_another_type() {
    let f = fixture().await;
    let validator = f
        .validator
        .clone()
        .with_algorithms(&[Algorithm::ES256])
        .unwrap();
    let err = validator
        .validate(&sign(&claims()), now())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::AlgorithmNotAllowed(a) if a == "RS256"));
    // ES256 header naming the RSA key.
    let ec = EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap();
    let token = sign_with(Algorithm::ES256, &ec, Some("rsa1"), None, &claims());
    assert!(matches!(f.refuse(&token).await, TokenError::KeyMismatch));
    // PS256 with a key the provider published for RS256 only.
    let token = sign_with(Algorithm::PS256, &rsa(RSA1), Some("rsa1"), None, &claims());
    assert!(matches!(f.refuse(&token).await, TokenError::KeyMismatch));
}

#[tokio::test]
async fn refuses_a_wrong_audience() {
    let f = fixture().await;
    assert!(matches!(
        f.refuse(&sign(&with(claims(), "aud", json!("other"))))
            .await,
        TokenError::WrongAudience
    ));
    assert!(matches!(
        f.refuse(&sign(&with(claims(), "aud", json!(["a", "b"]))))
            .await,
        TokenError::WrongAudience
    ));
    assert!(matches!(
        f.refuse(&sign(&without(claims(), "aud"))).await,
        TokenError::MissingClaim("aud")
    ));
}

#[tokio::test]
async fn refuses_a_wrong_issuer() {
    let f = fixture().await;
    assert!(matches!(
        f.refuse(&sign(&with(claims(), "iss", json!("https://evil.test"))))
            .await,
        TokenError::WrongIssuer
    ));
    assert!(matches!(
        f.refuse(&sign(&without(claims(), "iss"))).await,
        TokenError::MissingClaim("iss")
    ));
}

#[tokio::test]
async fn refuses_an_expired_token() {
    let f = fixture().await;
    let t = now().unix_timestamp();
    let c = with(with(claims(), "iat", json!(t - 200)), "exp", json!(t - 80));
    assert!(matches!(f.refuse(&sign(&c)).await, TokenError::Expired));
}

#[tokio::test]
async fn refuses_iat_in_the_future_beyond_the_skew() {
    let f = fixture().await;
    let t = now().unix_timestamp();
    let c = with(with(claims(), "iat", json!(t + 120)), "exp", json!(t + 240));
    assert!(matches!(
        f.refuse(&sign(&c)).await,
        TokenError::IssuedInFuture
    ));
    assert!(matches!(
        f.refuse(&sign(&without(claims(), "iat"))).await,
        TokenError::MissingClaim("iat")
    ));
}

#[tokio::test]
async fn refuses_a_token_older_than_the_maximum_age() {
    let f = fixture().await;
    let c = with(
        without(claims(), "exp"),
        "iat",
        json!(now().unix_timestamp() - 400),
    );
    assert!(matches!(f.refuse(&sign(&c)).await, TokenError::TooOld));
}

#[tokio::test]
async fn refuses_missing_events() {
    let f = fixture().await;
    let cases = [
        without(claims(), "events"),
        with(claims(), "events", json!({})),
        with(
            claims(),
            "events",
            json!({"http://schemas.openid.net/event/other": {}}),
        ),
        with(
            claims(),
            "events",
            json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" }),
        ),
        with(claims(), "events", json!([BACKCHANNEL_LOGOUT_EVENT])),
    ];
    for c in cases {
        assert!(matches!(
            f.refuse(&sign(&c)).await,
            TokenError::MissingLogoutEvent
        ));
    }
}

#[tokio::test]
async fn refuses_a_nonce() {
    let f = fixture().await;
    assert!(matches!(
        f.refuse(&sign(&with(claims(), "nonce", json!("n")))).await,
        TokenError::NoncePresent
    ));
}

#[tokio::test]
async fn refuses_neither_sid_nor_sub() {
    let f = fixture().await;
    let c = without(without(claims(), "sid"), "sub");
    assert!(matches!(
        f.refuse(&sign(&c)).await,
        TokenError::NoSubjectOrSid
    ));
}

#[tokio::test]
async fn refuses_another_typ() {
    let f = fixture().await;
    for typ in ["JWT", "at+jwt", "secevent+jwt"] {
        let token = sign_with(
            Algorithm::RS256,
            &rsa(RSA1),
            Some("rsa1"),
            Some(typ),
            &claims(),
        );
        assert!(matches!(f.refuse(&token).await, TokenError::WrongType));
    }
}

#[tokio::test]
async fn refuses_a_missing_jti_and_a_replayed_one() {
    let f = fixture().await;
    assert!(matches!(
        f.refuse(&sign(&without(claims(), "jti"))).await,
        TokenError::MissingClaim("jti")
    ));

    let token = sign(&claims());
    f.validator.validate(&token, now()).await.unwrap();
    let err = f.validator.validate(&token, now()).await.unwrap_err();
    assert!(matches!(err, TokenError::Replayed));
    // Another token with the same jti is the same replay.
    let mut again = claims();
    again["jti"] = serde_json::from_str::<Value>(
        &String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap()["jti"]
        .clone();
    assert!(matches!(
        f.validator.validate(&sign(&again), now()).await,
        Err(TokenError::Replayed)
    ));
}

#[tokio::test]
async fn a_refused_token_does_not_use_up_its_jti() {
    let f = fixture().await;
    let c = claims();
    f.refuse(&sign(&with(c.clone(), "aud", json!("other"))))
        .await;
    f.validator.validate(&sign(&c), now()).await.unwrap();
}

#[tokio::test]
async fn refuses_malformed_tokens() {
    let f = fixture().await;
    for token in [
        "",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        "!!.??.##",
        &"a".repeat(20_000),
    ] {
        assert!(
            matches!(f.refuse(token).await, TokenError::Malformed),
            "{token:.20}"
        );
    }
    // Claims of the wrong JSON type.
    assert!(matches!(
        f.refuse(&sign(&with(claims(), "sid", json!(7)))).await,
        TokenError::Malformed
    ));
    assert!(matches!(
        f.refuse(&sign(&with(claims(), "iat", json!("now")))).await,
        TokenError::Malformed
    ));
}

#[tokio::test]
async fn unreachable_keys_are_a_server_error() {
    let port = support::free_port();
    let validator = LogoutTokenValidator::new(
        ISS,
        AUD,
        Jwks::url(format!("http://127.0.0.1:{port}/jwks")),
        MemoryReplayGuard::new(),
    );
    let err = validator
        .validate(&sign(&claims()), now())
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::JwksUnavailable(_)), "{err:?}");
    assert!(err.is_server_error());
    assert!(
        logout_error(&err)
            .body()
            .starts_with(r#"{"error":"temporarily_unavailable""#)
    );
}
