//! Nodes: registration, the stored node, and how it is shown.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{GpuUsage, NodeCapabilities, Resources};
use crate::validate;
use crate::{Error, Result};

/// `POST /api/v1/nodes/register`: a node announces itself.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "worker-01", "ip": "192.168.1.10",
    "capabilities": {
        "os": "linux", "cpu_count": 8, "mem_mb": 16000, "disk_mb": 500000,
        "gpus": [{"id": 0, "model": "RTX 3090", "mem_mb": 24000}],
        "docker": {"version": "24.0.0", "available": true}
    }
}))]
pub struct NodeRegistration {
    /// Unique node name (1 to 253 characters); registering a known name updates it.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^(?=.*\S)[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub name: String,
    /// The node's IPv4 or IPv6 address.
    #[schema(schema_with = super::schema::ip_schema)]
    pub ip: String,
    /// What the node offers.
    pub capabilities: NodeCapabilities,
    /// Free-form labels (at most 100, no whitespace); a `key=value` tag is matched by
    /// placement constraints.
    #[serde(default)]
    #[schema(max_items = 100, schema_with = super::tag_list_schema)]
    pub tags: Vec<String>,
    /// The token this node will use (`mnode_` and 64 lowercase hex digits), chosen by
    /// the node so that a registration whose answer was lost can be retried with it
    /// as the node's own credential; the server makes one up when absent. It is
    /// answered back as `node_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^mnode_[0-9a-f]{64}$")]
    pub node_token: Option<String>,
}

impl std::fmt::Debug for NodeRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRegistration")
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("capabilities", &self.capabilities)
            .field("tags", &self.tags)
            .field("node_token", &self.node_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl NodeRegistration {
    /// Checks every field; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        validate::name("name", &self.name)?;
        validate::ip("ip", &self.ip)?;
        validate::name("capabilities.os", &self.capabilities.os)?;
        for gpu in &self.capabilities.gpus {
            if let Some(model) = &gpu.model {
                validate::name("capabilities.gpus.model", model)?;
            }
        }
        let mut ids: Vec<u32> = self.capabilities.gpus.iter().map(|g| g.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::Invalid(
                "capabilities.gpus: GPU ids must be unique on a node".into(),
            ));
        }
        if self
            .node_token
            .as_deref()
            .is_some_and(|token| !crate::token::is_node_token(token))
        {
            return Err(Error::Invalid(
                "node_token: give `mnode_` and 64 lowercase hex digits (256 random bits), or \
                 leave it out"
                    .into(),
            ));
        }
        validate::tags("tags", &self.tags)
    }
}

/// `201` answer to a registration.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistrationResponse {
    /// The node's id; stable across re-registrations of the same name.
    pub node_id: String,
    /// Bearer token for this node's heartbeats; shown once, stored only hashed.
    pub node_token: String,
    /// The URL the node should use to reach the control plane.
    pub control_plane_url: String,
}

debug_without!(
    RegistrationResponse,
    node_token,
    [node_id, control_plane_url]
);

/// Whether a node has been heard from within the heartbeat timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Seen (registered or heartbeat) within the heartbeat timeout.
    Online,
    /// Not seen for longer than the heartbeat timeout.
    Offline,
}

/// The latest metrics a node reported in a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeMetrics {
    /// CPU usage in percent (0 to 100).
    pub cpu_usage: f64,
    /// Memory usage in percent (0 to 100).
    pub mem_usage: f64,
    /// Free disk in MB.
    pub disk_free_mb: u64,
    /// Names of the containers running on the node.
    pub running_containers: Vec<String>,
    /// Each GPU's live usage (`[]` when the node reported none).
    #[serde(default)]
    pub gpus: Vec<GpuUsage>,
    /// When these metrics arrived (epoch seconds).
    pub reported_at: f64,
}

impl NodeMetrics {
    /// The average utilization (%) of the GPUs that reported one; `None` when
    /// none did.
    pub fn gpu_utilization(&self) -> Option<f64> {
        super::average_utilization(&self.gpus)
    }
}

/// A node as stored, without derived state.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// Stable id (a UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Address.
    pub ip: String,
    /// What it offers.
    pub capabilities: NodeCapabilities,
    /// Labels.
    pub tags: Vec<String>,
    /// First registration (epoch seconds).
    pub registered_at: f64,
    /// Last registration or heartbeat (epoch seconds).
    pub last_seen: f64,
    /// Latest heartbeat metrics, if any heartbeat arrived.
    pub metrics: Option<NodeMetrics>,
    /// Whether new deployments may be placed here (false: cordoned).
    pub schedulable: bool,
}

impl NodeRecord {
    /// Whether the node was seen within `heartbeat_timeout` seconds of `now`.
    pub fn is_online(&self, now: f64, heartbeat_timeout: f64) -> bool {
        now - self.last_seen <= heartbeat_timeout
    }
}

