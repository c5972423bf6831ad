//! `miaas db migrate`, `copy`, `backup` and `restore`: always on databases directly.

use std::path::Path;

use miaas_core::store::{
    BackupReport, DatabaseLocation, SqliteTarget, backup_sqlite, connect_with, copy,
    inspect_backup, restore_sqlite,
};

use crate::backend::local_options;

use crate::cli::DbCommand;
use crate::error::{CliError, Result};
use crate::output::{OutputFormat, print_data};

/// Runs a `db` subcommand.
pub async fn run(command: DbCommand, database_url: &str, output: OutputFormat) -> Result<()> {
    match command {
        DbCommand::Migrate => {
            connect_with(database_url, &local_options(database_url)?).await?;
            if !print_data(output, &serde_json::json!({"migrated": true}))? {
                say!("database schema is up to date");
            }
            Ok(())
        }
        DbCommand::Copy { from, to } => {
            let source = connect_with(&from, &local_options(&from)?).await?;
            let target = connect_with(&to, &local_options(&to)?).await?;
            let report = copy(source.as_ref(), target.as_ref())
                .await
                .map_err(|err| CliError::Failed(format!("copy failed: {err}")))?;
            source.close().await;
            target.close().await;
            if !print_data(output, &report)? {
                say!(
                    "copied {} nodes, {} deployments and {} template versions; counts verified",
                    report.nodes,
                    report.deployments,
                    report.templates
                );
            }
            Ok(())
        }
        DbCommand::Backup { file } => {
            let report = backup_sqlite(&sqlite_file(database_url, "back up")?, &file).await?;
            if !print_data(output, &report)? {
                say!(
                    "backed up {} nodes, {} deployments, {} users and {} events to {} \
                     ({} bytes); keep the key file apart from it",
                    report.nodes,
                    report.deployments,
                    report.users,
                    report.events,
                    file.display(),
                    report.bytes
                );
            }
            Ok(())
        }
        DbCommand::Restore { file, force } => {
            let report = restore(&file, database_url, force).await?;
            if !print_data(output, &report)? {
                say!(
                    "restored {} nodes, {} deployments, {} users and {} events from {}",
                    report.nodes,
                    report.deployments,
                    report.users,
                    report.events,
                    file.display()
                );
            }
            Ok(())
        }
    }
}

/// The file of a SQLite `database_url`; PostgreSQL is backed up with its own tools.
fn sqlite_file(database_url: &str, action: &str) -> Result<std::path::PathBuf> {
    match DatabaseLocation::parse(database_url)? {
        DatabaseLocation::Sqlite(SqliteTarget::File(path)) => Ok(path),
        DatabaseLocation::Sqlite(SqliteTarget::Memory) => Err(CliError::Usage(format!(
            "cannot {action} an in-memory database"
        ))),
        DatabaseLocation::Postgres(_) => Err(CliError::Usage(format!(
            "cannot {action} PostgreSQL with miaas: use pg_dump -Fc / pg_restore \
             (README: Backups)"
        ))),
    }
}

/// Restores `file` into `database_url`, then opens the result (applying newer
/// migrations and checking the secrets key) and reports what it holds.
async fn restore(file: &Path, database_url: &str, force: bool) -> Result<BackupReport> {
    let options = local_options(database_url)?;
    match DatabaseLocation::parse(database_url)? {
        DatabaseLocation::Postgres(_) => {
            if force {
                return Err(CliError::Usage(
                    "--force cannot empty a PostgreSQL database: drop and create it, then \
                     restore into the empty database"
                        .into(),
                ));
            }
            let report = inspect_backup(file).await?;
            // the backup is opened (and migrated) as a copy, never changed itself
            let dir = tempfile::tempdir().map_err(|err| {
                CliError::Failed(format!("cannot make a temporary folder: {err}"))
            })?;
            let scratch = dir.path().join("backup.db");
            std::fs::copy(file, &scratch).map_err(|err| {
                CliError::Failed(format!("cannot read {}: {err}", file.display()))
            })?;
            let source_url = format!("sqlite://{}", scratch.display());
            let source = connect_with(&source_url, &options).await?;
            let target = connect_with(database_url, &options).await?;
            copy(source.as_ref(), target.as_ref())
                .await
                .map_err(|err| CliError::Failed(format!("restore failed: {err}")))?;
            source.close().await;
            target.close().await;
            Ok(report)
        }
        DatabaseLocation::Sqlite(_) => {
            let database = sqlite_file(database_url, "restore")?;
            Ok(restore_sqlite(file, &database, force, &options).await?)
        }
    }
}
