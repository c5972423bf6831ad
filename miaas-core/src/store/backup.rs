//! Backups of a SQLite install (`miaas db backup` / `miaas db restore`).
//!
//! A backup is one SQLite file written by `VACUUM INTO` from a read-only
//! connection: one read transaction, so a consistent copy of the moment it began,
//! taken while a server keeps writing (WAL readers never block the writer). It
//! holds what the database holds: password and token hashes and *sealed*
//! secrets, never the key that opens them. It is written `0600` under a temporary
//! name and renamed once complete, so a file with the backup's name is whole.
//!
//! A restore replaces a SQLite file with a checked backup while holding the
//! file's owner lock (no server may start meanwhile, none may be running), or
//! imports the backup into an empty PostgreSQL database.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use super::owner::OwnerLock;
use super::sqlite::SqliteStore;
use super::{SqliteTarget, Store, StoreOptions};
use crate::{Error, Result};

/// What a backup or a restore holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupReport {
    /// Nodes.
    pub nodes: i64,
    /// Deployments, deleted ones included.
    pub deployments: i64,
    /// User accounts.
    pub users: i64,
    /// Events in the log.
    pub events: i64,
    /// The backup file's size in bytes.
    pub bytes: u64,
}

impl BackupReport {
    fn holds_anything(&self) -> bool {
        self.nodes + self.deployments + self.users > 0
    }
}

fn failed(what: &str, path: &Path, err: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what} {}: {err}", path.display()))
}

async fn open_read_only(path: &Path) -> Result<SqliteConnection> {
    if !path.is_file() {
        return Err(Error::NotFound(format!(
            "no SQLite database at {}",
            path.display()
        )));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|err| failed("cannot open", path, err))
}

/// Counts what the MIaaS database at `path` holds; refuses a file that is not a
/// sound MIaaS database.
async fn inspect(connection: &mut SqliteConnection, path: &Path) -> Result<BackupReport> {
    let (check,): (String,) = sqlx::query_as("PRAGMA quick_check")
        .fetch_one(&mut *connection)
        .await
        .map_err(|err| failed("cannot read", path, err))?;
    if check != "ok" {
        return Err(Error::Corrupt(format!(
            "{} fails its integrity check: {check}",
            path.display()
        )));
    }
    let mut counts = [0i64; 4];
    for (slot, (table, sql)) in counts.iter_mut().zip([
        ("nodes", "SELECT COUNT(*) FROM nodes"),
        ("deployments", "SELECT COUNT(*) FROM deployments"),
        ("users", "SELECT COUNT(*) FROM users"),
        ("events", "SELECT COUNT(*) FROM events"),
    ]) {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&mut *connection)
            .await
            .map_err(|_| {
                Error::Invalid(format!(
                    "{} is not a MIaaS database (it has no {table} table)",
                    path.display()
                ))
            })?;
        *slot = n;
    }
    Ok(BackupReport {
        nodes: counts[0],
        deployments: counts[1],
        users: counts[2],
        events: counts[3],
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
    })
}

/// A sibling of `path` named with `suffix`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a consistent copy of the SQLite database `database` to `file` (which
/// must not exist), online: a server may be writing meanwhile.
pub async fn backup_sqlite(database: &Path, file: &Path) -> Result<BackupReport> {
    if file.exists() {
        return Err(Error::Conflict(format!(
            "{} already exists; choose a new file name",
            file.display()
        )));
    }
    let partial = sibling(file, ".partial");
    let _ = std::fs::remove_file(&partial);
    // VACUUM INTO fills an empty file: creating it first makes it private
    crate::private_file::create_new(&partial)
        .map_err(|err| failed("cannot create", &partial, err))?;
    let written = async {
        let mut source = open_read_only(database).await?;
        inspect(&mut source, database).await?;
        let target = partial
            .to_str()
            .ok_or_else(|| Error::Invalid(format!("{} is not UTF-8", partial.display())))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&mut source)
            .await
            .map_err(|err| failed("cannot back up", database, err))?;
        source.close().await.ok();
        let mut copy = open_read_only(&partial).await?;
        let report = inspect(&mut copy, &partial).await?;
        copy.close().await.ok();
        Ok::<_, Error>(report)
    }
    .await;
    let report = match written {
        Ok(report) => report,
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|err| failed("cannot write", &partial, err))?;
    std::fs::rename(&partial, file).map_err(|err| failed("cannot write", file, err))?;
    Ok(report)
}

