//! Heartbeats: a node says it is alive and how it is doing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Result;
use crate::validate;

/// `POST /api/v1/nodes/{node_id}/heartbeat`. Every field is optional, as in the
/// original (`{}` is a valid heartbeat): usages default to 0, free disk to 0 and the
/// containers to none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "cpu_usage": 45.5, "mem_usage": 60.2, "disk_free_mb": 450000,
    "running_containers": ["postgres", "redis"]
}))]
pub struct Heartbeat {
    /// CPU usage in percent (0 to 100).
    #[serde(default)]
    #[schema(schema_with = super::number::percent_schema)]
    pub cpu_usage: f64,
    /// Memory usage in percent (0 to 100).
    #[serde(default)]
    #[schema(schema_with = super::number::percent_schema)]
    pub mem_usage: f64,
    /// Free disk in MB.
    #[serde(default, deserialize_with = "super::number::deserialize_whole")]
    #[schema(schema_with = super::number::whole_schema)]
    pub disk_free_mb: u64,
    /// Names of the containers running on the node.
    #[serde(default)]
    pub running_containers: Vec<String>,
}

impl Heartbeat {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<()> {
        validate::percent("cpu_usage", self.cpu_usage)?;
        validate::percent("mem_usage", self.mem_usage)?;
        validate::list_len("running_containers", self.running_containers.len(), 10_000)
    }
}

/// `200` answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAck {
    /// Always `ok`.
    pub status: String,
    /// When the heartbeat was recorded (epoch seconds).
    pub timestamp: f64,
}
