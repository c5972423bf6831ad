//! The filters: each says whether a node can take a deployment, and if not, why.

use crate::model::{Requirements, parse_version_req};

use super::Candidate;

/// Why a node cannot take a deployment, in the order the filters run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// Not seen within the heartbeat timeout.
    Offline,
    /// Cordoned.
    Cordoned,
    /// The deployment is pinned to another node.
    NotPinned,
    /// Another operating system.
    Os,
    /// No Docker, or a version outside the requirement.
    Docker,
    /// Lacks a required tag.
    Tags,
    /// Too few free GPUs of the required model and memory.
    Gpus,
    /// Too little free CPU.
    Cpu,
    /// Too little free memory.
    Memory,
    /// Reserves disk, and the node did not report its disk.
    DiskUnknown,
    /// Too little free disk.
    Disk,
    /// A host port it publishes is taken on the node.
    PortConflict,
    /// A container name it sets is taken on the node.
    ContainerNameConflict,
}

impl Rejection {
    /// The key used in `placement.reasons`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::Cordoned => "cordoned",
            Self::NotPinned => "not_pinned",
            Self::Os => "os_mismatch",
            Self::Docker => "docker_mismatch",
            Self::Tags => "missing_tags",
            Self::Gpus => "insufficient_gpus",
            Self::Cpu => "insufficient_cpu",
            Self::Memory => "insufficient_memory",
            Self::DiskUnknown => "unknown_disk",
            Self::Disk => "insufficient_disk",
            Self::PortConflict => "port_conflict",
            Self::ContainerNameConflict => "container_name_conflict",
        }
    }

    /// "3 nodes offline", "1 node lacked a free matching GPU", ...
    pub fn describe(self, count: usize) -> String {
        let nodes = if count == 1 { "node" } else { "nodes" };
        let what = match self {
            Self::Offline => "offline",
            Self::Cordoned => "cordoned",
            Self::NotPinned => "not the pinned node",
            Self::Os => "had another OS",
            Self::Docker => "lacked a matching Docker",
            Self::Tags => "lacked the required tags",
            Self::Gpus => "lacked free matching GPUs",
            Self::Cpu => "had too little free CPU",
            Self::Memory => "had too little free memory",
            Self::DiskUnknown => "did not report their disk",
            Self::Disk => "had too little free disk",
            Self::PortConflict => "had a port it publishes taken",
            Self::ContainerNameConflict => "had a container name it sets taken",
        };
        format!("{count} {nodes} {what}")
    }

    /// As [`Self::describe`], naming what `requirements` ask that is taken:
    /// "port 8080/tcp is taken on 3 nodes".
    pub fn describe_for(self, count: usize, requirements: &Requirements) -> String {
        let nodes = if count == 1 { "node" } else { "nodes" };
        let named = |what: &str, items: Vec<String>| {
            let plural = if items.len() == 1 { "" } else { "s" };
            let verb = if items.len() == 1 { "is" } else { "are" };
            format!(
                "{what}{plural} {} {verb} taken on {count} {nodes}",
                items.join(", ")
            )
        };
        match self {
            Self::PortConflict if !requirements.ports.is_empty() => named(
                "port",
                requirements.ports.iter().map(ToString::to_string).collect(),
            ),
            Self::ContainerNameConflict if !requirements.container_names.is_empty() => {
                named("container name", requirements.container_names.clone())
            }
            _ => self.describe(count),
        }
    }
}

impl Rejection {
    /// Every filter, in the order they run.
    pub const ALL: [Self; 13] = [
        Self::Offline,
        Self::Cordoned,
        Self::NotPinned,
        Self::Os,
        Self::Docker,
        Self::Tags,
        Self::Gpus,
        Self::Cpu,
        Self::Memory,
        Self::DiskUnknown,
        Self::Disk,
        Self::PortConflict,
        Self::ContainerNameConflict,
    ];
}

/// Requirements with their parsed parts computed once per decision, not per node.
#[derive(Debug, Clone)]
pub struct Prepared<'a> {
    /// The requirements.
    pub requirements: &'a Requirements,
    docker: Option<Option<semver::VersionReq>>,
    gpu_model: Option<String>,
    tag_bloom: u64,
}

impl<'a> Prepared<'a> {
    /// Parses what needs parsing in `requirements`.
    pub fn new(requirements: &'a Requirements) -> Self {
        Self {
            requirements,
            docker: requirements
                .docker_version
                .as_deref()
                .map(|v| parse_version_req(v).ok()),
            gpu_model: requirements
                .gpu_model
                .as_ref()
                .map(|m| m.to_ascii_lowercase()),
            tag_bloom: super::candidate::tag_bloom(&requirements.tags),
        }
    }
}

