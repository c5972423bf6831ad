//! The nodes placement chooses from, with what is already reserved on them.

use std::collections::HashMap;
use std::sync::Arc;

use super::inline_tags::InlineTags;
use crate::model::{
    Deployment, NodeCapabilities, NodeMetrics, NodeRecord, NodeUsage, Requirements, Resources,
};

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Node id.
    pub id: String,
    /// Node name.
    pub name: String,
    /// Seen within the heartbeat timeout.
    pub online: bool,
    /// Not cordoned.
    pub schedulable: bool,
    /// What it offers.
    pub capabilities: NodeCapabilities,
    /// Its labels.
    pub tags: Vec<String>,
    /// What deployments placed on it already reserve.
    pub reserved: Resources,
    /// Latest heartbeat metrics.
    pub metrics: Option<NodeMetrics>,
    /// When it was last seen (`online` as of the last refresh; infinite when not
    /// known: a candidate made by [`Candidate::new`] stays online).
    pub(crate) last_seen: f64,
    /// The Docker version of `capabilities`, parsed once; see [`Candidate::derived`].
    pub(crate) docker_version: Option<semver::Version>,
    /// A 64-bit fingerprint of `tags` (one bit per tag), so that most nodes lacking
    /// a required tag are told without reading their tags; see [`Candidate::derived`].
    pub(crate) tag_bloom: u64,
    /// `tags` copied into the candidate when they are short, so that a node having
    /// the required tags is told without reading other memory; see
    /// [`Candidate::derived`].
    pub(crate) inline_tags: InlineTags,
}

impl Candidate {
    /// A candidate from a stored node, nothing reserved yet.
    pub fn from_record(record: &NodeRecord, online: bool) -> Self {
        Self {
            id: record.id.clone(),
            name: record.name.clone(),
            online,
            schedulable: record.schedulable,
            capabilities: record.capabilities.clone(),
            tags: record.tags.clone(),
            reserved: Resources::default(),
            metrics: record.metrics.clone(),
            last_seen: record.last_seen,
            docker_version: None,
            tag_bloom: 0,
            inline_tags: InlineTags::default(),
        }
        .derived()
    }

    /// An online, schedulable candidate with nothing reserved and no metrics (set
    /// the public fields as needed).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        capabilities: NodeCapabilities,
        tags: Vec<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            online: true,
            schedulable: true,
            capabilities,
            tags,
            reserved: Resources::default(),
            metrics: None,
            last_seen: f64::INFINITY,
            docker_version: None,
            tag_bloom: 0,
            inline_tags: InlineTags::default(),
        }
        .derived()
    }

    /// The candidate with what is derived from `capabilities` and `tags` computed
    /// again: call it after changing either.
    pub fn derived(mut self) -> Self {
        self.rederive();
        self
    }

    /// [`Self::derived`] in place.
    fn rederive(&mut self) {
        self.docker_version = Self::parse_docker_version(&self.capabilities);
        self.tag_bloom = tag_bloom(&self.tags);
        self.inline_tags = InlineTags::of(&self.tags);
    }

    /// Whether the node has `tag`.
    pub(crate) fn has_tag(&self, tag: &str) -> bool {
        (self.inline_tags.contains(tag.as_bytes()))
            .unwrap_or_else(|| self.tags.iter().any(|t| t == tag))
    }

    /// When it was last seen if online (infinite when offline): no online node
    /// goes silent before the earliest of these plus the heartbeat timeout.
    fn seen_while_online(&self) -> f64 {
        if self.online {
            self.last_seen
        } else {
            f64::INFINITY
        }
    }

    /// The Docker version a node reports, leniently parsed (`24`, `24.0.7-ce`).
    fn parse_docker_version(capabilities: &NodeCapabilities) -> Option<semver::Version> {
        capabilities
            .docker
            .as_ref()
            .and_then(|d| crate::model::lenient_version(&d.version))
    }

    fn add(&mut self, requirements: &Requirements, gpu_ids: &[u32]) {
        book(&mut self.reserved, requirements, gpu_ids);
    }

    fn remove(&mut self, requirements: &Requirements, gpu_ids: &[u32]) {
        let r = &mut self.reserved;
        r.cpus = (r.cpus - requirements.cpus).max(0.0);
        r.mem_mb = r.mem_mb.saturating_sub(requirements.mem_mb);
        r.disk_mb = r.disk_mb.saturating_sub(requirements.disk_mb);
        r.gpu_ids.retain(|id| !gpu_ids.contains(id));
        r.gpus = u32::try_from(r.gpu_ids.len()).unwrap_or(u32::MAX);
        // one booking of each: two deployments never hold the same one on a node
        for port in &requirements.ports {
            if let Some(at) = r.ports.iter().position(|p| p == port) {
                r.ports.swap_remove(at);
            }
        }
        for name in &requirements.container_names {
            if let Some(at) = r.container_names.iter().position(|n| n == name) {
                r.container_names.swap_remove(at);
            }
        }
    }
}

