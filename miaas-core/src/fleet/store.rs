//! [`Store`] for the fleet cache: reads from memory, writes through to the store
//! under the writer's turn and laid over the state once committed.

use async_trait::async_trait;
use tokio::sync::OwnedMutexGuard;

use super::FleetCache;
use super::decisions::{Answer, SharedJob, answer_all};
use super::registrations::QueuedRegistration;
use crate::model::page::DeploymentKey;
use crate::model::{Deployment, NodeMetrics, NodeRecord, NodeUpdate};
use crate::placement::Reservation;
use crate::store::{
    ClusterChange, ClusterVersion, Decided, Decider, Decision, Dump, FleetChanges, FleetListener,
    NodeUpsert, SharedChange, Store,
};
use crate::{Error, Result};

impl FleetCache {
    /// The version to read changes after in a decision: none when this process is
    /// the only writer.
    fn known_for(&self, known: u64) -> Option<u64> {
        (!self.exclusive).then_some(known)
    }

    /// Runs one batch of the queued decisions in one transaction. The caller holds
    /// the writer's turn.
    async fn run_decisions(&self, _writer: OwnedMutexGuard<()>) {
        let batch = self.decisions.take();
        if batch.is_empty() {
            return;
        }
        let (answers, outcome) = self.run_batch(&batch).await;
        answer_all(batch, answers, &outcome);
    }

    /// One transaction for `batch`: each change decides over the state the ones
    /// before it left. On a failed commit the state is dropped (read afresh).
    async fn run_batch(&self, batch: &[SharedJob]) -> (Vec<Answer>, Result<()>) {
        let mut state = match self.take_state().await {
            Ok(state) => state,
            Err(err) => return (Vec::new(), Err(err)),
        };
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let known = self.known_for(state.known);
        let mut decider = |changes: FleetChanges| -> Result<Vec<Deployment>> {
            state.apply_changes(&changes);
            let mut writes = Vec::new();
            for job in batch {
                let answer = job.decide(&state.snapshot);
                if let Ok(decision) = &answer {
                    // the next change decides over this one's result
                    state.snapshot.apply(&decision.writes);
                    writes.extend(decision.writes.iter().cloned());
                }
                answers.push(answer);
            }
            Ok(writes)
        };
        match self.inner.decide(known, &mut decider).await {
            Ok(decided) => {
                state.known = decided.version.version;
                self.put_state(state);
                (answers, Ok(()))
            }
            Err(err) => (answers, Err(err)),
        }
    }

    /// Commits every queued registration in one transaction and answers each. The
    /// caller holds the writer's turn.
    async fn commit_registrations(&self, _writer: OwnedMutexGuard<()>) {
        let batch = self.registrations.take();
        if batch.is_empty() {
            return;
        }
        let upserts: Vec<NodeUpsert<'_>> = batch.iter().map(QueuedRegistration::upsert).collect();
        let outcome = self.inner.upsert_nodes(&upserts).await;
        drop(upserts);
        match outcome {
            Ok(ids) => {
                self.patch(|state| {
                    for (registration, id) in batch.iter().zip(&ids) {
                        if let Some(id) = id {
                            state.registered(registration.record(id), &registration.token_hash);
                        }
                    }
                });
                for (registration, id) in batch.into_iter().zip(ids) {
                    registration.answer(Ok(id));
                }
            }
            Err(err) => {
                // committed or not: unknown
                self.forget();
                for registration in batch {
                    registration.answer(Err(Error::Unavailable(format!(
                        "registration not committed: {err}"
                    ))));
                }
            }
        }
    }
}

#[async_trait]
impl Store for FleetCache {
    fn streams(&self) -> &dyn crate::store::StreamStore {
        self.inner.streams()
    }

    fn templates(&self) -> &dyn crate::store::TemplateStore {
        self.inner.templates()
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.close().await;
        self.forget();
    }

    fn exclusive(&self) -> bool {
        self.exclusive
    }

