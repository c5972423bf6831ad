//! Requirements from a docker-compose document, read as Docker users write them,
//! summed over the services that start (`profiles` counted with the deployment's
//! `COMPOSE_PROFILES`) and their replicas (`deploy.replicas`, `scale`):
//!
//! - CPU and memory: the reservation, else the limit, as Kubernetes reserves a
//!   limit when no request is given (`deploy.resources.reservations`, else
//!   `mem_reservation`, else `deploy.resources.limits`, `cpus`, `mem_limit`);
//! - GPUs: what Docker gives the service ([`super::gpus`]);
//! - host ports ([`super::ports`]; a `network_mode: host` service needs every port
//!   it `expose`s or maps) and container names;
//! - `deploy.placement.constraints`.
//!
//! Each number is explained: which service and key gave it ([`Derivation`]).

use serde_json::{Map, Value, json};

use super::gpus::gpu_asks;
use super::profiles::{enabled_profiles, starts};
use super::{invalid, ports};
use crate::Result;
use crate::model::{Derivation, Env, Requirements};

/// The requirements of a parsed compose document (no profiles enabled).
pub fn requirements_of(document: &Value) -> Result<Requirements> {
    derive(document, &Env::default()).map(|(requirements, _)| requirements)
}

/// The requirements of a parsed (and resolved) compose document whose deployment
/// has `env`, with where each comes from.
pub fn derive(document: &Value, env: &Env) -> Result<(Requirements, Vec<Derivation>)> {
    let Some(Value::Object(services)) = document.get("services") else {
        return Err(invalid("the document has no `services` mapping"));
    };
    let profiles = enabled_profiles(env);
    let mut derived = Derived::default();
    for (name, service) in services {
        let Value::Object(service) = service else {
            continue;
        };
        if !starts(service, &profiles) {
            continue;
        }
        derived.service(name, service)?;
    }
    let mut requirements = derived.requirements;
    if requirements.gpus_all {
        requirements.gpus = requirements.gpus.max(1);
    }
    Ok((requirements, derived.explained))
}

/// The requirements summed so far, and their explanation.
#[derive(Default)]
struct Derived {
    requirements: Requirements,
    explained: Vec<Derivation>,
}

impl Derived {
    fn explain(&mut self, service: &str, resource: &str, value: Value, key: String, source: &str) {
        self.explained.push(Derivation {
            service: service.to_string(),
            resource: resource.into(),
            value,
            key,
            source: source.into(),
        });
    }

