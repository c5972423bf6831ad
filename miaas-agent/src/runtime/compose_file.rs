//! The compose document as this node runs it: the deployment's own project name,
//! its environment given to every service, and its GPUs pinned to the ones
//! placement assigned (never `count: all`).

use std::path::Path;

use miaas_core::model::DesiredDeployment;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The folder of a deployment under `<state-dir>/deployments/`: its id, unless the
/// id cannot be one path component (`.`, `..`, longer than a file name may be);
/// then its project name.
pub fn folder_name(deployment_id: &str) -> String {
    let plain = !deployment_id.is_empty()
        && deployment_id != "."
        && deployment_id != ".."
        && deployment_id.len() <= 255
        && !deployment_id.contains(['/', '\0']);
    if plain {
        deployment_id.to_string()
    } else {
        project_name(deployment_id)
    }
}

/// The Compose project name of a deployment: `miaas-<id>` in the
/// characters Compose allows; an id that needed changing gets a short hash so
/// that two ids never share a project.
pub fn project_name(deployment_id: &str) -> String {
    let cleaned: String = deployment_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    if cleaned == deployment_id {
        format!("miaas-{cleaned}")
    } else {
        let hash = hex::encode(&Sha256::digest(deployment_id.as_bytes())[..4]);
        format!("miaas-{cleaned}-{hash}")
    }
}

/// The document to hand to Compose, as JSON (which YAML reads): every service
/// reads `env_file` (the deployment's environment), every GPU device reservation
/// names exactly the GPUs assigned, and every service's `NVIDIA_VISIBLE_DEVICES`
/// is those GPUs (`void`: none), so that a container of the NVIDIA runtime sees no
/// other GPU of the node whatever the document or its environment asked.
pub fn rendered_for_node(
    deployment: &DesiredDeployment,
    env_file: &Path,
) -> Result<String, String> {
    let mut document: Value = serde_saphyr::from_str(&deployment.rendered_compose)
        .map_err(|err| format!("the compose document does not parse: {err}"))?;
    let gpu_ids: Vec<String> = deployment.gpu_ids.iter().map(u32::to_string).collect();
    let Some(Value::Object(services)) = document.get_mut("services") else {
        return Err("the compose document has no services".into());
    };
    for service in services.values_mut() {
        let Value::Object(service) = service else {
            continue;
        };
        let mut env_files = match service.remove("env_file") {
            Some(Value::Array(files)) => files,
            Some(Value::String(file)) => vec![Value::String(file)],
            _ => Vec::new(),
        };
        env_files.push(json!(env_file.display().to_string()));
        service.insert("env_file".into(), Value::Array(env_files));
        pin_gpus(service, &gpu_ids);
        set_visible_gpus(service, &gpu_ids);
    }
    serde_json::to_string_pretty(&document).map_err(|err| err.to_string())
}

/// Every device reservation with the `gpu` capability names `gpu_ids`.
fn pin_gpus(service: &mut serde_json::Map<String, Value>, gpu_ids: &[String]) {
    let devices = service
        .get_mut("deploy")
        .and_then(|d| d.get_mut("resources"))
        .and_then(|r| r.get_mut("reservations"))
        .and_then(|r| r.get_mut("devices"))
        .and_then(Value::as_array_mut);
    let Some(devices) = devices else {
        return;
    };
    for device in devices.iter_mut().filter_map(Value::as_object_mut) {
        let is_gpu = device
            .get("capabilities")
            .and_then(Value::as_array)
            .is_some_and(|caps| caps.iter().any(|c| c.as_str() == Some("gpu")));
        if is_gpu {
            device.remove("count");
            device.insert("device_ids".into(), json!(gpu_ids));
        }
    }
}

/// The variable the NVIDIA container runtime reads to choose a container's GPUs.
const VISIBLE_DEVICES: &str = "NVIDIA_VISIBLE_DEVICES";

