//! [`Error`]: everything the tool can fail with, each a one-line message.

use session_core::{ConfigError, SessionError};

use crate::connect::{ConnectError, SHARED};

/// Why a command failed. `Display` is one line, and holds no password, key or token.
/// Every kind exits with status 2 ([`Error::EXIT_STATUS`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given on the command line that cannot work (a time, a network, a filter
    /// with no field, a refused confirmation…), in words that name the option.
    #[error("{0}")]
    Usage(String),
    /// Neither `--store` nor `SESSION_STORE`.
    #[error("no store: give --store URL or set SESSION_STORE (use {SHARED})")]
    NoStore,
    /// A revocation asked for without the deployment's keys.
    #[error(
        "revoking needs the deployment's keys (--keys or SESSION_KEYS): running nodes only trust a revocation push signed with them"
    )]
    KeysRequired,
    /// `SESSION_KEYS` / `--keys` does not parse (the message never shows a key).
    #[error("SESSION_KEYS: {0}")]
    Keys(ConfigError),
    /// The store could not be opened.
    #[error("cannot open {url}: {source}")]
    Connect {
        /// The store's URL, password masked.
        url: String,
        /// Why.
        source: ConnectError,
    },
    /// The store failed during the command.
    #[error("{0}")]
    Store(#[from] SessionError),
    /// Writing the output or reading the confirmation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The exit status of a failed command.
    pub const EXIT_STATUS: u8 = 2;

    /// Whether the output went to a pipe that closed (`session-admin … | head`): not a
    /// failure worth a message.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The message as one line: any line break a driver's message held becomes `; `.
    #[must_use]
    pub fn one_line(&self) -> String {
        one_line(&self.to_string())
    }
}

/// `text` on one line, control characters dropped.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

impl From<session_core::StoreError> for Error {
    fn from(e: session_core::StoreError) -> Self {
        Self::Store(e.into())
    }
}
