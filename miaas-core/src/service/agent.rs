//! The node's side: its desired state, and the status it reports.

use std::time::Duration;

use super::Service;
use super::deployments::deployment_not_found;
use super::lifecycle::{Planner, deleted_message};
use crate::compose::node_document::{for_node, resolve};
use crate::model::{
    Deployment, DeploymentStatus, DesiredDeployment, DesiredState, RemovalOrder, ReportedStatus,
    StatusReport,
};
use crate::store::Snapshot;
use crate::validate;
use crate::{Error, Result};

/// How often a long-poll looks again although nothing said the fleet moved (a
/// write by another process that cannot tell, such as `miaas` in local mode).
const LONG_POLL_RECHECK: Duration = Duration::from_secs(15);

/// The longest a long-poll of the desired state waits.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(55);

impl Service {
    /// The desired state of node `node_id` as soon as its `index` differs from
    /// `index` (the state changed since), or after `wait` (at most [`MAX_LONG_POLL`]) as it is then. Without
    /// an index it answers at once.
    pub async fn wait_for_desired_state(
        &self,
        node_id: &str,
        token: Option<&str>,
        index: Option<u64>,
        wait: Duration,
    ) -> Result<DesiredState> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_LONG_POLL);
        if index.is_some() {
            self.listen_to_other_writers();
        }
        let (mut own, mut everyone) = self.signals.subscribe(node_id);
        loop {
            // marked seen before reading, so that a write during the read wakes us
            own.borrow_and_update();
            everyone.borrow_and_update();
            let state = self.desired_state(node_id, token).await?;
            let now = tokio::time::Instant::now();
            if index != Some(state.index) || now >= deadline {
                return Ok(state);
            }
            let recheck = (deadline - now).min(LONG_POLL_RECHECK);
            tokio::select! {
                _ = own.changed() => {}
                _ = everyone.changed() => {}
                () = tokio::time::sleep(recheck) => {}
            }
        }
    }

    /// What node `node_id` should run and remove, for that node's token only.
    pub async fn desired_state(&self, node_id: &str, token: Option<&str>) -> Result<DesiredState> {
        self.authenticate_node(node_id, token).await?;
        let mut state = DesiredState {
            node_id: node_id.to_string(),
            deployments: Vec::new(),
            remove: Vec::new(),
            logs: self.log_requests(node_id).await?,
            index: 0,
        };
        for d in self.store.deployments_of_node(node_id).await? {
            let here = d.node_id.as_deref() == Some(node_id);
            if here && d.holds_resources() && d.status != DeploymentStatus::Deleting {
                state.deployments.push(desired_deployment(d));
            } else if here && d.status == DeploymentStatus::Deleting {
                state.remove.push(RemovalOrder {
                    deployment_id: d.deployment_id,
                    reason: "deleted".into(),
                });
            } else if d.previous_node_id.as_deref() == Some(node_id) {
                state.remove.push(RemovalOrder {
                    deployment_id: d.deployment_id,
                    reason: "moved".into(),
                });
            }
        }
        state.index = (self.desired_indexes).index_of(node_id, fingerprint(&state), self.now());
        Ok(state)
    }

    /// Records a node's report on a deployment. Only the node it is placed on (or,
    /// for `deleted`, the node it moved away from) may report; `deleted` from its
    /// node completes a deletion and releases the reservation.
    pub async fn report_status(
        &self,
        token: Option<&str>,
        deployment_id: &str,
        report: &StatusReport,
    ) -> Result<Deployment> {
        let reporter = self.node_of_token(token).await?;
        if let Some(message) = &report.message {
            validate::list_len("message", message.len(), 4096)?;
        }
        let now = self.now();
        let change = |snapshot: &Snapshot| {
            let mut planner = self.planner(now, snapshot);
            let current = planner
                .get(deployment_id)
                .cloned()
                .ok_or_else(|| deployment_not_found(deployment_id))?;
            let next = apply_report(&mut planner, &current, &reporter, report)?;
            let released = next.status == DeploymentStatus::Deleted;
            planner.put(next.clone());
            if released {
                // what is left over goes to the next reconcile
                let _ = planner.reconcile();
            }
            Ok((planner.into_writes(), next))
        };
        let (_, next) = self.transact(change).await?;
        tracing::info!(%deployment_id, node_id = %reporter, status = next.status.as_str(), "status reported");
        Ok(next)
    }
}

/// What a node runs of `deployment`: its document as Compose would resolve it,
/// written for the node ([`crate::compose::node_document`]). A document stored
/// before the server judged documents resolved may not resolve: the node is then
/// told why, and runs nothing of it.
fn desired_deployment(deployment: Deployment) -> DesiredDeployment {
    let (rendered_compose, error) = match resolve(&deployment.rendered_compose, &deployment.env) {
        Ok(resolved) => (for_node(&resolved, &deployment.env), None),
        Err(err) => (String::new(), Some(err.to_string())),
    };
    DesiredDeployment {
        deployment_id: deployment.deployment_id,
        template_id: deployment.template_id,
        revision: deployment.revision,
        rendered_compose,
        env: (&deployment.env).into(),
        gpu_ids: deployment.gpu_ids,
        status: deployment.status,
        error,
    }
}

fn apply_report(
    planner: &mut Planner<'_>,
    current: &Deployment,
    reporter: &str,
    report: &StatusReport,
) -> Result<Deployment> {
    let mut next = current.clone();
    next.updated_at = planner.now();
    let here = current.node_id.as_deref() == Some(reporter);
    if !here {
        if current.previous_node_id.as_deref() == Some(reporter) {
            if report.status != ReportedStatus::Deleted {
                return Err(Error::Conflict(format!(
                    "deployment {} moved to another node; remove it here",
                    current.deployment_id
                )));
            }
            next.previous_node_id = None;
            return Ok(next);
        }
        return Err(Error::Forbidden(format!(
            "deployment {} is not placed on this node",
            current.deployment_id
        )));
    }
    let template = &current.template_id;
    match (report.status, current.status) {
        (ReportedStatus::Deleted, DeploymentStatus::Deleting) => {
            planner.release(current);
            next.status = DeploymentStatus::Deleted;
            next.message = report
                .message
                .clone()
                .unwrap_or_else(|| deleted_message(template));
        }
        (_, DeploymentStatus::Deleting | DeploymentStatus::Deleted) => {
            return Err(Error::Conflict(format!(
                "deployment {} is being deleted; remove it and report `deleted`",
                current.deployment_id
            )));
        }
        (ReportedStatus::Deleted, _) => {
            return Err(Error::Conflict(format!(
                "deployment {} should run on this node; it is not being deleted",
                current.deployment_id
            )));
        }
        (status, _) => {
            next.status = match status {
                ReportedStatus::Running => DeploymentStatus::Running,
                _ => DeploymentStatus::Failed,
            };
            next.message = report.message.clone().unwrap_or_else(|| {
                format!(
                    "Deployment '{template}' {} on node {reporter}",
                    next.status.as_str()
                )
            });
        }
    }
    Ok(next)
}

/// The first 8 bytes of the SHA-256 of the state's JSON (its `index` left 0).
fn fingerprint(state: &DesiredState) -> u64 {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_vec(state).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}
