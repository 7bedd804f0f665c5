//! SCIM deprovisioning: the PatchOp bodies that Okta, Microsoft Entra ID and OneLogin send,
//! the refusals, and the exact bodies answered.

use session_idp::scim::{ActiveChange, ScimBearer, ScimError, ScimUser, parse_patch};

fn parse(body: &str) -> Result<ActiveChange, ScimError> {
    parse_patch(body.as_bytes())
}

// Okta, "SCIM 2.0 protocol reference", Update a specific user (PATCH): deactivation is a
// replace without path whose value object holds `active`.
const OKTA_DEACTIVATE: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "active": false
        }
    }]
}"#;

const OKTA_REACTIVATE: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "replace",
        "value": {
            "active": true
        }
    }]
}"#;

// Microsoft Entra ID, "Tutorial: Develop and plan provisioning for a SCIM endpoint",
// Disable user: op "Replace" (capitalised), path "active".
const ENTRA_DISABLE: &str = r#"{
    "Operations": [
        {
            "op": "Replace",
            "path": "active",
            "value": false
        }
    ],
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ]
}"#;

// Microsoft Entra ID, "Known issues and resolutions with SCIM 2.0 protocol compliance":
// without the aadOptscim062020 flag, booleans are sent as the strings "True"/"False".
const ENTRA_DISABLE_STRING: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {
            "op": "Replace",
            "path": "active",
            "value": "False"
        }
    ]
}"#;

const ENTRA_DISABLE_STRING_NO_PATH: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {
            "op": "Replace",
            "value": {
                "active": "False"
            }
        }
    ]
}"#;

// Microsoft Entra ID: an attribute update that does not touch `active` (the tutorial's
// "Update user [Multi-valued properties]" shape).
const ENTRA_UPDATE_EMAIL: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {
            "op": "Replace",
            "path": "emails[type eq \"work\"].value",
            "value": "updatedEmail@microsoft.com"
        },
        {
            "op": "Replace",
            "path": "name.familyName",
            "value": "updatedFamilyName"
        }
    ]
}"#;

// OneLogin, "SCIM Provisioner with SAML (SCIM v2 Enterprise)": updates are a replace
// without path carrying the attributes of the app's SCIM JSON template; the template in
// OneLogin's setup guide quotes `"active": "{$user.active}"`, so `active` arrives as a
// string among the other attributes.
const ONELOGIN_DEACTIVATE: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
        {
            "op": "replace",
            "value": {
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "department": "Engineering"
                },
                "active": "false",
                "emails": [{"value": "alice@example.com", "type": "work", "primary": true}],
                "name": {"familyName": "Liddell", "givenName": "Alice", "formatted": "Alice Liddell"},
                "userName": "alice"
            }
        }
    ]
}"#;

#[test]
fn provider_bodies() {
    assert_eq!(parse(OKTA_DEACTIVATE).unwrap(), ActiveChange::Deactivate);
    assert_eq!(parse(OKTA_REACTIVATE).unwrap(), ActiveChange::Activate);
    assert_eq!(parse(ENTRA_DISABLE).unwrap(), ActiveChange::Deactivate);
    assert_eq!(
        parse(ENTRA_DISABLE_STRING).unwrap(),
        ActiveChange::Deactivate
    );
    assert_eq!(
        parse(ENTRA_DISABLE_STRING_NO_PATH).unwrap(),
        ActiveChange::Deactivate
    );
    assert_eq!(parse(ENTRA_UPDATE_EMAIL).unwrap(), ActiveChange::NoChange);
    assert_eq!(
        parse(ONELOGIN_DEACTIVATE).unwrap(),
        ActiveChange::Deactivate
    );
}

#[test]
fn other_accepted_shapes() {
    let patch = |ops: &str| {
        format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":{ops}}}"#
        )
    };
    let cases = [
        (
            r#"[{"op":"add","path":"active","value":true}]"#,
            ActiveChange::Activate,
        ),
        (
            r#"[{"op":"REPLACE","path":"Active","value":"TRUE"}]"#,
            ActiveChange::Activate,
        ),
        (
            r#"[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:active","value":false}]"#,
            ActiveChange::Deactivate,
        ),
        // The last operation on `active` decides.
        (
            r#"[{"op":"replace","path":"active","value":false},{"op":"replace","value":{"active":true}}]"#,
            ActiveChange::Activate,
        ),
        (
            r#"[{"op":"remove","path":"title"}]"#,
            ActiveChange::NoChange,
        ),
        (
            r#"[{"op":"replace","value":{"displayName":"A"}}]"#,
            ActiveChange::NoChange,
        ),
    ];
    for (ops, expected) in cases {
        assert_eq!(parse(&patch(ops)).unwrap(), expected, "{ops}");
    }
}

#[test]
fn refusals_with_exact_bodies() {
    let bad = |body: &str| parse(body).unwrap_err();
    assert_eq!(
        bad("not json").to_json(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidSyntax","detail":"The request body is not a JSON object"}"#
    );
    assert_eq!(
        bad(r#"{"Operations":[{"op":"replace","value":{"active":false}}]}"#).to_json(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidSyntax","detail":"schemas must contain urn:ietf:params:scim:api:messages:2.0:PatchOp"}"#
    );
    assert_eq!(
        bad(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}"#)
            .to_json(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidSyntax","detail":"Operations must be a non-empty array"}"#
    );
    assert_eq!(
        bad(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"move","path":"active"}]}"#)
            .to_json(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidSyntax","detail":"Unsupported op \"move\""}"#
    );
    assert_eq!(
        bad(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":0}]}"#)
            .to_json(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue","detail":"active must be a boolean"}"#
    );
    assert_eq!(
        bad(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":"active"}]}"#)
            .scim_type(),
        Some("invalidSyntax")
    );
}

#[test]
fn answers_are_scim_json() {
    let answer = ScimError::not_found("mallory").into_response();
    assert_eq!(answer.status(), 404);
    assert_eq!(answer.headers()["content-type"], "application/scim+json");
    assert_eq!(
        answer.body(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"User mallory not found"}"#
    );

    let answer = ScimError::unauthorized().into_response();
    assert_eq!(answer.status(), 401);
    assert_eq!(answer.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        answer.body(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"Authorization failure: a valid bearer token is required"}"#
    );

    let answer = ScimUser::new("alice", "alice", false).into_response(200);
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/scim+json");
    assert_eq!(
        answer.body(),
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"alice","userName":"alice","active":false,"meta":{"resourceType":"User"}}"#
    );
}

#[test]
fn bearer_check() {
    let token = "scim-token-0123456789abcdef0123456789";
    let bearer = ScimBearer::new(token).unwrap();
    assert!(bearer.check(Some(&format!("Bearer {token}"))).is_ok());
    assert!(bearer.check(Some(&format!("bearer {token}"))).is_ok());
    for wrong in [
        None,
        Some(String::new()),
        Some(token.to_owned()),
        Some(format!("Basic {token}")),
        Some(format!("Bearer {token}x")),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some("Bearer ".to_owned()),
    ] {
        let err = bearer.check(wrong.as_deref()).unwrap_err();
        assert_eq!(err.status(), 401, "{wrong:?}");
    }
    assert!(ScimBearer::new("short").is_err());
    assert!(!format!("{bearer:?}").contains(token));
}
