//! Node rules: registration, tokens, heartbeats, status.

use uuid::Uuid;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Service;
use crate::access::{Principal, Registrar};
use crate::fleet::FleetState;
use crate::model::page::{Page, PageQuery, node_cursor, parse_node_cursor};
use crate::model::{
    DeploymentStatus, Event, Heartbeat, HeartbeatAck, NewEvent, Node, NodeMetrics, NodeRecord,
    NodeRegistration, NodeUpdate, NodeUsage,
};
use crate::store::NodeUpsert;
use crate::token::{generate_node_token, hash_token};
use crate::validate;
use crate::{Error, Result};

/// What a registration hands back to the node, once. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCredentials {
    /// The node's stable id.
    pub node_id: String,
    /// Its new bearer token (any previous token stops working).
    pub node_token: String,
}

impl Service {
    /// Registers a node, or updates the node of the same name (it keeps its id and
    /// gets a fresh token; the old token stops working at once), as `caller` may
    /// ([`Principal::registration`]): with the join token an existing name is a
    /// `Conflict` and changes nothing, and a node's own token re-registers only that
    /// node.
    pub async fn register_node(
        &self,
        caller: &Principal,
        registration: &NodeRegistration,
    ) -> Result<NodeCredentials> {
        let registrar = caller.registration()?;
        registration.validate()?;
        match &registrar {
            Registrar::Itself(own_id) => {
                let state = self.fleet.state().await?;
                let own = state.snapshot().node(own_id);
                if own.is_none_or(|node| node.name != registration.name) {
                    return Err(Error::Forbidden(format!(
                        "node {own_id} may re-register only itself, not {:?}",
                        registration.name
                    )));
                }
            }
            Registrar::ExistingOnly => {
                let state = self.fleet.state().await?;
                if !(state.snapshot().nodes()).any(|node| node.name == registration.name) {
                    return Err(Error::Forbidden(format!(
                        "{} may re-register existing nodes only; {:?} is new: new nodes join \
                         with the join token",
                        caller.describe(),
                        registration.name
                    )));
                }
            }
            Registrar::Any | Registrar::NewNamesOnly => {}
        }
        let token = (registration.node_token.clone()).unwrap_or_else(generate_node_token);
        let token_hash = hash_token(&token);
        let new_id = Uuid::new_v4().to_string();
        let node_id = self
            .fleet
            .register(NodeUpsert {
                new_id: new_id.clone(),
                name: registration.name.clone(),
                ip: registration.ip.clone(),
                capabilities: registration.capabilities.clone(),
                tags: registration.tags.clone(),
                token_hash,
                now: self.now(),
                only_new: registrar == Registrar::NewNamesOnly,
            })
            .await?
            .ok_or_else(|| {
                let name = &registration.name;
                tracing::warn!(name = %name, "registration of an existing name with the join token refused");
                Error::Conflict(format!(
                    "a node named {name:?} is already registered. Re-registering it needs its \
                     own node token (an agent updating itself) or an admin; to replace it, \
                     remove it first (`miaas nodes rm {name}`), or register under another name"
                ))
            })?;
        tracing::info!(%node_id, name = %registration.name, "node registered");
        let name = &registration.name;
        let summary = if node_id == new_id {
            format!("node {name} registered ({})", registration.ip)
        } else {
            format!("node {name} registered again ({})", registration.ip)
        };
        self.record(
            Some(caller),
            vec![
                Event::new("node.registered", "node", &node_id, summary)
                    .with("name", name.as_str())
                    .with("ip", registration.ip.as_str())
                    .with("new", node_id == new_id)
                    .with("cpu_count", registration.capabilities.cpu_count)
                    .with("gpus", registration.capabilities.gpus.len()),
            ],
        );
        // New or changed capacity: pending deployments may fit now.
        self.reconcile_if_waiting(Some(caller)).await?;
        Ok(NodeCredentials {
            node_id,
            node_token: token,
        })
    }

    /// Checks that `token` is the current token of node `node_id`: none or unknown
    /// is `Unauthorized`, an unknown node `NotFound`, another node's `Forbidden`.
    pub async fn authenticate_node(&self, node_id: &str, token: Option<&str>) -> Result<()> {
        let owner = self.node_of_token(token).await?;
        if owner == node_id {
            return Ok(());
        }
        if (self.fleet.state().await?.snapshot().node(node_id)).is_none() {
            return Err(node_not_found(node_id));
        }
        Err(Error::Forbidden(format!(
            "this token belongs to a different node, not to {node_id}"
        )))
    }

