//! The demo users `alice`, `bob` and `carol` (password `NAME-password`), their passwords
//! hashed with Argon2id, and where a password reset is kept: in memory, or in the shared
//! store's database so every instance sees it.
//!
//! # Security
//!
//! - Only Argon2id hashes (the `argon2` crate's defaults, OWASP's minimum: 19 MiB, two
//!   passes) are kept, in memory and at rest; a plaintext password is never stored or
//!   logged.
//! - An unknown user name is checked against a dummy hash, so a failed login takes as long
//!   for a user that does not exist as for one that does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use session_core::StoreError;

/// The demo users.
pub const USERS: [&str; 3] = ["alice", "bob", "carol"];
const REDIS_KEY: &str = "demo:password-hashes";
const TABLE: &str = "CREATE TABLE IF NOT EXISTS demo_password_hashes \
     (username TEXT PRIMARY KEY, hash TEXT NOT NULL)";

/// The demo users, with passwords changed by resets kept in memory or in the store.
#[derive(Clone)]
pub struct Users {
    backend: Backend,
    /// The hashes of the default passwords, and the dummy hash for unknown names.
    defaults: Arc<HashMap<&'static str, String>>,
    dummy: Arc<String>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<HashMap<String, String>>>),
    Redis(redis::aio::ConnectionManager),
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "Memory",
            Self::Redis(_) => "Redis",
            Self::Postgres(_) => "Postgres",
            Self::Sqlite(_) => "Sqlite",
        })
    }
}

fn backend_error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

/// An Argon2id PHC string of `password`, with a fresh salt.
fn hash(password: &str) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Corrupt(format!("hashing a password: {e}")))
}

fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Runs CPU-heavy hashing off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(backend_error)
}

impl Users {
    fn with(backend: Backend) -> Self {
        let defaults = USERS
            .iter()
            .map(|u| (*u, hash(&format!("{u}-password")).unwrap_or_default()))
            .collect();
        let mut random = [0u8; 24];
        getrandom::fill(&mut random).unwrap_or_default();
        let dummy = hash(&format!("{random:?}")).unwrap_or_default();
        Self {
            backend,
            defaults: Arc::new(defaults),
            dummy: Arc::new(dummy),
        }
    }

