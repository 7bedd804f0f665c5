//! [`PostgresStore`] and its builder: connecting, the listener, migrations.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use session_core::store::PushMessage;
use session_core::{ConfigError, StoreError};
use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::notify::{self, CHANNEL, Timing};
use crate::sql::{Statements, render, valid_identifier};
use crate::{APPLICATION_NAME, SCHEMA};

/// How long [`PostgresStore::connect`]'s pool waits for a connection (connecting included).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a statement's transaction starts behind a transaction-mode pooler (which drops the
/// `default_transaction_isolation` a direct connection is given at startup).
pub(crate) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Broadcast buffer of push messages per receiver; a receiver that lags further is told
/// it may have missed messages.
const PUSH_CAPACITY: usize = 4096;

/// Sessions in PostgreSQL; see the [crate documentation](crate).
///
/// Cheap to clone: clones share the pool and the listener. The listener stops when the last
/// clone is dropped.
///
/// ```
/// use session_postgres::PostgresStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let Ok(url) = std::env::var("DATABASE_URL") else { return Ok(()) }; // skipped without a database
/// let store = PostgresStore::connect(&url).await?;
/// store.migrate().await?;
/// assert_eq!(store.schema(), "session_revocation");
/// assert!(!format!("{store:?}").contains("postgres://"), "no connection string in Debug");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub pool: PgPool,
    pub schema: String,
    pub channel: String,
    pub sql: Statements,
    pub push: Option<broadcast::Sender<PushMessage>>,
    /// Behind a transaction-mode pooler: statements unprepared, in explicit transactions.
    pub pooled: bool,
    /// A session connection to the server: LISTEN and migrations.
    direct: PgConnectOptions,
    listening: watch::Receiver<bool>,
    listener_application_name: String,
    listen_separately: bool,
    tasks: Vec<AbortHandle>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the pool: its connect options hold the password.
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .field("channel", &self.inner.channel)
            .field("pool_size", &self.inner.pool.size())
            .field("pool_idle", &self.inner.pool.num_idle())
            .field("push", &self.inner.push.is_some())
            .field("listen_separately", &self.inner.listen_separately)
            .field("transaction_pooler", &self.inner.pooled)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`PostgresStore`] beyond its URL: the schema, the NOTIFY channel.
///
/// ```
/// use session_postgres::{PostgresStore, PostgresStoreBuilder};
///
/// let builder: PostgresStoreBuilder = PostgresStore::builder()
///     .with_schema("tenant_a_sessions")
///     .unwrap();
/// assert!(PostgresStore::builder().with_schema("no-dashes").is_err());
/// # let _ = builder;
///
/// // Behind a transaction-mode pooler: LISTEN and migrations straight to the server.
/// let pooled = PostgresStore::builder()
///     .with_transaction_pooler()
///     .with_listen_url("postgres://app:s3cret@db.internal:5432/app")
///     .unwrap();
/// let debug = format!("{pooled:?}");
/// assert!(debug.contains("transaction_pooler: true") && !debug.contains("s3cret"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct PostgresStoreBuilder {
    schema: String,
    channel: Option<String>,
    listen: Option<PgConnectOptions>,
    pooled: bool,
    timing: Timing,
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the listen options: they hold the password.
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("channel", &self.channel())
            .field("listen_separately", &self.listen.is_some())
            .field("transaction_pooler", &self.pooled)
            .finish_non_exhaustive()
    }
}

impl Default for PostgresStoreBuilder {
    fn default() -> Self {
        Self {
            schema: SCHEMA.to_owned(),
            channel: None,
            listen: None,
            pooled: false,
            timing: Timing::default(),
        }
    }
}