/// Adds what a deployment reserves to `reserved`.
fn book(r: &mut Resources, requirements: &Requirements, gpu_ids: &[u32]) {
    r.cpus += requirements.cpus;
    r.mem_mb = r.mem_mb.saturating_add(requirements.mem_mb);
    r.disk_mb = r.disk_mb.saturating_add(requirements.disk_mb);
    r.gpu_ids.extend_from_slice(gpu_ids);
    r.gpu_ids.sort_unstable();
    r.gpus = u32::try_from(r.gpu_ids.len()).unwrap_or(u32::MAX);
    r.ports.extend_from_slice(&requirements.ports);
    r.container_names
        .extend_from_slice(&requirements.container_names);
}

/// Adds what `deployment` reserves to `usage` (as a ledger books it).
pub(crate) fn book_usage(usage: &mut NodeUsage, deployment: &Deployment) {
    book(
        &mut usage.reserved,
        &deployment.requirements,
        &deployment.gpu_ids,
    );
    usage.deployments.push(deployment.deployment_id.clone());
}

/// What the deployments placed on each node use, by node id, from their
/// reservations (as a ledger would book them, without building one).
pub fn usage_by_node(reservations: &[Reservation]) -> HashMap<&str, NodeUsage> {
    let mut usage: HashMap<&str, NodeUsage> = HashMap::new();
    for r in reservations {
        let on_node = usage.entry(r.node_id.as_str()).or_default();
        book(&mut on_node.reserved, &r.requirements, &r.gpu_ids);
        on_node.deployments.push(r.deployment_id.clone());
    }
    usage
}

/// One bit per tag, chosen by a stable hash (FNV-1a) of the tag.
pub(crate) fn tag_bloom(tags: &[String]) -> u64 {
    tags.iter().fold(0, |bloom, tag| {
        let hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        bloom | 1 << (hash % 64)
    })
}

/// What one placed deployment reserves on its node: all a ledger needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// The deployment.
    pub deployment_id: String,
    /// Its node.
    pub node_id: String,
    /// What it reserves.
    pub requirements: Requirements,
    /// The GPUs assigned to it.
    pub gpu_ids: Vec<u32>,
}

/// Every node with its reservations: the ledger placement decisions update as they
/// are made, so a batch of decisions never double-books a node. Made of persistent
/// collections: a copy shares every candidate with the original until one of them
/// changes it.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    candidates: imbl::Vector<Arc<Candidate>>,
    index: imbl::HashMap<String, usize>,
    placed: HashMap<String, Vec<String>>,
    /// `placed` is not kept (see [`Ledger::for_placement`]).
    unnamed: bool,
    /// The earliest `last_seen` of an online candidate (infinite when none): no
    /// candidate goes silent for longer than the heartbeat timeout before this
    /// plus it, so [`Ledger::expire`] looks at every node only when one may have.
    earliest_seen: f64,
}