    fn service(&mut self, name: &str, service: &Map<String, Value>) -> Result<()> {
        let path = format!("services.{name}");
        let deploy = service.get("deploy").filter(|d| !d.is_null());
        let replicas = replicas(service, deploy, &path)?;
        let resources = deploy.and_then(|d| d.get("resources"));
        let reservation = |key: &str| {
            resources
                .and_then(|r| r.get("reservations"))
                .and_then(|r| r.get(key))
                .filter(|v| !v.is_null())
        };
        let limit = |key: &str| {
            resources
                .and_then(|r| r.get("limits"))
                .and_then(|r| r.get(key))
                .filter(|v| !v.is_null())
        };
        let own = |key: &str| service.get(key).filter(|v| !v.is_null());
        // CPUs: the reservation, else the limit
        let cpus = [
            (
                "deploy.resources.reservations.cpus",
                "reservations",
                reservation("cpus"),
            ),
            ("deploy.resources.limits.cpus", "limits", limit("cpus")),
            ("cpus", "limits", own("cpus")),
        ];
        if let Some((key, source, value)) = first_given(cpus) {
            let cpus = number(value)
                .filter(|c| c.is_finite() && *c >= 0.0)
                .ok_or_else(|| invalid(format_args!("{path}.{key}: {value} is not a CPU count")))?;
            let total = cpus * replicas as f64;
            self.requirements.cpus += total;
            self.explain(name, "cpus", json!(total), format!("{path}.{key}"), source);
        }
        // memory: the reservation, else the limit
        let memory = [
            (
                "deploy.resources.reservations.memory",
                "reservations",
                reservation("memory"),
            ),
            ("mem_reservation", "reservations", own("mem_reservation")),
            ("deploy.resources.limits.memory", "limits", limit("memory")),
            ("mem_limit", "limits", own("mem_limit")),
        ];
        if let Some((key, source, value)) = first_given(memory) {
            let mb = memory_mb(value)
                .ok_or_else(|| invalid(format_args!("{path}.{key}: {value} is not a size")))?;
            let total = mb.saturating_mul(replicas);
            self.requirements.mem_mb = self.requirements.mem_mb.saturating_add(total);
            self.explain(
                name,
                "memory_mb",
                json!(total),
                format!("{path}.{key}"),
                source,
            );
        }
        for ask in gpu_asks(service, &path)? {
            let total = u64::from(ask.count).saturating_mul(replicas);
            let total = u32::try_from(total).unwrap_or(u32::MAX);
            self.requirements.gpus = self.requirements.gpus.saturating_add(total);
            self.requirements.gpus_all |= ask.all;
            let value = if ask.all { json!("all") } else { json!(total) };
            self.explain(
                name,
                "gpus",
                value,
                format!("{path}.{}", ask.key),
                ask.source,
            );
        }
        self.ports(name, service, &path)?;
        if let Some(container) = own("container_name") {
            let container = match container {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !self.requirements.container_names.contains(&container) {
                self.requirements.container_names.push(container.clone());
            }
            let key = format!("{path}.container_name");
            self.explain(
                name,
                "container_name",
                json!(container),
                key,
                "container_name",
            );
        }
        if let Some(constraints) = deploy
            .and_then(|d| d.get("placement"))
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
                apply_constraint(&mut self.requirements, text, &path)?;
                self.explain(name, "constraint", json!(text), path.clone(), "placement");
            }
        }
        Ok(())
    }

    /// The host ports `service` takes: what it publishes, or, on the host's
    /// network, every port it exposes or maps.
    fn ports(&mut self, name: &str, service: &Map<String, Value>, path: &str) -> Result<()> {
        let host_network = service.get("network_mode").and_then(Value::as_str) == Some("host");
        let mut keys = vec!["ports"];
        if host_network {
            keys.push("expose");
        }
        for key in keys {
            let Some(entries) = service.get(key).and_then(Value::as_array) else {
                continue;
            };
            for (i, entry) in entries.iter().enumerate() {
                let place = format!("{path}.{key}.{i}");
                let taken = if host_network {
                    ports::container_ports(entry, &place)?
                } else {
                    ports::published(entry, &place)?
                };
                if taken.is_empty() {
                    continue;
                }
                let shown: Vec<String> = taken.iter().map(ToString::to_string).collect();
                let source = if host_network { "expose" } else { "ports" };
                self.explain(name, "port", json!(shown), place, source);
                ports::add_unique(&mut self.requirements.ports, taken)?;
            }
        }
        Ok(())
    }
}

