//! What the two example apps share, so that neither writes it twice: settings read from
//! the environment (`../shared/CONTRACT.md`), the demo users, the login and home pages,
//! and the login and password-reset flows, and the OpenAPI document of the JSON routes
//! ([`openapi_json`]). Each app only routes and translates.

pub mod openapi;
mod users;

pub use openapi::openapi_json;
pub use users::Users;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use maud::{DOCTYPE, Markup, html};
use session_core::http::{StatusCode, header::SET_COOKIE};
use session_core::selfservice::Revoked;
use session_core::{
    Actor, ClientInfo, CookieConfig, KeySet, MemoryStore, Principal, Reply, RevocationReason,
    RevokeScope, SelfService, Session, SessionConfig, SessionGate, SessionManager, SessionStore,
    UserId, local_redirect,
};
use subtle::ConstantTimeEq;

/// The app's settings, from the environment.
#[derive(Debug)]
pub struct Settings {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The `SESSION_STORE` value.
    pub store: String,
    /// `SESSION_KEYS`, or a random key.
    pub keys: KeySet,
    /// Whether the cookie carries `Secure`.
    pub secure: bool,
    /// The timing policy.
    pub config: SessionConfig,
    /// `ADMIN_TOKEN`.
    pub admin_token: Option<String>,
}

fn secs(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
) -> Result<Duration, String> {
    match var(name) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("{name} must be a whole number of seconds")),
    }
}

impl Settings {
    /// Reads `BIND`, `PORT` (default `default_port`), `SESSION_STORE`, `SESSION_KEYS`,
    /// `SESSION_COOKIE_SECURE`, `SESSION_TTL_SECS`, `SESSION_IDLE_SECS`,
    /// `SESSION_CACHE_SECS` and `ADMIN_TOKEN`.
    ///
    /// # Errors
    ///
    /// A message naming the variable that is wrong.
    pub fn from_env(default_port: u16) -> Result<Self, String> {
        Self::from_lookup(default_port, |name| std::env::var(name).ok())
    }

    /// As [`Settings::from_env`], reading variables through `lookup` (tests pass a list).
    ///
    /// # Errors
    ///
    /// A message naming the variable that is wrong.
    pub fn from_lookup(
        default_port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let bind: IpAddr = var("BIND")
            .unwrap_or_else(|| "127.0.0.1".into())
            .parse()
            .map_err(|_| "BIND must be an IP address".to_owned())?;
        let port: u16 = match var("PORT") {
            Some(p) => p.trim().parse().map_err(|_| "PORT must be a port number")?,
            None => default_port,
        };
        let keys = match var("SESSION_KEYS") {
            Some(list) => {
                KeySet::from_base64_list(&list).map_err(|e| format!("SESSION_KEYS: {e}"))?
            }
            None => {
                tracing::warn!(
                    "SESSION_KEYS is not set: using a random key; sessions end with this process and are not shared"
                );
                KeySet::random()
            }
        };
        let secure = match var("SESSION_COOKIE_SECURE").as_deref() {
            None | Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(_) => return Err("SESSION_COOKIE_SECURE must be true or false".into()),
        };
        let config = SessionConfig::new()
            .with_ttl(secs(&var, "SESSION_TTL_SECS", 604_800)?)
            .map_err(|e| format!("SESSION_TTL_SECS: {e}"))?
            .with_idle_timeout(secs(&var, "SESSION_IDLE_SECS", 86_400)?)
            .map_err(|e| format!("SESSION_IDLE_SECS: {e}"))?
            .with_cache_ttl(secs(&var, "SESSION_CACHE_SECS", 30)?);
        Ok(Self {
            addr: SocketAddr::new(bind, port),
            store: var("SESSION_STORE").unwrap_or_else(|| "memory".into()),
            keys,
            secure,
            config,
            admin_token: var("ADMIN_TOKEN"),
        })
    }

