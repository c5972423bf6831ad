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

/// The access store of both backends: the same SQL (`$N` placeholders work in SQLite
/// and PostgreSQL) over a pool of either. Every write adds one to the cluster
/// version and marks it as a change of access, so that every replica forgets what
/// it remembered.
#[derive(Debug)]
pub(crate) struct SqlTables<DB: sqlx::Database> {
    /// Where writes go.
    pub(crate) writer: sqlx::Pool<DB>,
    /// Where reads come from.
    pub(crate) reader: sqlx::Pool<DB>,
    /// Seals cluster secrets.
    pub(crate) secrets: Option<Secrets>,
    /// How a write transaction begins (SQLite takes its write lock at once).
    pub(crate) begin: &'static str,
}

impl<DB: sqlx::Database> Clone for SqlTables<DB> {
    fn clone(&self) -> Self {
        Self {
            writer: self.writer.clone(),
            reader: self.reader.clone(),
            secrets: self.secrets.clone(),
            begin: self.begin,
        }
    }
}

impl<DB> SqlTables<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    UserRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    TokenRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String, String): for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::QueryResult: RowsAffected,
{
    async fn begin(&self) -> Result<sqlx::Transaction<'static, DB>> {
        Ok(self.writer.begin_with(self.begin).await?)
    }

    async fn insert_user_in(
        tx: &mut sqlx::Transaction<'_, DB>,
        record: &UserRecord,
    ) -> std::result::Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO users (username, role, password_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(record.user.username.as_str())
        .bind(record.user.role.as_str())
        .bind(record.password_hash.as_str())
        .bind(record.user.created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn insert_api_token_in(
        tx: &mut sqlx::Transaction<'_, DB>,
        record: &ApiTokenRecord,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, token_hash, created_at, revoked_at, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(record.info.id.as_str())
        .bind(record.info.name.as_str())
        .bind(record.info.role.as_str())
        .bind(record.token_hash.as_str())
        .bind(record.info.created_at)
        .bind(record.revoked_at)
        .bind(record.created_by.as_deref())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Writes `dump` into the access tables inside `tx`, replacing what they held
    /// (a fresh target has at most its bootstrap admin, which the source's users
    /// replace).
    pub(crate) async fn import(
        &self,
        tx: &mut sqlx::Transaction<'_, DB>,
        dump: &AccessDump,
    ) -> Result<()> {
        for table in [
            "DELETE FROM users",
            "DELETE FROM api_tokens",
            "DELETE FROM cluster_secrets",
        ] {
            sqlx::query(table).execute(&mut **tx).await?;
        }
        for record in &dump.users {
            Self::insert_user_in(tx, record).await?;
        }
        for record in &dump.tokens {
            Self::insert_api_token_in(tx, record).await?;
        }
        let now = crate::clock::Clock::now(&crate::clock::SystemClock);
        for (name, value) in &dump.secrets {
            let sealed = seal(self.secrets.as_ref(), value)?;
            sqlx::query(
                "INSERT INTO cluster_secrets (name, value, updated_at) VALUES ($1, $2, $3)",
            )
            .bind(name.as_str())
            .bind(sealed.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<DB> AccessStore for SqlTables<DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    UserRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    TokenRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
    (String, String): for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::QueryResult: RowsAffected,
{
    async fn insert_user(&self, record: &UserRecord) -> crate::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        match Self::insert_user_in(&mut tx, record).await {
            Ok(_) => Ok(tx.commit().await?),
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => Err(
                crate::Error::Conflict(format!("user {:?} already exists", record.user.username)),
            ),
            Err(err) => Err(err.into()),
        }
    }

    async fn insert_first_user(&self, record: &UserRecord) -> crate::Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "INSERT INTO users (username, role, password_hash, created_at) \
                 SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM users) \
                 ON CONFLICT (username) DO NOTHING",
        )
        .bind(record.user.username.as_str())
        .bind(record.user.role.as_str())
        .bind(record.password_hash.as_str())
        .bind(record.user.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.affected() == 1)
    }

    async fn get_user(&self, username: &str) -> crate::Result<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT username, role, password_hash, created_at FROM users \
                 WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.reader)
        .await?;
        row.map(user_record).transpose()
    }

    async fn list_users(&self) -> crate::Result<Vec<crate::model::User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT username, role, password_hash, created_at FROM users \
                 ORDER BY username",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| user_record(row).map(|r| r.user))
            .collect()
    }

    async fn delete_user(
        &self,
        username: &str,
        now: f64,
        allowed: UserRule<'_>,
    ) -> crate::Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT username, role, password_hash, created_at FROM users \
                 ORDER BY username",
        )
        .fetch_all(&mut *tx)
        .await?;
        let users = rows
            .into_iter()
            .map(|row| user_record(row).map(|r| r.user))
            .collect::<crate::Result<Vec<_>>>()?;
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

    async fn set_password_hash(&self, username: &str, password_hash: &str) -> crate::Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.affected() == 1)
    }

    async fn insert_api_token(&self, record: &ApiTokenRecord) -> crate::Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        Self::insert_api_token_in(&mut tx, record).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> crate::Result<Option<ApiTokenRecord>> {
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT id, name, role, token_hash, created_at, revoked_at, created_by \
                 FROM api_tokens \
                 WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?;
        row.map(token_record).transpose()
    }

    async fn list_api_tokens(&self) -> crate::Result<Vec<crate::model::ApiTokenInfo>> {
        let rows: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, name, role, token_hash, created_at, revoked_at, created_by \
                 FROM api_tokens \
                 WHERE revoked_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|row| token_record(row).map(|r| r.info))
            .collect()
    }

    async fn revoke_api_token(&self, id: &str, now: f64) -> crate::Result<bool> {
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
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
        Ok(done.affected() == 1)
    }

    async fn cluster_secret(&self, name: &str) -> crate::Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM cluster_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        row.map(|(stored,)| open(self.secrets.as_ref(), &stored))
            .transpose()
    }

    async fn init_cluster_secret(
        &self,
        name: &str,
        value: &str,
        now: f64,
    ) -> crate::Result<String> {
        let sealed = seal(self.secrets.as_ref(), value)?;
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO cluster_secrets (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(sealed.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (stored,): (String,) =
            sqlx::query_as("SELECT value FROM cluster_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        open(self.secrets.as_ref(), &stored)
    }

    async fn put_cluster_secret(&self, name: &str, value: &str, now: f64) -> crate::Result<()> {
        let sealed = seal(self.secrets.as_ref(), value)?;
        let mut tx = self.begin().await?;
        sqlx::query(crate::store::version::BUMP_ACCESS_SQL)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO cluster_secrets (name, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(sealed.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sealed_key_ids(&self) -> crate::Result<Vec<String>> {
        let values: Vec<(String,)> = sqlx::query_as("SELECT value FROM cluster_secrets")
            .fetch_all(&self.writer)
            .await?;
        let mut ids: Vec<String> = values
            .iter()
            .filter_map(|(v,)| crate::secrets::Secrets::key_id_of(v))
            .map(str::to_string)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    async fn export_access(&self) -> crate::Result<AccessDump> {
        let users: Vec<UserRow> = sqlx::query_as(
            "SELECT username, role, password_hash, created_at FROM users \
                 ORDER BY username",
        )
        .fetch_all(&self.writer)
        .await?;
        let tokens: Vec<TokenRow> = sqlx::query_as(
            "SELECT id, name, role, token_hash, created_at, revoked_at, created_by \
                 FROM api_tokens \
                 ORDER BY id",
        )
        .fetch_all(&self.writer)
        .await?;
        let secrets: Vec<(String, String)> =
            sqlx::query_as("SELECT name, value FROM cluster_secrets ORDER BY name")
                .fetch_all(&self.writer)
                .await?;
        Ok(AccessDump {
            users: users
                .into_iter()
                .map(user_record)
                .collect::<crate::Result<_>>()?,
            tokens: tokens
                .into_iter()
                .map(token_record)
                .collect::<crate::Result<_>>()?,
            secrets: secrets
                .into_iter()
                .map(|(name, stored)| {
                    open(self.secrets.as_ref(), &stored).map(|value| (name, value))
                })
                .collect::<crate::Result<_>>()?,
        })
    }
}

/// How many rows a statement changed, whatever the backend.
pub(crate) trait RowsAffected {
    /// The number of rows.
    fn affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// A backend whose users, API tokens and cluster secrets are a [`SqlTables`]: it is
/// an [`AccessStore`] through it.
pub(crate) trait WithSqlTables: Send + Sync {
    /// The backend's database.
    type Db: sqlx::Database;
    /// Its access store.
    fn tables(&self) -> &SqlTables<Self::Db>;
}

#[async_trait]
impl<T> AccessStore for T
where
    T: WithSqlTables,
    SqlTables<T::Db>: AccessStore,
{
    async fn insert_user(&self, user: &UserRecord) -> Result<()> {
        self.tables().insert_user(user).await
    }

    async fn insert_first_user(&self, user: &UserRecord) -> Result<bool> {
        self.tables().insert_first_user(user).await
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        self.tables().get_user(username).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.tables().list_users().await
    }

    async fn delete_user(&self, username: &str, now: f64, allowed: UserRule<'_>) -> Result<bool> {
        self.tables().delete_user(username, now, allowed).await
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<bool> {
        (self.tables())
            .set_password_hash(username, password_hash)
            .await
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        self.tables().insert_api_token(token).await
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
        self.tables().api_token_by_hash(token_hash).await
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        self.tables().list_api_tokens().await
    }

    async fn revoke_api_token(&self, id: &str, now: f64) -> Result<bool> {
        self.tables().revoke_api_token(id, now).await
    }

    async fn cluster_secret(&self, name: &str) -> Result<Option<String>> {
        self.tables().cluster_secret(name).await
    }

    async fn init_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<String> {
        (self.tables()).init_cluster_secret(name, value, now).await
    }

    async fn put_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<()> {
        (self.tables()).put_cluster_secret(name, value, now).await
    }

    async fn sealed_key_ids(&self) -> Result<Vec<String>> {
        self.tables().sealed_key_ids().await
    }

    async fn export_access(&self) -> Result<AccessDump> {
        self.tables().export_access().await
    }
}