impl Ledger {
    /// Builds the ledger from the nodes and the deployments holding resources.
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = Candidate>,
        deployments: impl IntoIterator<Item = &'a Deployment>,
    ) -> Self {
        Self::build(nodes, deployments, false)
    }

    /// As [`Ledger::new`], for placement only: what is reserved on each node is
    /// kept, but not which deployments reserve it ([`Ledger::usage`] lists none),
    /// which a ledger kept for a large fleet need not hold.
    pub fn for_placement<'a>(
        nodes: impl IntoIterator<Item = Candidate>,
        deployments: impl IntoIterator<Item = &'a Deployment>,
    ) -> Self {
        Self::build(nodes, deployments, true)
    }

    fn build<'a>(
        nodes: impl IntoIterator<Item = Candidate>,
        deployments: impl IntoIterator<Item = &'a Deployment>,
        unnamed: bool,
    ) -> Self {
        let mut ledger = Self {
            unnamed,
            earliest_seen: f64::INFINITY,
            ..Self::default()
        };
        for node in nodes {
            ledger.add_node(node);
        }
        for deployment in deployments {
            if let (true, Some(node_id)) = (deployment.holds_resources(), &deployment.node_id) {
                ledger.reserve(node_id, deployment);
            }
        }
        ledger
    }

    /// Builds the ledger from the nodes and what placed deployments reserve.
    pub fn from_reservations(
        nodes: impl IntoIterator<Item = Candidate>,
        reservations: &[Reservation],
    ) -> Self {
        let mut ledger = Self::new(nodes, []);
        for r in reservations {
            ledger.book(&r.node_id, &r.deployment_id, &r.requirements, &r.gpu_ids);
        }
        ledger
    }

    /// The candidates, in the order given.
    pub fn candidates(&self) -> impl ExactSizeIterator<Item = &Candidate> + Clone + '_ {
        self.candidates.iter().map(|c| &**c)
    }

    /// One candidate by id.
    pub fn get(&self, node_id: &str) -> Option<&Candidate> {
        self.index.get(node_id).map(|&i| &*self.candidates[i])
    }

    fn get_mut(&mut self, node_id: &str) -> Option<&mut Candidate> {
        let i = *self.index.get(node_id)?;
        Some(Arc::make_mut(&mut self.candidates[i]))
    }

    /// Adds a node with nothing reserved on it (a known id is left as it is).
    pub fn add_node(&mut self, candidate: Candidate) {
        if self.index.contains_key(&candidate.id) {
            return;
        }
        self.earliest_seen = self.earliest_seen.min(candidate.seen_while_online());
        self.index
            .insert(candidate.id.clone(), self.candidates.len());
        self.candidates.push_back(Arc::new(candidate));
    }

    /// Lays what `record` says of a node over its candidate (added when new),
    /// keeping what is reserved on it: liveness as of `now`, schedulability,
    /// metrics, capabilities and tags.
    pub fn update_node(&mut self, record: &NodeRecord, now: f64, timeout: f64) {
        let online = record.is_online(now, timeout);
        let Some(candidate) = self.get_mut(&record.id) else {
            self.add_node(Candidate::from_record(record, online));
            return;
        };
        candidate.online = online;
        candidate.last_seen = record.last_seen;
        candidate.schedulable = record.schedulable;
        candidate.metrics.clone_from(&record.metrics);
        if candidate.capabilities != record.capabilities || candidate.tags != record.tags {
            candidate.capabilities = record.capabilities.clone();
            candidate.tags = record.tags.clone();
            candidate.rederive();
        }
        let seen = candidate.seen_while_online();
        self.earliest_seen = self.earliest_seen.min(seen);
    }

    /// Each candidate's liveness at `now`, once one may have gone silent for longer
    /// than `timeout`: only the candidates whose liveness changes are copied.
    pub fn expire(&mut self, now: f64, timeout: f64) {
        if now - self.earliest_seen <= timeout {
            return;
        }
        let mut earliest = f64::INFINITY;
        let mut changed = Vec::new();
        // read in order first (an index into the persistent vector is a walk down
        // its tree), then copy only what changes
        for (i, candidate) in self.candidates.iter().enumerate() {
            let online = now - candidate.last_seen <= timeout;
            if candidate.online == online {
                earliest = earliest.min(candidate.seen_while_online());
            } else {
                changed.push((i, online));
            }
        }
        for (i, online) in changed {
            let candidate = Arc::make_mut(&mut self.candidates[i]);
            candidate.online = online;
            earliest = earliest.min(candidate.seen_while_online());
        }
        self.earliest_seen = earliest;
    }

    /// Books `deployment`'s requirements and GPUs on `node_id`.
    pub fn reserve(&mut self, node_id: &str, deployment: &Deployment) {
        self.book(
            node_id,
            &deployment.deployment_id,
            &deployment.requirements,
            &deployment.gpu_ids,
        );
    }

    fn book(
        &mut self,
        node_id: &str,
        deployment_id: &str,
        requirements: &Requirements,
        gpu_ids: &[u32],
    ) {
        if let Some(candidate) = self.get_mut(node_id) {
            candidate.add(requirements, gpu_ids);
            if self.unnamed {
                return;
            }
            self.placed
                .entry(node_id.to_string())
                .or_default()
                .push(deployment_id.to_string());
        }
    }

    /// Books a reservation (as [`Ledger::reserve`] does a deployment).
    pub fn book_reservation(&mut self, reservation: &Reservation) {
        self.book(
            &reservation.node_id,
            &reservation.deployment_id,
            &reservation.requirements,
            &reservation.gpu_ids,
        );
    }

    /// Frees a reservation (as [`Ledger::release`] does a deployment).
    pub fn release_reservation(&mut self, reservation: &Reservation) {
        if let Some(candidate) = self.get_mut(&reservation.node_id) {
            candidate.remove(&reservation.requirements, &reservation.gpu_ids);
            if let Some(ids) = self.placed.get_mut(&reservation.node_id) {
                ids.retain(|id| id != &reservation.deployment_id);
            }
        }
    }

    /// Frees what `deployment` booked on `node_id`.
    pub fn release(&mut self, node_id: &str, deployment: &Deployment) {
        if let Some(candidate) = self.get_mut(node_id) {
            candidate.remove(&deployment.requirements, &deployment.gpu_ids);
            if let Some(ids) = self.placed.get_mut(node_id) {
                ids.retain(|id| id != &deployment.deployment_id);
            }
        }
    }

    /// What node `node_id`'s deployments use.
    pub fn usage(&self, node_id: &str) -> NodeUsage {
        NodeUsage {
            reserved: self
                .get(node_id)
                .map(|c| c.reserved.clone())
                .unwrap_or_default(),
            deployments: self.placed.get(node_id).cloned().unwrap_or_default(),
        }
    }
}
