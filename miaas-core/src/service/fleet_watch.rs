//! What the server's sweep watches besides placement: nodes going silent (an
//! event, once, however many replicas notice), the event log's and log sessions'
//! retention, and the fleet's totals for metrics.

use std::collections::{BTreeMap, HashSet};

use super::Service;
use super::logs::VIEWER_TIMEOUT;
use super::nodes::millis;
use crate::Result;
use crate::model::{Event, GpuUsage, NewEvent, NodeStatus};

/// The fleet in numbers, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetTotals {
    /// Nodes by status: `online`, `offline`, and `cordoned` (online or not).
    pub nodes: BTreeMap<&'static str, u64>,
    /// Deployments by status (every status, zero included).
    pub deployments: BTreeMap<&'static str, u64>,
    /// Deployments by health (every health, zero included; those without a
    /// health, not running, are not counted).
    pub health: BTreeMap<&'static str, u64>,
    /// What online nodes offer: `cpus`, `memory_bytes`, `disk_bytes`, `gpus`.
    pub capacity: BTreeMap<&'static str, f64>,
    /// What placed deployments reserve, in the same units.
    pub allocated: BTreeMap<&'static str, f64>,
    /// Per node, when asked for: name, status, CPU %, memory %, deployments, GPU
    /// usage.
    pub per_node: Vec<NodeTotals>,
}

/// One node's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTotals {
    /// Its name.
    pub name: String,
    /// Whether it is online.
    pub online: bool,
    /// CPU usage in percent (last heartbeat).
    pub cpu_usage: f64,
    /// Memory usage in percent (last heartbeat).
    pub mem_usage: f64,
    /// Deployments placed on it.
    pub deployments: u64,
    /// Its GPUs' usage (last heartbeat; `[]` when it reported none).
    pub gpus: Vec<GpuUsage>,
}

const MB: f64 = 1024.0 * 1024.0;

/// Adds `value` to `map[key]`.
fn add(map: &mut BTreeMap<&'static str, f64>, key: &'static str, value: f64) {
    *map.entry(key).or_default() += value;
}

impl Service {
    /// Records `node.offline` for each node that went silent since this process
    /// last looked (the same transition seen by several replicas is one event).
    /// Returns how many went offline.
    pub async fn watch_liveness(&self) -> Result<usize> {
        let state = self.fleet.state().await?;
        let (now, timeout) = (self.now(), self.settings.heartbeat_timeout.as_secs_f64());
        let mut announced = match self.offline_announced.lock() {
            Ok(announced) => announced,
            Err(_) => return Ok(0),
        };
        let mut events = Vec::new();
        let mut still_offline = HashSet::new();
        for node in (state.snapshot().nodes()).filter(|n| !n.is_online(now, timeout)) {
            let key = format!("node.offline:{}:{}", node.id, millis(node.last_seen));
            if !announced.contains(&key) {
                events.push(NewEvent {
                    event: Event::new(
                        "node.offline",
                        "node",
                        &node.id,
                        format!("node {} went offline (no heartbeat)", node.name),
                    )
                    .with("name", node.name.as_str())
                    .with("last_seen", node.last_seen),
                    dedupe_key: Some(key.clone()),
                });
            }
            still_offline.insert(key);
        }
        *announced = still_offline;
        drop(announced);
        let went = events.len();
        // once per node and transition: a missed heartbeat that made it offline
        metrics::counter!("miaas_heartbeats_missed_total").increment(went as u64);
        self.record_new(None, events);
        Ok(went)
    }

    /// Removes events beyond the retention, and log sessions long over.
    pub async fn prune_streams(&self) -> Result<()> {
        let now = self.now();
        let settings = &self.settings;
        let before = now - settings.event_retention_age.as_secs_f64();
        self.events
            .prune(settings.event_retention_count, before)
            .await?;
        let sessions_before = now - 2.0 * VIEWER_TIMEOUT.as_secs_f64();
        self.store
            .streams()
            .prune_log_sessions(sessions_before)
            .await?;
        Ok(())
    }

    /// The fleet's totals now; per node too when `per_node`.
    pub async fn fleet_totals(&self, per_node: bool) -> Result<FleetTotals> {
        let nodes = self.list_nodes().await?;
        let mut totals = FleetTotals::default();
        for status in ["online", "offline", "cordoned"] {
            totals.nodes.insert(status, 0);
        }
        for resource in ["cpus", "memory_bytes", "disk_bytes", "gpus"] {
            totals.capacity.insert(resource, 0.0);
            totals.allocated.insert(resource, 0.0);
        }
        for node in &nodes {
            let online = node.status == NodeStatus::Online;
            *totals
                .nodes
                .entry(if online { "online" } else { "offline" })
                .or_default() += 1;
            if !node.schedulable {
                *totals.nodes.entry("cordoned").or_default() += 1;
            }
            if online {
                let caps = &node.capabilities;
                add(&mut totals.capacity, "cpus", caps.cpu_count as f64);
                add(
                    &mut totals.capacity,
                    "memory_bytes",
                    caps.mem_mb as f64 * MB,
                );
                add(
                    &mut totals.capacity,
                    "disk_bytes",
                    caps.disk_mb.unwrap_or(0) as f64 * MB,
                );
                add(&mut totals.capacity, "gpus", caps.gpus.len() as f64);
            }
            if per_node {
                let metrics = node.metrics.as_ref();
                totals.per_node.push(NodeTotals {
                    name: node.name.clone(),
                    online,
                    cpu_usage: metrics.map_or(0.0, |m| m.cpu_usage),
                    mem_usage: metrics.map_or(0.0, |m| m.mem_usage),
                    deployments: node.deployments.len() as u64,
                    gpus: metrics.map(|m| m.gpus.clone()).unwrap_or_default(),
                });
            }
        }
        for status in crate::model::DeploymentStatus::ALL {
            totals.deployments.insert(status.as_str(), 0);
        }
        // counted and summed without copying compose documents or environments
        for health in crate::model::DeploymentHealth::ALL {
            totals.health.insert(health.as_str(), 0);
        }
        let state = self.fleet.state().await?;
        for deployment in state.snapshot().deployments() {
            *totals
                .deployments
                .entry(deployment.status.as_str())
                .or_default() += 1;
            if let Some(health) = deployment.health {
                *totals.health.entry(health.as_str()).or_default() += 1;
            }
        }
        for deployment in (state.snapshot().deployments()).filter(|d| d.holds_resources()) {
            let r = &deployment.requirements;
            add(&mut totals.allocated, "cpus", r.cpus);
            add(&mut totals.allocated, "memory_bytes", r.mem_mb as f64 * MB);
            add(&mut totals.allocated, "disk_bytes", r.disk_mb as f64 * MB);
            add(&mut totals.allocated, "gpus", f64::from(r.gpus));
        }
        Ok(totals)
    }
}
