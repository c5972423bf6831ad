//! Deployment rules: create, update, remove, read.

use super::Service;
use crate::model::{
    Deployment, DeploymentAck, DeploymentAction, DeploymentRequest, DeploymentStatus,
};
use crate::store::Modified;
use crate::{Error, Result};

/// The message a new deployment is acknowledged with, as the original server says it.
pub const ACCEPTED_MESSAGE: &str = "Deployment request accepted and queued for processing";

impl Service {
    /// Applies or removes a deployment as `request.action` says. `apply` creates it,
    /// updates it (new revision) when its spec changed, and changes nothing when the
    /// same spec is sent again; `remove` marks it `deleting`.
    pub async fn submit_deployment(&self, request: &DeploymentRequest) -> Result<DeploymentAck> {
        request.validate()?;
        match request.action {
            DeploymentAction::Apply => self.apply_deployment(request).await,
            DeploymentAction::Remove => {
                let mut ack = self.delete_deployment(&request.deployment_id).await?;
                ack.status = "accepted".into();
                Ok(ack)
            }
        }
    }

    async fn apply_deployment(&self, request: &DeploymentRequest) -> Result<DeploymentAck> {
        let now = self.now();
        let change = |current: Option<&Deployment>| -> Result<Option<Deployment>> {
            Ok(match current {
                None => Some(new_deployment(request, now)),
                Some(existing)
                    if existing.has_spec_of(request) && !existing.status.is_removal() =>
                {
                    None
                }
                Some(existing) => Some(revise(existing, request, now)),
            })
        };
        let Modified { before, after } = self
            .store
            .modify_deployment(&request.deployment_id, &change)
            .await?;
        let after = after.ok_or_else(|| Error::Conflict("deployment vanished".into()))?;
        let message = match before {
            None => ACCEPTED_MESSAGE.to_string(),
            Some(before) if before.revision == after.revision => format!(
                "Deployment '{}' is unchanged at revision {}",
                after.deployment_id, after.revision
            ),
            Some(_) => format!(
                "Deployment '{}' updated to revision {} and queued for processing",
                after.deployment_id, after.revision
            ),
        };
        tracing::info!(deployment_id = %after.deployment_id, revision = after.revision, "deployment applied");
        Ok(DeploymentAck {
            deployment_id: after.deployment_id,
            status: "accepted".into(),
            message,
        })
    }

    /// Marks a deployment for deletion. The answer always says `deleting`.
    pub async fn delete_deployment(&self, deployment_id: &str) -> Result<DeploymentAck> {
        let now = self.now();
        let change = |current: Option<&Deployment>| -> Result<Option<Deployment>> {
            let existing = current.ok_or_else(|| deployment_not_found(deployment_id))?;
            if existing.status.is_removal() {
                return Ok(None);
            }
            let mut next = existing.clone();
            next.action = DeploymentAction::Remove;
            next.status = DeploymentStatus::Deleting;
            next.message = format!("Deployment '{}' marked for deletion", existing.template_id);
            next.updated_at = now;
            Ok(Some(next))
        };
        self.store.modify_deployment(deployment_id, &change).await?;
        tracing::info!(%deployment_id, "deployment marked for deletion");
        Ok(DeploymentAck {
            deployment_id: deployment_id.to_string(),
            status: DeploymentStatus::Deleting.as_str().into(),
            message: format!("Deployment '{deployment_id}' marked for deletion"),
        })
    }

    /// One deployment.
    pub async fn get_deployment(&self, deployment_id: &str) -> Result<Deployment> {
        self.store
            .get_deployment(deployment_id)
            .await?
            .ok_or_else(|| deployment_not_found(deployment_id))
    }

    /// Every deployment, oldest first.
    pub async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        self.store.list_deployments().await
    }
}

fn pending_message(template_id: &str) -> String {
    format!("Deployment '{template_id}' is pending: waiting for placement")
}

fn new_deployment(request: &DeploymentRequest, now: f64) -> Deployment {
    Deployment {
        deployment_id: request.deployment_id.clone(),
        template_id: request.template_id.clone(),
        action: DeploymentAction::Apply,
        status: DeploymentStatus::Pending,
        message: pending_message(&request.template_id),
        node_id: None,
        env: request.env.clone(),
        rendered_compose: request.rendered_compose.clone(),
        revision: 1,
        created_at: now,
        updated_at: now,
    }
}

fn revise(existing: &Deployment, request: &DeploymentRequest, now: f64) -> Deployment {
    Deployment {
        revision: existing.revision.saturating_add(1),
        created_at: existing.created_at,
        node_id: existing.node_id.clone(),
        ..new_deployment(request, now)
    }
}

fn deployment_not_found(deployment_id: &str) -> Error {
    Error::NotFound(format!("deployment {deployment_id} not found"))
}
