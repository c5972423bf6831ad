//! Waking the long-polls of the desired state: one signal per node, moved when a
//! write touches a deployment placed on it (or moving away from it), and one for
//! every node, moved when a write's reach is unknown. A deploy wakes the poll of
//! the node it lands on, not the whole fleet's.
//!
//! A node's signal lives only while a poll waits on it: the last [`Waiter`] to
//! leave removes it, so the map holds at most one entry per node with a poll
//! open (and the service subscribes only after the poller proved it is that
//! node), never one per id a caller made up.

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
    /// The node's signal is removed when the last of its waiters is dropped.
    pub(crate) fn subscribe(&self, node_id: &str) -> Waiter<'_> {
        let own = match self.nodes.lock() {
            Ok(mut nodes) => Some(
                nodes
                    .entry(node_id.to_string())
                    .or_insert_with(|| watch::Sender::new(0))
                    .subscribe(),
            ),
            // a poisoned map: wait on everyone's signal alone
            Err(_) => None,
        };
        Waiter {
            signals: self,
            node_id: node_id.to_string(),
            own,
            everyone: self.all.subscribe(),
        }
    }

    /// How many nodes have a signal (a poll waiting).
    #[cfg(test)]
    pub(crate) fn waiting_nodes(&self) -> usize {
        self.nodes.lock().map_or(0, |nodes| nodes.len())
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

/// One long-poll's hold on its node's signal and everyone's.
pub(crate) struct Waiter<'a> {
    signals: &'a NodeSignals,
    node_id: String,
    /// `None` only when the map was poisoned (or once dropped).
    own: Option<watch::Receiver<u64>>,
    everyone: watch::Receiver<u64>,
}

impl Waiter<'_> {
    /// Marks what was signalled so far as seen: [`Waiter::changed`] then waits
    /// for a later signal.
    pub(crate) fn mark_seen(&mut self) {
        if let Some(own) = &mut self.own {
            own.mark_unchanged();
        }
        self.everyone.mark_unchanged();
    }

    /// Completes when either signal moved since it was last seen.
    pub(crate) async fn changed(&mut self) {
        let own = async {
            let woken = match &mut self.own {
                Some(own) => own.changed().await.is_ok(),
                None => false,
            };
            // no signal of its own, or its sender gone: only everyone's wakes it
            if !woken {
                std::future::pending::<()>().await;
            }
        };
        let everyone = async {
            if self.everyone.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = own => {}
            () = everyone => {}
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let Ok(mut nodes) = self.signals.nodes.lock() else {
            return;
        };
        // the receiver goes under the lock, so that two waiters leaving at once
        // cannot both see the other still there
        if self.own.take().is_none() {
            return;
        }
        if nodes
            .get(&self.node_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            nodes.remove(&self.node_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_woken_by_its_own_writes_and_by_everyone_s() {
        let signals = NodeSignals::default();
        let mut a = signals.subscribe("a");
        let mut b = signals.subscribe("b");
        signals.notify(["a"]);
        assert!(a.own.as_ref().unwrap().has_changed().unwrap());
        assert!(
            !b.own.as_ref().unwrap().has_changed().unwrap(),
            "b is not woken by a's write"
        );
        a.mark_seen();
        signals.notify_all();
        assert!(a.everyone.has_changed().unwrap());
        a.mark_seen();
        b.mark_seen();
        signals.notify(["a", "b"]);
        assert!(b.own.as_ref().unwrap().has_changed().unwrap());
    }

    #[test]
    fn a_signal_goes_with_its_last_waiter() {
        let signals = NodeSignals::default();
        let first = signals.subscribe("a");
        let second = signals.subscribe("a");
        let other = signals.subscribe("b");
        assert_eq!(signals.waiting_nodes(), 2);
        drop(first);
        assert_eq!(signals.waiting_nodes(), 2, "a still has a waiter");
        drop(second);
        assert_eq!(
            signals.waiting_nodes(),
            1,
            "a's signal went with its last waiter"
        );
        signals.notify(["a"]);
        drop(other);
        assert_eq!(signals.waiting_nodes(), 0);
    }
}