/// The first reason `node` cannot take the deployment, or `None` when it can.
pub fn first_rejection(node: &Candidate, prepared: &Prepared<'_>) -> Option<Rejection> {
    Rejection::ALL
        .into_iter()
        .find(|r| !passes(*r, node, prepared))
}

/// Every reason `node` cannot take the deployment, explained (empty: it can).
pub fn all_rejections(node: &Candidate, prepared: &Prepared<'_>) -> Vec<(Rejection, String)> {
    Rejection::ALL
        .into_iter()
        .filter(|r| !passes(*r, node, prepared))
        .map(|r| (r, explain(r, node, prepared)))
        .collect()
}

fn free_cpus(node: &Candidate) -> f64 {
    f64::from(node.capabilities.cpu_count) - node.reserved.cpus
}

/// Whether `node` passes filter `rejection` (no allocation: this runs per node).
fn passes(rejection: Rejection, node: &Candidate, p: &Prepared<'_>) -> bool {
    let req = p.requirements;
    let caps = &node.capabilities;
    match rejection {
        Rejection::Offline => node.online,
        Rejection::Cordoned => node.schedulable,
        Rejection::NotPinned => req
            .node
            .as_ref()
            .is_none_or(|pin| pin == &node.id || pin == &node.name),
        Rejection::Os => req
            .os
            .as_ref()
            .is_none_or(|os| os.eq_ignore_ascii_case(&caps.os)),
        Rejection::Docker => {
            let docker = caps.docker.as_ref();
            if docker.is_some_and(|d| !d.available) {
                return false;
            }
            match &p.docker {
                None => true,
                Some(None) => false,
                Some(Some(wanted)) => node
                    .docker_version
                    .as_ref()
                    .is_some_and(|v| wanted.matches(v)),
            }
        }
        // the fingerprints rule out most nodes without reading their tags
        Rejection::Tags => {
            node.tag_bloom & p.tag_bloom == p.tag_bloom && req.tags.iter().all(|t| node.has_tag(t))
        }
        Rejection::Gpus if req.gpus_all => all_gpus_free(node, p),
        Rejection::Gpus => {
            req.gpus == 0 || matching_free_gpus(node, p).count() >= req.gpus as usize
        }
        Rejection::Cpu => req.cpus <= free_cpus(node) + 1e-9,
        Rejection::Memory => req.mem_mb <= caps.mem_mb.saturating_sub(node.reserved.mem_mb),
        Rejection::DiskUnknown => req.disk_mb == 0 || caps.disk_mb.is_some(),
        // a node of unknown disk is judged by the filter above alone
        Rejection::Disk => caps
            .disk_mb
            .is_none_or(|disk| req.disk_mb <= disk.saturating_sub(node.reserved.disk_mb)),
        Rejection::PortConflict => taken_ports(node, req).next().is_none(),
        Rejection::ContainerNameConflict => taken_names(node, req).next().is_none(),
    }
}

/// The ports `req` publishes that a deployment on `node` already takes.
fn taken_ports<'a>(
    node: &'a Candidate,
    req: &'a Requirements,
) -> impl Iterator<Item = &'a crate::model::HostPort> {
    req.ports.iter().filter(|wanted| {
        node.reserved
            .ports
            .iter()
            .any(|taken| wanted.conflicts_with(taken))
    })
}

/// The container names `req` sets that a deployment on `node` already takes.
fn taken_names<'a>(node: &'a Candidate, req: &'a Requirements) -> impl Iterator<Item = &'a String> {
    req.container_names
        .iter()
        .filter(|name| node.reserved.container_names.contains(name))
}

/// `count: all`: the node has GPUs, every one free and matching.
fn all_gpus_free(node: &Candidate, p: &Prepared<'_>) -> bool {
    let gpus = node.capabilities.gpus.len();
    gpus > 0 && gpus >= p.requirements.gpus as usize && matching_free_gpus(node, p).count() == gpus
}

