//! What a node offers: the `capabilities` object of a registration.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// One GPU of a node. Only `id` matters to placement's bookkeeping; a GPU sent
/// without `model` or `mem_mb` (the original accepted any object) has them unknown:
/// it fits no deployment that asks for a GPU model or GPU memory. Fields the server
/// does not know are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GpuInfo {
    /// The GPU's index on its node (as `nvidia-smi` numbers them); its position in
    /// the list when not sent.
    #[serde(deserialize_with = "super::number::deserialize_whole_u32")]
    #[schema(schema_with = super::number::count_schema)]
    pub id: u32,
    /// Model name, e.g. `RTX 3090`; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^(?=.*\S)[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub model: Option<String>,
    /// GPU memory in MB; absent when unknown.
    #[serde(
        default,
        deserialize_with = "super::number::deserialize_optional_whole",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = super::number::optional_whole_schema)]
    pub mem_mb: Option<u64>,
    /// The GPU's UUID (`GPU-…`), when the agent reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// GPU fields the server does not interpret, kept verbatim.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

impl GpuInfo {
    /// A GPU with a known model and memory.
    pub fn new(id: u32, model: impl Into<String>, mem_mb: u64) -> Self {
        GpuInfo {
            id,
            model: Some(model.into()),
            mem_mb: Some(mem_mb),
            uuid: None,
            extra: Map::new(),
        }
    }
}

/// The Docker engine of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DockerInfo {
    /// Engine version, e.g. `24.0.0` (empty when not reported).
    #[serde(default)]
    pub version: String,
    /// Whether the engine answers (assumed when not sent).
    #[serde(default = "engine_assumed_available")]
    pub available: bool,
    /// The Docker Compose version the node runs deployments with, e.g. `2.29.7`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_version: Option<String>,
    /// Docker fields the server does not interpret, kept verbatim.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

fn engine_assumed_available() -> bool {
    true
}

/// A node's capabilities. Fields the server does not know (for example `k8s`) are
/// kept and returned as they were sent, beside the known ones.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({
    "os": "linux", "cpu_count": 8, "mem_mb": 16000, "disk_mb": 500000,
    "gpus": [{"id": 0, "model": "RTX 3090", "mem_mb": 24000}],
    "docker": {"version": "24.0.0", "available": true}
}))]
pub struct NodeCapabilities {
    /// Operating system, e.g. `linux`.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^(?=.*\S)[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub os: String,
    /// Number of CPU cores.
    #[schema(schema_with = super::number::count_schema)]
    pub cpu_count: u32,
    /// Memory in MB.
    #[schema(schema_with = super::number::whole_schema)]
    pub mem_mb: u64,
    /// Disk in MB; `null` when the node did not report it (unknown). Such a node
    /// fits no deployment that reserves disk.
    #[schema(schema_with = super::number::optional_whole_schema)]
    pub disk_mb: Option<u64>,
    /// GPUs, empty when the node has none.
    #[serde(default)]
    pub gpus: Vec<GpuInfo>,
    /// The Docker engine, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    /// Capability fields the server does not interpret, kept verbatim.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// The known fields, deserialized with field paths in their errors.
#[derive(Deserialize)]
struct KnownCapabilities {
    os: String,
    #[serde(deserialize_with = "super::number::deserialize_whole_u32")]
    cpu_count: u32,
    #[serde(deserialize_with = "super::number::deserialize_whole")]
    mem_mb: u64,
    #[serde(
        default,
        deserialize_with = "super::number::deserialize_optional_whole"
    )]
    disk_mb: Option<u64>,
    #[serde(default)]
    gpus: Vec<Value>,
    #[serde(default)]
    docker: Option<DockerInfo>,
}

/// A GPU as sent: `id` defaults to its position in the list.
fn gpu_at(position: usize, mut gpu: Value) -> Result<GpuInfo, String> {
    if let Value::Object(fields) = &mut gpu
        && !fields.contains_key("id")
    {
        fields.insert("id".into(), Value::from(position));
    }
    serde_path_to_error::deserialize(gpu).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            format!("gpus[{position}]: {}", err.into_inner())
        } else {
            format!("gpus[{position}].{path}: {}", err.into_inner())
        }
    })
}

const KNOWN_FIELDS: [&str; 6] = ["os", "cpu_count", "mem_mb", "disk_mb", "gpus", "docker"];

