//! The fleet's promises around callers that go away: a write that reached the
//! database is published all the same, and a change whose caller left before it
//! was decided is not made.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::Fleet;
use crate::Result;
use crate::clock::ManualClock;
use crate::model::{Deployment, NodeCapabilities, NodeMetrics, NodeUpdate};
use crate::store::{
    AccessStore, ClusterVersion, Committed, Decided, Decider, Dump, FleetChanges, NodeUpsert,
    Store, StreamStore, TemplateStore,
};

/// A real SQLite store whose node updates and decisions wait at a gate once
/// written, before answering: the moment a caller may go away.
struct GatedStore {
    inner: Arc<dyn Store>,
    reached: Notify,
    open: Notify,
}

impl GatedStore {
    async fn gate(&self) {
        self.reached.notify_one();
        self.open.notified().await;
    }
}

#[async_trait]
impl Store for GatedStore {
    fn access(&self) -> &dyn AccessStore {
        self.inner.access()
    }
    fn streams(&self) -> &dyn StreamStore {
        self.inner.streams()
    }
    fn templates(&self) -> &dyn TemplateStore {
        self.inner.templates()
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
    async fn upsert_nodes(&self, nodes: &[NodeUpsert]) -> Result<Committed<Vec<Option<String>>>> {
        self.inner.upsert_nodes(nodes).await
    }
    async fn update_node(&self, id: &str, update: &NodeUpdate) -> Result<Committed<bool>> {
        let written = self.inner.update_node(id, update).await;
        self.gate().await;
        written
    }
    async fn delete_node(&self, id: &str) -> Result<Committed<bool>> {
        self.inner.delete_node(id).await
    }
    async fn record_heartbeats(&self, batch: &[(String, NodeMetrics)]) -> Result<Committed<()>> {
        self.inner.record_heartbeats(batch).await
    }
    async fn cluster_version(&self) -> Result<ClusterVersion> {
        self.inner.cluster_version().await
    }
    async fn changes_since(&self, since: u64) -> Result<FleetChanges> {
        self.inner.changes_since(since).await
    }
    async fn decide(&self, known: Option<u64>, decider: Decider<'_>) -> Result<Decided> {
        let decided = self.inner.decide(known, decider).await;
        self.gate().await;
        decided
    }
    fn exclusive(&self) -> bool {
        true
    }
    async fn export(&self) -> Result<Dump> {
        self.inner.export().await
    }
    async fn import(&self, dump: &Dump) -> Result<()> {
        self.inner.import(dump).await
    }
}

async fn fleet() -> (Fleet, Arc<GatedStore>, String) {
    let store = Arc::new(GatedStore {
        inner: crate::store::connect("sqlite::memory:")
            .await
            .expect("a store"),
        reached: Notify::new(),
        open: Notify::new(),
    });
    let clock = Arc::new(ManualClock::new(1_700_000_000.0));
    let fleet = Fleet::new(store.clone(), clock, false, 30.0);
    let capabilities: NodeCapabilities =
        serde_json::from_value(serde_json::json!({"os": "linux", "cpu_count": 4, "mem_mb": 8000}))
            .expect("capabilities");
    let id = fleet
        .register(NodeUpsert {
            new_id: "n1".into(),
            name: "one".into(),
            ip: "10.0.0.1".into(),
            capabilities,
            tags: vec![],
            token_hash: "hash".into(),
            now: 1_700_000_000.0,
            only_new: false,
        })
        .await
        .expect("registered")
        .expect("a new node");
    (fleet, store, id)
}

fn deployment(id: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "deployment_id": id, "template_id": "t", "action": "apply", "status": "pending",
        "message": "", "node_id": null, "env": {}, "rendered_compose": "", "revision": 1,
        "created_at": 1.0, "updated_at": 1.0
    }))
    .expect("deployment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_caller_went_away_is_published_once_committed() {
    let (fleet, store, id) = fleet().await;
    let cordon = NodeUpdate {
        schedulable: Some(false),
        tags: None,
    };
    let caller = {
        let (fleet, id) = (fleet.clone(), id.clone());
        tokio::spawn(async move { fleet.update_node(&id, &cordon).await })
    };
    // written, not yet answered: the caller goes away
    store.reached.notified().await;
    caller.abort();
    assert!(caller.await.is_err(), "the caller was cut short");
    store.open.notify_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = fleet.state().await.expect("a state");
        if state.snapshot().node(&id).is_some_and(|n| !n.schedulable) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the committed cordon was never published"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_caller_left_before_it_was_decided_is_not_made() {
    let (fleet, store, _) = fleet().await;
    // a first decision holds the writer at the gate; a second queues behind it
    let first = {
        let fleet = fleet.clone();
        tokio::spawn(async move { fleet.decide(|_| Ok((vec![deployment("first")], ()))).await })
    };
    store.reached.notified().await;
    let second = {
        let fleet = fleet.clone();
        tokio::spawn(async move { fleet.decide(|_| Ok((vec![deployment("left")], ()))).await })
    };
    // once its change is queued behind the first, the second caller goes away
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fleet.decisions.len() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never queued");
        tokio::task::yield_now().await;
    }
    second.abort();
    assert!(second.await.is_err(), "the second caller left");
    store.open.notify_one();
    first.await.expect("joined").expect("the first committed");
    // a third decision runs whatever is queued
    let third = {
        let fleet = fleet.clone();
        tokio::spawn(async move { fleet.decide(|_| Ok((vec![deployment("third")], ()))).await })
    };
    store.reached.notified().await;
    store.open.notify_one();
    third.await.expect("joined").expect("the third committed");
    let state = fleet.state().await.expect("a state");
    let stored = store.changes_since(0).await.expect("changes");
    let ids = |deployments: Vec<&Deployment>| {
        let mut ids: Vec<String> = deployments
            .iter()
            .map(|d| d.deployment_id.clone())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(state.snapshot().deployments().collect()),
        ["first", "third"]
    );
    assert_eq!(
        ids(stored.deployments.iter().map(|d| &**d).collect()),
        ["first", "third"]
    );
}
