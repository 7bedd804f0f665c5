//! What every app does with sessions besides checking them: sign in (answering with the
//! cookie), sign out (clearing it), sign out everywhere. Each answers with a framework-neutral
//! [`Reply`]; `session_tower` and `session_actix` wrap them in their own response types.

use http::header::SET_COOKIE;

use super::SessionGate;
use crate::model::{Actor, IdpLink, Principal, RevocationReason, UserId};
use crate::reply::Reply;
use crate::session::{ClientInfo, LoginEpoch, Session};
use crate::store::RevokeScope;

impl SessionGate {
    /// Signs `user` in, once the app has checked their credentials: revokes `replacing`
    /// (the session the request came with, if any: a login never reuses one), issues a new
    /// session recording `client`, and answers 303 to `return_to` when it is a local path
    /// ([`local_redirect`](crate::local_redirect)), else `/`, with the session cookie.
    ///
    /// Read `epoch` with [`SessionManager::login_epoch`](crate::SessionManager::login_epoch)
    /// *before* checking the password, so a password reset that lands in between wins (the
    /// login then answers 409).
    ///
    /// # Errors
    ///
    /// None: a failure is answered too ([`SessionGate::error_reply`]: 503 when the store
    /// is down, 409 when a revoke-all overtook the login, 403 for a disabled user).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{ClientInfo, KeySet, MemoryStore, SessionConfig, SessionGate, SessionManager, UserId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
    /// let gate = SessionGate::new(manager.clone());
    /// let alice = UserId::from("alice");
    /// let epoch = manager.login_epoch(&alice).await?;
    /// // … the app checks alice's password here …
    /// let reply = gate.sign_in(epoch, alice, ClientInfo::default(), Some("//evil.example"), None).await;
    /// assert_eq!(reply.status, 303);
    /// assert_eq!(reply.header("location").unwrap(), "/", "not an open redirect");
    /// assert!(reply.header("set-cookie").unwrap().to_str()?.starts_with("__Host-session="));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sign_in(
        &self,
        epoch: LoginEpoch,
        user: UserId,
        client: ClientInfo,
        return_to: Option<&str>,
        replacing: Option<&Session>,
    ) -> Reply {
        self.sign_in_as(epoch, user, None, client, return_to, replacing)
            .await
    }

    /// As [`SessionGate::sign_in`], for a user who signed in through an identity provider:
    /// the session records the provider's session (`link`), so that the provider can end
    /// it (back-channel logout).
    pub async fn sign_in_via_idp(
        &self,
        epoch: LoginEpoch,
        user: UserId,
        link: IdpLink,
        client: ClientInfo,
        return_to: Option<&str>,
        replacing: Option<&Session>,
    ) -> Reply {
        self.sign_in_as(epoch, user, Some(link), client, return_to, replacing)
            .await
    }

    async fn sign_in_as(
        &self,
        epoch: LoginEpoch,
        user: UserId,
        link: Option<IdpLink>,
        client: ClientInfo,
        return_to: Option<&str>,
        replacing: Option<&Session>,
    ) -> Reply {
        let manager = self.manager();
        if let Some(old) = replacing
            && let Err(e) = manager
                .revoke(old.id(), RevocationReason::SignedOut, Actor::User)
                .await
        {
            return self.error_reply(&e);
        }
        let issued = match link {
            Some(link) => manager.issue_via_idp(epoch, user, link, client).await,
            None => {
                manager
                    .issue_after(epoch, Principal::user(user), client)
                    .await
            }
        };
        match issued {
            Ok(issued) => Reply::see_other(crate::local_redirect(return_to))
                .with_header(SET_COOKIE, self.session_cookie(&issued.token)),
            Err(e) => self.error_reply(&e),
        }
    }

    /// Signs this session out: revokes it (reason `signed_out`), answers 303 to `to` (a
    /// local path of the app's: its login page) and clears the cookie.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::{ClientInfo, KeySet, MemoryStore, Principal, SessionConfig, SessionGate, SessionManager};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let manager = SessionManager::new(Arc::new(MemoryStore::new()), KeySet::random(), SessionConfig::default())?;
    /// let gate = SessionGate::new(manager.clone());
    /// let issued = manager.issue(Principal::user("alice"), ClientInfo::default()).await?;
    /// let reply = gate.sign_out(&issued.session, "/login").await;
    /// assert_eq!(reply.status, 303);
    /// assert_eq!(reply.header("location").unwrap(), "/login");
    /// assert!(reply.header("set-cookie").unwrap().to_str()?.contains("Max-Age=0"));
    /// assert!(manager.validate(issued.token.expose().as_bytes()).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sign_out(&self, session: &Session, to: &str) -> Reply {
        match self
            .manager()
            .revoke(
                session.id(),
                RevocationReason::SignedOut,
                Actor::of(session.kind()),
            )
            .await
        {
            Ok(_) => Reply::see_other(to).with_header(SET_COOKIE, self.clear_cookie()),
            Err(e) => self.error_reply(&e),
        }
    }

    /// Signs the user out everywhere: every session and agent of theirs, this one
    /// included (reason `signed_out_everywhere`), in one store operation; answers 303 to
    /// `to` and clears the cookie.
    pub async fn sign_out_everywhere(&self, session: &Session, to: &str) -> Reply {
        match self
            .manager()
            .revoke_all(
                session.user_id(),
                RevokeScope::All,
                None,
                RevocationReason::SignedOutEverywhere,
                Actor::of(session.kind()),
            )
            .await
        {
            Ok(_) => Reply::see_other(to).with_header(SET_COOKIE, self.clear_cookie()),
            Err(e) => self.error_reply(&e),
        }
    }
}
