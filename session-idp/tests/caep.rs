//! CAEP session-revoked SETs: signing and validating (ES256, EdDSA), the RFC 8417 claims,
//! each refusal, and an RFC 8935 push over HTTP to a receiver built from the helpers.

mod support;

use std::sync::Arc;

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use session_idp::caep::{
    CaepEvent, PushOutcome, SESSION_REVOKED_EVENT, SessionRevoked, SetSigner, SetValidator,
    Subject, parse_push_request, push_accepted, push_error, push_request,
};
use session_idp::jwks::Jwks;
use session_idp::replay::MemoryReplayGuard;
use session_idp::token::TokenError;
use support::JwksServer;
use time::OffsetDateTime;

const TRANSMITTER: &str = "https://app.test";
const RECEIVER: &str = "https://receiver.test/caep";

const EC1: &str = include_str!("keys/ec1.pem");
const EC2: &str = include_str!("keys/ec2.pem");
const ED1: &str = include_str!("keys/ed1.pem");
const ED2: &str = include_str!("keys/ed2.pem");

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn es256() -> SetSigner {
    SetSigner::es256_pem(TRANSMITTER, EC1.as_bytes()).unwrap()
}

fn eddsa() -> SetSigner {
    SetSigner::eddsa_pem(TRANSMITTER, ED1.as_bytes()).unwrap()
}

fn validator(signer: &SetSigner) -> SetValidator {
    SetValidator::new(
        TRANSMITTER,
        RECEIVER,
        Jwks::inline(signer.jwks()),
        MemoryReplayGuard::new(),
    )
}

fn event() -> SessionRevoked {
    SessionRevoked::new(Subject::iss_sub("https://op.test", "alice"), now())
        .with_initiating_entity("admin")
        .with_reason_admin("en", "offboarding")
}

/// Header and claims of a SET, undecoded by any validation (to inspect what was sent).
fn parts(set: &str) -> (Value, Value) {
    let data = jsonwebtoken::dangerous::insecure_decode::<Value>(set).unwrap();
    (serde_json::to_value(data.header).unwrap(), data.claims)
}

/// Signs arbitrary claims as the ES256 transmitter would (to build malformed SETs).
fn sign_raw(claims: &Value, typ: Option<&str>) -> String {
    let signer = es256();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = typ.map(Into::into);
    header.kid = signer.jwks().keys[0].common.key_id.clone();
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(EC1.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn valid_claims() -> Value {
    json!({
        "iss": TRANSMITTER,
        "aud": RECEIVER,
        "iat": now().unix_timestamp(),
        "jti": format!("{:?}", std::time::Instant::now()),
        "sub_id": {"format": "opaque", "id": "s-1"},
        "events": { SESSION_REVOKED_EVENT: { "event_timestamp": now().unix_timestamp() } },
    })
}

#[tokio::test]
async fn round_trip_es256_and_eddsa() {
    for signer in [es256(), eddsa()] {
        let v = validator(&signer);
        let e = event();
        let set = signer.session_revoked(&e, RECEIVER, now()).unwrap();
        let received = v.validate(&set, now()).await.unwrap();
        assert_eq!(received.issuer, TRANSMITTER);
        assert_eq!(
            received.subject,
            Subject::iss_sub("https://op.test", "alice")
        );
        let CaepEvent::SessionRevoked(got) = received.event else {
            panic!("session-revoked")
        };
        assert_eq!(
            got.event_timestamp.unix_timestamp(),
            e.event_timestamp.unix_timestamp()
        );
        assert_eq!(got.initiating_entity.as_deref(), Some("admin"));
        assert_eq!(got.reason_admin["en"], "offboarding");
    }
}

#[tokio::test]
async fn keys_can_come_from_a_jwks_url() {
    let signer = eddsa();
    let server = JwksServer::start(serde_json::to_value(signer.jwks()).unwrap()).await;
    let v = SetValidator::new(
        TRANSMITTER,
        RECEIVER,
        Jwks::url(&server.url),
        MemoryReplayGuard::new(),
    );
    let set = signer.session_revoked(&event(), RECEIVER, now()).unwrap();
    v.validate(&set, now()).await.unwrap();
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn sets_carry_the_rfc_8417_claims() {
    let signer = es256();
    let at = now();
    let set = signer.session_revoked(&event(), RECEIVER, at).unwrap();
    let (header, claims) = parts(&set);
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(
        header["kid"],
        signer.jwks().keys[0]
            .common
            .key_id
            .clone()
            .unwrap()
            .as_str()
    );
    assert_eq!(claims["iss"], TRANSMITTER);
    assert_eq!(claims["aud"], RECEIVER);
    assert_eq!(claims["iat"], at.unix_timestamp());
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 32);
    assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        claims["sub_id"],
        json!({"format": "iss_sub", "iss": "https://op.test", "sub": "alice"})
    );
    // One event, the session-revoked one, with its timestamp.
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[SESSION_REVOKED_EVENT]["event_timestamp"],
        at.unix_timestamp()
    );
    // No sub to conflict with sub_id, no exp, no nonce.
    for absent in ["sub", "exp", "nonce"] {
        assert!(claims.get(absent).is_none(), "{absent} must not be present");
    }
    // Every SET has its own jti.
    let (_, other) = parts(&signer.session_revoked(&event(), RECEIVER, at).unwrap());
    assert_ne!(other["jti"], claims["jti"]);
    // An opaque subject.
    let opaque = SessionRevoked::new(Subject::opaque("session-9"), at);
    let (_, claims) = parts(&signer.session_revoked(&opaque, RECEIVER, at).unwrap());
    assert_eq!(
        claims["sub_id"],
        json!({"format": "opaque", "id": "session-9"})
    );
}

