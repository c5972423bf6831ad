//! Property tests of placement through the service: for any fleet and any
//! sequence of deploy / update / delete / status reports / node loss (silence,
//! deregistration) / reconcile, no node is ever overcommitted (resources or GPU
//! ids), no deployment holds resources twice, and the ledger the service keeps
//! between decisions equals the one built afresh from what is placed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use super::{Service, ServiceSettings};
use crate::access::Principal;
use crate::clock::ManualClock;
use crate::model::{
    DeploymentAction, DeploymentRequest, Heartbeat, NodeRegistration, ReportedStatus, StatusReport,
};

#[derive(Debug, Clone)]
struct NodeSpec {
    cpus: u32,
    mem_mb: u64,
    disk_mb: Option<u64>,
    gpus: u32,
}

#[derive(Debug, Clone)]
enum Op {
    /// Create or update deployment `id` with these requirements.
    Deploy {
        id: u8,
        cpus: u8,
        mem_mb: u64,
        disk_mb: u64,
        gpus: u32,
        /// A host port it publishes (8080 + this), and a container name it sets
        /// (`c` + this): one deployment's per node.
        port: Option<u8>,
        name: Option<u8>,
    },
    Delete(u8),
    /// The node running deployment `id` reports it running, failed or deleted.
    Report(u8, u8),
    /// Time passes (less than the heartbeat timeout if bit 6 is set); only the
    /// nodes in the mask heartbeat (written out unless bit 7 is set), then a
    /// reconcile.
    Silence(u8),
    /// Node `n` is deregistered.
    Deregister(u8),
    /// Node `n` (re-)registers.
    Register(u8),
    Reconcile,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (
        1u32..=8,
        1_000u64..=16_000,
        prop::option::of(1_000u64..=50_000),
        0u32..=3,
    )
        .prop_map(|(cpus, mem_mb, disk_mb, gpus)| NodeSpec {
            cpus,
            mem_mb,
            disk_mb,
            gpus,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (
            (0u8..8, 0u8..=4, 0u64..=8_000, 0u64..=20_000, 0u32..=2),
            prop::option::of(0u8..2),
            prop::option::of(0u8..2),
        )
            .prop_map(|((id, cpus, mem_mb, disk_mb, gpus), port, name)| Op::Deploy {
                id,
                cpus,
                mem_mb,
                disk_mb,
                gpus,
                port,
                name,
            }),
        2 => (0u8..8).prop_map(Op::Delete),
        3 => (0u8..8, 0u8..3).prop_map(|(id, status)| Op::Report(id, status)),
        1 => any::<u8>().prop_map(Op::Silence),
        1 => (0u8..4).prop_map(Op::Deregister),
        1 => (0u8..4).prop_map(Op::Register),
        1 => Just(Op::Reconcile),
    ]
}

fn registration(index: usize, spec: &NodeSpec) -> NodeRegistration {
    let gpus: Vec<_> = (0..spec.gpus)
        .map(|id| json!({"id": id, "model": "RTX 4090", "mem_mb": 24_000}))
        .collect();
    serde_json::from_value(json!({
        "name": format!("node-{index}"),
        "ip": "10.0.0.1",
        "capabilities": {
            "os": "linux", "cpu_count": spec.cpus, "mem_mb": spec.mem_mb,
            "disk_mb": spec.disk_mb, "gpus": gpus
        }
    }))
    .expect("a registration")
}

struct World {
    service: Service,
    clock: Arc<ManualClock>,
    specs: Vec<NodeSpec>,
    /// Node id and token of each registered node, by index.
    nodes: HashMap<usize, (String, String)>,
}

impl World {
    async fn new(specs: Vec<NodeSpec>) -> Self {
        let store = crate::store::connect("sqlite::memory:")
            .await
            .expect("a store");
        let clock = Arc::new(ManualClock::new(1_700_000_000.0));
        let service = Service::with_clock(store, clock.clone(), ServiceSettings::default());
        let mut world = Self {
            service,
            clock,
            specs,
            nodes: HashMap::new(),
        };
        for index in 0..world.specs.len() {
            world.register(index).await;
        }
        world
    }

    async fn register(&mut self, index: usize) {
        let Some(spec) = self.specs.get(index) else {
            return;
        };
        if let Ok(credentials) = self
            .service
            .register_node(&Principal::Unrestricted, &registration(index, spec))
            .await
        {
            self.nodes
                .insert(index, (credentials.node_id, credentials.node_token));
        }
    }

