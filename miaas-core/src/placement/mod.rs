//! Placement: which node runs a deployment. Filters first (online, schedulable,
//! pinning, OS, Docker, tags, GPUs, free CPU, memory, disk), then scoring of the
//! survivors with configurable weights and a strategy; ties break by node name,
//! then id. Usable on its own: give it candidates and requirements.

mod candidate;
mod filters;
mod inline_tags;
mod score;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{PlacementSummary, Requirements};

pub(crate) use candidate::book_usage;
pub use candidate::{Candidate, Ledger, Reservation, usage_by_node};
pub use filters::{Prepared, Rejection};
pub use score::{Strategy, Weights};

/// How the engine scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlacementSettings {
    /// `binpack` (fill nodes, the default) or `spread`.
    pub strategy: Strategy,
    /// Weights of the scoring terms.
    pub weights: Weights,
}

/// The outcome of placing one deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A node fits.
    Placed {
        /// The chosen node.
        node_id: String,
        /// Its score (0 to 1, higher is better).
        score: f64,
        /// The GPUs of that node assigned to the deployment.
        gpu_ids: Vec<u32>,
    },
    /// No node fits; why, counted per reason.
    Unplaceable(PlacementSummary),
}

/// A node that fits, with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoredCandidate {
    /// Node id.
    pub node_id: String,
    /// Node name.
    pub name: String,
    /// Score from 0 to 1; the highest wins.
    pub score: f64,
    /// GPUs that would be assigned.
    pub gpu_ids: Vec<u32>,
}

/// A node that does not fit, with every reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RejectedNode {
    /// Node id.
    pub node_id: String,
    /// Node name.
    pub name: String,
    /// Why it does not fit, for people (e.g. "needs 4096 MB memory, 1024 MB free").
    pub reasons: Vec<String>,
}

/// A dry run: every node, ranked or rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlacementPlan {
    /// The requirements evaluated.
    pub requirements: Requirements,
    /// Nodes that fit, best first (the first is the one placement would choose).
    pub candidates: Vec<ScoredCandidate>,
    /// Nodes that do not fit.
    pub rejected: Vec<RejectedNode>,
    /// Counts per reason and a sentence, as a pending deployment would show them.
    pub summary: PlacementSummary,
    /// What the compose document asks of the host (privileged, host namespaces,
    /// capabilities, devices, host paths): deploying it needs an admin unless the
    /// server allows operators. Empty for plain documents and bare requirements.
    #[serde(default)]
    pub host_access: Vec<String>,
    /// Where each requirement derived from the compose document comes from: which
    /// service and key, and whether a reservation or, lacking one, a limit.
    /// Empty for bare requirements.
    #[serde(default)]
    pub derived: Vec<crate::model::Derivation>,
}

/// The placement engine.
#[derive(Debug, Clone, Default)]
pub struct PlacementEngine {
    settings: PlacementSettings,
}

impl PlacementEngine {
    /// An engine with these settings.
    pub fn new(settings: PlacementSettings) -> Self {
        Self { settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &PlacementSettings {
        &self.settings
    }

    /// The original API: the id of the node to run `requirements` on, if any fits.
    pub fn select_node<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a Candidate>,
        requirements: &Requirements,
    ) -> Option<String> {
        match self.decide(nodes, requirements) {
            Decision::Placed { node_id, .. } => Some(node_id),
            Decision::Unplaceable(_) => None,
        }
    }

    /// Chooses the best node for `requirements`, or explains why none fits.
    pub fn decide<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a Candidate>,
        requirements: &Requirements,
    ) -> Decision {
        let prepared = Prepared::new(requirements);
        let mut best: Option<(f64, &Candidate)> = None;
        // counted by filter, in filter order
        let mut rejected = [0usize; Rejection::ALL.len()];
        let mut evaluated = 0;
        for node in nodes {
            evaluated += 1;
            match filters::first_rejection(node, &prepared) {
                Some(rejection) => rejected[rejection as usize] += 1,
                None => {
                    let score = score::score(node, requirements, &self.settings);
                    let better = match &best {
                        None => true,
                        Some((top, top_node)) => beats(score, node, *top, top_node),
                    };
                    if better {
                        best = Some((score, node));
                    }
                }
            }
        }
        match best {
            Some((score, node)) => Decision::Placed {
                node_id: node.id.clone(),
                score,
                gpu_ids: filters::pick_gpus(node, &prepared).unwrap_or_default(),
            },
            None => {
                let reasons = (Rejection::ALL.into_iter())
                    .zip(rejected)
                    .filter(|(_, count)| *count > 0)
                    .collect();
                Decision::Unplaceable(summarize(evaluated, &reasons, requirements))
            }
        }
    }

    /// Ranks every node for `requirements` without changing anything.
    pub fn plan<'a>(
        &self,
        nodes: impl IntoIterator<Item = &'a Candidate>,
        requirements: &Requirements,
    ) -> PlacementPlan {
        let prepared = Prepared::new(requirements);
        let mut candidates = Vec::new();
        let mut rejected = Vec::new();
        let mut reasons: BTreeMap<Rejection, usize> = BTreeMap::new();
        let mut evaluated = 0;
        for node in nodes {
            evaluated += 1;
            let failures = filters::all_rejections(node, &prepared);
            match failures.first() {
                Some((first, _)) => {
                    *reasons.entry(*first).or_default() += 1;
                    rejected.push(RejectedNode {
                        node_id: node.id.clone(),
                        name: node.name.clone(),
                        reasons: failures.into_iter().map(|(_, why)| why).collect(),
                    });
                }
                None => candidates.push(ScoredCandidate {
                    node_id: node.id.clone(),
                    name: node.name.clone(),
                    score: score::score(node, requirements, &self.settings),
                    gpu_ids: filters::pick_gpus(node, &prepared).unwrap_or_default(),
                }),
            }
        }
        candidates.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.node_id.cmp(&b.node_id))
        });
        rejected.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.node_id.cmp(&b.node_id)));
        let summary = if candidates.is_empty() {
            summarize(evaluated, &reasons, requirements)
        } else {
            PlacementSummary {
                message: format!(
                    "{} of {} nodes fit; best: {}",
                    candidates.len(),
                    evaluated,
                    candidates[0].name
                ),
                nodes_evaluated: evaluated,
                reasons: reasons
                    .iter()
                    .map(|(r, n)| (r.key().to_string(), *n))
                    .collect(),
            }
        };
        PlacementPlan {
            requirements: requirements.clone(),
            candidates,
            rejected,
            summary,
            host_access: Vec::new(),
            derived: Vec::new(),
        }
    }
}

/// Higher score wins; ties go to the smaller name, then the smaller id.
fn beats(score: f64, node: &Candidate, top: f64, top_node: &Candidate) -> bool {
    score
        .total_cmp(&top)
        .then_with(|| top_node.name.cmp(&node.name))
        .then_with(|| top_node.id.cmp(&node.id))
        .is_gt()
}

fn summarize(
    evaluated: usize,
    reasons: &BTreeMap<Rejection, usize>,
    requirements: &Requirements,
) -> PlacementSummary {
    let message = if evaluated == 0 {
        "no node fits: no nodes are registered".to_string()
    } else {
        let parts: Vec<String> = (reasons.iter())
            .map(|(r, n)| r.describe_for(*n, requirements))
            .collect();
        format!("no node fits: {}", parts.join(", "))
    };
    PlacementSummary {
        message,
        nodes_evaluated: evaluated,
        reasons: reasons
            .iter()
            .map(|(r, n)| (r.key().to_string(), *n))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
