//! The compose document as this node runs it: the deployment's own project name,
//! its environment given to every service, and its GPUs pinned to the ones
//! placement assigned (never `count: all`).

use miaas_core::compose::is_gpu_request;
use miaas_core::model::DesiredDeployment;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The folder of a deployment under `<state-dir>/deployments/`: its id, unless the
/// id cannot be one path component (`.`, `..`, longer than a file name may be);
/// then `%` and the id's SHA-256, which no id can be (ids never hold `%`).
pub fn folder_name(deployment_id: &str) -> String {
    let plain = !deployment_id.is_empty()
        && deployment_id != "."
        && deployment_id != ".."
        && deployment_id.len() <= 255
        && !deployment_id.contains(['/', '\0', '%']);
    if plain {
        deployment_id.to_string()
    } else {
        format!("%{}", hex::encode(Sha256::digest(deployment_id.as_bytes())))
    }
}

/// How much of an id a hashed project name keeps, to stay readable.
const KEPT_ID_CHARS: usize = 32;

/// The Compose project name of a deployment, distinct for distinct ids:
/// `miaas-<id>` for an id of lowercase letters, digits and `-`; any other id gets
/// `miaas_<id cleaned, cut>_<its SHA-256>`, which starts `miaas_` where the
/// others start `miaas-`, so that no id can claim another's project. Compose
/// names a project's volumes and networks `<project>_<key>`: a `miaas-` name
/// holds no `_`, and a hashed one ends in 64 hex digits after at most
/// [`KEPT_ID_CHARS`], so that no id's volume or network is another's either
/// (`shop` + `pg_data` against `shop_pg` + `data`).
pub fn project_name(deployment_id: &str) -> String {
    let compose_safe = !deployment_id.is_empty()
        && deployment_id
            .chars()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'));
    if compose_safe {
        return format!("miaas-{deployment_id}");
    }
    let cleaned: String = deployment_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .take(KEPT_ID_CHARS)
        .collect();
    let hash = hex::encode(Sha256::digest(deployment_id.as_bytes()));
    format!("miaas_{cleaned}_{hash}")
}

/// The document to hand to Compose, as JSON (which YAML reads): the server's
/// resolved document (which already holds the deployment's environment, with
/// nothing left to interpolate), with every GPU device request naming exactly the
/// GPUs assigned and every service's `NVIDIA_VISIBLE_DEVICES` those GPUs (`void`:
/// none), so that a container of the NVIDIA runtime sees no other GPU of the node
/// whatever the document or its environment asked.
pub fn rendered_for_node(deployment: &DesiredDeployment) -> Result<String, String> {
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
        pin_gpus(service, &gpu_ids);
        set_visible_gpus(service, &gpu_ids);
    }
    serde_json::to_string_pretty(&document).map_err(|err| err.to_string())
}

