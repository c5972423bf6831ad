//! The one error type of `miaas-core`.

/// Everything that can go wrong in the core, named so that callers can map it to a
/// status (HTTP) or an exit code (CLI) without inspecting strings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state.
    #[error("{0}")]
    Conflict(String),
    /// What was asked for existed but is over (an ended log session, events
    /// removed by retention).
    #[error("{0}")]
    Gone(String),
    /// The input is malformed or out of range; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// No credentials, or credentials that match nobody.
    #[error("{0}")]
    Unauthorized(String),
    /// A credential this server issued that no longer works (an expired access
    /// token, a revoked API token, a removed user's token). Answered like
    /// `Unauthorized`, but not counted as a guess.
    #[error("{0}")]
    Expired(String),
    /// Too many attempts of this kind; nothing was done.
    #[error("{detail}")]
    Throttled {
        /// What to do, for people.
        detail: String,
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// The server is too busy for this request now; nothing was done.
    #[error("{detail}")]
    Busy {
        /// What to do, for people.
        detail: String,
        /// Seconds until a retry may succeed.
        retry_after: u64,
    },
    /// Valid credentials that do not allow this operation.
    #[error("{0}")]
    Forbidden(String),
    /// The database URL cannot be used.
    #[error("invalid database URL: {0}")]
    DatabaseUrl(String),
    /// The database could not be reached in time (gone, locked, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database reported an error.
    #[cfg(feature = "server")]
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Applying the embedded migrations failed.
    #[cfg(feature = "server")]
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The configured secret keys cannot open what the database holds.
    #[error("secret key mismatch: {0}")]
    KeyMismatch(String),
    /// Another process owns the database (a server on its SQLite file).
    #[error("{0}")]
    InUse(String),
    /// A stored value could not be decoded (written by an incompatible version?).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

#[cfg(feature = "server")]
impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(err.to_string())
            }
            other => Error::Database(other),
        }
    }
}

/// Shorthand for results of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;