/// What a node's placed deployments take from it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeUsage {
    /// Resources reserved by deployments placed on the node.
    pub reserved: Resources,
    /// Ids of the deployments placed on the node (not yet removed).
    pub deployments: Vec<String>,
}

/// A node as the API shows it: `GET /api/v1/nodes[/{node_id}]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    /// Stable id (a UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Address.
    pub ip: String,
    /// What it offers, as registered (unknown fields included).
    pub capabilities: NodeCapabilities,
    /// Labels.
    pub tags: Vec<String>,
    /// Last registration or heartbeat (epoch seconds).
    pub last_seen: f64,
    /// `online` while `last_seen` is within the heartbeat timeout, else `offline`.
    pub status: NodeStatus,
    /// First registration (epoch seconds).
    pub registered_at: f64,
    /// Latest heartbeat metrics; null until the first heartbeat.
    pub metrics: Option<NodeMetrics>,
    /// Whether new deployments may be placed here (false: cordoned).
    pub schedulable: bool,
    /// Resources reserved by the deployments placed here.
    pub reserved: Resources,
    /// Capabilities minus reservations.
    pub free: Resources,
    /// Ids of the deployments placed here.
    pub deployments: Vec<String>,
}

impl Node {
    /// Shows a stored node as seen at `now` with the given heartbeat timeout
    /// (seconds) and what its deployments use.
    pub fn from_record(
        record: NodeRecord,
        now: f64,
        heartbeat_timeout: f64,
        usage: NodeUsage,
    ) -> Self {
        let status = if record.is_online(now, heartbeat_timeout) {
            NodeStatus::Online
        } else {
            NodeStatus::Offline
        };
        let free = free_resources(&record.capabilities, &usage.reserved);
        Node {
            id: record.id,
            name: record.name,
            ip: record.ip,
            capabilities: record.capabilities,
            tags: record.tags,
            last_seen: record.last_seen,
            status,
            registered_at: record.registered_at,
            metrics: record.metrics,
            schedulable: record.schedulable,
            reserved: usage.reserved,
            free,
            deployments: usage.deployments,
        }
    }
}

impl Node {
    /// Until when (epoch seconds) this view's `online` status holds without another
    /// heartbeat; `None` for an offline node, which only a heartbeat brings back.
    pub fn online_until(&self, heartbeat_timeout: f64) -> Option<f64> {
        (self.status == NodeStatus::Online).then_some(self.last_seen + heartbeat_timeout)
    }
}

/// Capabilities minus reservations (never below zero); a node whose disk is unknown
/// has no free disk to offer.
pub fn free_resources(capabilities: &NodeCapabilities, reserved: &Resources) -> Resources {
    let gpu_ids: Vec<u32> = capabilities
        .gpus
        .iter()
        .map(|g| g.id)
        .filter(|id| !reserved.gpu_ids.contains(id))
        .collect();
    Resources {
        cpus: (f64::from(capabilities.cpu_count) - reserved.cpus).max(0.0),
        mem_mb: capabilities.mem_mb.saturating_sub(reserved.mem_mb),
        disk_mb: capabilities
            .disk_mb
            .unwrap_or(0)
            .saturating_sub(reserved.disk_mb),
        gpus: u32::try_from(gpu_ids.len()).unwrap_or(u32::MAX),
        gpu_ids,
        ports: Vec::new(),
        container_names: Vec::new(),
    }
}

impl NodeUpdate {
    /// The update that adds `add` to `current` tags and takes `remove` away (a tag
    /// in both is removed); order is kept, nothing is duplicated.
    pub fn retag(current: &[String], add: &[String], remove: &[String]) -> Self {
        let mut tags: Vec<String> = current
            .iter()
            .filter(|t| !remove.contains(t))
            .cloned()
            .collect();
        for tag in add {
            if !tags.contains(tag) && !remove.contains(tag) {
                tags.push(tag.clone());
            }
        }
        Self {
            schedulable: None,
            tags: Some(tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NodeUpdate;

    #[test]
    fn retag_adds_removes_and_never_duplicates() {
        let current = vec!["a".to_string(), "b".to_string()];
        let add = vec!["c".to_string(), "a".to_string(), "d".to_string()];
        let remove = vec!["b".to_string(), "d".to_string()];
        let update = NodeUpdate::retag(&current, &add, &remove);
        assert_eq!(update.tags, Some(vec!["a".to_string(), "c".to_string()]));
        assert_eq!(update.schedulable, None);
    }
}

/// `PATCH /api/v1/nodes/{node_id}`: cordon/uncordon and set tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeUpdate {
    /// `false` cordons the node (no new placements), `true` uncordons it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedulable: Option<bool>,
    /// Replaces the node's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::tag_list_schema)]
    pub tags: Option<Vec<String>>,
}
