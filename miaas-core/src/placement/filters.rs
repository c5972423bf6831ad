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
    /// Too little free disk.
    Disk,
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
            Self::Disk => "insufficient_disk",
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
            Self::Disk => "had too little free disk",
        };
        format!("{count} {nodes} {what}")
    }
}

/// The GPUs assigned if `node` took the deployment, or the first reason it cannot.
pub fn first_rejection(
    node: &Candidate,
    requirements: &Requirements,
) -> Result<Vec<u32>, Rejection> {
    let checks = checks(node, requirements);
    if let Some((rejection, _)) = checks.into_iter().find_map(|c| c.err()).map(|r| (r.0, r.1)) {
        return Err(rejection);
    }
    pick_gpus(node, requirements).ok_or(Rejection::Gpus)
}

/// Every reason `node` cannot take the deployment (empty: it can).
pub fn all_rejections(node: &Candidate, requirements: &Requirements) -> Vec<(Rejection, String)> {
    checks(node, requirements)
        .into_iter()
        .filter_map(Result::err)
        .collect()
}

type Check = Result<(), (Rejection, String)>;

fn fail(rejection: Rejection, why: String) -> Check {
    Err((rejection, why))
}

fn checks(node: &Candidate, req: &Requirements) -> Vec<Check> {
    let caps = &node.capabilities;
    let reserved = &node.reserved;
    let mut out = Vec::with_capacity(10);
    out.push(if node.online {
        Ok(())
    } else {
        fail(Rejection::Offline, "offline".into())
    });
    out.push(if node.schedulable {
        Ok(())
    } else {
        fail(Rejection::Cordoned, "cordoned (not schedulable)".into())
    });
    out.push(match &req.node {
        Some(pin) if pin != &node.id && pin != &node.name => fail(
            Rejection::NotPinned,
            format!("the deployment is pinned to {pin}"),
        ),
        _ => Ok(()),
    });
    out.push(match &req.os {
        Some(os) if !os.eq_ignore_ascii_case(&caps.os) => {
            fail(Rejection::Os, format!("needs OS {os}, has {}", caps.os))
        }
        _ => Ok(()),
    });
    out.push(docker_check(node, req));
    let missing: Vec<&str> = req
        .tags
        .iter()
        .filter(|t| !node.tags.contains(t))
        .map(String::as_str)
        .collect();
    out.push(if missing.is_empty() {
        Ok(())
    } else {
        fail(
            Rejection::Tags,
            format!("lacks tags {}", missing.join(", ")),
        )
    });
    out.push(match pick_gpus(node, req) {
        Some(_) => Ok(()),
        None => fail(
            Rejection::Gpus,
            format!(
                "needs {} free GPU(s){}, has {} matching free",
                req.gpus,
                gpu_filter_text(req),
                matching_free_gpus(node, req).len()
            ),
        ),
    });
    let free_cpus = f64::from(caps.cpu_count) - reserved.cpus;
    out.push(if req.cpus <= free_cpus + 1e-9 {
        Ok(())
    } else {
        fail(
            Rejection::Cpu,
            format!("needs {} CPUs, {} free", req.cpus, free_cpus.max(0.0)),
        )
    });
    let free_mem = caps.mem_mb.saturating_sub(reserved.mem_mb);
    out.push(if req.mem_mb <= free_mem {
        Ok(())
    } else {
        fail(
            Rejection::Memory,
            format!("needs {} MB memory, {free_mem} MB free", req.mem_mb),
        )
    });
    let free_disk = caps.disk_mb.saturating_sub(reserved.disk_mb);
    out.push(if req.disk_mb <= free_disk {
        Ok(())
    } else {
        fail(
            Rejection::Disk,
            format!("needs {} MB disk, {free_disk} MB free", req.disk_mb),
        )
    });
    out
}

fn docker_check(node: &Candidate, req: &Requirements) -> Check {
    let docker = node.capabilities.docker.as_ref();
    if docker.is_some_and(|d| !d.available) {
        return fail(Rejection::Docker, "Docker is not available".into());
    }
    let Some(wanted) = &req.docker_version else {
        return Ok(());
    };
    let Some(docker) = docker else {
        return fail(
            Rejection::Docker,
            format!("needs Docker {wanted}, reports none"),
        );
    };
    let matches = match (parse_version_req(wanted), lenient_version(&docker.version)) {
        (Ok(req), Some(version)) => req.matches(&version),
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        fail(
            Rejection::Docker,
            format!("needs Docker {wanted}, has {}", docker.version),
        )
    }
}

/// `24`, `24.0`, `v24.0.7`, `20.10.17-ce` → a semver version (suffixes dropped).
pub fn lenient_version(text: &str) -> Option<semver::Version> {
    let text = text.trim().trim_start_matches(['v', 'V']);
    let numeric: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = numeric
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().transpose().ok()?.unwrap_or(0);
    let patch = parts.next().transpose().ok()?.unwrap_or(0);
    Some(semver::Version::new(major, minor, patch))
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

fn matching_free_gpus(node: &Candidate, req: &Requirements) -> Vec<u32> {
    let model = req.gpu_model.as_ref().map(|m| m.to_ascii_lowercase());
    let mut ids: Vec<u32> = node
        .capabilities
        .gpus
        .iter()
        .filter(|g| !node.reserved.gpu_ids.contains(&g.id))
        .filter(|g| {
            model
                .as_ref()
                .is_none_or(|m| g.model.to_ascii_lowercase().contains(m))
        })
        .filter(|g| req.gpu_mem_mb.is_none_or(|mem| g.mem_mb >= mem))
        .map(|g| g.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// The lowest-numbered free GPUs that match, or `None` when too few do.
pub fn pick_gpus(node: &Candidate, req: &Requirements) -> Option<Vec<u32>> {
    if req.gpus == 0 {
        return Some(Vec::new());
    }
    let free = matching_free_gpus(node, req);
    let wanted = usize::try_from(req.gpus).ok()?;
    (free.len() >= wanted).then(|| free[..wanted].to_vec())
}
