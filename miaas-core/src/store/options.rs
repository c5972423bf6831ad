//! How a store is opened.

use std::time::Duration;

use crate::secrets::Secrets;

/// Connection settings that callers may tune.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool (PostgreSQL; SQLite's readers).
    pub pool_size: u32,
    /// Longest a statement may run before the database cancels it (PostgreSQL).
    pub statement_timeout: Option<Duration>,
    /// How long to wait for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
    /// Apply the embedded migrations on open (else check they were applied).
    pub migrate: bool,
    /// Seal deployment environments at rest with these keys (`None`: stored plain).
    pub secrets: Option<Secrets>,
    /// Own a SQLite file as the server at this URL: no other process may write it
    /// while this store is open, and `miaas` in local mode is told where the
    /// server is (see [`crate::store::OwnerLock`]).
    pub owner: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            statement_timeout: Some(Duration::from_secs(30)),
            acquire_timeout: Duration::from_secs(5),
            migrate: true,
            secrets: None,
            owner: None,
        }
    }
}
