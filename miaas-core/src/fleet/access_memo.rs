//! Users, API tokens and cluster secrets remembered in memory, so that
//! authenticating a request costs no query. The fleet forgets them on its
//! own writes of them, and when the cluster version shows a change of access.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::store::{ApiTokenRecord, UserRecord};

/// Most records kept; past it the memo starts over.
const MAX_RECORDS: usize = 10_000;

#[derive(Debug, Default)]
struct Remembered {
    /// Counts the changes: a lookup that began before one does not remember what
    /// it read.
    generation: u64,
    api_tokens: HashMap<String, ApiTokenRecord>,
    users: HashMap<String, UserRecord>,
    /// Cluster secrets in clear, by name.
    secrets: HashMap<String, String>,
}

/// Users by name, API tokens by hash and cluster secrets by name, as last read.
#[derive(Debug, Default)]
pub(super) struct AccessMemo {
    remembered: RwLock<Remembered>,
}

impl AccessMemo {
    /// The API token with this hash, if remembered.
    pub(super) fn api_token(&self, token_hash: &str) -> Option<ApiTokenRecord> {
        self.remembered
            .read()
            .ok()?
            .api_tokens
            .get(token_hash)
            .cloned()
    }

    /// The user of this name, if remembered.
    pub(super) fn user(&self, username: &str) -> Option<UserRecord> {
        self.remembered.read().ok()?.users.get(username).cloned()
    }

    /// The cluster secret of this name, if remembered.
    pub(super) fn cluster_secret(&self, name: &str) -> Option<String> {
        self.remembered.read().ok()?.secrets.get(name).cloned()
    }

    /// Where the changes are; give it back with what a lookup read.
    pub(super) fn generation(&self) -> u64 {
        self.remembered
            .read()
            .map_or(u64::MAX, |remembered| remembered.generation)
    }

    /// Remembers an API token a lookup that began at `generation` read, unless a
    /// change came in between.
    pub(super) fn remember_api_token(&self, generation: u64, record: &ApiTokenRecord) {
        self.remember(generation, |r| {
            r.api_tokens
                .insert(record.token_hash.clone(), record.clone());
        });
    }

    /// Remembers a user a lookup that began at `generation` read, unless a change
    /// came in between.
    pub(super) fn remember_user(&self, generation: u64, record: &UserRecord) {
        self.remember(generation, |r| {
            r.users.insert(record.user.username.clone(), record.clone());
        });
    }

    /// Remembers a cluster secret a lookup that began at `generation` read, unless a
    /// change came in between.
    pub(super) fn remember_cluster_secret(&self, generation: u64, name: &str, value: &str) {
        self.remember(generation, |r| {
            r.secrets.insert(name.to_string(), value.to_string());
        });
    }

    /// Forgets everything: a user, token or cluster secret changed (or may have).
    pub(super) fn changed(&self) {
        let mut remembered = self
            .remembered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        remembered.generation = remembered.generation.wrapping_add(1);
        remembered.api_tokens.clear();
        remembered.users.clear();
        remembered.secrets.clear();
    }

    fn remember(&self, generation: u64, put: impl FnOnce(&mut Remembered)) {
        let Ok(mut remembered) = self.remembered.write() else {
            return;
        };
        if remembered.generation != generation {
            return;
        }
        if remembered.api_tokens.len() + remembered.users.len() >= MAX_RECORDS {
            remembered.api_tokens.clear();
            remembered.users.clear();
        }
        put(&mut remembered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiTokenInfo, Role};

    fn token(hash: &str) -> ApiTokenRecord {
        ApiTokenRecord {
            info: ApiTokenInfo {
                id: "t1".into(),
                name: "ci".into(),
                role: Role::Operator,
                created_at: 0.0,
            },
            token_hash: hash.into(),
            revoked_at: None,
            created_by: None,
        }
    }

    #[test]
    fn a_change_forgets_and_a_lookup_from_before_it_is_not_remembered() {
        let memo = AccessMemo::default();
        let before = memo.generation();
        memo.remember_api_token(before, &token("h1"));
        assert_eq!(memo.api_token("h1"), Some(token("h1")));
        let started = memo.generation();
        memo.changed();
        assert!(memo.api_token("h1").is_none());
        memo.remember_api_token(started, &token("h1"));
        assert!(memo.api_token("h1").is_none(), "read before the change");
        memo.remember_api_token(memo.generation(), &token("h1"));
        assert!(memo.api_token("h1").is_some());
    }
}