impl PostgresStoreBuilder {
    /// The schema holding the store's tables (default [`SCHEMA`], `session_revocation`):
    /// lowercase ASCII letters, digits and `_`, at most 63 bytes. Stores on one database
    /// with different schemas share nothing (tests, tenants). Unless
    /// [`Self::with_channel`] says otherwise, the NOTIFY channel follows the schema
    /// (`SCHEMA_revocations`; [`CHANNEL`] for the default schema).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a name outside those characters.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, ConfigError> {
        if !valid_identifier(schema) {
            return Err(ConfigError::Invalid(
                "schema: lowercase letters, digits and _",
            ));
        }
        self.schema = schema.to_owned();
        Ok(self)
    }

    /// The NOTIFY channel revocations are pushed on (default: after the schema, see
    /// [`Self::with_schema`]). Every node of a deployment must use the same.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for a name other than lowercase letters, digits and `_`.
    pub fn with_channel(mut self, channel: &str) -> Result<Self, ConfigError> {
        if !valid_identifier(channel) {
            return Err(ConfigError::Invalid(
                "channel: lowercase letters, digits and _",
            ));
        }
        self.channel = Some(channel.to_owned());
        Ok(self)
    }

    /// LISTEN, and run [`PostgresStore::migrate`], through a connection to this URL instead
    /// of the pool's (default: the pool's connect options). Both need a session connection
    /// (`LISTEN` lives as long as the session; the migrator holds a session advisory lock):
    /// behind a pooler in transaction mode, give the pool the pooler's URL and this the
    /// server's own. See [`Self::with_transaction_pooler`] and the crate docs.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a URL that does not parse.
    pub fn with_listen_url(self, url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(crate::ops::store_error)?;
        Ok(self.with_listen_options(options))
    }

    /// As [`Self::with_listen_url`], with connect options.
    pub fn with_listen_options(mut self, options: PgConnectOptions) -> Self {
        self.listen = Some(options);
        self
    }

    /// The pool's URL is a pooler in transaction mode (PgBouncer's
    /// `pool_mode = transaction`), where consecutive messages of one client may reach
    /// different server connections (default: off, a direct connection or a session-mode
    /// pooler). Then each statement runs unprepared (an unnamed statement) inside an
    /// explicit `BEGIN ISOLATION LEVEL READ COMMITTED … COMMIT`, so that its parse and its
    /// execution reach the same server connection and no prepared statement is left on
    /// one: two more round trips to the pooler per call. The connections are not given the
    /// `options` startup parameter (poolers refuse it). Pair it with
    /// [`Self::with_listen_url`].
    pub fn with_transaction_pooler(mut self) -> Self {
        self.pooled = true;
        self
    }

    #[doc(hidden)]
    pub fn __with_listener_timing(mut self, heartbeat: Duration, silence: Duration) -> Self {
        self.timing.heartbeat = heartbeat;
        self.timing.silence = silence;
        self
    }

    fn channel(&self) -> String {
        match &self.channel {
            Some(channel) => channel.clone(),
            None if self.schema == SCHEMA => CHANNEL.to_owned(),
            None => format!("{}_revocations", self.schema),
        }
    }

    /// Connects to `url` (a `postgres://` URL) with [`PostgresStore::pool_options`] and
    /// starts the listener; see [`PostgresStore::connect`].
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect(self, url: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(crate::ops::store_error)?;
        self.connect_with(options).await
    }

    /// As [`Self::connect`], with connect options; see [`PostgresStore::connect_with`].
    ///
    /// # Errors
    ///
    /// As [`PostgresStore::connect`].
    pub async fn connect_with(
        self,
        mut options: PgConnectOptions,
    ) -> Result<PostgresStore, StoreError> {
        if options.get_application_name().is_none() {
            options = options.application_name(APPLICATION_NAME);
        }
        if !self.pooled {
            // Behind a pooler, each transaction says so instead (`BEGIN`).
            options = options.options([("default_transaction_isolation", "read committed")]);
        }
        let pool = PostgresStore::pool_options()
            .connect_with(options)
            .await
            .map_err(crate::ops::store_error)?;
        Ok(self.build(pool))
    }

    /// A store over an existing pool; see [`PostgresStore::from_pool`].
    #[must_use]
    pub fn build(self, pool: PgPool) -> PostgresStore {
        let channel = self.channel();
        let instance = Uuid::new_v4().simple().to_string();
        let listener_application_name = format!("{APPLICATION_NAME}-listener-{}", &instance[..12]);
        let listen_separately = self.listen.is_some();
        let direct = self
            .listen
            .unwrap_or_else(|| (*pool.connect_options()).clone());
        let mut tasks = Vec::new();
        let mut push = None;
        let (listening_tx, listening) = watch::channel(false);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (tx, _) = broadcast::channel(PUSH_CAPACITY);
            let heartbeat_channel = format!("srhb_{instance}");
            let options = direct.clone().application_name(&listener_application_name);
            let listener = notify::Listener {
                options,
                channel: channel.clone(),
                heartbeat_channel: heartbeat_channel.clone(),
                tx: tx.clone(),
                listening: listening_tx,
                timing: self.timing,
            };
            tasks.push(runtime.spawn(listener.run()).abort_handle());
            tasks.push(
                runtime
                    .spawn(notify::heartbeat(
                        pool.clone(),
                        self.pooled,
                        heartbeat_channel,
                        self.timing,
                    ))
                    .abort_handle(),
            );
            push = Some(tx);
        } else {
            tracing::warn!(
                "PostgresStore built outside a Tokio runtime: revocations from other nodes are not pushed"
            );
        }
        PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Statements::new(&self.schema),
                schema: self.schema,
                channel,
                push,
                pooled: self.pooled,
                direct,
                listening,
                listener_application_name,
                listen_separately,
                tasks,
            }),
        }
    }
}

