//! What the two example apps share, so that neither writes it twice: the settings from
//! the environment, the demo users and their login (Argon2id, throttled), the pages, the
//! password reset, and the route table of everything that is not the login and home
//! pages (self-service, admin, password reset, the OpenAPI document), which each app mounts
//! with its adapter. Each app only routes and translates; see `examples/README.md` for the
//! contract both obey.

pub mod caep;
mod idp;
pub mod openapi;
mod pages;
mod settings;
pub mod telemetry;
mod throttle;
mod users;

use std::sync::Arc;
use std::time::Duration;

pub use pages::{Notice, home_page, login_form, page};
pub use settings::{Binding, OidcSettings, Settings, WebhookSettings};
pub use throttle::Throttle;
pub use users::{USERS, Users};

use http::{Method, StatusCode};
use serde::Deserialize;
use session_core::http;
use session_core::{
    Actor, ClientInfo, MemoryStore, Reply, RevocationReason, RevokeScope, Session, SessionError,
    SessionGate, SessionManager, SessionStore, UserId, local_redirect,
};
use session_selfservice::views::{Revoked, codes};
use session_selfservice::{Access, Admin, Call, Route, RouteTable, SelfService};

/// The login form's fields.
#[derive(Clone, Deserialize)]
pub struct LoginForm {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Where to go after.
    pub return_to: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("return_to", &self.return_to)
            .finish()
    }
}

/// `GET /login?return_to=…&reason=…`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Where to go after login.
    pub return_to: Option<String>,
    /// Why the last session ended (`session_revoked`, `session_expired`).
    pub reason: Option<String>,
}

/// The password reset's fields (form or JSON).
#[derive(Clone, Deserialize, utoipa::ToSchema)]
pub struct PasswordResetForm {
    /// Whose password.
    pub username: String,
    /// The new password.
    pub new_password: String,
}

impl std::fmt::Debug for PasswordResetForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordResetForm")
            .field("username", &self.username)
            .field("new_password", &"[redacted]")
            .finish()
    }
}

/// Start-up shared by both example binaries: logging (`RUST_LOG`, default `info`; each
/// span's fields are logged when it closes), the metrics recorder, the settings from the
/// environment, and the app state. A bad setting prints one line naming the variable and
/// exits with status 2, before the app listens.
pub async fn start(default_port: u16) -> (Settings, Demo) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    telemetry::install();
    let exit = |e: String| -> ! {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    };
    let settings = Settings::from_env(default_port).unwrap_or_else(|e| exit(e));
    if settings.random_keys {
        tracing::warn!(
            "SESSION_KEYS is not set: using a random key; sessions end with this process and are not shared"
        );
    }
    let demo = Demo::open(&settings).await.unwrap_or_else(|e| exit(e));
    demo.spawn_background().unwrap_or_else(|e| exit(e));
    (settings, demo)
}

/// Everything the routes need. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Demo {
    gate: SessionGate,
    users: Users,
    throttle: Arc<Throttle>,
    settings: Arc<Settings>,
    /// Single sign-on's provider, when configured.
    idp: Option<Arc<idp::Provider>>,
    /// Background work that lives as long as the app (dropping a handle stops its task).
    background: Arc<std::sync::Mutex<Vec<Background>>>,
}

/// A background task of the app, stopped when the app goes.
#[derive(Debug)]
enum Background {
    Purge(tokio::task::JoinHandle<()>),
    /// The webhook worker, or the CAEP sender's (`caep` module).
    Worker(
        #[expect(dead_code, reason = "held for its Drop, which stops the worker")]
        session_webhooks::WorkerHandle,
    ),
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Self::Purge(task) = self {
            task.abort();
        }
    }
}

impl Demo {
    /// The app state from `settings`, with its store.
    ///
    /// # Errors
    ///
    /// A message naming `SESSION_STORE` when the store cannot be opened.
    pub async fn open(settings: &Settings) -> Result<Self, String> {
        let (store, users) = open_store(&settings.store).await?;
        let mut demo = Self::with_store(settings, store)?;
        demo.users = users;
        Ok(demo)
    }

    /// The app state from `settings`, over a store of the caller's (tests inject faults).
    ///
    /// # Errors
    ///
    /// A message naming the variable whose value cannot work.
    pub fn with_store(settings: &Settings, store: Arc<dyn SessionStore>) -> Result<Self, String> {
        let manager = SessionManager::new(store, settings.keys.clone(), settings.config.clone())
            .map_err(|e| format!("SESSION_* settings: {e}"))?;
        let mut gate = SessionGate::new(manager)
            .with_cookie(settings.cookie.clone())
            .with_login_redirect("/login");
        if let Some(url) = &settings.public_url {
            gate = gate
                .with_public_origin(url)
                .map_err(|e| format!("PUBLIC_URL: {e}"))?;
        }
        Ok(Self {
            gate,
            users: Users::in_memory(),
            throttle: Arc::default(),
            settings: Arc::new(settings.clone()),
            idp: idp::Provider::from_settings(settings)?,
            background: Arc::default(),
        })
    }

