//! The tables both backends share, implemented once, generic over
//! `sqlx::Database` (the SQL is `super::sql`'s): users, API tokens and cluster
//! secrets (`access`), nodes and deployments (`fleet`). Each backend adds only
//! what differs: how a transaction reads one consistent state, how a decision's
//! deployments are written and announced, how a list of node ids is bound.

mod access;
mod fleet;
mod stream;
mod templates;

pub(crate) use fleet::DecisionStart;

use async_trait::async_trait;

use super::access::{AccessDump, AccessStore, ApiTokenRecord, UserRecord, UserRule};
use crate::Result;
use crate::model::{ApiTokenInfo, User};
use crate::secrets::Secrets;

/// The shared tables over a pool of either backend.
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