impl PostgresStore {
    /// Settings beyond the URL (schema, channel, a separate LISTEN connection).
    pub fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::default()
    }

    /// Connects to the database at `url` (a `postgres://` URL) with [`Self::pool_options`],
    /// and starts the revocation listener, with the default schema and channel.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] for a bad URL or a server that refuses the connection,
    /// [`StoreError::Timeout`] for one that does not answer within [`ACQUIRE_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder().connect(url).await
    }

    /// As [`Self::connect`], with connect options of your own. Sets `application_name` to
    /// [`APPLICATION_NAME`] unless the options name one, and pins the connections'
    /// `default_transaction_isolation` to `read committed` (whatever the database's
    /// default), which the store's statements are written for.
    ///
    /// # Errors
    ///
    /// As [`Self::connect`].
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        Self::builder().connect_with(options).await
    }

    /// The pool settings [`Self::connect`] uses: up to 10 connections, a connection within
    /// [`ACQUIRE_TIMEOUT`] (connecting included) or [`StoreError::Timeout`], idle
    /// connections closed after 10 minutes, every connection replaced after 30.
    #[must_use]
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(10)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(600))
            .max_lifetime(Duration::from_secs(1800))
    }

    /// A store over an existing pool, with the default schema and channel. Give it an
    /// acquire timeout (the store relies on it for deadlines) and `READ COMMITTED`
    /// connections (PostgreSQL's default; see [`Self::connect_with`]). Starts the
    /// revocation listener on a connection of its own, opened with the pool's connect
    /// options, if a Tokio runtime is running; otherwise push is off
    /// ([`SessionStore::push_messages`](session_core::SessionStore::push_messages) returns
    /// `None`).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self::builder().build(pool)
    }

    /// Creates the schema, tables, indexes and functions, or brings them up to date. Safe
    /// to run concurrently from many nodes: the migrator holds a PostgreSQL advisory lock
    /// while it works. Its bookkeeping is `SCHEMA._sqlx_migrations`, so it does not mix
    /// with the application's own sqlx migrations.
    ///
    /// Migrations only add: a node of an older version, started after a newer one migrated
    /// the database further, finds nothing to do (rolling upgrades).
    ///
    /// It runs on a connection of its own, to the listen URL when one is set
    /// ([`PostgresStoreBuilder::with_listen_url`]).
    ///
    /// Then it fills the IP key of live sessions written before the v2 schema (so that a
    /// network filter finds them too): a no-op once done.
    ///
    /// # Errors
    ///
    /// The database's error, or a changed migration ([`StoreError::Backend`]).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let schema = self.inner.schema.as_str();
        let embedded = sqlx::migrate!("./migrations");
        let mut migrator = if schema == SCHEMA {
            embedded
        } else {
            Migrator::with_migrations(
                embedded
                    .iter()
                    .map(|m| {
                        Migration::new(
                            m.version,
                            m.description.clone(),
                            m.migration_type,
                            AssertSqlSafe(render(m.sql.as_str(), schema)).into_sql_str(),
                            m.no_tx,
                        )
                    })
                    .collect(),
            )
        };
        // A node of an older version, started after a newer one migrated further, finds
        // nothing to do instead of refusing to start (migrations only add).
        migrator.set_ignore_missing(true);
        migrator.create_schema(schema.to_owned());
        migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
        // A pool of its own, closed afterwards whatever happens: the migrator releases its
        // session-level advisory lock only on success, and a connection still holding it
        // must not go back to the store's pool.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(self.inner.pool.options().get_acquire_timeout())
            .connect_with(self.inner.direct.clone())
            .await
            .map_err(crate::ops::store_error)?;
        let result = match migrator.run(&pool).await {
            Ok(()) => self.fill_ip_keys(&pool).await,
            Err(e) => Err(StoreError::backend(e)),
        };
        pool.close().await;
        result
    }

    /// Sets `ip_key` on live sessions that have an IP and no key (written before v2).
    async fn fill_ip_keys(&self, pool: &PgPool) -> Result<(), StoreError> {
        let select = AssertSqlSafe(render(
            "SELECT id, ip FROM session_revocation.sessions
              WHERE ip IS NOT NULL AND ip_key IS NULL AND revoked_at IS NULL
                AND expires_at > now() AND id > $1
              ORDER BY id LIMIT 1000",
            &self.inner.schema,
        ))
        .into_sql_str();
        let update = AssertSqlSafe(render(
            "UPDATE session_revocation.sessions AS s SET ip_key = v.k
               FROM unnest($1::uuid[], $2::text[]) AS v(id, k) WHERE s.id = v.id",
            &self.inner.schema,
        ))
        .into_sql_str();
        let mut after = Uuid::nil();
        loop {
            let rows: Vec<(Uuid, String)> = sqlx::query_as(select.clone())
                .bind(after)
                .fetch_all(pool)
                .await
                .map_err(crate::ops::store_error)?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.0;
            let (ids, keys): (Vec<Uuid>, Vec<String>) = rows
                .iter()
                .filter_map(|(id, ip)| session_core::store::ip_key(ip).map(|k| (*id, k)))
                .unzip();
            sqlx::query(update.clone())
                .bind(ids)
                .bind(keys)
                .execute(pool)
                .await
                .map_err(crate::ops::store_error)?;
        }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema holding the store's tables.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The NOTIFY channel.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Whether the revocation listener is connected and listening now.
    #[must_use]
    pub fn is_listening(&self) -> bool {
        *self.inner.listening.borrow()
    }

    /// Waits up to `deadline` for the revocation listener to listen (a readiness check;
    /// tests). False on timeout, and when push is off.
    pub async fn wait_listening(&self, deadline: Duration) -> bool {
        let mut listening = self.inner.listening.clone();
        matches!(
            tokio::time::timeout(deadline, listening.wait_for(|up| *up)).await,
            Ok(Ok(_))
        )
    }

    /// The `application_name` of the listener's connection
    /// (`session-postgres-listener-` and 12 hex digits), to find it in `pg_stat_activity`.
    #[must_use]
    pub fn listener_application_name(&self) -> &str {
        &self.inner.listener_application_name
    }
}