    /// Background work, on the current Tokio runtime: the hourly purge of ended sessions
    /// and old events, and, with `WEBHOOK_URL` and `WEBHOOK_SECRET`, the webhook worker
    /// (one node at a time delivers, under a lease in the store), and with
    /// `CAEP_RECEIVER_URL` the CAEP sender, a worker of the same kind.
    ///
    /// # Errors
    ///
    /// A message naming `WEBHOOK_URL`, `WEBHOOK_SECRET` or `CAEP_RECEIVER_URL` when a
    /// worker cannot start.
    pub fn spawn_background(&self) -> Result<(), String> {
        let manager = self.gate.manager();
        let mut tasks = Vec::new();
        tasks.push(Background::Purge(
            manager.spawn_purge(Duration::from_secs(3600)),
        ));
        if let Some(webhook) = &self.settings.webhook {
            let secrets = webhook
                .secrets
                .iter()
                .filter_map(|s| session_webhooks::signature::WebhookSecret::new(s.as_bytes()))
                .collect::<Vec<_>>();
            let worker = session_webhooks::WebhookWorker::new(
                manager.store().clone(),
                &webhook.url,
                secrets,
            )
            .map_err(|e| format!("WEBHOOK_URL / WEBHOOK_SECRET: {e}"))?
            .with_wakeups(manager.subscribe());
            let handle = worker.spawn().map_err(|e| format!("WEBHOOK_URL: {e}"))?;
            tasks.push(Background::Worker(handle));
        }
        if let Some(handle) = caep::spawn_sender(self)? {
            tasks.push(Background::Worker(handle));
        }
        self.background
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(tasks);
        Ok(())
    }