/// Every GPU device request ([`is_gpu_request`]: also one naming only `compute` or
/// `driver: nvidia`) names `gpu_ids`.
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
    for device in devices.iter_mut() {
        if !is_gpu_request(device) {
            continue;
        }
        if let Value::Object(device) = device {
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
            health: None,
            restarts: 0,
            error: None,
        }
    }

    #[test]
    fn a_document_cannot_see_gpus_it_was_not_given() {
        let compose = "services:\n  sneaky:\n    image: x\n    runtime: nvidia\n    environment:\n      - NVIDIA_VISIBLE_DEVICES=all\n      - KEEP=1\n  mapped:\n    image: x\n    environment:\n      NVIDIA_VISIBLE_DEVICES: all\n";
        let text = rendered_for_node(&desired(compose, vec![])).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["services"]["sneaky"]["environment"],
            json!(["KEEP=1", "NVIDIA_VISIBLE_DEVICES=void"])
        );
        assert_eq!(
            doc["services"]["mapped"]["environment"]["NVIDIA_VISIBLE_DEVICES"],
            "void"
        );
        let pinned = rendered_for_node(&desired(compose, vec![2])).unwrap();
        let doc: Value = serde_json::from_str(&pinned).unwrap();
        assert_eq!(
            doc["services"]["mapped"]["environment"]["NVIDIA_VISIBLE_DEVICES"],
            "2"
        );
    }

    #[test]
    fn project_names_are_compose_safe_and_distinct() {
        assert_eq!(project_name("web-1"), "miaas-web-1");
        assert!(project_name("a_b").starts_with("miaas_a_b_"));
        let odd = project_name("Web.1");
        assert!(odd.starts_with("miaas_web-1_") && odd.len() == "miaas_web-1_".len() + 64);
        assert_ne!(project_name("a.b"), project_name("a:b"));
        assert!(!project_name("..").contains('.'));
        // no id can claim the project of another: not the old hash-suffixed name,
        // nor the new one
        let victim = project_name("shop.prod");
        let claim = victim.strip_prefix("miaas_").unwrap_or(&victim);
        for attacker in ["shop-prod-039cbbb1", claim, &victim] {
            assert_ne!(project_name(attacker), victim, "{attacker}");
        }
        for name in [odd, victim, project_name(&"X".repeat(253))] {
            assert!(name.len() <= 6 + KEPT_ID_CHARS + 1 + 64, "{name}");
            assert!(
                name.chars()
                    .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_')),
                "{name}"
            );
        }
    }

    /// Compose names a volume or network `<project>_<key>` (compose-go's
    /// setNameFromKey, v1 alike) and reuses one that exists, whoever made it.
    #[test]
    fn no_two_ids_name_the_same_volume_or_network() {
        let docker_name = |id: &str, key: &str| format!("{}_{key}", project_name(id));
        for ((victim, theirs), (attacker, mine)) in [
            // `shop`'s volume `pg_data` and `shop_pg`'s volume `data`
            (("shop", "pg_data"), ("shop_pg", "data")),
            // `my_app`'s default network and `my`'s network `app_default`
            (("my_app", "default"), ("my", "app_default")),
            (("a_b_c", "d"), ("a_b", "c_d")),
            (("Shop.x", "a_b"), ("Shop.x_a", "b")),
        ] {
            assert_ne!(
                docker_name(victim, theirs),
                docker_name(attacker, mine),
                "{victim}/{theirs} and {attacker}/{mine}"
            );
        }
        // no plain project holds `_`: the first `_` of a Docker name ends it
        for id in ["a_b", "_x", "x_", "a__b", "shop_pg"] {
            let project = project_name(id);
            assert!(
                !project.starts_with("miaas-") || !project.contains('_'),
                "{id}: {project}"
            );
        }
    }

    #[test]
    fn folders_are_named_after_the_id_when_it_can_be_one() {
        assert_eq!(folder_name("web-1"), "web-1");
        assert_eq!(folder_name("Web.1"), "Web.1");
        for odd in [".", "..", &"x".repeat(300)] {
            let folder = folder_name(odd);
            assert!(folder.starts_with('%') && folder.len() == 65, "{folder}");
        }
        assert_ne!(folder_name("."), folder_name(".."));
    }

    #[test]
    fn every_gpu_request_is_pinned() {
        let compose = "services:\n  train:\n    image: trainer\n    deploy:\n      resources:\n        reservations:\n          devices:\n            - driver: nvidia\n              count: all\n              capabilities: [gpu]\n            - capabilities: [compute]\n              count: all\n            - capabilities: [tpu]\n              count: 2\n  side:\n    image: busybox\n";
        let text = rendered_for_node(&desired(compose, vec![1, 3])).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let devices = &doc["services"]["train"]["deploy"]["resources"]["reservations"]["devices"];
        for device in [&devices[0], &devices[1]] {
            assert_eq!(device["device_ids"], json!(["1", "3"]));
            assert!(device.get("count").is_none(), "never count: all");
        }
        assert_eq!(devices[2], json!({"capabilities": ["tpu"], "count": 2}));
        for service in ["train", "side"] {
            let env = &doc["services"][service]["environment"];
            assert_eq!(env["NVIDIA_VISIBLE_DEVICES"], "1,3", "{service}");
            assert!(doc["services"][service].get("env_file").is_none());
        }
        assert!(rendered_for_node(&desired("x: [", vec![])).is_err());
    }
}
