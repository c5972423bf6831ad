//! Requirements from a docker-compose document, read as Docker users write them:
//! `deploy.resources.reservations` (cpus, memory, GPU devices) summed over services
//! and `deploy.replicas`, and `deploy.placement.constraints`.

use serde_json::Value;

use super::invalid;
use crate::Result;
use crate::model::Requirements;

/// The requirements a parsed compose document ([`parse_compose`]) states.
pub fn requirements_of(document: &Value) -> Result<Requirements> {
    let Some(Value::Object(services)) = document.get("services") else {
        return Err(invalid("the document has no `services` mapping"));
    };
    let mut requirements = Requirements::default();
    for (name, service) in services {
        let path = format!("services.{name}");
        let Some(deploy) = service.get("deploy").filter(|d| !d.is_null()) else {
            continue;
        };
        let replicas = replicas(deploy, &path)?;
        if let Some(reservations) = deploy
            .get("resources")
            .and_then(|r| r.get("reservations"))
            .filter(|r| !r.is_null())
        {
            let path = format!("{path}.deploy.resources.reservations");
            add_reservations(&mut requirements, reservations, replicas, &path)?;
        }
        if let Some(constraints) = deploy
            .get("placement")
            .and_then(|p| p.get("constraints"))
            .filter(|c| !c.is_null())
        {
            let path = format!("{path}.deploy.placement.constraints");
            let list = constraints
                .as_array()
                .ok_or_else(|| invalid(format_args!("{path}: must be a list")))?;
            for constraint in list {
                let text = constraint
                    .as_str()
                    .ok_or_else(|| invalid(format_args!("{path}: constraints are strings")))?;
                apply_constraint(&mut requirements, text, &path)?;
            }
        }
    }
    Ok(requirements)
}

fn replicas(deploy: &Value, path: &str) -> Result<u64> {
    if deploy.get("mode").and_then(Value::as_str) == Some("global") {
        return Ok(1);
    }
    match deploy.get("replicas") {
        None | Some(Value::Null) => Ok(1),
        Some(value) => value.as_u64().ok_or_else(|| {
            invalid(format_args!(
                "{path}.deploy.replicas: must be a whole number"
            ))
        }),
    }
}

fn add_reservations(
    requirements: &mut Requirements,
    reservations: &Value,
    replicas: u64,
    path: &str,
) -> Result<()> {
    if let Some(cpus) = reservations.get("cpus").filter(|v| !v.is_null()) {
        let cpus = number(cpus)
            .filter(|c| c.is_finite() && *c >= 0.0)
            .ok_or_else(|| invalid(format_args!("{path}.cpus: {cpus} is not a CPU count")))?;
        requirements.cpus += cpus * replicas as f64;
    }
    if let Some(memory) = reservations.get("memory").filter(|v| !v.is_null()) {
        let mb = memory_mb(memory)
            .ok_or_else(|| invalid(format_args!("{path}.memory: {memory} is not a size")))?;
        requirements.mem_mb = requirements
            .mem_mb
            .saturating_add(mb.saturating_mul(replicas));
    }
    if let Some(devices) = reservations.get("devices").filter(|v| !v.is_null()) {
        let list = devices
            .as_array()
            .ok_or_else(|| invalid(format_args!("{path}.devices: must be a list")))?;
        for device in list {
            let gpus = gpu_count(device, path)?;
            let total = u64::from(gpus).saturating_mul(replicas);
            let total = u32::try_from(total).unwrap_or(u32::MAX);
            requirements.gpus = requirements.gpus.saturating_add(total);
        }
    }
    Ok(())
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Docker's size syntax: a number of bytes, or a number with `b`, `k`, `m`, `g`
/// (optionally followed by `b`), binary multiples. Rounded up to whole MB.
pub fn memory_mb(value: &Value) -> Option<u64> {
    const MIB: f64 = 1024.0 * 1024.0;
    let bytes = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(text) => parse_size_bytes(text)?,
        _ => return None,
    };
    if !bytes.is_finite() || bytes < 0.0 {
        return None;
    }
    let mb = (bytes / MIB).ceil();
    (mb < 9.0e18).then_some(mb as u64)
}

