//! Where placed deployments can be reached: each port they publish, on their
//! node's address, filled in when deployments are read.

use super::Service;
use crate::Result;
use crate::model::{Deployment, Endpoint};

impl Service {
    /// `deployments` with their `endpoints`: one per published port of each one
    /// that holds its place on a node.
    pub(super) async fn with_endpoints(
        &self,
        mut deployments: Vec<Deployment>,
    ) -> Result<Vec<Deployment>> {
        let state = self.fleet.state().await?;
        for deployment in &mut deployments {
            let Some(node_id) = deployment.node_id.as_deref().filter(|_| placed(deployment)) else {
                continue;
            };
            let Some(address) = state.snapshot().node(node_id).map(|n| n.ip.as_str()) else {
                continue;
            };
            let resolved = self.node_documents.of(deployment);
            deployment.endpoints = (resolved.published.iter())
                .map(|p| Endpoint::of(&p.service, &p.host, p.target_port, address))
                .collect();
        }
        Ok(deployments)
    }
}

/// Whether it holds its place on its node (not pending, not being removed).
fn placed(deployment: &Deployment) -> bool {
    deployment.holds_resources() && !deployment.status.is_removal()
}
