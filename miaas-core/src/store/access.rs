//! Storage of users, API tokens and cluster secrets (the join token, the access
//! token signing key).
//!
//! The SQL is the same for both backends (`$N` placeholders work in SQLite and
//! PostgreSQL), so one macro implements [`AccessStore`] for each.

use async_trait::async_trait;

use crate::model::{ApiTokenInfo, Role, User};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// A user with its password hash, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// An API token's description with its hash, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenRecord {
    /// What the API lists.
    pub info: ApiTokenInfo,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// When it was revoked (epoch seconds); revoked tokens are kept so that a use of
    /// one is recognised as such.
    pub revoked_at: Option<f64>,
    /// The user who created it, whose removal revokes it (`None`: created in local
    /// mode or by another API token).
    pub created_by: Option<String>,
}

/// Every user, API token and cluster secret, for `miaas db copy`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessDump {
    /// Users, by name.
    pub users: Vec<UserRecord>,
    /// API tokens, revoked ones included, by id.
    pub tokens: Vec<ApiTokenRecord>,
    /// Cluster secrets in clear (each store seals with its own key), by name.
    pub secrets: Vec<(String, String)>,
}

/// Users, API tokens and cluster secrets. Every write is committed before the
/// method returns.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Adds a user; `Conflict` when the name is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<()>;

    /// Adds `user` only when there is no user at all; whether it was added.
    async fn insert_first_user(&self, user: &UserRecord) -> Result<bool>;

    /// One user with its password hash.
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>>;

    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<User>>;

    /// Removes a user and revokes the API tokens it created at `now`; `false` when
    /// there is none. `allowed` is asked first, inside the same transaction, with
    /// the user and the users that would remain: its error refuses the removal and
    /// changes nothing (concurrent removals are judged one after the other).
    async fn delete_user(&self, username: &str, now: f64, allowed: UserRule<'_>) -> Result<bool>;

    /// Replaces a user's password hash; `false` when there is no such user.
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<bool>;

    /// Adds an API token.
    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()>;

    /// The API token with this hash, revoked or not.
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>>;

    /// API tokens not revoked, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>>;

    /// Revokes a token at `now`; `false` when no such token is active.
    async fn revoke_api_token(&self, id: &str, now: f64) -> Result<bool>;

    /// A cluster secret in clear.
    async fn cluster_secret(&self, name: &str) -> Result<Option<String>>;

    /// Stores `value` under `name` unless one is already stored; returns the stored
    /// value (so concurrent first starts agree on one).
    async fn init_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<String>;

    /// Replaces a cluster secret (sealed under the current key).
    async fn put_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<()>;

    /// The ids of the keys the cluster secrets are sealed with (every initialized
    /// database has some: the join token and the token signing key).
    async fn sealed_key_ids(&self) -> Result<Vec<String>>;

    /// Everything, for `miaas db copy`.
    async fn export_access(&self) -> Result<AccessDump>;
}

/// A rule over a user to remove and the users that would remain (see
/// [`AccessStore::delete_user`]).
pub type UserRule<'a> = &'a (dyn Fn(&User, &[User]) -> Result<()> + Send + Sync);

/// Seals a cluster secret when the store has keys.
pub(crate) fn seal(secrets: Option<&Secrets>, value: &str) -> Result<String> {
    match secrets {
        Some(secrets) => secrets.seal(value),
        None => Ok(value.to_string()),
    }
}

/// Opens a stored cluster secret.
pub(crate) fn open(secrets: Option<&Secrets>, stored: &str) -> Result<String> {
    match secrets {
        Some(secrets) => secrets.open(stored),
        None if stored.starts_with("enc1:") => Err(Error::Corrupt(
            "a cluster secret is sealed but no key is configured".into(),
        )),
        None => Ok(stored.to_string()),
    }
}

/// A stored role.
pub(crate) fn role(text: &str) -> Result<Role> {
    text.parse()
        .map_err(|_| Error::Corrupt(format!("unknown stored role {text:?}")))
}

/// A user row: name, role, password hash, creation time.
pub(crate) type UserRow = (String, String, String, f64);

/// An API token row: id, name, role, hash, creation time, revocation time, creator.
pub(crate) type TokenRow = (
    String,
    String,
    String,
    String,
    f64,
    Option<f64>,
    Option<String>,
);

pub(crate) fn user_record(
    (username, role_text, password_hash, created_at): UserRow,
) -> Result<UserRecord> {
    Ok(UserRecord {
        user: User {
            username,
            role: role(&role_text)?,
            created_at,
        },
        password_hash,
    })
}

pub(crate) fn token_record(
    (id, name, role_text, token_hash, created_at, revoked_at, created_by): TokenRow,
) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        info: ApiTokenInfo {
            id,
            name,
            role: role(&role_text)?,
            created_at,
        },
        token_hash,
        revoked_at,
        created_by,
    })
}