    /// Opens the configured store.
    ///
    /// # Errors
    ///
    /// A message when the store kind is unknown or cannot be opened.
    pub async fn open_store(&self) -> Result<(Arc<dyn SessionStore>, Users), String> {
        let url = self.store.as_str();
        let failed = |e: session_core::StoreError| format!("SESSION_STORE: {e}");
        if url == "memory" {
            Ok((Arc::new(MemoryStore::new()), Users::in_memory()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            let store = session_sqlite::SqliteStore::open(path)
                .await
                .map_err(failed)?;
            let users = Users::sqlite(store.pool().clone()).await?;
            Ok((Arc::new(store), users))
        } else if url.starts_with("redis://") {
            let store = session_redis::RedisStore::connect(url)
                .await
                .map_err(failed)?;
            Ok((Arc::new(store), Users::redis(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = session_postgres::PostgresStore::connect(url)
                .await
                .map_err(failed)?;
            store.migrate().await.map_err(failed)?;
            let users = Users::postgres(store.pool().clone()).await?;
            Ok((Arc::new(store), users))
        } else {
            Err(format!(
                "SESSION_STORE={url:?}: use memory, sqlite://PATH, redis://HOST:PORT or postgres://…"
            ))
        }
    }
}

/// Start-up shared by both example binaries: logging (`RUST_LOG`, default `info`), the
/// settings from the environment, and the app state. Exits with a message on a
/// configuration error.
pub async fn start(default_port: u16) -> (Settings, Demo) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let exit = |e: String| -> ! {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    };
    let settings = Settings::from_env(default_port).unwrap_or_else(|e| exit(e));
    let demo = Demo::open(&settings).await.unwrap_or_else(|e| exit(e));
    (settings, demo)
}

/// Everything the routes need.
#[derive(Clone, Debug)]
pub struct Demo {
    /// The session routes.
    pub sessions: SelfService,
    /// The demo users.
    pub users: Users,
    /// `ADMIN_TOKEN`.
    pub admin_token: Option<Arc<str>>,
}

impl Demo {
    /// The app state from `settings`, with its store.
    ///
    /// # Errors
    ///
    /// As [`Settings::open_store`].
    pub async fn open(settings: &Settings) -> Result<Self, String> {
        let (store, users) = settings.open_store().await?;
        let mut demo = Self::with_store(settings, store);
        demo.users = users;
        Ok(demo)
    }

    /// The app state from `settings`, over a store of the caller's (tests inject faults).
    #[must_use]
    pub fn with_store(settings: &Settings, store: Arc<dyn SessionStore>) -> Self {
        let manager = SessionManager::new(store, settings.keys.clone(), settings.config.clone());
        let gate = SessionGate::new(manager)
            .with_cookie(CookieConfig::new().with_secure(settings.secure))
            .with_login_redirect("/login");
        Self {
            sessions: SelfService::new(gate),
            users: Users::in_memory(),
            admin_token: settings.admin_token.as_deref().map(Arc::from),
        }
    }

    /// The gate.
    #[must_use]
    pub fn gate(&self) -> &SessionGate {
        self.sessions.gate()
    }

    /// `GET /login`.
    #[must_use]
    pub fn login_page(&self, return_to: Option<&str>) -> Reply {
        Reply::html(
            StatusCode::OK,
            login_form(local_redirect(return_to), false).into_string(),
        )
    }

    /// `POST /login`: checks the password, revokes the session the request came with
    /// (if any), issues a new one, 303 to `return_to` if local, else `/`.
    pub async fn login(
        &self,
        form: &LoginForm,
        current: Option<&Session>,
        client: ClientInfo,
    ) -> Reply {
        let return_to = local_redirect(form.return_to.as_deref());
        let manager = self.gate().manager();
        let user = UserId::from(form.username.as_str());
        // Read the epoch before checking the password: a reset landing in between wins.
        let epoch = match manager.login_epoch(&user).await {
            Ok(e) => e,
            Err(e) => return Reply::from_error(&e),
        };
        let valid = match self.users.check(&form.username, &form.password).await {
            Ok(valid) => valid,
            Err(e) => return Reply::from_error(&e.into()),
        };
        if !valid {
            return Reply::html(
                StatusCode::UNAUTHORIZED,
                login_form(return_to, true).into_string(),
            );
        }
        if let Some(old) = current
            && let Err(e) = manager
                .revoke(old.id(), RevocationReason::SignedOut, Actor::User)
                .await
        {
            return Reply::from_error(&e);
        }
        match manager
            .issue_after(epoch, Principal::User { user_id: user }, client)
            .await
        {
            Ok(issued) => Reply::see_other(return_to)
                .with_header(SET_COOKIE, self.gate().session_cookie(&issued.token)),
            Err(e) => Reply::from_error(&e),
        }
    }

    /// `GET /`.
    #[must_use]
    pub fn home(&self, session: &Session) -> Reply {
        Reply::html(
            StatusCode::OK,
            home_page(session.user_id().as_str()).into_string(),
        )
    }

    /// `POST /password-reset`: sets the password and revokes all the user's sessions.
    pub async fn password_reset(&self, form: &PasswordResetForm) -> Reply {
        let known = match self.users.reset(&form.username, &form.new_password).await {
            Ok(known) => known,
            Err(e) => return Reply::from_error(&e.into()),
        };
        if !known {
            return Reply::json(StatusCode::OK, &Revoked { revoked: 0 });
        }
        match self
            .gate()
            .manager()
            .revoke_all(
                &UserId::from(form.username.as_str()),
                RevokeScope::All,
                None,
                RevocationReason::PasswordReset,
                Actor::User,
            )
            .await
        {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n }),
            Err(e) => Reply::from_error(&e),
        }
    }

    /// Whether `authorization` carries the admin token (constant-time).
    #[must_use]
    pub fn is_admin(&self, authorization: Option<&[u8]>) -> bool {
        let (Some(expected), Some(given)) = (&self.admin_token, authorization) else {
            return false;
        };
        let Some(token) = given.strip_prefix(b"Bearer ") else {
            return false;
        };
        bool::from(token.ct_eq(expected.as_bytes()))
    }

    /// `POST /admin/users/{user_id}/revoke-all`.
    pub async fn admin_revoke_all(&self, user_id: &str, reason: Option<&str>) -> Reply {
        let reason = reason.map_or(RevocationReason::AdminRevoked, RevocationReason::parse);
        match self
            .gate()
            .manager()
            .revoke_all(
                &UserId::from(user_id),
                RevokeScope::All,
                None,
                reason,
                Actor::Admin,
            )
            .await
        {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n }),
            Err(e) => Reply::from_error(&e),
        }
    }
}