/// Parses `512M`, `2G`, `1.5gb`, `1024k`, `100` (bytes) into bytes.
pub fn parse_size_bytes(text: &str) -> Option<f64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let multiplier = match unit.trim() {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let number: f64 = digits.trim().parse().ok()?;
    (number.is_finite() && number >= 0.0).then_some(number * multiplier)
}

/// GPUs a device reservation asks for: `count` (a number, or `all`, read as one),
/// else the number of `device_ids`, else one. Devices that are not GPU requests
/// ([`is_gpu_request`]) ask for none.
fn gpu_count(device: &Value, path: &str) -> Result<u32> {
    if !is_gpu_request(device) {
        return Ok(0);
    }
    match device.get("count") {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid(format_args!("{path}.devices.count: must be a whole number"))),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("all") => Ok(1),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| invalid(format_args!("{path}.devices.count: {s:?} is not a count"))),
        Some(Value::Null) | None => Ok(device
            .get("device_ids")
            .and_then(Value::as_array)
            .map_or(1, |ids| u32::try_from(ids.len()).unwrap_or(u32::MAX))),
        Some(other) => Err(invalid(format_args!(
            "{path}.devices.count: {other} is not a count"
        ))),
    }
}

/// The capabilities Docker's NVIDIA driver answers to: a device request naming any
/// of them (or `driver: nvidia`) is given GPUs.
const NVIDIA_CAPABILITIES: [&str; 8] = [
    "gpu", "nvidia", "compute", "utility", "graphics", "video", "display", "compat32",
];

/// Whether a `deploy.resources.reservations.devices` entry is a GPU request as
/// Docker reads it: `driver: nvidia`, or a capability the NVIDIA driver answers to.
/// Such a request is counted by placement and pinned to the assigned GPUs on the
/// node.
pub fn is_gpu_request(device: &Value) -> bool {
    let nvidia_driver = device
        .get("driver")
        .and_then(Value::as_str)
        .is_some_and(|d| d.eq_ignore_ascii_case("nvidia"));
    let nvidia_capability = device.get("capabilities").is_some_and(|caps| {
        flat_strings(caps).iter().any(|c| {
            NVIDIA_CAPABILITIES
                .iter()
                .any(|known| c.eq_ignore_ascii_case(known))
        })
    });
    nvidia_driver || nvidia_capability
}

fn flat_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(flat_strings).collect(),
        _ => Vec::new(),
    }
}

/// Applies one `deploy.placement.constraints` entry.
fn apply_constraint(requirements: &mut Requirements, text: &str, path: &str) -> Result<()> {
    let unsupported = || {
        invalid(format_args!(
            "{path}: unsupported constraint {text:?} (supported: node.labels.<key> == <value>, \
             node.hostname == <name>, node.id == <id>, node.platform.os == <os>, node.role)"
        ))
    };
    let (key, value) = text.split_once("==").ok_or_else(unsupported)?;
    let (key, value) = (key.trim(), value.trim());
    if key.ends_with('!') || value.is_empty() {
        return Err(unsupported());
    }
    if let Some(label) = key.strip_prefix("node.labels.") {
        let tag = format!("{label}={value}");
        if !requirements.tags.contains(&tag) {
            requirements.tags.push(tag);
        }
        return Ok(());
    }
    match key {
        "node.hostname" | "node.id" => pin(requirements, value, path),
        "node.platform.os" => {
            match &requirements.os {
                Some(os) if !os.eq_ignore_ascii_case(value) => {
                    return Err(invalid(format_args!(
                        "{path}: conflicting OS constraints ({os} and {value})"
                    )));
                }
                _ => requirements.os = Some(value.to_string()),
            }
            Ok(())
        }
        // Every MIaaS node is a worker; the role is not a placement criterion here.
        "node.role" => Ok(()),
        _ => Err(unsupported()),
    }
}