/// `INSERT` of a [`UserRecord`] with its binds (`$record`), for both backends.
macro_rules! insert_user {
    ($record:expr) => {
        sqlx::query(
            "INSERT INTO users (username, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&$record.user.username)
        .bind($record.user.role.as_str())
        .bind(&$record.password_hash)
        .bind($record.user.created_at)
    };
}

/// `INSERT` of an [`ApiTokenRecord`] with its binds (`$record`), for both backends.
macro_rules! insert_api_token {
    ($record:expr) => {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at, revoked_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&$record.info.id)
        .bind(&$record.info.name)
        .bind($record.info.role.as_str())
        .bind(&$record.token_hash)
        .bind($record.info.created_at)
        .bind($record.revoked_at)
        .bind(&$record.created_by)
    };
}

/// Writes `dump` into the access tables inside `$tx`, replacing what they held (a
/// fresh target has at most its bootstrap admin, which the source's users replace).
macro_rules! import_access {
    ($tx:expr, $secrets:expr, $dump:expr) => {{
        let tx = $tx;
        for table in [
            "DELETE FROM users",
            "DELETE FROM api_tokens",
            "DELETE FROM cluster_secrets",
        ] {
            sqlx::query(table).execute(&mut **tx).await?;
        }
        for record in &$dump.users {
            insert_user!(record).execute(&mut **tx).await?;
        }
        for record in &$dump.tokens {
            insert_api_token!(record).execute(&mut **tx).await?;
        }
        for (name, value) in &$dump.secrets {
            sqlx::query(
                "INSERT INTO cluster_secrets (name, value, updated_at) VALUES ($1, $2, $3)",
            )
            .bind(name)
            .bind($crate::store::access::seal($secrets, value)?)
            .bind($crate::clock::Clock::now(&$crate::clock::SystemClock))
            .execute(&mut **tx)
            .await?;
        }
    }};
}

