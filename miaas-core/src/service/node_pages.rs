//! How long a page of node views stays right, so that a server may keep one it
//! made and serve it again while it holds.

use super::Service;
use crate::model::Node;

/// What a page of node views was made at, and until when it stays right.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodePageValidity {
    /// [`Service::node_views_version`] when the page was made.
    pub version: (u64, u64),
    /// Epoch seconds: the first moment one of its online nodes, without another
    /// heartbeat, turns offline.
    pub until: f64,
}

impl NodePageValidity {
    /// Whether a page made under it is still right when the node views are at
    /// `version` and the time is `now`.
    pub fn holds(&self, version: (u64, u64), now: f64) -> bool {
        self.version == version && now < self.until
    }
}

/// Until when (epoch seconds) a page of `nodes` stays right: the first moment one
/// of its online nodes, without another heartbeat, turns offline.
fn valid_until(nodes: &[Node], heartbeat_timeout: f64) -> f64 {
    (nodes.iter())
        .filter_map(|node| node.online_until(heartbeat_timeout))
        .fold(f64::INFINITY, f64::min)
}

impl Service {
    /// Whether a page of `nodes`, made when the node views were at `made_at`
    /// ([`Self::node_views_version`]), may be kept, and until when: `None` when
    /// the store cannot tell a version or the views changed while it was made.
    pub async fn node_page_validity(
        &self,
        made_at: Option<(u64, u64)>,
        nodes: &[Node],
    ) -> Option<NodePageValidity> {
        let version = made_at?;
        if self.node_views_version().await.ok() != Some(version) {
            return None;
        }
        let timeout = self.settings().heartbeat_timeout.as_secs_f64();
        Some(NodePageValidity {
            version,
            until: valid_until(nodes, timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeRecord, NodeStatus, NodeUsage};

    /// A node last seen at `last_seen`, shown at time 100 with a timeout of 30.
    fn node(last_seen: f64) -> Node {
        let record = NodeRecord {
            id: "n".into(),
            name: "n".into(),
            ip: "10.0.0.1".into(),
            capabilities: serde_json::from_value(
                serde_json::json!({"os": "linux", "cpu_count": 4, "mem_mb": 8000, "disk_mb": 0}),
            )
            .expect("capabilities"),
            tags: vec![],
            registered_at: 0.0,
            last_seen,
            metrics: None,
            schedulable: true,
        };
        Node::from_record(record, 100.0, 30.0, NodeUsage::default())
    }

    #[test]
    fn a_page_holds_for_its_version_until_its_first_online_node_times_out() {
        let nodes = [node(100.0), node(90.0), node(10.0)];
        assert_eq!(nodes[2].status, NodeStatus::Offline);
        assert_eq!(valid_until(&nodes, 30.0), 120.0);
        assert_eq!(valid_until(&nodes[2..], 30.0), f64::INFINITY);
        let validity = NodePageValidity {
            version: (1, 1),
            until: 120.0,
        };
        assert!(validity.holds((1, 1), 119.0));
        assert!(!validity.holds((2, 1), 119.0), "the fleet changed");
        assert!(!validity.holds((1, 2), 119.0), "a heartbeat came");
        assert!(!validity.holds((1, 1), 120.0), "a node went offline");
    }
}