    /// Records a heartbeat from node `node_id`, authenticated by its token. The
    /// metrics are buffered (see [`Service::flush_heartbeats`]); a node that was
    /// offline is written at once and pending work is placed.
    pub async fn heartbeat(
        &self,
        node_id: &str,
        token: Option<&str>,
        mut heartbeat: Heartbeat,
    ) -> Result<HeartbeatAck> {
        let (owner, last_seen) = self.node_and_last_seen(token).await?;
        if owner != node_id {
            self.authenticate_node(node_id, token).await?;
        }
        heartbeat.validate()?;
        crate::telemetry::heartbeat();
        let now = self.now();
        let metrics = NodeMetrics {
            cpu_usage: heartbeat.cpu_usage,
            mem_usage: heartbeat.mem_usage,
            disk_free_mb: heartbeat.disk_free_mb,
            running_containers: std::mem::take(&mut heartbeat.running_containers),
            gpus: heartbeat.into_gpus(),
            reported_at: now,
        };
        let back_online = now - last_seen > self.settings.heartbeat_timeout.as_secs_f64();
        let previous = self
            .fleet
            .heartbeat(node_id, metrics, back_online)
            .await?
            .ok_or_else(|| node_not_found(node_id))?;
        if back_online {
            tracing::info!(%node_id, "node is back online");
            let node = Principal::Node {
                node_id: node_id.to_string(),
            };
            self.record_new(
                Some(&node),
                vec![NewEvent {
                    event: Event::new(
                        "node.online",
                        "node",
                        node_id,
                        format!("node {node_id} is back online"),
                    )
                    .with("offline_since", previous),
                    dedupe_key: Some(format!("node.online:{node_id}:{}", millis(previous))),
                }],
            );
            self.reconcile_if_waiting(Some(&node)).await?;
        }
        Ok(HeartbeatAck {
            status: "ok".into(),
            timestamp: now,
        })
    }

    /// One node with its current status, reservations and deployments.
    pub async fn get_node(&self, node_id: &str) -> Result<Node> {
        let state = self.fleet.state().await?;
        let record =
            (state.snapshot().node(node_id).cloned()).ok_or_else(|| node_not_found(node_id))?;
        // only this node's deployments: a single node never costs a fleet scan
        let usage = state.snapshot().usage_on(node_id);
        Ok(self.show_node(record, usage, self.now()))
    }