#[tokio::test]
async fn refuses_a_bad_signature() {
    // ES256 and EdDSA: signed with another key under the published key's kid.
    for (good, bad) in [
        (
            es256(),
            SetSigner::es256_pem(TRANSMITTER, EC2.as_bytes()).unwrap(),
        ),
        (
            eddsa(),
            SetSigner::eddsa_pem(TRANSMITTER, ED2.as_bytes()).unwrap(),
        ),
    ] {
        let kid = good.jwks().keys[0].common.key_id.clone().unwrap();
        let forged = bad
            .with_key_id(kid)
            .session_revoked(&event(), RECEIVER, now())
            .unwrap();
        let err = validator(&good).validate(&forged, now()).await.unwrap_err();
        assert!(matches!(err, TokenError::BadSignature), "{err:?}");
        assert_eq!(
            push_error(&err).body(),
            r#"{"err":"invalid_key","description":"the token's signature is invalid"}"#
        );
    }
}

#[tokio::test]
async fn refuses_a_wrong_audience() {
    let signer = es256();
    let set = signer
        .session_revoked(&event(), "https://someone-else.test", now())
        .unwrap();
    let err = validator(&signer).validate(&set, now()).await.unwrap_err();
    assert!(matches!(err, TokenError::WrongAudience));
    assert_eq!(push_error(&err).status(), 400);
}

