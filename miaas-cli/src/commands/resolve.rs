//! NODE arguments: a name, an id, or an unambiguous id prefix.

use miaas_core::model::Node;

use crate::backend::Backend;
use crate::error::{CliError, Result};

/// The node `query` names.
pub async fn node(backend: &dyn Backend, query: &str) -> Result<Node> {
    match backend.get_node(query).await {
        Err(CliError::NotFound(_)) => {}
        found => return found,
    }
    let nodes = backend.list_nodes().await?;
    pick(nodes, query)
}

fn pick(nodes: Vec<Node>, query: &str) -> Result<Node> {
    if let Some(node) = nodes.iter().find(|n| n.id == query || n.name == query) {
        return Ok(node.clone());
    }
    let matches: Vec<&Node> = nodes.iter().filter(|n| n.id.starts_with(query)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(CliError::NotFound(format!(
            "no node named {query:?} or with an id starting with it"
        ))),
        many => {
            let names: Vec<&str> = many.iter().map(|n| n.name.as_str()).collect();
            Err(CliError::Failed(format!(
                "{query:?} matches several nodes ({}); give more of the id or the name",
                names.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(id: &str, name: &str) -> Node {
        serde_json::from_value(json!({
            "id": id, "name": name, "ip": "10.0.0.1",
            "capabilities": {"os": "linux", "cpu_count": 1, "mem_mb": 1, "disk_mb": 1},
            "tags": [], "last_seen": 0.0, "status": "online", "registered_at": 0.0,
            "metrics": null, "schedulable": true,
            "reserved": {"cpus": 0.0, "mem_mb": 0, "disk_mb": 0, "gpus": 0, "gpu_ids": []},
            "free": {"cpus": 1.0, "mem_mb": 1, "disk_mb": 1, "gpus": 0, "gpu_ids": []},
            "deployments": []
        }))
        .unwrap()
    }

    #[test]
    fn names_ids_and_unique_prefixes_resolve() {
        let nodes = vec![node("abc123", "alpha"), node("abd456", "beta")];
        assert_eq!(pick(nodes.clone(), "alpha").unwrap().id, "abc123");
        assert_eq!(pick(nodes.clone(), "abd456").unwrap().name, "beta");
        assert_eq!(pick(nodes.clone(), "abc").unwrap().name, "alpha");
        assert!(matches!(
            pick(nodes.clone(), "ab"),
            Err(CliError::Failed(_))
        ));
        assert!(matches!(pick(nodes, "zzz"), Err(CliError::NotFound(_))));
    }
}
