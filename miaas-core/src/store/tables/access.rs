//! Users, API tokens and cluster secrets. Every write adds one to the cluster
//! version and marks it as a change of access, so that every replica forgets what
//! it remembered.

use async_trait::async_trait;

use super::{RowsAffected, SqlTables};
use crate::Result;
use crate::store::access::{
    AccessDump, AccessStore, ApiTokenRecord, TokenRow, UserRecord, UserRow, UserRule, open, seal,
    token_record, user_record,
};

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