    async fn apply(&mut self, op: &Op) {
        // each step either succeeds or is refused; neither may break the invariants
        match op {
            Op::Deploy {
                id,
                cpus,
                mem_mb,
                disk_mb,
                gpus,
                port,
                name,
            } => {
                let ports: Vec<_> = (port.iter())
                    .map(|p| json!({"port": 8080 + u16::from(*p), "protocol": "tcp"}))
                    .collect();
                let names: Vec<String> = name.iter().map(|n| format!("c{n}")).collect();
                let requirements = serde_json::from_value(json!({
                    "cpus": f64::from(*cpus) / 2.0, "mem_mb": mem_mb, "disk_mb": disk_mb,
                    "gpus": gpus, "ports": ports, "container_names": names
                }))
                .expect("requirements");
                let request = DeploymentRequest {
                    deployment_id: format!("d{id}"),
                    template_id: "custom".into(),
                    rendered_compose: Some("services:\n  app:\n    image: busybox\n".into()),
                    params: None,
                    env: Default::default(),
                    action: DeploymentAction::Apply,
                    requirements: Some(requirements),
                };
                let _ = self
                    .service
                    .submit_deployment(&Principal::Unrestricted, &request)
                    .await;
            }
            Op::Delete(id) => {
                let _ = self
                    .service
                    .delete_deployment(&Principal::Unrestricted, &format!("d{id}"))
                    .await;
            }
            Op::Report(id, status) => {
                let id = format!("d{id}");
                let Ok(deployment) = self
                    .service
                    .get_deployment(&Principal::Unrestricted, &id, true)
                    .await
                else {
                    return;
                };
                let Some(node) = deployment.node_id else {
                    return;
                };
                let Some((_, token)) = self.nodes.values().find(|(n, _)| *n == node) else {
                    return;
                };
                let status = match status {
                    0 => ReportedStatus::Running,
                    1 => ReportedStatus::Failed,
                    _ => ReportedStatus::Deleted,
                };
                let report = StatusReport {
                    status,
                    message: None,
                    health: None,
                    restarts: None,
                };
                let _ = (self.service)
                    .report_status(&Principal::Unrestricted, Some(token), &id, &report)
                    .await;
            }
            Op::Silence(mask) => {
                // past the heartbeat timeout (30 s: silent nodes go offline), or
                // within it (a heartbeat only keeps its node online)
                self.clock
                    .advance(if mask & 0x40 == 0 { 40.0 } else { 20.0 });
                for (index, (node, token)) in &self.nodes {
                    if mask & (1 << (index % 8)) != 0 {
                        let beat = Heartbeat {
                            cpu_usage: 10.0,
                            mem_usage: 10.0,
                            disk_free_mb: 1,
                            running_containers: Vec::new(),
                            ..Heartbeat::default()
                        };
                        let _ = self.service.heartbeat(node, Some(token), beat).await;
                    }
                }
                // written out, or left buffered for the decisions to come
                if mask & 0x80 == 0 {
                    let _ = self.service.flush_heartbeats().await;
                }
                let _ = self.service.reconcile().await;
            }
            Op::Deregister(index) => {
                if let Some((node, _)) = self.nodes.remove(&usize::from(*index)) {
                    let _ = self
                        .service
                        .deregister_node(&Principal::Unrestricted, &node)
                        .await;
                }
            }
            Op::Register(index) => self.register(usize::from(*index)).await,
            Op::Reconcile => {
                let _ = self.service.reconcile().await;
            }
        }
    }

    /// Checks the invariants; the description of the first broken one.
    async fn check(&self) -> Result<(), String> {
        let nodes = self.service.list_nodes().await.map_err(|e| e.to_string())?;
        // what the database holds
        let everything = (self.service.store.changes_since(0).await).map_err(|e| e.to_string())?;
        let reservations =
            crate::fleet::Snapshot::of_shared(Vec::new(), everything.deployments).reservations();
        let mut seen = HashSet::new();
        for reservation in &reservations {
            if !seen.insert(reservation.deployment_id.clone()) {
                return Err(format!("{} holds twice", reservation.deployment_id));
            }
        }
        for node in &nodes {
            let on: Vec<_> = reservations
                .iter()
                .filter(|r| r.node_id == node.id)
                .collect();
            let caps = &node.capabilities;
            let cpus: f64 = on.iter().map(|r| r.requirements.cpus).sum();
            let mem: u64 = on.iter().map(|r| r.requirements.mem_mb).sum();
            let disk: u64 = on.iter().map(|r| r.requirements.disk_mb).sum();
            let gpus: Vec<u32> = on.iter().flat_map(|r| r.gpu_ids.clone()).collect();
            let unique: HashSet<_> = gpus.iter().collect();
            let offered: HashSet<u32> = caps.gpus.iter().map(|g| g.id).collect();
            let ports: Vec<_> = on
                .iter()
                .flat_map(|r| r.requirements.ports.iter())
                .collect();
            let names: Vec<_> = on
                .iter()
                .flat_map(|r| r.requirements.container_names.iter())
                .collect();
            if ports.len() != ports.iter().collect::<HashSet<_>>().len()
                || names.len() != names.iter().collect::<HashSet<_>>().len()
            {
                return Err(format!(
                    "{} holds a port or name twice: {ports:?} {names:?}",
                    node.name
                ));
            }
            if cpus > caps.cpu_count as f64 + 1e-9
                || mem > caps.mem_mb
                || disk > caps.disk_mb.unwrap_or(0)
                || unique.len() != gpus.len()
                || !gpus.iter().all(|g| offered.contains(g))
                || on
                    .iter()
                    .any(|r| r.gpu_ids.len() != r.requirements.gpus as usize)
            {
                return Err(format!(
                    "{} overcommitted: cpus {cpus}/{}, mem {mem}/{}, disk {disk}/{:?}, gpus {gpus:?} of {offered:?}",
                    node.name, caps.cpu_count, caps.mem_mb, caps.disk_mb
                ));
            }
        }
        self.ledger_matches().await
    }