impl<'de> Deserialize<'de> for NodeCapabilities {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Map::<String, Value>::deserialize(deserializer)?;
        let known: Map<String, Value> = KNOWN_FIELDS
            .iter()
            .filter_map(|key| fields.remove(*key).map(|v| (key.to_string(), v)))
            .collect();
        let parsed: KnownCapabilities = serde_path_to_error::deserialize(Value::Object(known))
            .map_err(|err| {
                let path = err.path().to_string();
                if path == "." {
                    D::Error::custom(err.into_inner())
                } else {
                    D::Error::custom(format!("{path}: {}", err.into_inner()))
                }
            })?;
        let gpus = (parsed.gpus.into_iter().enumerate())
            .map(|(position, gpu)| gpu_at(position, gpu))
            .collect::<Result<Vec<_>, _>>()
            .map_err(D::Error::custom)?;
        Ok(NodeCapabilities {
            os: parsed.os,
            cpu_count: parsed.cpu_count,
            mem_mb: parsed.mem_mb,
            disk_mb: parsed.disk_mb,
            gpus,
            docker: parsed.docker,
            extra: fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let sent = json!({
            "os": "linux", "cpu_count": 4, "mem_mb": 8000, "disk_mb": 1000,
            "gpus": [], "docker": {"version": "24.0.0", "available": true},
            "k8s": {"version": "1.30"}
        });
        let caps: NodeCapabilities = serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(caps.extra["k8s"], json!({"version": "1.30"}));
        assert_eq!(serde_json::to_value(&caps).unwrap(), sent);
    }

    #[test]
    fn a_mistyped_field_is_named() {
        let err = serde_json::from_value::<NodeCapabilities>(json!({
            "os": "linux", "cpu_count": "eight", "mem_mb": 1, "disk_mb": 1
        }))
        .unwrap_err();
        assert!(err.to_string().contains("cpu_count"), "{err}");
    }

    #[test]
    fn a_missing_field_is_named_and_negative_sizes_are_refused() {
        let missing =
            serde_json::from_value::<NodeCapabilities>(json!({"os": "linux", "cpu_count": 1}))
                .unwrap_err();
        assert!(missing.to_string().contains("mem_mb"), "{missing}");
        let negative = serde_json::from_value::<NodeCapabilities>(json!({
            "os": "linux", "cpu_count": 1, "mem_mb": -5, "disk_mb": 1
        }))
        .unwrap_err();
        assert!(negative.to_string().contains("mem_mb"), "{negative}");
    }

    #[test]
    fn gpus_as_the_original_accepted_them() {
        let sent = json!({
            "os": "linux", "cpu_count": 1, "mem_mb": 1,
            "gpus": [{"id": 0, "model": "RTX 3090"}, {"vendor": "nvidia"}, {"id": 7}],
            "docker": {"version": "24.0.0", "runtime": "nvidia"}
        });
        let caps: NodeCapabilities = serde_json::from_value(sent).unwrap();
        let ids: Vec<u32> = caps.gpus.iter().map(|g| g.id).collect();
        assert_eq!(
            ids,
            [0, 1, 7],
            "a GPU without id is numbered by its position"
        );
        assert_eq!(caps.gpus[0].model.as_deref(), Some("RTX 3090"));
        assert_eq!(caps.gpus[0].mem_mb, None);
        assert_eq!(caps.gpus[1].extra["vendor"], json!("nvidia"));
        let docker = caps.docker.as_ref().unwrap();
        assert!(docker.available);
        assert_eq!(docker.extra["runtime"], json!("nvidia"));
        let back = serde_json::to_value(&caps).unwrap();
        assert_eq!(back["gpus"][1], json!({"id": 1, "vendor": "nvidia"}));
        assert_eq!(back["docker"]["runtime"], json!("nvidia"));

        let bad = serde_json::from_value::<NodeCapabilities>(json!({
            "os": "linux", "cpu_count": 1, "mem_mb": 1, "gpus": [{"id": 0, "mem_mb": -1}]
        }))
        .unwrap_err();
        assert!(bad.to_string().contains("gpus[0].mem_mb"), "{bad}");
    }

    #[test]
    fn gpus_and_docker_are_optional() {
        let caps: NodeCapabilities = serde_json::from_value(json!({
            "os": "linux", "cpu_count": 1, "mem_mb": 1, "disk_mb": 1
        }))
        .unwrap();
        assert!(caps.gpus.is_empty());
        assert!(caps.docker.is_none());
    }
}