    /// Resets live as long as the process.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::with(Backend::Memory(Arc::default()))
    }

    /// Resets kept in Redis (`demo:password-hashes`), shared by every instance on it.
    ///
    /// # Errors
    ///
    /// A message when Redis cannot be reached.
    pub async fn redis(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("SESSION_STORE: {e}"))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| format!("SESSION_STORE: {e}"))?;
        Ok(Self::with(Backend::Redis(conn)))
    }

    /// Resets kept in PostgreSQL (`demo_password_hashes`).
    ///
    /// # Errors
    ///
    /// A message when the table cannot be created.
    pub async fn postgres(pool: sqlx::PgPool) -> Result<Self, String> {
        sqlx::query(TABLE)
            .execute(&pool)
            .await
            .map_err(|e| format!("demo_password_hashes: {e}"))?;
        Ok(Self::with(Backend::Postgres(pool)))
    }

    /// Resets kept in the SQLite file (`demo_password_hashes`).
    ///
    /// # Errors
    ///
    /// A message when the table cannot be created.
    pub async fn sqlite(pool: sqlx::SqlitePool) -> Result<Self, String> {
        sqlx::query(TABLE)
            .execute(&pool)
            .await
            .map_err(|e| format!("demo_password_hashes: {e}"))?;
        Ok(Self::with(Backend::Sqlite(pool)))
    }

    /// Whether `username` is a demo user.
    #[must_use]
    pub fn exists(username: &str) -> bool {
        USERS.contains(&username)
    }

    async fn stored_hash(&self, username: &str) -> Result<Option<String>, StoreError> {
        Ok(match &self.backend {
            Backend::Memory(map) => map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(username)
                .cloned(),
            Backend::Redis(conn) => redis::cmd("HGET")
                .arg(REDIS_KEY)
                .arg(username)
                .query_async(&mut conn.clone())
                .await
                .map_err(backend_error)?,
            Backend::Postgres(pool) => {
                sqlx::query_scalar("SELECT hash FROM demo_password_hashes WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await
                    .map_err(backend_error)?
            }
            Backend::Sqlite(pool) => {
                sqlx::query_scalar("SELECT hash FROM demo_password_hashes WHERE username = ?1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await
                    .map_err(backend_error)?
            }
        })
    }

    /// Whether the password is right. An unknown user costs the same Argon2id verification
    /// (against a dummy hash) and is never right.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn check(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        let known = Self::exists(username);
        let phc = if known {
            match self.stored_hash(username).await? {
                Some(phc) => phc,
                None => self.defaults.get(username).cloned().unwrap_or_default(),
            }
        } else {
            self.dummy.as_ref().clone()
        };
        let password = password.to_owned();
        let matches = blocking(move || verify(&password, &phc)).await?;
        Ok(known && matches)
    }

    /// Sets a known user's password (its Argon2id hash); `false` for an unknown user.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn reset(&self, username: &str, new_password: &str) -> Result<bool, StoreError> {
        if !Self::exists(username) {
            return Ok(false);
        }
        let password = new_password.to_owned();
        let phc = blocking(move || hash(&password)).await??;
        match &self.backend {
            Backend::Memory(map) => {
                map.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(username.to_owned(), phc);
            }
            Backend::Redis(conn) => {
                let _: i64 = redis::cmd("HSET")
                    .arg(REDIS_KEY)
                    .arg(username)
                    .arg(phc)
                    .query_async(&mut conn.clone())
                    .await
                    .map_err(backend_error)?;
            }
            Backend::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO demo_password_hashes (username, hash) VALUES ($1, $2) \
                     ON CONFLICT (username) DO UPDATE SET hash = EXCLUDED.hash",
                )
                .bind(username)
                .bind(phc)
                .execute(pool)
                .await
                .map_err(backend_error)?;
            }
            Backend::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO demo_password_hashes (username, hash) VALUES (?1, ?2) \
                     ON CONFLICT (username) DO UPDATE SET hash = excluded.hash",
                )
                .bind(username)
                .bind(phc)
                .execute(pool)
                .await
                .map_err(backend_error)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::Users;

    #[tokio::test]
    async fn passwords_check_and_reset() {
        let users = Users::in_memory();
        assert!(users.check("alice", "alice-password").await.unwrap());
        assert!(!users.check("alice", "bob-password").await.unwrap());
        assert!(!users.check("mallory", "mallory-password").await.unwrap());
        assert!(users.reset("alice", "new").await.unwrap());
        assert!(users.check("alice", "new").await.unwrap());
        assert!(!users.check("alice", "alice-password").await.unwrap());
        assert!(!users.reset("mallory", "x").await.unwrap());
    }

    #[tokio::test]
    async fn only_argon2id_hashes_are_kept() {
        let users = Users::in_memory();
        users.reset("bob", "a-new-password").await.unwrap();
        let stored = users.stored_hash("bob").await.unwrap().unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(!stored.contains("a-new-password"));
        assert!(users.defaults.values().all(|h| h.starts_with("$argon2id$")));
    }

    #[tokio::test]
    async fn sqlite_resets_persist() {
        let dir = std::env::temp_dir().join(format!("demo-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.db");
        let store = session_sqlite::SqliteStore::open(&path).await.unwrap();
        let users = Users::sqlite(store.pool().clone()).await.unwrap();
        assert!(users.reset("bob", "changed").await.unwrap());
        let again = Users::sqlite(store.pool().clone()).await.unwrap();
        assert!(again.check("bob", "changed").await.unwrap());
        assert!(!again.check("bob", "bob-password").await.unwrap());
        drop(std::fs::remove_dir_all(&dir));
    }
}