    /// The fleet state kept in memory equals one read afresh from the database:
    /// the same nodes and deployments, and the same ledger.
    async fn ledger_matches(&self) -> Result<(), String> {
        let service = &self.service;
        service
            .flush_heartbeats()
            .await
            .map_err(|e| e.to_string())?;
        let kept = service.fleet.state().await.map_err(|e| e.to_string())?;
        let everything = (service.store.changes_since(0).await).map_err(|e| e.to_string())?;
        let timeout = service.settings.heartbeat_timeout.as_secs_f64();
        let fresh = crate::fleet::FleetState::load(everything, service.now(), timeout);
        let nodes = |state: &crate::fleet::FleetState| state.snapshot().nodes_by_name();
        if nodes(&kept) != nodes(&fresh) {
            return Err(format!(
                "nodes: kept {:?}, stored {:?}",
                nodes(&kept),
                nodes(&fresh)
            ));
        }
        let deployments = |state: &crate::fleet::FleetState| {
            state.snapshot().deployments().cloned().collect::<Vec<_>>()
        };
        if deployments(&kept) != deployments(&fresh) {
            return Err("the deployments kept differ from those stored".into());
        }
        let kept_ledger = kept.ledger_at(service.now());
        for candidate in fresh.ledger_at(service.now()).candidates() {
            let Some(kept_node) = kept_ledger.get(&candidate.id) else {
                return Err(format!("the ledger kept lacks node {}", candidate.name));
            };
            // what placement reads of the node
            let seen = |c: &crate::placement::Candidate| {
                let reported = c.metrics.as_ref().map(|m| m.reported_at);
                (
                    c.online,
                    c.schedulable,
                    c.capabilities.clone(),
                    c.tags.clone(),
                    reported,
                )
            };
            if seen(kept_node) != seen(candidate) {
                return Err(format!(
                    "node {}: kept {:?}, stored {:?}",
                    candidate.name,
                    seen(kept_node),
                    seen(candidate)
                ));
            }
            let kept_usage = kept_node.reserved.clone();
            let fresh_usage = &candidate.reserved;
            let sorted = |r: &crate::model::Resources| {
                let mut gpus = r.gpu_ids.clone();
                gpus.sort_unstable();
                let mut ports = r.ports.clone();
                ports.sort();
                let mut names = r.container_names.clone();
                names.sort();
                (gpus, ports, names)
            };
            if (kept_usage.cpus - fresh_usage.cpus).abs() > 1e-6
                || kept_usage.mem_mb != fresh_usage.mem_mb
                || kept_usage.disk_mb != fresh_usage.disk_mb
                || kept_usage.gpus != fresh_usage.gpus
                || sorted(&kept_usage) != sorted(fresh_usage)
            {
                return Err(format!(
                    "ledger of {}: kept {kept_usage:?}, placed {fresh_usage:?}",
                    candidate.name
                ));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_node_is_ever_overcommitted_and_the_ledger_is_what_is_placed(
        specs in prop::collection::vec(node_spec(), 1..4),
        ops in prop::collection::vec(op(), 1..=40),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let verdict = runtime.block_on(async {
            let mut world = World::new(specs).await;
            for (step, op) in ops.iter().enumerate() {
                world.apply(op).await;
                if let Err(broken) = world.check().await {
                    return Err(format!("after step {step} ({op:?}): {broken}"));
                }
            }
            Ok(())
        });
        prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
    }
}