/// Implements [`AccessStore`] for a backend: `$writer` is the pool writes go to,
/// `$reader` the pool reads come from, `$begin` opens a write transaction. Every
/// write adds one to the cluster version and marks it as a change of access, so
/// that every replica forgets what it remembered.
macro_rules! impl_access_store {
    (
        $store:ty,
        writer = $writer:ident,
        reader = $reader:ident,
        begin = $begin:ident
    ) => {
        #[async_trait::async_trait]
        impl $crate::store::access::AccessStore for $store {
            async fn insert_user(
                &self,
                record: &$crate::store::access::UserRecord,
            ) -> $crate::Result<()> {
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                match insert_user!(record).execute(&mut *tx).await {
                    Ok(_) => Ok(tx.commit().await?),
                    Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                        Err($crate::Error::Conflict(format!(
                            "user {:?} already exists",
                            record.user.username
                        )))
                    }
                    Err(err) => Err(err.into()),
                }
            }

            async fn insert_first_user(
                &self,
                record: &$crate::store::access::UserRecord,
            ) -> $crate::Result<bool> {
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(
                    "INSERT INTO users (username, role, password_hash, created_at) \
                     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM users) \
                     ON CONFLICT (username) DO NOTHING",
                )
                .bind(&record.user.username)
                .bind(record.user.role.as_str())
                .bind(&record.password_hash)
                .bind(record.user.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn get_user(
                &self,
                username: &str,
            ) -> $crate::Result<Option<$crate::store::access::UserRecord>> {
                let row: Option<$crate::store::access::UserRow> = sqlx::query_as(
                    "SELECT username, role, password_hash, created_at FROM users \
                     WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.$reader)
                .await?;
                row.map($crate::store::access::user_record).transpose()
            }

            async fn list_users(&self) -> $crate::Result<Vec<$crate::model::User>> {
                let rows: Vec<$crate::store::access::UserRow> = sqlx::query_as(
                    "SELECT username, role, password_hash, created_at FROM users \
                     ORDER BY username",
                )
                .fetch_all(&self.$reader)
                .await?;
                rows.into_iter()
                    .map(|row| $crate::store::access::user_record(row).map(|r| r.user))
                    .collect()
            }

            async fn delete_user(
                &self,
                username: &str,
                now: f64,
                allowed: $crate::store::access::UserRule<'_>,
            ) -> $crate::Result<bool> {
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                let rows: Vec<$crate::store::access::UserRow> = sqlx::query_as(
                    "SELECT username, role, password_hash, created_at FROM users \
                     ORDER BY username",
                )
                .fetch_all(&mut *tx)
                .await?;
                let users = rows
                    .into_iter()
                    .map(|row| $crate::store::access::user_record(row).map(|r| r.user))
                    .collect::<$crate::Result<Vec<_>>>()?;
                let (removed, remaining): (Vec<_>, Vec<_>) =
                    users.into_iter().partition(|u| u.username == username);
                let Some(removed) = removed.first() else {
                    return Ok(false);
                };
                allowed(removed, &remaining)?;
                sqlx::query("DELETE FROM users WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE created_by = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(username)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn set_password_hash(
                &self,
                username: &str,
                password_hash: &str,
            ) -> $crate::Result<bool> {
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
                    .bind(password_hash)
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_api_token(
                &self,
                record: &$crate::store::access::ApiTokenRecord,
            ) -> $crate::Result<()> {
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                insert_api_token!(record).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn api_token_by_hash(
                &self,
                token_hash: &str,
            ) -> $crate::Result<Option<$crate::store::access::ApiTokenRecord>> {
                let row: Option<$crate::store::access::TokenRow> = sqlx::query_as(
                    "SELECT id, name, role, token_hash, created_at, revoked_at, created_by \
                     FROM api_tokens \
                     WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.$reader)
                .await?;
                row.map($crate::store::access::token_record).transpose()
            }

            async fn list_api_tokens(&self) -> $crate::Result<Vec<$crate::model::ApiTokenInfo>> {
                let rows: Vec<$crate::store::access::TokenRow> = sqlx::query_as(
                    "SELECT id, name, role, token_hash, created_at, revoked_at, created_by \
                     FROM api_tokens \
                     WHERE revoked_at IS NULL ORDER BY created_at, id",
                )
                .fetch_all(&self.$reader)
                .await?;
                rows.into_iter()
                    .map(|row| $crate::store::access::token_record(row).map(|r| r.info))
                    .collect()
            }

            async fn revoke_api_token(&self, id: &str, now: f64) -> $crate::Result<bool> {
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn cluster_secret(&self, name: &str) -> $crate::Result<Option<String>> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT value FROM cluster_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.$reader)
                        .await?;
                row.map(|(stored,)| $crate::store::access::open(self.secrets.as_ref(), &stored))
                    .transpose()
            }

            async fn init_cluster_secret(
                &self,
                name: &str,
                value: &str,
                now: f64,
            ) -> $crate::Result<String> {
                let sealed = $crate::store::access::seal(self.secrets.as_ref(), value)?;
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO cluster_secrets (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(sealed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let (stored,): (String,) =
                    sqlx::query_as("SELECT value FROM cluster_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                $crate::store::access::open(self.secrets.as_ref(), &stored)
            }

            async fn put_cluster_secret(
                &self,
                name: &str,
                value: &str,
                now: f64,
            ) -> $crate::Result<()> {
                let sealed = $crate::store::access::seal(self.secrets.as_ref(), value)?;
                let mut tx = self.$begin().await?;
                sqlx::query($crate::store::version::BUMP_ACCESS_SQL)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO cluster_secrets (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                     updated_at = excluded.updated_at",
                )
                .bind(name)
                .bind(sealed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn sealed_key_ids(&self) -> $crate::Result<Vec<String>> {
                let values: Vec<(String,)> = sqlx::query_as("SELECT value FROM cluster_secrets")
                    .fetch_all(&self.$writer)
                    .await?;
                let mut ids: Vec<String> = values
                    .iter()
                    .filter_map(|(v,)| $crate::secrets::Secrets::key_id_of(v))
                    .map(str::to_string)
                    .collect();
                ids.sort_unstable();
                ids.dedup();
                Ok(ids)
            }

            async fn export_access(&self) -> $crate::Result<$crate::store::access::AccessDump> {
                let users: Vec<$crate::store::access::UserRow> = sqlx::query_as(
                    "SELECT username, role, password_hash, created_at FROM users \
                     ORDER BY username",
                )
                .fetch_all(&self.$writer)
                .await?;
                let tokens: Vec<$crate::store::access::TokenRow> = sqlx::query_as(
                    "SELECT id, name, role, token_hash, created_at, revoked_at, created_by \
                     FROM api_tokens \
                     ORDER BY id",
                )
                .fetch_all(&self.$writer)
                .await?;
                let secrets: Vec<(String, String)> =
                    sqlx::query_as("SELECT name, value FROM cluster_secrets ORDER BY name")
                        .fetch_all(&self.$writer)
                        .await?;
                Ok($crate::store::access::AccessDump {
                    users: users
                        .into_iter()
                        .map($crate::store::access::user_record)
                        .collect::<$crate::Result<_>>()?,
                    tokens: tokens
                        .into_iter()
                        .map($crate::store::access::token_record)
                        .collect::<$crate::Result<_>>()?,
                    secrets: secrets
                        .into_iter()
                        .map(|(name, stored)| {
                            $crate::store::access::open(self.secrets.as_ref(), &stored)
                                .map(|value| (name, value))
                        })
                        .collect::<$crate::Result<_>>()?,
                })
            }
        }
    };
}