fn pin(requirements: &mut Requirements, node: &str, path: &str) -> Result<()> {
    match &requirements.node {
        Some(existing) if existing != node => Err(invalid(format_args!(
            "{path}: conflicting node constraints ({existing} and {node})"
        ))),
        _ => {
            requirements.node = Some(node.to_string());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::requirements_from_compose;

    fn reqs(yaml: &str) -> Requirements {
        requirements_from_compose(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_plain_document_needs_nothing() {
        let r = reqs("version: '3.8'\nservices:\n  postgres:\n    image: postgres:16");
        assert_eq!(r, Requirements::default());
    }

    #[test]
    fn reservations_are_summed_over_services_and_replicas() {
        let r = reqs(
            "services:
  web:
    image: nginx
    deploy:
      replicas: 3
      resources:
        reservations:
          cpus: '0.5'
          memory: 512M
  db:
    image: postgres
    deploy:
      resources:
        reservations:
          cpus: 2
          memory: 2G
        limits:
          memory: 8G
",
        );
        assert_eq!(r.cpus, 3.5);
        assert_eq!(r.mem_mb, 3 * 512 + 2048);
        assert_eq!(r.gpus, 0);
    }

    #[test]
    fn gpu_devices_count_by_count_ids_or_one() {
        let r = reqs(
            "services:
  train:
    image: pytorch
    deploy:
      replicas: 2
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: 2
              capabilities: [gpu]
  infer:
    image: triton
    deploy:
      resources:
        reservations:
          devices:
            - capabilities: [gpu, utility]
              device_ids: ['0', '1', '2']
            - capabilities: [tpu]
              count: 4
  any:
    image: x
    deploy:
      resources:
        reservations:
          devices:
            - capabilities: [gpu]
              count: all
",
        );
        assert_eq!(r.gpus, 2 * 2 + 3 + 1);
    }

    #[test]
    fn constraints_become_tags_pins_and_os() {
        let r = reqs(
            "services:
  web:
    image: nginx
    deploy:
      placement:
        constraints:
          - node.labels.zone == eu-1
          - node.platform.os == linux
          - node.hostname == worker-07
          - node.role == worker
",
        );
        assert_eq!(r.tags, vec!["zone=eu-1".to_string()]);
        assert_eq!(r.os.as_deref(), Some("linux"));
        assert_eq!(r.node.as_deref(), Some("worker-07"));
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let err = requirements_from_compose("services:\n  web:\n    image: [nginx\n  db: x")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rendered_compose: invalid YAML"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn documents_without_services_are_refused() {
        for doc in [
            "version: '3.8'",
            "services: [a, b]",
            "just text",
            "",
            "services:",
        ] {
            let err = requirements_from_compose(doc).unwrap_err().to_string();
            assert!(
                err.contains("services") || err.contains("YAML"),
                "{doc:?}: {err}"
            );
        }
    }

    #[test]
    fn bad_sizes_and_unsupported_constraints_are_refused() {
        let bad_memory = "services:\n  a:\n    deploy:\n      resources:\n        reservations:\n          memory: lots\n";
        let err = requirements_from_compose(bad_memory)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory"), "{err}");
        let not_equal = "services:\n  a:\n    deploy:\n      placement:\n        constraints: ['node.labels.a != b']\n";
        assert!(requirements_from_compose(not_equal).is_err());
        let conflict = "services:\n  a:\n    deploy:\n      placement:\n        constraints: ['node.hostname == x']\n  b:\n    deploy:\n      placement:\n        constraints: ['node.hostname == y']\n";
        assert!(requirements_from_compose(conflict).is_err());
    }

    #[test]
    fn docker_sizes_use_binary_units() {
        use serde_json::json;
        assert_eq!(memory_mb(&json!("512M")), Some(512));
        assert_eq!(memory_mb(&json!("2G")), Some(2048));
        assert_eq!(memory_mb(&json!("1.5gb")), Some(1536));
        assert_eq!(memory_mb(&json!("1024k")), Some(1));
        assert_eq!(memory_mb(&json!(536870912)), Some(512));
        assert_eq!(memory_mb(&json!("1b")), Some(1));
        assert_eq!(memory_mb(&json!("-1G")), None);
        assert_eq!(memory_mb(&json!("12X")), None);
    }
}
