//! Waking the long-polls of the desired state: one signal per node, moved when a
//! write touches a deployment placed on it (or moving away from it), and one for
//! every node, moved when a write's reach is unknown. A deploy wakes the poll of
//! the node it lands on, not the whole fleet's.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::model::Deployment;

/// The signals of every node with a long-poll open.
#[derive(Debug)]
pub(crate) struct NodeSignals {
    nodes: Mutex<HashMap<String, watch::Sender<u64>>>,
    all: watch::Sender<u64>,
}

impl Default for NodeSignals {
    fn default() -> Self {
        Self {
            nodes: Mutex::default(),
            all: watch::Sender::new(0),
        }
    }
}

fn bump(sender: &watch::Sender<u64>) {
    sender.send_modify(|n| *n = n.wrapping_add(1));
}

impl NodeSignals {
    /// The signals a long-poll of `node_id` waits on: its node's and everyone's.
    pub(crate) fn subscribe(&self, node_id: &str) -> (watch::Receiver<u64>, watch::Receiver<u64>) {
        let node = match self.nodes.lock() {
            Ok(mut nodes) => nodes
                .entry(node_id.to_string())
                .or_insert_with(|| watch::Sender::new(0))
                .subscribe(),
            // a poisoned map: wait on everyone's signal alone
            Err(_) => watch::Sender::new(0).subscribe(),
        };
        (node, self.all.subscribe())
    }

    /// Wakes the polls of these nodes; signals nobody waits on are dropped.
    pub(crate) fn notify<'a>(&self, node_ids: impl IntoIterator<Item = &'a str>) {
        let Ok(mut nodes) = self.nodes.lock() else {
            return self.notify_all();
        };
        for id in node_ids {
            if let Some(sender) = nodes.get(id) {
                if sender.receiver_count() == 0 {
                    nodes.remove(id);
                } else {
                    bump(sender);
                }
            }
        }
    }

    /// Wakes the polls of the nodes `written` touches.
    pub(crate) fn notify_written(&self, written: &[Deployment]) {
        self.notify(
            written
                .iter()
                .flat_map(|d| [d.node_id.as_deref(), d.previous_node_id.as_deref()])
                .flatten(),
        );
    }

    /// Wakes every poll.
    pub(crate) fn notify_all(&self) {
        bump(&self.all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_woken_by_its_own_writes_and_by_everyone_s() {
        let signals = NodeSignals::default();
        let (mut a, mut all_a) = signals.subscribe("a");
        let (b, _all_b) = signals.subscribe("b");
        signals.notify(["a"]);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap(), "b is not woken by a's write");
        a.mark_unchanged();
        signals.notify_all();
        assert!(all_a.has_changed().unwrap());
        all_a.mark_unchanged();
        drop((a, all_a));
        signals.notify(["a", "b"]);
        assert!(b.has_changed().unwrap());
        assert!(
            !signals.nodes.lock().unwrap().contains_key("a"),
            "unused signals go"
        );
    }
}