    async fn upsert_node(&self, node: NodeUpsert<'_>) -> Result<Option<String>> {
        let (queued, answer) = QueuedRegistration::new(&node);
        self.registrations.push(queued);
        self.answered_or_commit(answer, |writer| {
            let cache = self.clone();
            async move { cache.commit_registrations(writer).await }
        })
        .await
        .ok_or_else(|| Error::Unavailable("the registration was dropped".into()))?
    }

    async fn upsert_nodes(&self, nodes: &[NodeUpsert<'_>]) -> Result<Vec<Option<String>>> {
        let mut ids = Vec::with_capacity(nodes.len());
        for node in nodes {
            ids.push(self.upsert_node(node.clone()).await?);
        }
        Ok(ids)
    }

    async fn nodes_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<NodeRecord>> {
        match self.read(|s| s.snapshot.nodes_page(after, limit)).await {
            Some(page) => Ok(page),
            None => self.inner.nodes_page(after, limit).await,
        }
    }

    async fn deployments_page(
        &self,
        after: Option<&DeploymentKey>,
        limit: usize,
    ) -> Result<Vec<Deployment>> {
        match self
            .read(|s| s.snapshot.deployments_page(after, limit))
            .await
        {
            Some(page) => Ok(page),
            None => self.inner.deployments_page(after, limit).await,
        }
    }

    async fn get_node(&self, id: &str) -> Result<Option<NodeRecord>> {
        match self.read(|s| s.snapshot.node(id).cloned()).await {
            Some(node) => Ok(node),
            None => self.inner.get_node(id).await,
        }
    }

    async fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        match self.read(|s| s.snapshot.nodes_by_name()).await {
            Some(nodes) => Ok(nodes),
            None => self.inner.list_nodes().await,
        }
    }

    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<bool> {
        let _writer = self.writer.lock().await;
        match self.inner.update_node(id, update).await {
            Ok(updated) => {
                if updated {
                    self.patch(|state| state.updated(id, update));
                }
                Ok(updated)
            }
            Err(err) => {
                self.forget();
                Err(err)
            }
        }
    }

    async fn delete_node(&self, id: &str) -> Result<bool> {
        let _writer = self.writer.lock().await;
        match self.inner.delete_node(id).await {
            Ok(deleted) => {
                self.patch(|state| state.removed(id));
                Ok(deleted)
            }
            Err(err) => {
                self.forget();
                Err(err)
            }
        }
    }

    async fn node_by_token_hash(&self, token_hash: &str) -> Result<Option<(String, f64)>> {
        match self.read(|s| s.node_of_token(token_hash)).await {
            Some(node) => Ok(node),
            None => self.inner.node_by_token_hash(token_hash).await,
        }
    }

    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<()> {
        let _writer = self.writer.lock().await;
        self.inner.record_heartbeats(batch).await?;
        self.patch(|state| state.heartbeats(batch, true));
        Ok(())
    }

    async fn record_heartbeat(&self, node_id: &str, metrics: &NodeMetrics) -> Result<Option<f64>> {
        let _writer = self.writer.lock().await;
        let previous = self.inner.record_heartbeat(node_id, metrics).await?;
        if previous.is_some() {
            let batch = [(node_id.to_string(), metrics.clone())];
            self.patch(|state| state.heartbeats(&batch, false));
        }
        Ok(previous)
    }

    async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>> {
        match self.read(|s| s.snapshot.find(id).cloned()).await {
            Some(deployment) => Ok(deployment),
            None => self.inner.get_deployment(id).await,
        }
    }

