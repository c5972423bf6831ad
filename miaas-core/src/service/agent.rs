//! The node's side: its desired state, and the status it reports.

use std::time::Duration;

use super::Service;
use super::deployments::deployment_not_found;
use super::lifecycle::{Planner, deleted_message};
use crate::access::Principal;
use crate::fleet::FleetState;
use crate::model::{
    Deployment, DeploymentHealth, DeploymentStatus, DesiredDeployment, DesiredState, RemovalOrder,
    ReportedStatus, StatusReport,
};
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
    ///
    /// The caller is authenticated as that node before anything is kept for
    /// the poll: an unknown node, a bogus token or another node's costs nothing
    /// beyond the check. The node's wake-up signal lives only while a poll waits.
    pub async fn wait_for_desired_state(
        &self,
        node_id: &str,
        token: Option<&str>,
        index: Option<u64>,
        wait: Duration,
    ) -> Result<DesiredState> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_LONG_POLL);
        self.authenticate_node(node_id, token).await?;
        if index.is_some() {
            self.listen_to_other_writers();
        }
        let mut waiter = self.signals.subscribe(node_id);
        let mut authenticated = true;
        loop {
            // marked seen before reading, so that a write during the read wakes us
            waiter.mark_seen();
            // after a wake-up, the node may have been removed or its token replaced
            if !authenticated {
                self.authenticate_node(node_id, token).await?;
            }
            authenticated = false;
            let state = self.desired_state_of(node_id).await?;
            let now = tokio::time::Instant::now();
            if index != Some(state.index) || now >= deadline {
                return Ok(state);
            }
            let recheck = (deadline - now).min(LONG_POLL_RECHECK);
            tokio::select! {
                () = waiter.changed() => {}
                () = tokio::time::sleep(recheck) => {}
            }
        }
    }

    /// What node `node_id` should run and remove, for that node's token only.
    pub async fn desired_state(&self, node_id: &str, token: Option<&str>) -> Result<DesiredState> {
        self.authenticate_node(node_id, token).await?;
        self.desired_state_of(node_id).await
    }

    /// What node `node_id` should run and remove; the caller checked who asks.
    async fn desired_state_of(&self, node_id: &str) -> Result<DesiredState> {
        let mut state = DesiredState {
            node_id: node_id.to_string(),
            deployments: Vec::new(),
            remove: Vec::new(),
            logs: self.log_requests(node_id).await?,
            index: 0,
        };
        let fleet = self.fleet.state().await?;
        for d in fleet.snapshot().deployments_of_node(node_id) {
            let here = d.node_id.as_deref() == Some(node_id);
            if here && d.holds_resources() && d.status != DeploymentStatus::Deleting {
                let document = self.node_documents.of(&d);
                state.deployments.push(desired_deployment(d, &document));
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
    /// node completes a deletion and releases the reservation. The answer is the
    /// deployment as `caller` is shown it: the node has the `env` from its desired
    /// state, so an answer never repeats its values (`***`) unless `caller` sees
    /// secrets unasked ([`Principal::Unrestricted`]: authentication off, as in
    /// the original). `caller` is who the call comes from before the token is
    /// checked; the token still names the node.
    pub async fn report_status(
        &self,
        caller: &Principal,
        token: Option<&str>,
        deployment_id: &str,
        report: &StatusReport,
    ) -> Result<Deployment> {
        let reporter = self.node_of_token(token).await?;
        if let Some(message) = &report.message {
            validate::list_len("message", message.len(), 4096)?;
        }
        let now = self.now();
        // the change owns what it uses: it may share a transaction with others
        let (service, id, node_id, report) = (
            self.clone(),
            deployment_id.to_string(),
            reporter.clone(),
            report.clone(),
        );
        let change = move |state: &FleetState| {
            let mut planner = service.planner(now, state);
            let current = planner
                .get(&id)
                .cloned()
                .ok_or_else(|| deployment_not_found(&id))?;
            let next = apply_report(&mut planner, &current, &node_id, &report)?;
            let released = next.status == DeploymentStatus::Deleted;
            planner.put(next.clone());
            if released {
                // what is left over goes to the next reconcile
                let _ = planner.reconcile();
            }
            Ok((planner.into_writes(), next))
        };
        let node = Principal::Node {
            node_id: reporter.clone(),
        };
        let (_, next) = self.transact(Some(&node), change).await?;
        tracing::info!(%deployment_id, node_id = %reporter, status = next.status.as_str(), "status reported");
        caller.show(next, false)
    }
}

/// What a node runs of `deployment`: `document`, its document as Compose would
/// resolve it, written for the node ([`crate::compose::node_document`]). A
/// document stored before the server judged documents resolved may not resolve:
/// the node is then told why, and runs nothing of it.
fn desired_deployment(
    deployment: Deployment,
    document: &super::node_documents::NodeDocument,
) -> DesiredDeployment {
    let (rendered_compose, error) = match &document.document {
        Ok(text) => (text.clone(), None),
        Err(why) => (String::new(), Some(why.clone())),
    };
    DesiredDeployment {
        deployment_id: deployment.deployment_id,
        template_id: deployment.template_id,
        revision: deployment.revision,
        rendered_compose,
        env: (&deployment.env).into(),
        gpu_ids: deployment.gpu_ids,
        status: deployment.status,
        health: deployment.health,
        restarts: deployment.restarts,
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
        // progress of a start: the status stays, its message says what goes on
        (ReportedStatus::Starting, _) => {
            next.message = report
                .message
                .clone()
                .unwrap_or_else(|| format!("Deployment '{template}' starting on node {reporter}"));
        }
        (status, _) => {
            next.status = match status {
                ReportedStatus::Running => DeploymentStatus::Running,
                _ => DeploymentStatus::Failed,
            };
            // an agent that does not report health has no healthcheck to go by
            next.health = match (report.health, status) {
                (None, ReportedStatus::Running) => Some(DeploymentHealth::None),
                (health, _) => health,
            };
            next.restarts = report.restarts.unwrap_or(current.restarts);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::model::{DeploymentAction, DeploymentRequest, NodeRegistration};
    use crate::service::ServiceSettings;

    fn registration(name: &str) -> NodeRegistration {
        serde_json::from_value(json!({
            "name": name, "ip": "10.0.0.1",
            "capabilities": {"os": "linux", "cpu_count": 4, "mem_mb": 8000, "disk_mb": 100000}
        }))
        .expect("a registration")
    }

    #[tokio::test]
    async fn polls_of_unknown_nodes_keep_nothing_and_a_real_poll_still_wakes() {
        let store = crate::store::connect("sqlite::memory:")
            .await
            .expect("a store");
        let service = Arc::new(Service::new(store, ServiceSettings::default()));
        let a = service
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        let b = service
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();
        let before = service.signals.waiting_nodes();
        let long = Duration::from_secs(30);

        // 20,000 polls of made-up ids: a bogus token, and another node's
        for n in 0..20_000 {
            let id = format!("made-up-{n}");
            let token = if n % 2 == 0 {
                "mnode_bogus"
            } else {
                b.node_token.as_str()
            };
            let refused = service
                .wait_for_desired_state(&id, Some(token), Some(1), long)
                .await;
            assert!(
                matches!(refused, Err(Error::Unauthorized(_) | Error::NotFound(_))),
                "{refused:?}"
            );
        }
        // and of a real node with another node's token
        let refused = service
            .wait_for_desired_state(&a.node_id, Some(&b.node_token), Some(1), long)
            .await;
        assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
        assert_eq!(service.signals.waiting_nodes(), before, "nothing kept");

        // a poll that times out leaves nothing behind either
        let now = service.desired_state(&a.node_id, Some(&a.node_token)).await;
        let index = now.unwrap().index;
        let quiet = service
            .wait_for_desired_state(
                &a.node_id,
                Some(&a.node_token),
                Some(index),
                Duration::from_millis(20),
            )
            .await
            .unwrap();
        assert_eq!(quiet.index, index);
        assert_eq!(service.signals.waiting_nodes(), before);

        // a real poll waits, and wakes when a deployment lands on its node
        let poll = {
            let service = service.clone();
            let (id, token) = (a.node_id.clone(), a.node_token.clone());
            tokio::spawn(async move {
                service
                    .wait_for_desired_state(&id, Some(&token), Some(index), long)
                    .await
            })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while service.signals.waiting_nodes() == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the poll never waited"
            );
            tokio::task::yield_now().await;
        }
        let request = DeploymentRequest {
            deployment_id: "web".into(),
            template_id: "web".into(),
            rendered_compose: Some("services:\n  web:\n    image: busybox\n".into()),
            params: None,
            env: Default::default(),
            action: DeploymentAction::Apply,
            requirements: Some(serde_json::from_value(json!({"node": "a"})).unwrap()),
        };
        service
            .submit_deployment(&Principal::Unrestricted, &request)
            .await
            .unwrap();
        let woken = tokio::time::timeout(Duration::from_secs(10), poll)
            .await
            .expect("the poll woke before its 30 s")
            .unwrap()
            .unwrap();
        assert_ne!(woken.index, index);
        assert_eq!(woken.deployments[0].deployment_id, "web");
        assert_eq!(
            service.signals.waiting_nodes(),
            before,
            "the signal went with its poll"
        );
    }
}