/// Why `node` fails filter `rejection`, for people.
fn explain(rejection: Rejection, node: &Candidate, p: &Prepared<'_>) -> String {
    let req = p.requirements;
    let caps = &node.capabilities;
    match rejection {
        Rejection::Offline => "offline".into(),
        Rejection::Cordoned => "cordoned (not schedulable)".into(),
        Rejection::NotPinned => format!(
            "the deployment is pinned to {}",
            req.node.as_deref().unwrap_or_default()
        ),
        Rejection::Os => format!(
            "needs OS {}, has {}",
            req.os.as_deref().unwrap_or_default(),
            caps.os
        ),
        Rejection::Docker => match (&caps.docker, &req.docker_version) {
            (Some(d), _) if !d.available => "Docker is not available".into(),
            (Some(d), Some(wanted)) => format!("needs Docker {wanted}, has {}", d.version),
            (None, Some(wanted)) => format!("needs Docker {wanted}, reports none"),
            _ => "Docker does not match".into(),
        },
        Rejection::Tags => {
            let missing: Vec<&str> = req
                .tags
                .iter()
                .filter(|t| !node.tags.contains(t))
                .map(String::as_str)
                .collect();
            format!("lacks tags {}", missing.join(", "))
        }
        Rejection::Gpus if req.gpus_all => format!(
            "needs every GPU of the node free{} (count: all), has {} of {} matching free",
            gpu_filter_text(req),
            matching_free_gpus(node, p).count(),
            node.capabilities.gpus.len()
        ),
        Rejection::Gpus => format!(
            "needs {} free GPU(s){}, has {} matching free",
            req.gpus,
            gpu_filter_text(req),
            matching_free_gpus(node, p).count()
        ),
        Rejection::PortConflict => {
            let taken: Vec<String> = taken_ports(node, req).map(ToString::to_string).collect();
            format!("port {} taken by another deployment", taken.join(", "))
        }
        Rejection::ContainerNameConflict => {
            let taken: Vec<&str> = taken_names(node, req).map(String::as_str).collect();
            format!(
                "container name {} taken by another deployment",
                taken.join(", ")
            )
        }
        Rejection::Cpu => format!("needs {} CPUs, {} free", req.cpus, free_cpus(node).max(0.0)),
        Rejection::Memory => format!(
            "needs {} MB memory, {} MB free",
            req.mem_mb,
            caps.mem_mb.saturating_sub(node.reserved.mem_mb)
        ),
        Rejection::DiskUnknown => format!(
            "needs {} MB disk, and the node did not report its disk",
            req.disk_mb
        ),
        Rejection::Disk => format!(
            "needs {} MB disk, {} MB free",
            req.disk_mb,
            caps.disk_mb
                .unwrap_or(0)
                .saturating_sub(node.reserved.disk_mb)
        ),
    }
}

/// Whether `text` contains `lowercase` (already in lower case), ignoring ASCII
/// case; allocates nothing, as it runs per GPU of every node.
fn contains_ignoring_case(text: &str, lowercase: &str) -> bool {
    lowercase.is_empty()
        || text
            .as_bytes()
            .windows(lowercase.len())
            .any(|w| w.eq_ignore_ascii_case(lowercase.as_bytes()))
}

fn gpu_filter_text(req: &Requirements) -> String {
    let mut parts = Vec::new();
    if let Some(model) = &req.gpu_model {
        parts.push(format!("model {model}"));
    }
    if let Some(mem) = req.gpu_mem_mb {
        parts.push(format!("at least {mem} MB"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn matching_free_gpus<'n>(
    node: &'n Candidate,
    p: &'n Prepared<'_>,
) -> impl Iterator<Item = u32> + 'n {
    node.capabilities
        .gpus
        .iter()
        .filter(|g| !node.reserved.gpu_ids.contains(&g.id))
        .filter(|g| {
            p.gpu_model.as_ref().is_none_or(|m| {
                g.model
                    .as_deref()
                    .is_some_and(|model| contains_ignoring_case(model, m))
            })
        })
        // a GPU of unknown model or memory fits no request for either
        .filter(|g| {
            (p.requirements.gpu_mem_mb).is_none_or(|mem| g.mem_mb.is_some_and(|has| has >= mem))
        })
        .map(|g| g.id)
}

/// The lowest-numbered free GPUs that match (every GPU of the node for
/// `count: all`), or `None` when too few do.
pub fn pick_gpus(node: &Candidate, p: &Prepared<'_>) -> Option<Vec<u32>> {
    if p.requirements.gpus_all {
        let mut all: Vec<u32> = matching_free_gpus(node, p).collect();
        all.sort_unstable();
        return all_gpus_free(node, p).then_some(all);
    }
    let wanted = usize::try_from(p.requirements.gpus).ok()?;
    if wanted == 0 {
        return Some(Vec::new());
    }
    let mut free: Vec<u32> = matching_free_gpus(node, p).collect();
    free.sort_unstable();
    (free.len() >= wanted).then(|| free[..wanted].to_vec())
}