/// The `error` code of a body that `POST /password-reset` or the admin route cannot parse
/// (422).
pub const INVALID_BODY: &str = "invalid_body";

/// The login form's fields.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct LoginForm {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Where to go after.
    pub return_to: Option<String>,
}

/// The password reset's fields (form or JSON).
#[derive(Clone, Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct PasswordResetForm {
    /// Whose password.
    pub username: String,
    /// The new password.
    pub new_password: String,
}

impl PasswordResetForm {
    /// Parses a JSON body (when `content_type` says so) or a form body.
    ///
    /// # Errors
    ///
    /// The 422 reply for a body that is neither.
    pub fn parse(content_type: Option<&[u8]>, body: &[u8]) -> Result<Self, Reply> {
        let json = content_type.is_some_and(|c| c.starts_with(b"application/json"));
        let parsed = if json {
            serde_json::from_slice(body).map_err(|e| e.to_string())
        } else {
            serde_urlencoded::from_bytes(body).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| {
            tracing::debug!(error = %e, "bad password-reset body");
            Reply::error(StatusCode::UNPROCESSABLE_ENTITY, INVALID_BODY)
        })
    }
}

impl AdminRevoke {
    /// Parses the optional JSON body.
    ///
    /// # Errors
    ///
    /// The 422 reply for a body that is not the expected JSON.
    pub fn parse(body: &[u8]) -> Result<Self, Reply> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body)
            .map_err(|_| Reply::error(StatusCode::UNPROCESSABLE_ENTITY, INVALID_BODY))
    }
}

/// `GET /login?return_to=…`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct LoginQuery {
    /// Where to go after login.
    pub return_to: Option<String>,
}

/// `POST /admin/users/{id}/revoke-all` body.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct AdminRevoke {
    /// The reason recorded (default `admin_revoked`).
    pub reason: Option<String>,
}

/// A page in the demo's frame.
#[must_use]
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}\
main{max-width:40rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.5rem 1rem;border:0;border-radius:.4rem;background:#2456d3;color:#fff;cursor:pointer}\
.error{color:#b00020}";

fn login_form(return_to: &str, failed: bool) -> Markup {
    page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if failed { p.error role="alert" { "Wrong user name or password." } }
            form method="post" action="/login" {
                input type="hidden" name="return_to" value=(return_to);
                label for="username" { "User name" }
                input id="username" name="username" autocomplete="username" required;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

fn home_page(user: &str) -> Markup {
    page(
        "Home",
        html! {
            h1 { "Hello, " (user) }
            p { a href="/account/sessions" { "Where you are signed in" } }
            form method="post" action="/logout" {
                button type="submit" { "Sign out" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_form_escapes_return_to() {
        let page = login_form("/\"><script>", false).into_string();
        assert!(!page.contains("<script>"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
    }
}
