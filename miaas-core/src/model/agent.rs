//! The node's side of the protocol: what it should run, and what it reports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::DeploymentStatus;

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
    /// The compose document.
    pub rendered_compose: String,
    /// Its environment, in clear: only this node receives it.
    pub env: BTreeMap<String, String>,
    /// The GPUs of this node assigned to it.
    pub gpu_ids: Vec<u32>,
    /// Its status as the control plane knows it.
    pub status: DeploymentStatus,
}

// `Debug` never shows the secret
debug_without!(
    DesiredDeployment,
    env,
    [
        deployment_id,
        template_id,
        revision,
        rendered_compose,
        gpu_ids,
        status
    ]
);

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
    /// It runs.
    Running,
    /// It failed to start or crashed.
    Failed,
    /// The node removed it.
    Deleted,
}

/// `POST /api/v1/deployments/{deployment_id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "running", "message": "2 containers up"}))]
pub struct StatusReport {
    /// `running`, `failed` or `deleted`.
    pub status: ReportedStatus,
    /// Details for people (e.g. the error of a failed start).
    #[serde(default)]
    pub message: Option<String>,
}
