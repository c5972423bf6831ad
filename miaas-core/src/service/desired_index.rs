//! The `index` of a node's desired state, as long-polls use it: the same number
//! while the state stays the same, a larger one each time it changes. It is when
//! this server first saw the state (microseconds since the epoch, always above the
//! node's previous index), so it fits a JSON number exactly and only grows. Another
//! replica, or this one after a restart, may number the same state differently:
//! an agent then gets one early answer, with that replica's index.

use std::collections::HashMap;
use std::sync::Mutex;

/// Past this many nodes, indexes not asked for in an hour are forgotten (at most
/// once every ten minutes).
const PRUNE_ABOVE: usize = 4096;
const PRUNE_EVERY: f64 = 600.0;
const FORGET_AFTER: f64 = 3600.0;

/// Each node's current state fingerprint and its index.
#[derive(Default)]
pub(crate) struct DesiredIndexes {
    nodes: Mutex<Nodes>,
}

#[derive(Default)]
struct Nodes {
    seen: HashMap<String, Seen>,
    pruned_at: f64,
}

struct Seen {
    fingerprint: u64,
    index: u64,
    asked_at: f64,
}

impl DesiredIndexes {
    /// The index of node `node_id`'s state of `fingerprint`, at time `now` (epoch
    /// seconds).
    pub(crate) fn index_of(&self, node_id: &str, fingerprint: u64, now: f64) -> u64 {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if nodes.seen.len() > PRUNE_ABOVE && now - nodes.pruned_at > PRUNE_EVERY {
            nodes.seen.retain(|_, s| now - s.asked_at < FORGET_AFTER);
            nodes.pruned_at = now;
        }
        let micros = (now.max(0.0) * 1e6) as u64;
        match nodes.seen.get_mut(node_id) {
            Some(seen) if seen.fingerprint == fingerprint => {
                seen.asked_at = now;
                seen.index
            }
            Some(seen) => {
                seen.index = micros.max(seen.index + 1);
                seen.fingerprint = fingerprint;
                seen.asked_at = now;
                seen.index
            }
            None => {
                let seen = Seen {
                    fingerprint,
                    index: micros.max(1),
                    asked_at: now,
                };
                let index = seen.index;
                nodes.seen.insert(node_id.to_string(), seen);
                index
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_state_keeps_its_index_and_a_change_raises_it() {
        let indexes = DesiredIndexes::default();
        let first = indexes.index_of("n1", 7, 100.0);
        assert_eq!(indexes.index_of("n1", 7, 105.0), first);
        // a change within the same microsecond still goes up
        let second = indexes.index_of("n1", 8, 100.0);
        assert!(second > first);
        let back = indexes.index_of("n1", 7, 106.0);
        assert!(back > second, "going back to an old state is a change too");
        assert_eq!(indexes.index_of("n2", 7, 106.0), 106_000_000);
        assert!(first < 1 << 53, "fits a JSON number exactly");
    }
}
