//! Node rules: registration, tokens, heartbeats, status.

use uuid::Uuid;

use super::Service;
use crate::model::{Heartbeat, HeartbeatAck, Node, NodeMetrics, NodeRegistration};
use crate::store::NodeUpsert;
use crate::token::{generate_node_token, hash_token};
use crate::{Error, Result};

/// What a registration hands back to the node, once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCredentials {
    /// The node's stable id.
    pub node_id: String,
    /// Its new bearer token (any previous token stops working).
    pub node_token: String,
}

impl Service {
    /// Registers a node, or updates the node of the same name: it keeps its id and
    /// gets a fresh token; the old token stops working at once.
    pub async fn register_node(&self, registration: &NodeRegistration) -> Result<NodeCredentials> {
        registration.validate()?;
        let token = generate_node_token();
        let token_hash = hash_token(&token);
        let new_id = Uuid::new_v4().to_string();
        let node_id = self
            .store
            .upsert_node(NodeUpsert {
                new_id: &new_id,
                name: &registration.name,
                ip: &registration.ip,
                capabilities: &registration.capabilities,
                tags: &registration.tags,
                token_hash: &token_hash,
                now: self.now(),
            })
            .await?;
        tracing::info!(%node_id, name = %registration.name, "node registered");
        Ok(NodeCredentials {
            node_id,
            node_token: token,
        })
    }

    /// Checks that `token` is the current token of node `node_id`: none or unknown
    /// is `Unauthorized`, an unknown node `NotFound`, another node's `Forbidden`.
    pub async fn authenticate_node(&self, node_id: &str, token: Option<&str>) -> Result<()> {
        let token = token.ok_or_else(|| Error::Unauthorized("missing node token".into()))?;
        let owner = self
            .store
            .node_id_by_token_hash(&hash_token(token))
            .await?
            .ok_or_else(|| Error::Unauthorized("invalid node token".into()))?;
        if owner == node_id {
            return Ok(());
        }
        if self.store.get_node(node_id).await?.is_none() {
            return Err(node_not_found(node_id));
        }
        Err(Error::Forbidden(format!(
            "this token belongs to another node, not to {node_id}"
        )))
    }

    /// Records a heartbeat from node `node_id`, authenticated by its token.
    pub async fn heartbeat(
        &self,
        node_id: &str,
        token: Option<&str>,
        heartbeat: Heartbeat,
    ) -> Result<HeartbeatAck> {
        self.authenticate_node(node_id, token).await?;
        heartbeat.validate()?;
        let now = self.now();
        let metrics = NodeMetrics {
            cpu_usage: heartbeat.cpu_usage,
            mem_usage: heartbeat.mem_usage,
            disk_free_mb: heartbeat.disk_free_mb,
            running_containers: heartbeat.running_containers,
            reported_at: now,
        };
        if !self.store.record_heartbeat(node_id, &metrics).await? {
            return Err(node_not_found(node_id));
        }
        Ok(HeartbeatAck {
            status: "ok".into(),
            timestamp: now,
        })
    }

    /// One node with its current status.
    pub async fn get_node(&self, node_id: &str) -> Result<Node> {
        let record = self
            .store
            .get_node(node_id)
            .await?
            .ok_or_else(|| node_not_found(node_id))?;
        Ok(self.show_node(record))
    }

    /// Every node with its current status, ordered by name.
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        let records = self.store.list_nodes().await?;
        Ok(records.into_iter().map(|r| self.show_node(r)).collect())
    }

    fn show_node(&self, record: crate::model::NodeRecord) -> Node {
        let timeout = self.settings.heartbeat_timeout.as_secs_f64();
        Node::from_record(record, self.now(), timeout)
    }
}

fn node_not_found(node_id: &str) -> Error {
    Error::NotFound(format!("node {node_id} not found"))
}