/// Checks the backup at `file` and counts what it holds.
pub async fn inspect_backup(file: &Path) -> Result<BackupReport> {
    let mut connection = open_read_only(file).await?;
    let report = inspect(&mut connection, file).await;
    connection.close().await.ok();
    report
}

/// Replaces the SQLite database `database` with the backup `file`. Refuses while
/// a server or a command uses `database`, and when `database` holds nodes,
/// deployments or users unless `force`. The backup is copied beside `database`
/// and opened there first with `options` (applying newer migrations and checking
/// that the secrets key opens its secrets): only then does it replace `database`.
pub async fn restore_sqlite(
    file: &Path,
    database: &Path,
    force: bool,
    options: &StoreOptions,
) -> Result<BackupReport> {
    let report = inspect_backup(file).await?;
    let _lock = OwnerLock::take(database, "(miaas db restore in progress)")?;
    if database.exists() {
        let mut current = open_read_only(database).await?;
        let existing = inspect(&mut current, database).await;
        current.close().await.ok();
        if let Ok(existing) = existing
            && existing.holds_anything()
            && !force
        {
            return Err(Error::Conflict(format!(
                "{} is not empty ({} nodes, {} deployments, {} users); \
                 pass --force to replace it",
                database.display(),
                existing.nodes,
                existing.deployments,
                existing.users
            )));
        }
    }
    let incoming = sibling(database, ".restoring");
    let opened = async {
        remove_if_present(&incoming)?;
        {
            let mut from =
                std::fs::File::open(file).map_err(|err| failed("cannot read", file, err))?;
            let mut to = crate::private_file::create_new(&incoming)
                .map_err(|err| failed("cannot create", &incoming, err))?;
            std::io::copy(&mut from, &mut to)
                .and_then(|_| to.sync_all())
                .map_err(|err| failed("cannot write", &incoming, err))?;
        }
        let options = StoreOptions {
            owner: None,
            ..options.clone()
        };
        let store = SqliteStore::open(SqliteTarget::File(incoming.clone()), &options).await?;
        let settled = match &options.secrets {
            Some(secrets) => match store.access().sealed_key_ids().await {
                Ok(ids) => secrets.settle(&ids),
                Err(err) => Err(err),
            },
            None => Ok(()),
        };
        store.close().await;
        settled
    }
    .await;
    let cleanup = |paths: &[PathBuf]| {
        for path in paths {
            let _ = std::fs::remove_file(path);
        }
    };
    let journal = [sibling(&incoming, "-wal"), sibling(&incoming, "-shm")];
    cleanup(&[sibling(&incoming, ".lock")]);
    if let Err(err) = opened {
        cleanup(std::slice::from_ref(&incoming));
        cleanup(&journal);
        return Err(err);
    }
    // the old database's journal must not be applied to the new one
    remove_if_present(&sibling(database, "-wal"))?;
    remove_if_present(&sibling(database, "-shm"))?;
    if journal[0].exists() {
        std::fs::rename(&journal[0], sibling(database, "-wal"))
            .map_err(|err| failed("cannot write", database, err))?;
    }
    cleanup(&journal[1..]);
    std::fs::rename(&incoming, database).map_err(|err| failed("cannot write", database, err))?;
    Ok(report)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(failed("cannot remove", path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_that_is_not_a_miaas_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other.db");
        let mut connection = SqliteConnectOptions::new()
            .filename(&other)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
        let err = inspect_backup(&other).await.unwrap_err();
        assert!(err.to_string().contains("not a MIaaS database"), "{err}");
        let err = inspect_backup(&dir.path().join("none.db"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
    }
}