/// The first value given, with its key and source.
fn first_given<'a, const N: usize>(
    candidates: [(&'static str, &'static str, Option<&'a Value>); N],
) -> Option<(&'static str, &'static str, &'a Value)> {
    candidates
        .into_iter()
        .find_map(|(key, source, value)| value.map(|v| (key, source, v)))
}

/// Replicas that start: `deploy.replicas`, else `scale`, else one (`global`: one).
fn replicas(service: &Map<String, Value>, deploy: Option<&Value>, path: &str) -> Result<u64> {
    if deploy.and_then(|d| d.get("mode")).and_then(Value::as_str) == Some("global") {
        return Ok(1);
    }
    let given = (deploy
        .and_then(|d| d.get("replicas"))
        .map(|r| ("deploy.replicas", r)))
    .or_else(|| service.get("scale").map(|s| ("scale", s)))
    .filter(|(_, v)| !v.is_null());
    match given {
        None => Ok(1),
        Some((key, value)) => number(value)
            .filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n < 1e9)
            .map(|n| n as u64)
            .ok_or_else(|| invalid(format_args!("{path}.{key}: must be a whole number"))),
    }
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

    /// The patterns of real-world compose files, each as a small document with the
    /// requirements it must give.
    #[test]
    fn real_world_patterns() {
        use std::collections::BTreeMap;
        let derive_with = |yaml: &str, env: &[(&str, &str)]| {
            let env: Env = (env.iter())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
                .into();
            let document = crate::compose::node_document::resolve(yaml, &env)
                .unwrap_or_else(|e| panic!("{e}"));
            derive(&document, &env).unwrap_or_else(|e| panic!("{e}"))
        };
        let ports =
            |r: &Requirements| -> Vec<String> { r.ports.iter().map(ToString::to_string).collect() };

        // Ollama + Open WebUI: every GPU, two published ports
        let (r, _) = derive_with(
            "services:\n  ollama:\n    image: ollama/ollama\n    ports: ['11434:11434']\n    deploy:\n      resources:\n        reservations:\n          devices: [{driver: nvidia, count: all, capabilities: [gpu]}]\n  webui:\n    image: ghcr.io/open-webui/open-webui\n    ports: [\"3000:8080\"]\n",
            &[],
        );
        assert!(r.gpus_all && r.gpus == 1, "{r:?}");
        assert_eq!(ports(&r), ["11434/tcp", "3000/tcp"]);
        // vLLM: the NVIDIA runtime with NVIDIA_VISIBLE_DEVICES
        let (r, explained) = derive_with(
            "services:\n  vllm:\n    image: vllm/vllm-openai\n    runtime: nvidia\n    environment: ['NVIDIA_VISIBLE_DEVICES=0,1']\n    ports: ['8000:8000']\n    container_name: vllm\n",
            &[],
        );
        assert_eq!((r.gpus, r.gpus_all), (2, false));
        assert_eq!(r.container_names, ["vllm"]);
        assert!(
            explained
                .iter()
                .any(|d| d.resource == "gpus" && d.source == "runtime")
        );
        // TGI: a count from the environment, with its default
        let tgi = "services:\n  tgi:\n    image: ghcr.io/huggingface/text-generation-inference\n    deploy:\n      resources:\n        reservations:\n          devices: [{driver: nvidia, count: '${NUM_SHARD:-1}', capabilities: [gpu]}]\n";
        assert_eq!(derive_with(tgi, &[]).0.gpus, 1);
        assert_eq!(derive_with(tgi, &[("NUM_SHARD", "4")]).0.gpus, 4);
        let all = tgi.replace("${NUM_SHARD:-1}", "${INFERENCE_GPU_COUNT:-all}");
        assert!(derive_with(&all, &[]).0.gpus_all);
        // TEI: the service-level gpus key
        assert!(
            derive_with("services:\n  tei:\n    image: tei\n    gpus: all\n", &[])
                .0
                .gpus_all
        );
        // Stable Diffusion WebUI: compute and utility are GPU capabilities too
        let (r, _) = derive_with(
            "services:\n  sd:\n    image: sd\n    deploy:\n      resources:\n        reservations:\n          devices: [{device_ids: ['0'], capabilities: [compute, utility]}]\n",
            &[],
        );
        assert_eq!(r.gpus, 1);
        // limits only (Langfuse, awesome-compose): reserved as Kubernetes does
        let (r, explained) = derive_with(
            "services:\n  web:\n    image: langfuse\n    deploy:\n      resources:\n        limits: {cpus: '${WEB_CPUS:-2}', memory: 4G}\n  db:\n    image: postgres\n    cpus: 0.5\n    mem_limit: 512m\n  cache:\n    image: redis\n    mem_reservation: 256m\n    mem_limit: 1g\n",
            &[],
        );
        assert_eq!(r.cpus, 2.5);
        assert_eq!(r.mem_mb, 4096 + 512 + 256);
        let cpu_source = explained
            .iter()
            .find(|d| d.service == "web" && d.resource == "cpus")
            .expect("explained");
        assert_eq!(cpu_source.source, "limits");
        assert_eq!(cpu_source.key, "services.web.deploy.resources.limits.cpus");
        // a reservation wins over a limit, and replicas multiply
        let (r, _) = derive_with(
            "services:\n  w:\n    image: x\n    deploy:\n      replicas: 3\n      resources:\n        reservations: {cpus: '0.5'}\n        limits: {cpus: 4}\n",
            &[],
        );
        assert_eq!(r.cpus, 1.5);
        // profiles: only what a plain `up` starts counts, unless COMPOSE_PROFILES
        let profiled = "services:\n  app:\n    image: x\n    ports: ['80:80']\n  gpu:\n    image: y\n    profiles: [gpu]\n    gpus: all\n    ports: ['81:81']\n";
        let (r, _) = derive_with(profiled, &[]);
        assert!(!r.gpus_all);
        assert_eq!(ports(&r), ["80/tcp"]);
        let (r, _) = derive_with(profiled, &[("COMPOSE_PROFILES", "gpu")]);
        assert!(r.gpus_all);
        assert_eq!(ports(&r), ["80/tcp", "81/tcp"]);
        // the host's network: every port it exposes
        let (r, explained) = derive_with(
            "services:\n  h:\n    image: x\n    network_mode: host\n    expose: ['9090', 9100]\n",
            &[],
        );
        assert_eq!(ports(&r), ["9090/tcp", "9100/tcp"]);
        assert!(explained.iter().all(|d| d.source == "expose"));
        // Milvus: many services, no resources stated, published ports
        let (r, _) = derive_with(
            "services:\n  etcd:\n    image: etcd\n  standalone:\n    image: milvus\n    ports: ['19530:19530', '9091:9091']\n",
            &[],
        );
        assert_eq!((r.cpus, r.mem_mb, r.gpus), (0.0, 0, 0));
        assert_eq!(ports(&r), ["19530/tcp", "9091/tcp"]);
    }
}
