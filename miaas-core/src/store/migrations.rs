//! Checking that the embedded migrations were applied, for servers started with
//! start-up migrations turned off.

use sqlx::migrate::Migrator;
use sqlx::{Database, Executor, Pool};

use crate::{Error, Result};

/// `Ok` when every embedded migration is recorded as applied.
pub(crate) async fn check_applied<DB>(pool: &Pool<DB>, migrator: &Migrator) -> Result<()>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Option<(i64,)> =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_optional(pool)
            .await
            .unwrap_or(None);
    match applied {
        Some((version,)) if version >= latest => Ok(()),
        _ => Err(Error::Conflict(
            "the database schema is not up to date; run `miaas db migrate` (or start \\
             without --no-migrate)"
                .into(),
        )),
    }
}
