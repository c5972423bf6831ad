//! When the remembered credentials (node tokens, the access memo) may be trusted:
//! while the WAL-index header reads as it did when they were last known right.
//! Another process's commit changes the header, so the next lookup forgets them
//! all; this store's own commits move the stamp along with them.

use std::sync::Mutex;

use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::wal_index::{WalHeader, after_own_commit};
use crate::Result;

/// The WAL-index headers read just before and just after one of this store's
/// commits (the first while the transaction held the write lock).
#[derive(Debug, Clone, Copy)]
pub(super) struct OwnCommit {
    /// Before the commit.
    pub before: Option<WalHeader>,
    after: Option<WalHeader>,
}

impl OwnCommit {
    /// The header after the commit, when it shows that commit and nothing else.
    pub(super) fn header_after(&self) -> Option<WalHeader> {
        after_own_commit(self.before, self.after)
    }
}

/// The header the remembered credentials are right for.
#[derive(Debug, Default)]
pub(super) struct CredentialStamp {
    header: Mutex<Option<WalHeader>>,
}

impl SqliteStore {
    /// Forgets the remembered credentials when anything but this store committed
    /// since they were stamped; call before answering from them.
    pub(super) fn check_credentials(&self) {
        let now = self.kept.wal_header();
        let Ok(mut stamp) = self.stamp.header.lock() else {
            self.forget_credentials();
            return;
        };
        if now.is_none() || *stamp != now {
            // forgotten before the new stamp: whatever is remembered from now on
            // was read after `now`
            self.forget_credentials();
            *stamp = now;
        }
    }

    /// Commits `tx`, which holds the write lock (it has written), and tells what
    /// the commit did to the WAL-index header. The remembered credentials stay
    /// trusted if they were before it.
    pub(super) async fn commit_own(&self, tx: Transaction<'_, Sqlite>) -> Result<OwnCommit> {
        let before = self.kept.wal_header();
        tx.commit().await?;
        let commit = OwnCommit {
            before,
            after: self.kept.wal_header(),
        };
        if let Ok(mut stamp) = self.stamp.header.lock()
            && *stamp == commit.before
        {
            *stamp = commit.header_after();
        }
        Ok(commit)
    }

    fn forget_credentials(&self) {
        self.tokens.clear();
        self.access.changed();
    }
}
