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
