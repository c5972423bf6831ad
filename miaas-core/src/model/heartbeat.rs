//! Heartbeats: a node says it is alive and how it is doing.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::GpuUsage;
use super::gpu_usage::validate_gpu_usage;
use crate::validate;
use crate::{Error, Result};

/// `POST /api/v1/nodes/{node_id}/heartbeat`. Every field is optional, as in the
/// original (`{}` is a valid heartbeat): usages default to 0, free disk to 0 and the
/// containers and GPUs to none. The GPUs' usage may be given at the top level
/// (`gpus`, as `miaas agent` sends it) or nested (`metrics.gpus`), not both: a
/// heartbeat with both lists non-empty is refused (422).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "cpu_usage": 45.5, "mem_usage": 60.2, "disk_free_mb": 450000,
    "running_containers": ["postgres", "redis"],
    "gpus": [{"id": 0, "utilization": 37.0, "mem_used_mb": 20480, "temperature_c": 61,
              "power_w": 250.5}]
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
    /// Each GPU's live usage (at most 64, each id once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 64)]
    pub gpus: Vec<GpuUsage>,
    /// The same usage nested, for clients that group their metrics: only its
    /// `gpus` is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<HeartbeatMetrics>,
}

/// `metrics` of a heartbeat: metrics grouped under one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatMetrics {
    /// Each GPU's live usage, as the heartbeat's top-level `gpus`.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub gpus: Vec<GpuUsage>,
}

impl Heartbeat {
    /// Checks the ranges; the error names the field (`gpus[0].utilization`,
    /// `metrics.gpus[0].utilization`).
    pub fn validate(&self) -> Result<()> {
        validate::percent("cpu_usage", self.cpu_usage)?;
        validate::percent("mem_usage", self.mem_usage)?;
        validate::list_len("running_containers", self.running_containers.len(), 10_000)?;
        let nested = self.metrics.as_ref().map_or(&[][..], |m| &m.gpus[..]);
        if !self.gpus.is_empty() && !nested.is_empty() {
            return Err(Error::Invalid(
                "gpus: give the GPUs' usage either as `gpus` or as `metrics.gpus`, not both".into(),
            ));
        }
        validate_gpu_usage("gpus", &self.gpus)?;
        validate_gpu_usage("metrics.gpus", nested)
    }

    /// The GPUs' usage, wherever it was given.
    pub fn into_gpus(self) -> Vec<GpuUsage> {
        match self.metrics {
            Some(metrics) if self.gpus.is_empty() => metrics.gpus,
            _ => self.gpus,
        }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: serde_json::Value) -> Heartbeat {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_original_shape_and_an_empty_heartbeat_have_no_gpus() {
        let original = read(json!({
            "cpu_usage": 45.5, "mem_usage": 60.2, "disk_free_mb": 450000,
            "running_containers": ["postgres"]
        }));
        assert!(original.validate().is_ok());
        assert!(original.into_gpus().is_empty());
        let empty = read(json!({}));
        assert!(empty.validate().is_ok());
        assert!(empty.into_gpus().is_empty());
    }

    #[test]
    fn gpus_are_read_at_the_top_level_or_nested() {
        let gpu = json!({"id": 1, "utilization": 37, "mem_used_mb": 20480, "power_w": null});
        let top = read(json!({"gpus": [gpu.clone()]}));
        let nested = read(json!({"metrics": {"gpus": [gpu]}}));
        assert!(top.validate().is_ok() && nested.validate().is_ok());
        let (top, nested) = (top.into_gpus(), nested.into_gpus());
        assert_eq!(top, nested);
        assert_eq!(top[0].id, 1);
        assert_eq!(top[0].utilization, Some(37.0));
        assert_eq!(top[0].power_w, None);
    }

    #[test]
    fn a_bad_gpu_value_names_its_field() {
        let top = read(json!({"gpus": [{"id": 0, "utilization": 150}]}));
        let message = top.validate().unwrap_err().to_string();
        assert!(message.contains("gpus[0].utilization"), "{message}");
        let nested = read(json!({"metrics": {"gpus": [{"id": 0}, {"id": 0}]}}));
        let message = nested.validate().unwrap_err().to_string();
        assert!(message.contains("metrics.gpus[1].id"), "{message}");
    }

    #[test]
    fn both_places_at_once_are_refused() {
        let both = read(json!({"gpus": [{"id": 0}], "metrics": {"gpus": [{"id": 1}]}}));
        let message = both.validate().unwrap_err().to_string();
        assert!(message.starts_with("gpus:"), "{message}");
        // an empty list is no list
        let one = read(json!({"gpus": [], "metrics": {"gpus": [{"id": 1}]}}));
        assert!(one.validate().is_ok());
        assert_eq!(one.into_gpus()[0].id, 1);
    }

    #[test]
    fn a_heartbeat_without_gpus_is_sent_as_the_original_shape() {
        let sent = serde_json::to_value(Heartbeat::default()).unwrap();
        assert_eq!(
            sent,
            json!({"cpu_usage": 0.0, "mem_usage": 0.0, "disk_free_mb": 0, "running_containers": []})
        );
    }
}
