//! `session-admin`: the operators' tool for revocable sessions, and the library under it.
//!
//! # The tool
//!
//! ```text
//! session-admin [--store URL] [--keys KEYS] [--json] [--timeout SECS] COMMAND
//!
//!   sessions list --user U                   a user's live sessions
//!   sessions revoke ID                       one session
//!   sessions revoke-all --user U             all of a user's sessions and agents
//!   sessions revoke-matching [--created-before T] [--ip CIDR] [--user-agent S]
//!                            [--kind user|agent] [--dry-run]
//!   sign-out-everyone [--yes]                every session of every user
//!   events tail [--follow] [--type T] [-n N] [--after CURSOR]
//!   audit --user U [--limit N] [--before CURSOR]
//!   purge [--keep-sessions DAYS] [--keep-events DAYS]
//! ```
//!
//! It talks to the store the services share, named by the same URL as their
//! `SESSION_STORE` (`sqlite://PATH`, `redis://…`, `rediss://…`, `postgres://…`; see
//! [`connect`]). Revocations go through a [`SessionManager`](session_core::SessionManager)
//! built with the deployment's keys (`--keys` or `SESSION_KEYS`): written to the store with
//! their events (actor `admin`) in one operation, then published on the store's push
//! channel, signed, so every running node drops the sessions within milliseconds, as for a
//! revocation made by a node. Read-only commands and `purge` need no keys.
//!
//! People get aligned tables (the user agent cut to the terminal's width) and sentences;
//! `--json` prints one JSON document (JSON lines for `events tail --follow`). Bulk work
//! shows a spinner on stderr when it is a terminal. `sign-out-everyone` asks first unless
//! `--yes`, and refuses without a terminal to ask on.
//!
//! Exit status: 0 done; 1 nothing done (the session given was not active, or the operator
//! declined); 2 an error, printed as one line on stderr: a bad URL, a store that does not
//! answer within `--timeout`, a bad network or time, missing keys. The tool never prints a
//! store URL's password, a key or a token. `docs/operating.md` walks through each command.
//!
//! # The library
//!
//! - [`connect`]: a store from its URL; the example apps open `SESSION_STORE` through
//!   [`connect::connect`], so the tool and the apps accept the same URLs.
//! - [`ops`]: [`Admin`], the operations, each returning a value.
//! - [`output`]: the tables and the JSON views.
//! - [`parse`]: the values operators type (times, networks, reasons, keys).
//! - `cli` (feature `cli`, on by default): the arguments and the run, for the binary.
//!
//! ```
//! use session_admin::connect::connect;
//! use session_admin::{Admin, AdminOptions};
//! use session_core::{KeySet, Principal, ClientInfo, RevocationReason};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = connect("memory").await?.into_shared();
//! let admin = Admin::new(store, Some(KeySet::random()), AdminOptions::default())?;
//! let issued = admin.manager().issue(Principal::user("alice"), ClientInfo::default()).await?;
//! assert_eq!(admin.list(&"alice".into()).await?.len(), 1);
//! assert!(admin.revoke(issued.session.id(), RevocationReason::AdminRevoked).await?);
//! assert!(admin.list(&"alice".into()).await?.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! Built without the `cli` feature (`default-features = false`, as the example apps
//! depend on it), the crate pulls in neither clap nor indicatif.

#[cfg(feature = "cli")]
pub mod cli;
pub mod connect;
pub mod error;
pub mod ops;
pub mod output;
pub mod parse;

pub use connect::{ConnectError, OpenedStore, StoreUrl};
pub use error::Error;
pub use ops::{Admin, AdminOptions, EventsPage};