    async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        match self.read(|s| s.snapshot.deployments().to_vec()).await {
            Some(deployments) => Ok(deployments),
            None => self.inner.list_deployments().await,
        }
    }

    async fn deployment_counts(&self) -> Result<crate::store::DeploymentCounts> {
        let counted = self
            .read(|s| {
                let mut counts = crate::store::DeploymentCounts::default();
                for d in s.snapshot.deployments() {
                    counts.count(d);
                }
                counts
            })
            .await;
        match counted {
            Some(counts) => Ok(counts),
            None => self.inner.deployment_counts().await,
        }
    }

    async fn reservations(&self) -> Result<Vec<Reservation>> {
        match self.read(|s| s.snapshot.reservations()).await {
            Some(reservations) => Ok(reservations),
            None => self.inner.reservations().await,
        }
    }

    async fn reservations_on_nodes(&self, node_ids: &[String]) -> Result<Vec<Reservation>> {
        let from_memory = self
            .read(|s| {
                (node_ids.iter())
                    .flat_map(|id| s.snapshot.reservations_on(id))
                    .collect()
            })
            .await;
        match from_memory {
            Some(reservations) => Ok(reservations),
            None => self.inner.reservations_on_nodes(node_ids).await,
        }
    }

    async fn fleet_version(&self) -> Option<u64> {
        self.read(|s| s.snapshot.changes()).await
    }

    async fn cluster_version(&self) -> Result<ClusterVersion> {
        self.inner.cluster_version().await
    }

    async fn changes_since(&self, since: u64) -> Result<FleetChanges> {
        self.inner.changes_since(since).await
    }

    async fn decide(&self, known: Option<u64>, decider: Decider<'_>) -> Result<Decided> {
        let _writer = self.writer.lock().await;
        // a decision made around the cache: what it holds may be stale now
        self.forget();
        self.inner.decide(known, decider).await
    }

    fn listen_fleet(&self, on_change: FleetListener) {
        self.inner.listen_fleet(on_change);
    }

    async fn has_waiting_deployments(&self) -> Result<bool> {
        match self.read(|s| s.snapshot.has_waiting()).await {
            Some(waiting) => Ok(waiting),
            None => self.inner.has_waiting_deployments().await,
        }
    }

    async fn deployments_of_node(&self, node_id: &str) -> Result<Vec<Deployment>> {
        match self.read(|s| s.snapshot.deployments_of_node(node_id)).await {
            Some(deployments) => Ok(deployments),
            None => self.inner.deployments_of_node(node_id).await,
        }
    }

    async fn transact(&self, change: ClusterChange<'_>) -> Result<Decision> {
        let _writer = self.writer.lock().await;
        let mut state = self.take_state().await?;
        let known = self.known_for(state.known);
        let mut decision = None;
        let mut refused = false;
        let mut decider = |changes: FleetChanges| -> Result<Vec<Deployment>> {
            state.apply_changes(&changes);
            let decided = change(&state.snapshot).inspect_err(|_| refused = true)?;
            let writes = decided.writes.clone();
            decision = Some(decided);
            Ok(writes)
        };
        match self.inner.decide(known, &mut decider).await {
            Ok(decided) => {
                let decision =
                    decision.ok_or_else(|| Error::Unavailable("the change was not run".into()))?;
                state.snapshot.apply(&decision.writes);
                state.known = decided.version.version;
                self.put_state(state);
                Ok(decision)
            }
            Err(err) => {
                // a rule refused: nothing was written, and the state holds only
                // what others committed; otherwise whether it committed is unknown
                if refused {
                    self.put_state(state);
                }
                Err(err)
            }
        }
    }

    async fn transact_shared(&self, change: SharedChange) -> Result<Decision> {
        let (job, answer) = SharedJob::new(change);
        self.decisions.push(job);
        self.answered_or_commit(answer, |writer| {
            let cache = self.clone();
            async move { cache.run_decisions(writer).await }
        })
        .await
        .ok_or_else(|| Error::Unavailable("the change was dropped".into()))?
    }

    async fn export(&self) -> Result<Dump> {
        self.inner.export().await
    }

    async fn import(&self, dump: &Dump) -> Result<()> {
        let _writer = self.writer.lock().await;
        self.forget();
        self.access.changed();
        self.inner.import(dump).await
    }
}