    /// Every node with its current status, ordered by name.
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        let state = self.fleet.state().await?;
        let records = state.snapshot().nodes_by_name();
        let now = self.now();
        Ok(records
            .into_iter()
            .map(|r| {
                let used = state.snapshot().usage_on(&r.id);
                self.show_node(r, used, now)
            })
            .collect())
    }

    /// One page of nodes by name: at most `query.limit`, after `query.cursor`.
    pub async fn list_nodes_page(&self, query: &PageQuery) -> Result<Page<Node>> {
        let limit = query.limit()?;
        let after = query.cursor.as_deref().map(parse_node_cursor).transpose()?;
        let state = self.fleet.state().await?;
        let mut records = state.snapshot().nodes_page(after.as_deref(), limit + 1);
        let next = (records.len() > limit).then(|| {
            records.truncate(limit);
            records.last().map(|r| node_cursor(&r.name))
        });
        let now = self.now();
        Ok(Page {
            items: records
                .into_iter()
                .map(|r| {
                    let used = state.snapshot().usage_on(&r.id);
                    self.show_node(r, used, now)
                })
                .collect(),
            next: next.flatten(),
        })
    }

    /// Names the state node views are made of ([`FleetState::views_version`]): a
    /// view made while it held stays right until it changes, or until an online
    /// node's heartbeat timeout passes.
    pub async fn node_views_version(&self) -> Result<(u64, u64)> {
        Ok(self.fleet.state().await?.views_version())
    }

    /// Reconciles only when a deployment waits for capacity (pending or lost), so
    /// registrations and updates stay cheap when nothing waits; one bounded
    /// transaction here, the rest of a large backlog in the background.
    async fn reconcile_if_waiting(&self, caller: Option<&Principal>) -> Result<()> {
        if !self.fleet.state().await?.snapshot().has_waiting() {
            return Ok(());
        }
        // one round for every caller that arrived before it began
        let more = (self.reconcile_rounds)
            .after_now(|| self.reconcile_once(caller))
            .await?;
        if more {
            self.reconcile_in_background();
        }
        Ok(())
    }

    /// Goes on reconciling in a task of its own until nothing is left (one such task
    /// at a time).
    fn reconcile_in_background(&self) {
        if self
            .reconciling
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let service = self.clone();
        tokio::spawn(async move {
            let done = service.reconcile_for(None).await;
            service
                .reconciling
                .store(false, std::sync::atomic::Ordering::Release);
            if let Err(err) = done {
                tracing::warn!(error = %err, "background reconcile failed");
            }
        });
    }

    /// Cordons/uncordons a node and/or replaces its tags; returns it as it is now.
    pub async fn update_node(
        &self,
        caller: &Principal,
        node_id: &str,
        update: &NodeUpdate,
    ) -> Result<Node> {
        if let Some(tags) = &update.tags {
            validate::tags("tags", tags)?;
        }
        if !self.fleet.update_node(node_id, update).await? {
            return Err(node_not_found(node_id));
        }
        tracing::info!(%node_id, ?update, "node updated");
        let mut events = Vec::new();
        if let Some(schedulable) = update.schedulable {
            let (kind, what) = if schedulable {
                ("node.uncordoned", "uncordoned: it takes new deployments")
            } else {
                ("node.cordoned", "cordoned: it takes no new deployments")
            };
            events.push(Event::new(
                kind,
                "node",
                node_id,
                format!("node {node_id} {what}"),
            ));
        }
        if let Some(tags) = &update.tags {
            events.push(
                Event::new(
                    "node.tagged",
                    "node",
                    node_id,
                    format!("node {node_id} tags set"),
                )
                .with("tags", tags.clone()),
            );
        }
        self.record(Some(caller), events);
        self.reconcile_if_waiting(Some(caller)).await?;
        self.get_node(node_id).await
    }

    /// The id of the node whose current token `token` is; none or unknown is
    /// `Unauthorized`.
    pub async fn node_of_token(&self, token: Option<&str>) -> Result<String> {
        Ok(self.node_and_last_seen(token).await?.0)
    }

    async fn node_and_last_seen(&self, token: Option<&str>) -> Result<(String, f64)> {
        let token = token.ok_or_else(|| Error::Unauthorized("missing node token".into()))?;
        (self.fleet.node_of_token(&hash_token(token)).await?)
            .ok_or_else(|| Error::Unauthorized("invalid node token".into()))
    }

    async fn cordon(&self, node_id: &str) -> Result<()> {
        let cordon = NodeUpdate {
            schedulable: Some(false),
            tags: None,
        };
        if !self.fleet.update_node(node_id, &cordon).await? {
            return Err(node_not_found(node_id));
        }
        Ok(())
    }

    /// Cordons a node and places its deployments elsewhere (pending where nothing
    /// fits); the node is told to remove its copies.
    pub async fn drain_node(&self, caller: &Principal, node_id: &str) -> Result<NodeEvacuation> {
        self.cordon(node_id).await?;
        let report = self.evacuate(caller, node_id, true).await?;
        tracing::info!(%node_id, moved = report.moved.len(), pending = report.pending.len(), "node drained");
        self.record(
            Some(caller),
            vec![
                Event::new(
                    "node.drained",
                    "node",
                    node_id,
                    format!(
                        "node {node_id} drained: {} moved, {} pending",
                        report.moved.len(),
                        report.pending.len()
                    ),
                )
                .with("moved", report.moved.len())
                .with("pending", report.pending.len()),
            ],
        );
        Ok(report)
    }

    /// Removes a node: its deployments are placed elsewhere (pending where nothing
    /// fits) and its token stops working.
    pub async fn deregister_node(
        &self,
        caller: &Principal,
        node_id: &str,
    ) -> Result<NodeEvacuation> {
        self.cordon(node_id).await?;
        let report = self.evacuate(caller, node_id, false).await?;
        self.fleet.delete_node(node_id).await?;
        // its own long-poll learns that it is gone
        self.signals.notify([node_id]);
        tracing::info!(%node_id, "node deregistered");
        self.record(
            Some(caller),
            vec![
                Event::new(
                    "node.removed",
                    "node",
                    node_id,
                    format!("node {node_id} removed"),
                )
                .with("moved", report.moved.len())
                .with("pending", report.pending.len()),
            ],
        );
        self.reconcile_for(Some(caller)).await?;
        Ok(report)
    }

    async fn evacuate(
        &self,
        caller: &Principal,
        node_id: &str,
        keep_node: bool,
    ) -> Result<NodeEvacuation> {
        let now = self.now();
        let (service, node_id) = (self.clone(), node_id.to_string());
        let change = move |state: &FleetState| {
            let node_id = node_id.as_str();
            let mut planner = service.planner(now, state);
            let mut report = NodeEvacuation {
                node_id: node_id.to_string(),
                moved: Vec::new(),
                pending: Vec::new(),
            };
            for id in planner.ids() {
                let Some(current) = planner.get(&id).cloned() else {
                    continue;
                };
                let on_node = current.node_id.as_deref() == Some(node_id);
                let mut next = current.clone();
                if on_node && current.status == DeploymentStatus::Deleting && !keep_node {
                    // the node is going away: nothing is left to remove
                    planner.release(&current);
                    next.status = DeploymentStatus::Deleted;
                    next.node_id = None;
                    next.updated_at = now;
                    planner.put(next);
                } else if on_node && current.holds_resources() && !current.status.is_removal() {
                    if planner.move_off(&mut next, keep_node) {
                        report.moved.push(MovedDeployment {
                            deployment_id: id.clone(),
                            node_id: next.node_id.clone().unwrap_or_default(),
                        });
                    } else {
                        report.pending.push(id.clone());
                    }
                    planner.put(next);
                } else if !keep_node && current.previous_node_id.as_deref() == Some(node_id) {
                    next.previous_node_id = None;
                    planner.put(next);
                }
            }
            Ok((planner.into_writes(), report))
        };
        let (_, report) = self.transact(Some(caller), change).await?;
        Ok(report)
    }

    /// Marks deployments of offline nodes `lost`, re-places lost ones after the
    /// grace, and places pending ones where they now fit. Runs after every change
    /// that may free or add capacity, and periodically from the server.
    pub async fn reconcile(&self) -> Result<()> {
        self.reconcile_for(None).await
    }

    /// [`Self::reconcile`] after a change `caller` made (`None`: the control
    /// plane's own), whose events it records as theirs.
    async fn reconcile_for(&self, caller: Option<&Principal>) -> Result<()> {
        while self.reconcile_once(caller).await? {}
        Ok(())
    }

    /// One reconcile transaction, of at most a bounded number of writes; whether
    /// more is left to do.
    async fn reconcile_once(&self, caller: Option<&Principal>) -> Result<bool> {
        let now = self.now();
        let service = self.clone();
        let change = move |state: &FleetState| {
            let mut planner = service.planner(now, state);
            let more = planner.reconcile();
            Ok((planner.into_writes(), more))
        };
        let (written, more) = self.transact(caller, change).await?;
        for d in &written {
            tracing::info!(
                deployment_id = %d.deployment_id,
                status = d.status.as_str(),
                node_id = d.node_id.as_deref().unwrap_or("-"),
                "deployment reconciled"
            );
        }
        Ok(more)
    }

    /// `record` as the API shows it at `now`.
    fn show_node(&self, record: NodeRecord, usage: NodeUsage, now: f64) -> Node {
        let timeout = self.settings.heartbeat_timeout.as_secs_f64();
        Node::from_record(record, now, timeout, usage)
    }
}

/// What draining or deregistering a node did with its deployments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NodeEvacuation {
    /// The node.
    pub node_id: String,
    /// Deployments placed on other nodes.
    pub moved: Vec<MovedDeployment>,
    /// Deployments that fit nowhere and wait as `pending`.
    pub pending: Vec<String>,
}

/// A deployment moved to another node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MovedDeployment {
    /// The deployment.
    pub deployment_id: String,
    /// Its new node.
    pub node_id: String,
}

pub(super) fn node_not_found(node_id: &str) -> Error {
    Error::NotFound(format!("node {node_id} not found"))
}

impl std::fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("node_id", &self.node_id)
            .field("node_token", &"***")
            .finish()
    }
}

/// Epoch seconds as whole milliseconds, for keys.
pub(super) fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_never_print_their_secrets() {
        let node = super::NodeCredentials {
            node_id: "n".into(),
            node_token: "mnode_secret".into(),
        };
        let bootstrap = super::super::BootstrapCredentials {
            admin: Some(("admin".into(), "pw-secret".into())),
            join_token: Some("miaas_join_secret".into()),
        };
        for shown in [format!("{node:?}"), format!("{bootstrap:?}")] {
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}
