//! Bringing a ledger kept between decisions up to date with the nodes: only the
//! nodes that changed since are looked at (a fleet of 10,000 nodes heartbeating
//! would otherwise cost every decision a pass over all of them), and every node's
//! liveness only once one may have gone silent for too long.

use std::collections::HashMap;

use super::{Candidate, Cluster};
use crate::model::{NodeMetrics, NodeRecord};

/// What may have changed in the nodes since a ledger was last brought up to date
/// (see [`Cluster::refresh`]).
#[derive(Debug)]
pub struct NodeChanges<'a> {
    /// Every node as stored: those of the ledger in its order, then any that
    /// joined since.
    pub nodes: &'a [NodeRecord],
    /// The positions in `nodes` of those changed since (repeats allowed); `None`
    /// when any may have.
    pub changed: Option<Vec<usize>>,
    /// Heartbeats not written yet, by node id: laid over a node's own when newer.
    pub buffered: &'a HashMap<String, NodeMetrics>,
    /// The nodes whose buffered heartbeat changed since; `None` when any may have.
    pub buffered_changed: Option<Vec<&'a str>>,
    /// Now (seconds since the epoch); time only moves forward.
    pub now: f64,
    /// How long a node stays online after it was last seen (seconds).
    pub timeout: f64,
}

impl NodeChanges<'_> {
    /// When `node` was last seen, and its latest metrics, buffered ones included.
    fn liveness<'n>(&'n self, node: &'n NodeRecord) -> (f64, Option<&'n NodeMetrics>) {
        let newer = (self.buffered.get(&node.id)).filter(|m| m.reported_at > node.last_seen);
        let last_seen = newer.map_or(node.last_seen, |m| m.reported_at);
        (last_seen, newer.or(node.metrics.as_ref()))
    }

    fn is_online(&self, last_seen: f64) -> bool {
        self.now - last_seen <= self.timeout
    }
}

impl Cluster {
    /// Brings this ledger up to date with `changes`: each changed node's liveness,
    /// schedulability, metrics, capabilities and tags, new nodes added with nothing
    /// reserved, and every node's liveness as time passes. `false` (build the
    /// ledger again) when its nodes are not the first of `changes.nodes`, in order.
    pub fn refresh(&mut self, changes: &NodeChanges<'_>) -> bool {
        let known = self.candidates.len();
        let nodes = changes.nodes;
        if nodes.len() < known {
            return false;
        }
        match &changes.changed {
            Some(positions) => {
                for &i in positions.iter().filter(|&&i| i < known) {
                    if !self.update(i, &nodes[i], changes) {
                        return false;
                    }
                }
            }
            None => {
                for (i, node) in nodes[..known].iter().enumerate() {
                    if !self.update(i, node, changes) {
                        return false;
                    }
                }
            }
        }
        let every_buffered: Vec<&str>;
        let buffered = match &changes.buffered_changed {
            Some(ids) => ids.as_slice(),
            None => {
                every_buffered = changes.buffered.keys().map(String::as_str).collect();
                &every_buffered
            }
        };
        for &id in buffered {
            if let Some(&i) = self.index.get(id).filter(|&&i| i < known)
                && !self.update(i, &nodes[i], changes)
            {
                return false;
            }
        }
        for node in &nodes[known..] {
            let (last_seen, metrics) = changes.liveness(node);
            let online = changes.is_online(last_seen);
            let mut candidate = Candidate::from_record(node, online);
            candidate.last_seen = last_seen;
            candidate.metrics = metrics.cloned();
            self.online_until = (self.online_until).min(expiry(&candidate, changes.timeout));
            self.index.insert(node.id.clone(), self.candidates.len());
            self.candidates.push(candidate);
        }
        if changes.now >= self.online_until {
            self.expire(changes);
        }
        true
    }

    /// Lays `node` over candidate `i`; `false` when it is another node's.
    fn update(&mut self, i: usize, node: &NodeRecord, changes: &NodeChanges<'_>) -> bool {
        let (last_seen, metrics) = changes.liveness(node);
        let online = changes.is_online(last_seen);
        let candidate = &mut self.candidates[i];
        if candidate.id != node.id {
            return false;
        }
        candidate.last_seen = last_seen;
        candidate.online = online;
        candidate.schedulable = node.schedulable;
        if candidate.metrics.as_ref().map(|m| m.reported_at) != metrics.map(|m| m.reported_at) {
            candidate.metrics = metrics.cloned();
        }
        if candidate.capabilities != node.capabilities || candidate.tags != node.tags {
            candidate.capabilities = node.capabilities.clone();
            candidate.tags = node.tags.clone();
            candidate.rederive();
        }
        let until = expiry(candidate, changes.timeout);
        self.online_until = self.online_until.min(until);
        true
    }

    /// Every candidate's liveness at `changes.now`, and when the next may expire.
    fn expire(&mut self, changes: &NodeChanges<'_>) {
        let mut until = f64::INFINITY;
        for candidate in &mut self.candidates {
            candidate.online = changes.is_online(candidate.last_seen);
            until = until.min(expiry(candidate, changes.timeout));
        }
        self.online_until = until;
    }
}

/// Until when `candidate` stays online without news (never, when offline).
fn expiry(candidate: &Candidate, timeout: f64) -> f64 {
    if candidate.online {
        candidate.last_seen + timeout
    } else {
        f64::INFINITY
    }
}