    /// The gate.
    #[must_use]
    pub fn gate(&self) -> &SessionGate {
        &self.gate
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// `GET /login`.
    #[must_use]
    pub fn login_page(&self, query: &LoginQuery) -> Reply {
        let notice = Notice::from_reason(query.reason.as_deref());
        self.login_form(StatusCode::OK, query.return_to.as_deref(), notice)
    }

    fn login_form(&self, status: StatusCode, return_to: Option<&str>, notice: Notice) -> Reply {
        let sso = self.settings.oidc.is_some();
        Reply::html(
            status,
            login_form(local_redirect(return_to), notice, sso).into_string(),
        )
    }

    /// `POST /login`: throttle, then the password (Argon2id), then the session through the
    /// gate's [`SessionGate::sign_in`] (which revokes the session the request came with and
    /// answers 303 to `return_to` when it is a local path, with the cookie).
    pub async fn login(
        &self,
        form: &LoginForm,
        client: ClientInfo,
        current: Option<&Session>,
    ) -> Reply {
        let ip = client.ip.as_deref().and_then(|ip| ip.parse().ok());
        if let Some(wait) = self.throttle.retry_after(&form.username, ip) {
            return self
                .login_form(
                    StatusCode::TOO_MANY_REQUESTS,
                    form.return_to.as_deref(),
                    Notice::Throttled,
                )
                .with_header(http::header::RETRY_AFTER, wait.into());
        }
        let user = UserId::from(form.username.as_str());
        // Read the epoch before checking the password: a reset landing in between wins.
        let epoch = match self.gate.manager().login_epoch(&user).await {
            Ok(epoch) => epoch,
            Err(SessionError::UserDisabled) => {
                return self.login_form(
                    StatusCode::FORBIDDEN,
                    form.return_to.as_deref(),
                    Notice::Disabled,
                );
            }
            Err(e) => return self.gate.error_reply(&e),
        };
        match self.users.check(&form.username, &form.password).await {
            Ok(true) => {}
            Ok(false) => {
                self.throttle.failed(&form.username, ip);
                tracing::info!(user = %form.username, "failed login");
                return self.login_form(
                    StatusCode::UNAUTHORIZED,
                    form.return_to.as_deref(),
                    Notice::WrongPassword,
                );
            }
            Err(e) => return self.gate.error_reply(&e.into()),
        }
        self.throttle.succeeded(&form.username);
        let reply = self
            .gate
            .sign_in(epoch, user, client, form.return_to.as_deref(), current)
            .await;
        if reply.status == StatusCode::FORBIDDEN {
            // Deprovisioned between the epoch read and the create.
            return self.login_form(
                StatusCode::FORBIDDEN,
                form.return_to.as_deref(),
                Notice::Disabled,
            );
        }
        reply
    }

    /// `GET /`.
    #[must_use]
    pub fn home(&self, session: &Session) -> Reply {
        Reply::html(
            StatusCode::OK,
            home_page(session.user_id().as_str()).into_string(),
        )
    }

    /// `POST /password-reset`: sets the password, then revokes all the user's sessions.
    /// If that revocation fails after the password changed, it answers 503 and keeps
    /// retrying in the background until the revocation holds: a reset never leaves
    /// sessions alive.
    pub async fn password_reset(&self, form: &PasswordResetForm) -> Reply {
        let known = match self.users.reset(&form.username, &form.new_password).await {
            Ok(known) => known,
            Err(e) => return self.gate.error_reply(&e.into()),
        };
        if !known {
            return Reply::json(StatusCode::OK, &Revoked { revoked: 0 });
        }
        let user = UserId::from(form.username.as_str());
        match revoke_for_reset(&self.gate, &user).await {
            Ok(n) => Reply::json(StatusCode::OK, &Revoked { revoked: n as u64 }),
            Err(e) => {
                tracing::warn!(user = %user, error = %e, "password changed, revocation failed: retrying");
                let gate = self.gate.clone();
                tokio::spawn(async move {
                    let mut wait = Duration::from_millis(200);
                    loop {
                        tokio::time::sleep(wait).await;
                        match revoke_for_reset(&gate, &user).await {
                            Ok(n) => {
                                tracing::info!(user = %user, revoked = n, "password-reset revocation done");
                                return;
                            }
                            Err(e) => {
                                tracing::warn!(user = %user, error = %e, "password-reset revocation failed again")
                            }
                        }
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                });
                self.gate.error_reply(&e)
            }
        }
    }

    /// The routes both apps mount from the table: the self-service routes and page, the
    /// password reset, the OpenAPI document, and (with `ADMIN_TOKEN`) the admin routes and
    /// `GET /metrics`.
    #[must_use]
    pub fn routes(&self) -> RouteTable {
        let table = openapi::document(self.table());
        let doc = openapi::openapi_json(&table);
        let table = match self.settings.admin_token.clone() {
            // Not in the document: it describes the JSON routes.
            Some(token) => table.route(telemetry::route(token)),
            None => table,
        };
        table.route(Route::new(
            Method::GET,
            "/openapi.json",
            Access::Public,
            "openapi",
            move |_| {
                let doc = doc.clone();
                async move { Reply::json_text(StatusCode::OK, doc.as_ref().clone()) }
            },
        ))
    }

    /// The routes of [`Demo::routes`] but the document itself.
    fn table(&self) -> RouteTable {
        let demo = self.clone();
        let reset = Route::new(
            Method::POST,
            "/password-reset",
            Access::Form,
            "password_reset",
            move |call: Call| {
                let demo = demo.clone();
                async move {
                    match call.json_or_form::<PasswordResetForm>() {
                        Ok(form) => demo.password_reset(&form).await,
                        Err(reply) => reply,
                    }
                }
            },
        );
        let mut table = SelfService::new(self.gate.clone())
            .routes()
            .route(reset)
            .merge(idp::routes(self))
            .merge(caep::routes(self));
        if let Some(token) = self.settings.admin_token.clone() {
            let admin = Admin::new(self.gate.clone(), move |headers| token.matches(headers));
            table = table.merge(admin.routes());
        }
        table
    }
}

/// The OpenAPI document an app with the default settings serves (no `ADMIN_TOKEN`: no
/// admin routes), as JSON.
///
/// # Panics
///
/// Never: the default settings are valid.
#[must_use]
pub fn openapi_json() -> String {
    let settings = Settings::from_lookup(0, |_| None).expect("the defaults are valid");
    let demo =
        Demo::with_store(&settings, Arc::new(MemoryStore::new())).expect("the defaults are valid");
    openapi::openapi_json(&openapi::document(demo.table()))
        .as_ref()
        .clone()
}

async fn revoke_for_reset(gate: &SessionGate, user: &UserId) -> Result<usize, SessionError> {
    gate.manager()
        .revoke_all(
            user,
            RevokeScope::All,
            None,
            RevocationReason::PasswordReset,
            Actor::User,
        )
        .await
}

/// The `error` code of a body that cannot be parsed (422).
pub const INVALID_BODY: &str = codes::INVALID_BODY;

/// Opens the store `SESSION_STORE` names (through [`session_admin::connect::connect`], the
/// one place that maps a URL to a store, shared with the `session-admin` tool), with the
/// users kept beside it: in the SQLite file, the PostgreSQL database or the Redis.
///
/// # Errors
///
/// A message naming `SESSION_STORE` when the kind is unknown or the store cannot be opened.
pub async fn open_store(url: &str) -> Result<(Arc<dyn SessionStore>, Users), String> {
    use session_admin::OpenedStore;

    let opened = session_admin::connect::connect(url)
        .await
        .map_err(|e| format!("SESSION_STORE: {e}"))?;
    let users = match &opened {
        OpenedStore::Memory(_) => Users::in_memory(),
        OpenedStore::Sqlite(store) => Users::sqlite(store.pool().clone()).await?,
        OpenedStore::Redis(_) => Users::redis(url).await?,
        OpenedStore::Postgres(store) => Users::postgres(store.pool().clone()).await?,
    };
    Ok((opened.into_shared(), users))
}
