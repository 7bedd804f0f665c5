//! SCIM 2.0 deprovisioning (RFC 7644): the parts of `/scim/v2/Users/{id}` that end a
//! user's access.
//!
//! **Only deprovisioning is implemented.** `PATCH` is read for the `active` attribute alone
//! ([`parse_patch`] gives [`ActiveChange`]); `DELETE` needs no parsing (the app treats it
//! as deactivation). There is no user creation, no search, no `PUT`, no groups, no
//! `/ServiceProviderConfig`; other attributes in a `PATCH` are ignored. A provider whose
//! provisioning needs those must talk to a full SCIM server.
//!
//! [`ScimBearer`] checks the provider's bearer token in constant time; [`ScimError`] and
//! [`ScimUser`] are the bodies (`application/scim+json`).
//!
//! # Example
//!
//! ```
//! use session_idp::scim::{parse_patch, ActiveChange, ScimBearer, ScimError, ScimUser};
//!
//! let bearer = ScimBearer::new("a-long-random-token-from-the-provider-config").unwrap();
//! let authorization = Some("Bearer a-long-random-token-from-the-provider-config");
//! let body = br#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [{"op": "Replace", "path": "active", "value": false}]}"#;
//!
//! let answer = match bearer.check(authorization).and_then(|()| parse_patch(body)) {
//!     Ok(ActiveChange::Deactivate) => {
//!         // revoke every session of the user, refuse their logins …
//!         ScimUser::new("alice", "alice", false).into_response(200)
//!     }
//!     Ok(_) => ScimUser::new("alice", "alice", true).into_response(200),
//!     Err(err) => err.into_response(),
//! };
//! assert_eq!(answer.status(), 200);
//! assert_eq!(answer.headers()["content-type"], "application/scim+json");
//! assert!(answer.body().contains(r#""active":false"#));
//! ```

mod auth;
mod body;
mod patch;

pub use auth::ScimBearer;
pub use body::{
    SCIM_CONTENT_TYPE, SCIM_ERROR_SCHEMA, SCIM_USER_SCHEMA, ScimError, ScimUser,
    is_scim_content_type,
};
pub use patch::{ActiveChange, PATCH_OP_SCHEMA, parse_patch};
