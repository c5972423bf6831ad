//! Scoring the nodes that passed the filters.

use serde::{Deserialize, Serialize};

use super::{Candidate, PlacementSettings};
use crate::model::Requirements;

/// How to choose among fitting nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Fill the fullest nodes first, keeping whole nodes free for big deployments.
    #[default]
    Binpack,
    /// Prefer the emptiest nodes, spreading load.
    Spread,
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "binpack" => Ok(Self::Binpack),
            "spread" => Ok(Self::Spread),
            other => Err(format!(
                "unknown placement strategy {other:?} (binpack or spread)"
            )),
        }
    }
}

/// Weights of the scoring terms; each term is between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// CPU reservation after placement (binpack: fuller is better; spread: emptier).
    pub cpu: f64,
    /// Memory reservation after placement, likewise.
    pub memory: f64,
    /// GPU fit: GPU deployments like full GPU nodes (binpack) or empty ones (spread);
    /// deployments without GPUs prefer nodes without free GPUs, keeping those free.
    pub gpu: f64,
    /// Live load from heartbeats: a lower CPU usage scores higher.
    pub load: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            cpu: 1.0,
            memory: 1.0,
            gpu: 1.0,
            load: 0.5,
        }
    }
}

fn ratio(used: f64, total: f64) -> f64 {
    if total <= 0.0 {
        1.0
    } else {
        (used / total).clamp(0.0, 1.0)
    }
}

/// The node's score for `req` (0 to 1, higher is better).
pub fn score(node: &Candidate, req: &Requirements, settings: &PlacementSettings) -> f64 {
    let caps = &node.capabilities;
    let reserved = &node.reserved;
    let w = &settings.weights;
    let cpu_after = ratio(reserved.cpus + req.cpus, f64::from(caps.cpu_count));
    let mem_after = ratio((reserved.mem_mb + req.mem_mb) as f64, caps.mem_mb as f64);
    let fill = |used: f64| match settings.strategy {
        Strategy::Binpack => used,
        Strategy::Spread => 1.0 - used,
    };
    let total_gpus = caps.gpus.len() as f64;
    let gpu_term = if req.gpus == 0 {
        // keep GPU nodes for GPU work: a node whose GPUs are all busy (or absent) is best
        if total_gpus == 0.0 {
            1.0
        } else {
            reserved.gpu_ids.len() as f64 / total_gpus
        }
    } else {
        fill(ratio(
            (reserved.gpu_ids.len() as u64 + u64::from(req.gpus)) as f64,
            total_gpus,
        ))
    };
    let load_term = node
        .metrics
        .as_ref()
        .map_or(0.5, |m| 1.0 - (m.cpu_usage / 100.0).clamp(0.0, 1.0));
    let weighted = w.cpu * fill(cpu_after)
        + w.memory * fill(mem_after)
        + w.gpu * gpu_term
        + w.load * load_term;
    let total = w.cpu + w.memory + w.gpu + w.load;
    if total <= 0.0 { 0.0 } else { weighted / total }
}
