//! The GPU lines of `miaas nodes get`: each GPU of a node with its live usage
//! (as last reported) and the deployment holding it; `-` for what is unknown.

use std::collections::{BTreeSet, HashMap};

use miaas_core::model::{GpuUsage, Node, reading_text};

/// One line per GPU the node registered or reported usage for, by id:
/// `gpu 0  NVIDIA A100-SXM4-80GB  util 37%  mem 20480/81920 MiB  61°C  250.5 W
/// deployment vllm-1` (`holders` maps a GPU id to the deployment holding it).
pub fn gpu_lines(node: &Node, holders: &HashMap<u32, String>) -> Vec<String> {
    let usage: &[GpuUsage] = node.metrics.as_ref().map_or(&[], |m| &m.gpus);
    let ids: BTreeSet<u32> = (node.capabilities.gpus.iter().map(|g| g.id))
        .chain(usage.iter().map(|u| u.id))
        .collect();
    ids.into_iter()
        .map(|id| {
            let info = node.capabilities.gpus.iter().find(|g| g.id == id);
            let used = usage.iter().find(|u| u.id == id);
            let field = |value: Option<f64>| value.map_or_else(|| "-".to_string(), reading_text);
            let model = info.and_then(|g| g.model.as_deref()).unwrap_or("-");
            let total = info.and_then(|g| g.mem_mb);
            let mem_used = used.and_then(|u| u.mem_used_mb);
            let utilization = match used.and_then(|u| u.utilization) {
                Some(percent) => format!("{}%", reading_text(percent)),
                None => "-".to_string(),
            };
            format!(
                "gpu {id}  {model}  util {utilization}  mem {}/{} MiB  {}°C  {} W  deployment {}",
                whole(mem_used),
                whole(total),
                field(used.and_then(|u| u.temperature_c)),
                field(used.and_then(|u| u.power_w)),
                holders.get(&id).map_or("-", String::as_str),
            )
        })
        .collect()
}

fn whole(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(metrics: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "id": "n", "name": "box", "ip": "10.0.0.1",
            "capabilities": {"os": "linux", "cpu_count": 8, "mem_mb": 1000, "gpus": [
                {"id": 0, "model": "NVIDIA A100-SXM4-80GB", "mem_mb": 81920},
                {"id": 1, "model": "NVIDIA A100-SXM4-80GB", "mem_mb": 81920}
            ]},
            "tags": [], "last_seen": 1.0, "status": "online", "registered_at": 1.0,
            "metrics": metrics, "schedulable": true,
            "reserved": {"cpus": 0, "mem_mb": 0, "disk_mb": 0, "gpus": 0, "gpu_ids": []},
            "free": {"cpus": 0, "mem_mb": 0, "disk_mb": 0, "gpus": 0, "gpu_ids": []},
            "deployments": []
        }))
        .unwrap()
    }

    #[test]
    fn each_gpu_is_a_line_with_its_usage_and_holder() {
        let shown = node(json!({
            "cpu_usage": 1, "mem_usage": 1, "disk_free_mb": 1, "running_containers": [],
            "reported_at": 1.0,
            "gpus": [
                {"id": 0, "utilization": 37.0, "mem_used_mb": 20480, "temperature_c": 61,
                 "power_w": 250.5},
                {"id": 2, "utilization": 12.34}
            ]
        }));
        let holders = HashMap::from([(0, "vllm-1".to_string())]);
        assert_eq!(
            gpu_lines(&shown, &holders),
            vec![
                "gpu 0  NVIDIA A100-SXM4-80GB  util 37%  mem 20480/81920 MiB  61°C  250.5 W  \
                 deployment vllm-1",
                "gpu 1  NVIDIA A100-SXM4-80GB  util -  mem -/81920 MiB  -°C  - W  deployment -",
                "gpu 2  -  util 12.3%  mem -/- MiB  -°C  - W  deployment -",
            ]
        );
    }

    #[test]
    fn a_node_never_heard_from_still_lists_its_gpus() {
        let lines = gpu_lines(&node(json!(null)), &HashMap::new());
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("gpu 1  NVIDIA A100-SXM4-80GB  util -"));
    }
}
