//! The demo users `alice`, `bob` and `carol` (password `NAME-password`), and where a
//! password reset is kept: in memory, or in the shared store's database so every instance
//! sees it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use session_core::StoreError;
use subtle::ConstantTimeEq;

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const REDIS_KEY: &str = "demo:passwords";
const TABLE: &str =
    "CREATE TABLE IF NOT EXISTS demo_passwords (username TEXT PRIMARY KEY, password TEXT NOT NULL)";

/// The demo users, with passwords changed by resets kept in memory or in the store.
#[derive(Clone, Debug)]
pub struct Users {
    backend: Backend,
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

impl Users {
    /// Resets live as long as the process.
    #[must_use]
    pub fn in_memory() -> Self {
        Self {
            backend: Backend::Memory(Arc::default()),
        }
    }

    /// Resets kept in Redis (`demo:passwords`), shared by every instance on it.
    ///
    /// # Errors
    ///
    /// A message when Redis cannot be reached.
    pub async fn redis(url: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("SESSION_STORE: {e}"))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| format!("SESSION_STORE: {e}"))?;
        Ok(Self {
            backend: Backend::Redis(conn),
        })
    }

    /// Resets kept in PostgreSQL (`demo_passwords`).
    ///
    /// # Errors
    ///
    /// A message when the table cannot be created.
    pub async fn postgres(pool: sqlx::PgPool) -> Result<Self, String> {
        sqlx::query(TABLE)
            .execute(&pool)
            .await
            .map_err(|e| format!("demo_passwords: {e}"))?;
        Ok(Self {
            backend: Backend::Postgres(pool),
        })
    }

    /// Resets kept in the SQLite file (`demo_passwords`).
    ///
    /// # Errors
    ///
    /// A message when the table cannot be created.
    pub async fn sqlite(pool: sqlx::SqlitePool) -> Result<Self, String> {
        sqlx::query(TABLE)
            .execute(&pool)
            .await
            .map_err(|e| format!("demo_passwords: {e}"))?;
        Ok(Self {
            backend: Backend::Sqlite(pool),
        })
    }

    async fn password(&self, username: &str) -> Result<Option<String>, StoreError> {
        if !USERS.contains(&username) {
            return Ok(None);
        }
        let changed: Option<String> = match &self.backend {
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
                sqlx::query_scalar("SELECT password FROM demo_passwords WHERE username = $1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await
                    .map_err(backend_error)?
            }
            Backend::Sqlite(pool) => {
                sqlx::query_scalar("SELECT password FROM demo_passwords WHERE username = ?1")
                    .bind(username)
                    .fetch_optional(pool)
                    .await
                    .map_err(backend_error)?
            }
        };
        Ok(Some(
            changed.unwrap_or_else(|| format!("{username}-password")),
        ))
    }

    /// Whether the password is right (constant-time comparison).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn check(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        Ok(self
            .password(username)
            .await?
            .is_some_and(|p| bool::from(p.as_bytes().ct_eq(password.as_bytes()))))
    }

    /// Sets a known user's password; `false` for an unknown user.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn reset(&self, username: &str, new_password: &str) -> Result<bool, StoreError> {
        if !USERS.contains(&username) {
            return Ok(false);
        }
        match &self.backend {
            Backend::Memory(map) => {
                map.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(username.to_owned(), new_password.to_owned());
            }
            Backend::Redis(conn) => {
                let _: i64 = redis::cmd("HSET")
                    .arg(REDIS_KEY)
                    .arg(username)
                    .arg(new_password)
                    .query_async(&mut conn.clone())
                    .await
                    .map_err(backend_error)?;
            }
            Backend::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO demo_passwords (username, password) VALUES ($1, $2) \
                     ON CONFLICT (username) DO UPDATE SET password = EXCLUDED.password",
                )
                .bind(username)
                .bind(new_password)
                .execute(pool)
                .await
                .map_err(backend_error)?;
            }
            Backend::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO demo_passwords (username, password) VALUES (?1, ?2) \
                     ON CONFLICT (username) DO UPDATE SET password = excluded.password",
                )
                .bind(username)
                .bind(new_password)
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
