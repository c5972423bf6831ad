//! When the remembered credentials (node tokens, the access memo) may be trusted:
//! while the WAL-index header reads as it did when they were last known right.
//! Another process's commit changes the header, so the next lookup forgets them
//! all; this store's own commits move the stamp along with them.

use std::sync::Mutex;

use super::SqliteStore;
use super::wal_index::{WalHeader, after_own_commit};

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

    /// After a commit of this store's, with the WAL-index headers read just before
    /// and just after it: the remembered credentials stay trusted if they were
    /// before it and nothing else committed.
    pub(super) fn committed(&self, before: Option<WalHeader>, after: Option<WalHeader>) {
        if let Ok(mut stamp) = self.stamp.header.lock()
            && *stamp == before
        {
            *stamp = after_own_commit(before, after);
        }
    }

    fn forget_credentials(&self) {
        self.tokens.clear();
        self.access.changed();
    }
}
