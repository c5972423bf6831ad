//! Node tokens in memory: a heartbeat is authenticated without a query. This
//! store's own writes keep the map exact (a new token replaces the old one at once,
//! a removed node's token is forgotten at once); a commit by another process on the
//! same file empties it before the next lookup (see `freshness`).

use std::collections::HashMap;
use std::sync::RwLock;

/// Most tokens kept; past it the map starts over.
const MAX_TOKENS: usize = 200_000;

#[derive(Debug, Default)]
struct Tokens {
    /// Counts the writes: a lookup that began before one does not remember what it
    /// read (it may be the token that write replaced).
    generation: u64,
    /// Token hash → node id and `last_seen` as stored.
    by_hash: HashMap<String, (String, f64)>,
    /// Node id → its token's hash.
    hash_of: HashMap<String, String>,
}

/// Known node tokens, by hash.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    tokens: RwLock<Tokens>,
}

impl TokenCache {
    pub(super) fn get(&self, token_hash: &str) -> Option<(String, f64)> {
        self.tokens.read().ok()?.by_hash.get(token_hash).cloned()
    }

    /// Where the writes are; give it to [`Self::remember`] with what a lookup read.
    pub(super) fn generation(&self) -> u64 {
        self.tokens.read().map(|t| t.generation).unwrap_or(u64::MAX)
    }

    /// Remembers what a lookup that began at `generation` read, unless a write
    /// came in between.
    pub(super) fn remember(
        &self,
        generation: u64,
        token_hash: &str,
        node_id: &str,
        last_seen: f64,
    ) {
        let Ok(mut tokens) = self.tokens.write() else {
            return;
        };
        if tokens.generation == generation {
            Self::put(&mut tokens, token_hash, node_id, last_seen);
        }
    }

    /// Records a write: `token_hash` is now node `node_id`'s token (its old one is
    /// forgotten).
    pub(super) fn insert(&self, token_hash: &str, node_id: &str, last_seen: f64) {
        let Ok(mut tokens) = self.tokens.write() else {
            return;
        };
        tokens.generation += 1;
        Self::put(&mut tokens, token_hash, node_id, last_seen);
    }

    fn put(tokens: &mut Tokens, token_hash: &str, node_id: &str, last_seen: f64) {
        if tokens.by_hash.len() >= MAX_TOKENS {
            tokens.by_hash.clear();
            tokens.hash_of.clear();
        }
        if let Some(old) = tokens
            .hash_of
            .insert(node_id.to_string(), token_hash.to_string())
        {
            tokens.by_hash.remove(&old);
        }
        tokens
            .by_hash
            .insert(token_hash.to_string(), (node_id.to_string(), last_seen));
    }

    /// Records a write: node `node_id` and its token are gone.
    pub(super) fn forget_node(&self, node_id: &str) {
        let Ok(mut tokens) = self.tokens.write() else {
            return;
        };
        tokens.generation += 1;
        if let Some(old) = tokens.hash_of.remove(node_id) {
            tokens.by_hash.remove(&old);
        }
    }

    /// Moves a node's `last_seen` forward.
    pub(super) fn seen(&self, node_id: &str, last_seen: f64) {
        let Ok(mut tokens) = self.tokens.write() else {
            return;
        };
        let Some(hash) = tokens.hash_of.get(node_id).cloned() else {
            return;
        };
        if let Some(entry) = tokens.by_hash.get_mut(&hash)
            && entry.1 < last_seen
        {
            entry.1 = last_seen;
        }
    }

    /// Forgets everything (another process wrote the file).
    pub(super) fn clear(&self) {
        if let Ok(mut tokens) = self.tokens.write() {
            tokens.generation += 1;
            tokens.by_hash.clear();
            tokens.hash_of.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_replaces_the_old_and_forgotten_nodes_are_gone() {
        let cache = TokenCache::default();
        cache.insert("h1", "n1", 1.0);
        assert_eq!(cache.get("h1"), Some(("n1".into(), 1.0)));
        cache.insert("h2", "n1", 2.0);
        assert_eq!(cache.get("h1"), None, "the old token stops at once");
        cache.seen("n1", 5.0);
        cache.seen("n1", 3.0);
        assert_eq!(cache.get("h2"), Some(("n1".into(), 5.0)));
        cache.forget_node("n1");
        assert_eq!(cache.get("h2"), None);
        cache.insert("h3", "n3", 1.0);
        cache.clear();
        assert_eq!(cache.get("h3"), None);
        // a lookup that raced with a write does not bring back what it read
        let before = cache.generation();
        cache.insert("h5", "n4", 1.0);
        cache.remember(before, "h4", "n4", 1.0);
        assert_eq!(cache.get("h4"), None);
        let now = cache.generation();
        cache.remember(now, "h6", "n6", 1.0);
        assert_eq!(cache.get("h6"), Some(("n6".into(), 1.0)));
    }
}
