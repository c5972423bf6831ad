//! One owner per SQLite file. A server holds an exclusive lock on `<file>.lock`,
//! which names its URL, for as long as it runs: nothing else writes the file
//! behind its back, so what it keeps in memory is all there is to know. `miaas` in
//! local mode holds a shared lock instead, and is refused, with the server's URL,
//! while a server owns the file. The kernel drops the lock when the process dies,
//! so a crashed server never blocks its restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A held lock on a database file.
#[derive(Debug)]
pub enum OwnerLock {
    /// An in-memory database: no other process can open it.
    Memory,
    /// A server owns the file.
    Server(File),
    /// A local-mode command uses the file; no server may start meanwhile.
    Local(File),
}

/// The lock file beside the database at `database`.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

fn open(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    crate::private_file::private_mode(&mut options);
    options.open(path)
}

impl OwnerLock {
    /// The lock of an in-memory database.
    pub fn memory() -> Self {
        Self::Memory
    }

    /// Takes the file for the server at `url`; `InUse` while another process
    /// (a server, or a command in local mode) has it open.
    pub fn take(database: &Path, url: &str) -> Result<Self> {
        let path = lock_path(database);
        let failed = |err: std::io::Error| {
            Error::Unavailable(format!("cannot lock {}: {err}", path.display()))
        };
        let mut file = open(&path).map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::InUse(match owner_url(&mut file) {
                    Some(other) => format!(
                        "database {} is already served by the server at {other}",
                        database.display()
                    ),
                    None => format!(
                        "database {} is in use by another process (a `miaas` command in \
                         local mode?); try again when it is done",
                        database.display()
                    ),
                }));
            }
            Err(std::fs::TryLockError::Error(err)) => return Err(failed(err)),
        }
        file.set_len(0).map_err(failed)?;
        writeln!(file, "{url}").map_err(failed)?;
        file.sync_all().map_err(failed)?;
        Ok(Self::Server(file))
    }

    /// For a command in local mode: a shared lock while no server owns the file;
    /// `InUse`, naming the server's URL, while one does. `None` when no lock file
    /// can be made (a read-only folder): then no server can own it either.
    pub fn use_locally(database: &Path) -> Result<Option<Self>> {
        let path = lock_path(database);
        let Ok(mut file) = open(&path) else {
            return Ok(None);
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(Self::Local(file))),
            Err(std::fs::TryLockError::WouldBlock) => {
                let url = owner_url(&mut file).unwrap_or_else(|| "its URL".into());
                Err(Error::InUse(format!(
                    "a MIaaS server owns database {}: talk to it instead, with --server {url} \
                     (or MIAAS_SERVER)",
                    database.display()
                )))
            }
            Err(std::fs::TryLockError::Error(err)) => Err(Error::Unavailable(format!(
                "cannot lock {}: {err}",
                path.display()
            ))),
        }
    }

    /// Whether this process is the file's only writer.
    pub fn is_owner(&self) -> bool {
        matches!(self, Self::Memory | Self::Server(_))
    }
}

/// The URL a server wrote into its lock file.
fn owner_url(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    let url = text.lines().next()?.trim();
    (!url.is_empty()).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_owns_its_file_and_local_use_is_told_where_it_is() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("m.db");
        let local = OwnerLock::use_locally(&db).expect("free").expect("lock");
        let busy = OwnerLock::take(&db, "http://127.0.0.1:1").expect_err("shared lock held");
        assert!(busy.to_string().contains("local mode"), "{busy}");
        drop(local);
        let server = OwnerLock::take(&db, "http://127.0.0.1:8000").expect("owner");
        assert!(server.is_owner());
        let refused = OwnerLock::use_locally(&db).expect_err("owned");
        assert!(
            refused
                .to_string()
                .contains("--server http://127.0.0.1:8000"),
            "{refused}"
        );
        let second = OwnerLock::take(&db, "http://127.0.0.1:9").expect_err("owned");
        assert!(
            second.to_string().contains("http://127.0.0.1:8000"),
            "{second}"
        );
        drop(server);
        assert!(OwnerLock::use_locally(&db).expect("free again").is_some());
    }
}