#[tokio::test]
async fn refuses_a_wrong_issuer() {
    let impostor = SetSigner::es256_pem("https://impostor.test", EC1.as_bytes()).unwrap();
    let set = impostor.session_revoked(&event(), RECEIVER, now()).unwrap();
    let err = validator(&es256()).validate(&set, now()).await.unwrap_err();
    assert!(matches!(err, TokenError::WrongIssuer));
    assert!(
        push_error(&err)
            .body()
            .contains(r#""err":"invalid_issuer""#)
    );
}

#[tokio::test]
async fn refuses_a_replayed_jti() {
    let signer = eddsa();
    let v = validator(&signer);
    let set = signer.session_revoked(&event(), RECEIVER, now()).unwrap();
    v.validate(&set, now()).await.unwrap();
    assert!(matches!(
        v.validate(&set, now()).await,
        Err(TokenError::Replayed)
    ));
}

#[tokio::test]
async fn refuses_missing_events_and_other_rfc_8417_violations() {
    let v = validator(&es256());
    let with = |name: &str, value: Value| {
        let mut c = valid_claims();
        c[name] = value;
        c
    };
    let without = |name: &str| {
        let mut c = valid_claims();
        c.as_object_mut().unwrap().remove(name);
        c
    };
    let typ = Some("secevent+jwt");
    type Expect = fn(&TokenError) -> bool;
    let cases: Vec<(String, Expect)> = vec![
        (sign_raw(&valid_claims(), typ), |_| false),
        (sign_raw(&without("events"), typ), |e| {
            matches!(e, TokenError::MissingEvents)
        }),
        (sign_raw(&with("events", json!({})), typ), |e| {
            matches!(e, TokenError::MissingEvents)
        }),
        (sign_raw(&with("events", json!("x")), typ), |e| {
            matches!(e, TokenError::MissingEvents)
        }),
        (sign_raw(&without("jti"), typ), |e| {
            matches!(e, TokenError::MissingClaim("jti"))
        }),
        (sign_raw(&without("iat"), typ), |e| {
            matches!(e, TokenError::MissingClaim("iat"))
        }),
        (
            sign_raw(&with("iat", json!(now().unix_timestamp() + 600)), typ),
            |e| matches!(e, TokenError::IssuedInFuture),
        ),
        (
            sign_raw(&with("iat", json!(now().unix_timestamp() - 7200)), typ),
            |e| matches!(e, TokenError::TooOld),
        ),
        (sign_raw(&without("sub_id"), typ), |e| {
            matches!(e, TokenError::MissingSubject)
        }),
        (sign_raw(&with("sub", json!("mallory")), typ), |e| {
            matches!(e, TokenError::SubjectConflict)
        }),
        (sign_raw(&valid_claims(), None), |e| {
            matches!(e, TokenError::WrongType)
        }),
        (sign_raw(&valid_claims(), Some("JWT")), |e| {
            matches!(e, TokenError::WrongType)
        }),
    ];
    for (i, (set, expected)) in cases.into_iter().enumerate() {
        match v.validate(&set, now()).await {
            Ok(_) => assert_eq!(i, 0, "case {i} must be refused"),
            Err(err) => assert!(expected(&err), "case {i}: {err:?}"),
        }
    }
    // A SET from a transmitter on an earlier CAEP draft: the subject inside the event.
    let mut c = without("sub_id");
    c["events"][SESSION_REVOKED_EVENT]["subject"] = json!({"format": "opaque", "id": "s-2"});
    let received = v.validate(&sign_raw(&c, typ), now()).await.unwrap();
    assert_eq!(received.subject, Subject::opaque("s-2"));
}

#[tokio::test]
async fn refuses_alg_none() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let set = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"secevent+jwt"}"#),
        b64.encode(valid_claims().to_string())
    );
    let err = validator(&es256()).validate(&set, now()).await.unwrap_err();
    assert!(matches!(err, TokenError::AlgNone));
}

#[tokio::test]
async fn push_delivery_over_http() {
    let signer = eddsa();
    let v = Arc::new(validator(&signer));
    let receiver = axum::Router::new().route(
        "/caep",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let v = v.clone();
            async move {
                let content_type = headers.get("content-type").and_then(|h| h.to_str().ok());
                let set = match parse_push_request(content_type, &body) {
                    Ok(set) => set.to_owned(),
                    Err(err) => return push_error(&err),
                };
                match v.validate(&set, OffsetDateTime::now_utc()).await {
                    Ok(_) => push_accepted(),
                    Err(err) => push_error(&err),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/caep", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let http = reqwest::Client::new();
    let send = |set: String| {
        let request = push_request(&endpoint, &set, Some("Bearer push-credential")).unwrap();
        let http = http.clone();
        async move {
            let request = reqwest::Request::try_from(request).unwrap();
            let response = http.execute(request).await.unwrap();
            let status = response.status().as_u16();
            PushOutcome::from_response(status, &response.bytes().await.unwrap())
        }
    };
    let set = signer.session_revoked(&event(), RECEIVER, now()).unwrap();
    assert_eq!(send(set.clone()).await, PushOutcome::Accepted);
    assert_eq!(
        send(set).await,
        PushOutcome::Rejected {
            err: "invalid_request".into(),
            description: Some("the token was already used (jti replay)".into())
        }
    );
    let elsewhere = signer
        .session_revoked(&event(), "https://other.test", now())
        .unwrap();
    assert!(
        matches!(send(elsewhere).await, PushOutcome::Rejected { err, .. } if err == "invalid_audience")
    );
}