/// Sets the service's `NVIDIA_VISIBLE_DEVICES` (in `environment`, which wins over
/// `env_file`), in the list or mapping form the service uses.
fn set_visible_gpus(service: &mut serde_json::Map<String, Value>, gpu_ids: &[String]) {
    let visible = if gpu_ids.is_empty() {
        "void".to_string()
    } else {
        gpu_ids.join(",")
    };
    match service.get_mut("environment") {
        Some(Value::Object(map)) => {
            map.insert(VISIBLE_DEVICES.into(), Value::String(visible));
        }
        Some(Value::Array(list)) => {
            list.retain(|entry| {
                let name = entry.as_str().map(|e| e.split('=').next().unwrap_or(e));
                name != Some(VISIBLE_DEVICES)
            });
            list.push(Value::String(format!("{VISIBLE_DEVICES}={visible}")));
        }
        _ => {
            service.insert("environment".into(), json!({ VISIBLE_DEVICES: visible }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use miaas_core::model::DeploymentStatus;

    use super::*;

    fn desired(compose: &str, gpu_ids: Vec<u32>) -> DesiredDeployment {
        DesiredDeployment {
            deployment_id: "train".into(),
            template_id: "t".into(),
            revision: 1,
            rendered_compose: compose.into(),
            env: BTreeMap::new(),
            gpu_ids,
            status: DeploymentStatus::Scheduled,
        }
    }

    #[test]
    fn a_document_cannot_see_gpus_it_was_not_given() {
        let compose = "services:\n  sneaky:\n    image: x\n    runtime: nvidia\n    environment:\n      - NVIDIA_VISIBLE_DEVICES=all\n      - KEEP=1\n  mapped:\n    image: x\n    environment:\n      NVIDIA_VISIBLE_DEVICES: all\n";
        let text = rendered_for_node(&desired(compose, vec![]), Path::new("/s/.env")).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["services"]["sneaky"]["environment"],
            json!(["KEEP=1", "NVIDIA_VISIBLE_DEVICES=void"])
        );
        assert_eq!(
            doc["services"]["mapped"]["environment"]["NVIDIA_VISIBLE_DEVICES"],
            "void"
        );
        let pinned = rendered_for_node(&desired(compose, vec![2]), Path::new("/s/.env")).unwrap();
        let doc: Value = serde_json::from_str(&pinned).unwrap();
        assert_eq!(
            doc["services"]["mapped"]["environment"]["NVIDIA_VISIBLE_DEVICES"],
            "2"
        );
    }

    #[test]
    fn project_names_are_compose_safe_and_distinct() {
        assert_eq!(project_name("web-1"), "miaas-web-1");
        let odd = project_name("Web.1");
        assert!(odd.starts_with("miaas-web-1-") && odd.len() == "miaas-web-1-".len() + 8);
        assert_ne!(project_name("a.b"), project_name("a:b"));
        assert!(!project_name("..").contains('.'));
    }

    #[test]
    fn folders_are_named_after_the_id_when_it_can_be_one() {
        assert_eq!(folder_name("web-1"), "web-1");
        assert_eq!(folder_name("Web.1"), "Web.1");
        assert_eq!(folder_name(".."), project_name(".."));
        assert_eq!(folder_name("."), project_name("."));
        let long = "x".repeat(300);
        assert_eq!(folder_name(&long), project_name(&long));
    }

    #[test]
    fn gpus_are_pinned_and_env_reaches_every_service() {
        let compose = "services:\n  train:\n    image: trainer\n    env_file: own.env\n    deploy:\n      resources:\n        reservations:\n          devices:\n            - driver: nvidia\n              count: all\n              capabilities: [gpu]\n  side:\n    image: busybox\n";
        let text = rendered_for_node(&desired(compose, vec![1, 3]), Path::new("/s/.env")).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let device = &doc["services"]["train"]["deploy"]["resources"]["reservations"]["devices"][0];
        assert_eq!(device["device_ids"], json!(["1", "3"]));
        assert!(device.get("count").is_none(), "never count: all");
        assert_eq!(
            doc["services"]["train"]["env_file"],
            json!(["own.env", "/s/.env"])
        );
        assert_eq!(doc["services"]["side"]["env_file"], json!(["/s/.env"]));
        for service in ["train", "side"] {
            let env = &doc["services"][service]["environment"];
            assert_eq!(env["NVIDIA_VISIBLE_DEVICES"], "1,3", "{service}");
        }
        assert!(rendered_for_node(&desired("x: [", vec![]), Path::new("/e")).is_err());
    }
}
