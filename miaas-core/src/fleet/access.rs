//! Users, API tokens and cluster secrets remembered once read, so that
//! authenticating a request costs no query. Any write of them through the fleet
//! forgets them at once; on a shared database every lookup first learns the
//! cluster version, and a change of access committed by any replica before the
//! lookup began forgets them too: a revoked token is refused by the very next
//! request, on every replica.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Fleet;
use super::access_memo::AccessMemo;
use crate::Result;
use crate::store::{ApiTokenRecord, UserRecord};

/// The remembered credentials and the access version they are right for.
#[derive(Debug, Default)]
pub(super) struct RememberedAccess {
    memo: AccessMemo,
    /// The `access_changed_at` the remembered credentials are right for.
    seen: AtomicU64,
}

impl RememberedAccess {
    /// Forgets the remembered credentials when access changed after what they
    /// are right for.
    pub(super) fn saw(&self, access_changed_at: u64) {
        if self.seen.fetch_max(access_changed_at, Ordering::AcqRel) < access_changed_at {
            self.memo.changed();
        }
    }
}

impl Fleet {
    /// Whether the remembered credentials are right for a lookup beginning now;
    /// `false` when that cannot be told (the database is down).
    async fn credentials_fresh(&self) -> bool {
        !self.shared || self.observe().await.is_ok()
    }

    /// Forgets the remembered credentials after a write of them (also after a
    /// failed one: whether it committed is unknown), and passes its outcome on.
    pub fn access_written<T>(&self, outcome: Result<T>) -> Result<T> {
        self.access.memo.changed();
        outcome
    }

    /// What `read` reads, remembered: `known` is what the memo has of it, and
    /// `remember` keeps what was read (unless access changed meanwhile).
    async fn remembered<T>(
        &self,
        known: impl FnOnce(&AccessMemo) -> Option<T>,
        read: impl Future<Output = Result<Option<T>>>,
        remember: impl FnOnce(&AccessMemo, u64, &T),
    ) -> Result<Option<T>> {
        if !self.credentials_fresh().await {
            return read.await;
        }
        if let Some(known) = known(&self.access.memo) {
            return Ok(Some(known));
        }
        let generation = self.access.memo.generation();
        let value = read.await?;
        if let Some(value) = &value {
            remember(&self.access.memo, generation, value);
        }
        Ok(value)
    }

    /// The user of this name.
    pub async fn user(&self, username: &str) -> Result<Option<UserRecord>> {
        self.remembered(
            |memo| memo.user(username),
            self.store.access().get_user(username),
            AccessMemo::remember_user,
        )
        .await
    }

    /// The API token with this hash.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
        self.remembered(
            |memo| memo.api_token(token_hash),
            self.store.access().api_token_by_hash(token_hash),
            AccessMemo::remember_api_token,
        )
        .await
    }

    /// The cluster secret of this name, in clear.
    pub async fn cluster_secret(&self, name: &str) -> Result<Option<String>> {
        self.remembered(
            |memo| memo.cluster_secret(name),
            self.store.access().cluster_secret(name),
            |memo, generation, value| memo.remember_cluster_secret(generation, name, value),
        )
        .await
    }
}
