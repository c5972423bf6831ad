//! The node's side of the protocol: what it should run, and what it reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DeploymentHealth, DeploymentStatus};

/// `GET /api/v1/nodes/{node_id}/deployments`: everything that should run on the
/// node, and everything it should remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesiredState {
    /// The node.
    pub node_id: String,
    /// Deployments to run, at the revision given.
    pub deployments: Vec<DesiredDeployment>,
    /// Deployments to stop and remove.
    pub remove: Vec<RemovalOrder>,
    /// Log sessions to serve: send each one's lines up until answered `410`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<super::LogRequest>,
    /// This state's index: the same while the state stays the same, larger each
    /// time it changes. Give it back as `?index=` with `?wait=` and the answer
    /// comes when the state changed past it (also in `X-MIaaS-Index`).
    #[serde(default)]
    pub index: u64,
}

/// The query of `GET /api/v1/nodes/{node_id}/deployments`: with `wait`, a
/// long-poll that answers as soon as the state's `index` differs from `index`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
pub struct DesiredStateQuery {
    /// How long to wait for a change: `30s`, `500ms`, `1m` or plain seconds (at
    /// most 55 s); without it the answer comes at once.
    pub wait: Option<String>,
    /// The `index` of the state the node has; the answer comes when it differs.
    pub index: Option<u64>,
}

/// One deployment a node should run.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DesiredDeployment {
    /// The deployment.
    pub deployment_id: String,
    /// Its template.
    pub template_id: String,
    /// The revision to run.
    pub revision: u32,
    /// The compose document to hand to Compose, as Compose would resolve the
    /// deployment's document with its environment: interpolated, that environment
    /// in every service's `environment`, every `$` written `$$` (so that Compose
    /// interpolates nothing again). JSON, which Compose reads as YAML. It holds
    /// the secrets in clear: only this node receives it.
    pub rendered_compose: String,
    /// Its environment, in clear: only this node receives it. Compose is given
    /// `COMPOSE_PROFILES` from it; every other value is in `rendered_compose`.
    pub env: BTreeMap<String, String>,
    /// The GPUs of this node assigned to it.
    pub gpu_ids: Vec<u32>,
    /// Its status as the control plane knows it.
    pub status: DeploymentStatus,
    /// Its health as the control plane knows it (null until it runs).
    #[serde(default)]
    pub health: Option<DeploymentHealth>,
    /// Its containers' restarts as the control plane knows them.
    #[serde(default)]
    pub restarts: u32,
    /// Why it cannot run as stored (its document does not resolve): the node
    /// reports it failed with this message and runs nothing of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// `Debug` never shows the secrets (the environment, and the document that holds it)
impl std::fmt::Debug for DesiredDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredDeployment")
            .field("deployment_id", &self.deployment_id)
            .field("template_id", &self.template_id)
            .field("revision", &self.revision)
            .field("gpu_ids", &self.gpu_ids)
            .field("status", &self.status)
            .field("health", &self.health)
            .field("restarts", &self.restarts)
            .field("error", &self.error)
            .field("rendered_compose", &"***")
            .field("env", &"***")
            .finish()
    }
}

/// One deployment a node should remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RemovalOrder {
    /// The deployment.
    pub deployment_id: String,
    /// Why: `deleted` (the deployment is being deleted) or `moved` (it now runs on
    /// another node).
    pub reason: String,
}

/// The status a node may report for a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportedStatus {
    /// It is being started (pulling images, creating containers): the
    /// deployment keeps its status, and its message says what the node does.
    Starting,
    /// It runs.
    Running,
    /// It failed to start or crashed.
    Failed,
    /// The node removed it.
    Deleted,
}

/// `POST /api/v1/deployments/{deployment_id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "status": "running", "message": "2 containers running", "health": "starting", "restarts": 0
}))]
pub struct StatusReport {
    /// `starting`, `running`, `failed` or `deleted`.
    pub status: ReportedStatus,
    /// Details for people (e.g. the error of a failed start).
    #[serde(default)]
    pub message: Option<String>,
    /// With `running` or `failed`: the containers' health (`starting`,
    /// `healthy`, `unhealthy`, or `none` when no service has a healthcheck).
    /// Left out, a `running` deployment's health is `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<DeploymentHealth>,
    /// With `running` or `failed`: the sum of the containers' restart counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
}
