//! Reading a SCIM PatchOp request for the `active` attribute.

use serde_json::{Map, Value};

use super::ScimError;

/// The schema URI of a PatchOp request body.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The `active` attribute with its core schema prefix, a form some providers send as path.
const QUALIFIED_ACTIVE: &str = "urn:ietf:params:scim:schemas:core:2.0:User:active";

/// The largest PatchOp body read.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// What a `PATCH` does to the user's `active` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActiveChange {
    /// `active` set to `false`: deprovision (revoke the sessions, refuse logins).
    Deactivate,
    /// `active` set to `true`: allow logins again.
    Activate,
    /// The request does not touch `active` (it changes attributes this crate ignores).
    NoChange,
}

/// Reads a PatchOp body (RFC 7644 section 3.5.2) for the `active` attribute.
///
/// Accepted: `schemas` containing [`PATCH_OP_SCHEMA`]; `Operations` a non-empty array;
/// each `op` `add`, `replace` or `remove`, in any case (Entra ID sends `Replace`);
/// `active` set either by `path` (`active`, or `urn:…:core:2.0:User:active`) with a
/// value, or with no path and a value object holding `active`; the value a boolean or
/// the strings `"true"` / `"false"` in any case (Entra ID sends `"False"`). The last
/// operation that sets `active` decides. Other attributes and `remove` operations are
/// ignored.
///
/// ```
/// use session_idp::scim::{parse_patch, ActiveChange};
///
/// // Okta's deactivation.
/// let okta = br#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
///     "Operations": [{"op": "replace", "value": {"active": false}}]}"#;
/// assert_eq!(parse_patch(okta).unwrap(), ActiveChange::Deactivate);
///
/// let bad = br#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
///     "Operations": [{"op": "replace", "path": "active", "value": "maybe"}]}"#;
/// assert_eq!(parse_patch(bad).unwrap_err().scim_type(), Some("invalidValue"));
/// ```
pub fn parse_patch(body: &[u8]) -> Result<ActiveChange, ScimError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ScimError::new(413, None, "The request body is too large"));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::invalid_syntax(
            "The request body is not a JSON object",
        ));
    };
    let is_patch_op = member(&request, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|schemas| schemas.iter().any(|s| s.as_str() == Some(PATCH_OP_SCHEMA)));
    if !is_patch_op {
        return Err(ScimError::invalid_syntax(format!(
            "schemas must contain {PATCH_OP_SCHEMA}"
        )));
    }
    let operations = match member(&request, "Operations") {
        Some(Value::Array(ops)) if !ops.is_empty() => ops,
        _ => {
            return Err(ScimError::invalid_syntax(
                "Operations must be a non-empty array",
            ));
        }
    };
    let mut active = None;
    for operation in operations {
        let Value::Object(operation) = operation else {
            return Err(ScimError::invalid_syntax(
                "Each operation must be an object",
            ));
        };
        let op = member(operation, "op")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let sets = if op.eq_ignore_ascii_case("add") || op.eq_ignore_ascii_case("replace") {
            true
        } else if op.eq_ignore_ascii_case("remove") {
            false
        } else {
            return Err(ScimError::invalid_syntax(format!("Unsupported op {op:?}")));
        };
        let value = member(operation, "value");
        match member(operation, "path") {
            Some(Value::String(path)) => {
                let path = path.trim();
                if !(path.eq_ignore_ascii_case("active")
                    || path.eq_ignore_ascii_case(QUALIFIED_ACTIVE))
                {
                    continue;
                }
                if sets {
                    let value = value
                        .ok_or_else(|| ScimError::invalid_syntax("The operation has no value"))?;
                    active = Some(boolean(value)?);
                }
            }
            None | Some(Value::Null) => {
                if !sets {
                    return Err(ScimError::new(
                        400,
                        Some("noTarget"),
                        "A remove operation needs a path",
                    ));
                }
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::invalid_syntax(
                        "An operation without path needs an object value",
                    ));
                };
                let found = member(values, "active").or_else(|| member(values, QUALIFIED_ACTIVE));
                if let Some(value) = found {
                    active = Some(boolean(value)?);
                }
            }
            Some(_) => {
                return Err(ScimError::new(
                    400,
                    Some("invalidPath"),
                    "path must be a string",
                ));
            }
        }
    }
    Ok(match active {
        Some(false) => ActiveChange::Deactivate,
        Some(true) => ActiveChange::Activate,
        None => ActiveChange::NoChange,
    })
}

/// A member by name, case-insensitively (SCIM attribute names are).
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn boolean(value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::invalid_value("active must be a boolean")),
    }
}
