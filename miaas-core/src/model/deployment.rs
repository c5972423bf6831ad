//! Deployments: a docker-compose document plus environment, and its state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{DeploymentHealth, Env, Requirements};
use crate::Result;
use crate::validate;

/// What a deployment request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentAction {
    /// Create the deployment, or update it when the id exists.
    #[default]
    Apply,
    /// Remove the deployment (as `DELETE` does).
    Remove,
}

impl DeploymentAction {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Remove => "remove",
        }
    }

    /// Parses the JSON name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "apply" => Some(Self::Apply),
            "remove" => Some(Self::Remove),
            _ => None,
        }
    }
}

/// Where a deployment is in its life: `pending` (no node fits yet; `placement`
/// says why), `scheduled` (a node was chosen; `node_id` is set), `running` and
/// `failed` (reported by the node), `deleting` (the node is to remove it),
/// `deleted` (removed; its resources are free), `lost` (its node went offline; it is
/// placed elsewhere after the reschedule grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Accepted; no node runs it yet.
    Pending,
    /// A node was chosen (`node_id` is set).
    Scheduled,
    /// The node reports it running.
    Running,
    /// The node reports it failed.
    Failed,
    /// Marked for removal; the node is to remove it.
    Deleting,
    /// Removed.
    Deleted,
    /// Its node went offline.
    Lost,
}

impl DeploymentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Scheduled,
        Self::Running,
        Self::Failed,
        Self::Deleting,
        Self::Deleted,
        Self::Lost,
    ];

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Lost => "lost",
        }
    }

    /// Parses the JSON name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the deployment is on its way out (`deleting` or `deleted`).
    pub fn is_removal(self) -> bool {
        matches!(self, Self::Deleting | Self::Deleted)
    }

    /// Whether a deployment in this status has a health (`running` or `failed`:
    /// its node reported on its containers).
    pub fn has_health(self) -> bool {
        matches!(self, Self::Running | Self::Failed)
    }

    /// Whether a deployment in this status keeps its node's resources reserved.
    pub fn holds_resources(self) -> bool {
        matches!(
            self,
            Self::Scheduled | Self::Running | Self::Failed | Self::Deleting | Self::Lost
        )
    }

    /// Whether a deployment in this status waits for capacity (`pending` or
    /// `lost`): a lifecycle rule, by which a reconcile runs when nodes change.
    pub fn waits_for_capacity(self) -> bool {
        matches!(self, Self::Pending | Self::Lost)
    }
}

/// `POST /api/v1/deployments`.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "deployment_id": "deploy-123", "template_id": "postgres",
    "rendered_compose": "version: '3.8'\nservices:\n  postgres:\n    image: postgres:16",
    "env": {"POSTGRES_PASSWORD": "secret"}, "action": "apply"
}))]
pub struct DeploymentRequest {
    /// Client-chosen id; posting an existing id with `apply` updates it. 1 to 253
    /// characters, none of them whitespace or `/ ? # % \\`.
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^[^\s/?#%\\\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub deployment_id: String,
    /// The template this deployment was rendered from; without
    /// `rendered_compose`, the template the server renders (see
    /// `GET /api/v1/templates`).
    #[schema(
        min_length = 1,
        max_length = 253,
        pattern = r"^(?=.*\S)[^\u0000-\u001f\u007f-\u009f]+$"
    )]
    pub template_id: String,
    /// The docker-compose document to run (not blank, at most 512 KiB). Leave it
    /// out and give `params` to have the server render the template `template_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 524288, pattern = r"\S")]
    pub rendered_compose: Option<String>,
    /// The template's parameters: given (even `{}`) instead of
    /// `rendered_compose`, the server renders the template `template_id` with
    /// them (the defaults fill the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub params: Option<BTreeMap<String, serde_json::Value>>,
    /// Environment for the compose document (variable names: no `=`, not empty).
    #[serde(default)]
    #[schema(schema_with = super::env_schema)]
    pub env: BTreeMap<String, String>,
    /// `apply` (default) or `remove`.
    #[serde(default)]
    pub action: DeploymentAction,
    /// What the deployment needs; derived from the compose document when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
}

// `Debug` never shows the secret
debug_without!(
    DeploymentRequest,
    env,
    [
        deployment_id,
        template_id,
        action,
        requirements,
        rendered_compose,
        params
    ]
);

/// The largest compose document accepted, in bytes.
pub const MAX_COMPOSE_BYTES: usize = 512 * 1024;

impl DeploymentRequest {
    /// Checks every field; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        validate::identifier("deployment_id", &self.deployment_id)?;
        validate::name("template_id", &self.template_id)?;
        if self.action == DeploymentAction::Apply
            && self.rendered_compose.is_none()
            && self.params.is_none()
        {
            return Err(crate::Error::Invalid(
                "rendered_compose: missing field (or give `params` to have the server render \
                 the template `template_id`)"
                    .into(),
            ));
        }
        if let Some(compose) = &self.rendered_compose {
            if self.action == DeploymentAction::Apply {
                validate::non_blank("rendered_compose", compose)?;
            }
            validate::list_len("rendered_compose", compose.len(), MAX_COMPOSE_BYTES)?;
            if self.params.is_some() {
                return Err(crate::Error::Invalid(
                    "params: give either `rendered_compose` or a template's `params`, not both"
                        .into(),
                ));
            }
        }
        for key in self.env.keys() {
            validate::env_key(key)?;
        }
        if let Some(requirements) = &self.requirements {
            requirements.validate()?;
        }
        Ok(())
    }
}

/// What an `apply` asks a deployment to be, once resolved: the compose document
/// (given, or rendered from a template), its environment and requirements.
#[derive(Clone, PartialEq)]
pub struct DeploymentSpec {
    /// The template named.
    pub template_id: String,
    /// The compose document.
    pub rendered_compose: String,
    /// The environment (secret parameters included).
    pub env: Env,
    /// What placement reserves.
    pub requirements: Requirements,
    /// Whether `requirements` were given (else they are the document's own).
    pub requirements_given: bool,
    /// The template's parameters as shown, when the server rendered it.
    pub params: Option<BTreeMap<String, serde_json::Value>>,
    /// The template's version, when the server rendered it.
    pub template_version: Option<u32>,
}

debug_without!(
    DeploymentSpec,
    env,
    [
        template_id,
        template_version,
        params,
        requirements,
        requirements_given
    ]
);

/// `202` answer to a deployment request, and `200` answer to a `DELETE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentAck {
    /// The deployment concerned.
    pub deployment_id: String,
    /// `accepted` for a request, `deleting` for a deletion.
    pub status: String,
    /// What happened, for people.
    pub message: String,
}

/// A deployment as stored and shown by `GET /api/v1/deployments[/{id}]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    /// Client-chosen id.
    pub deployment_id: String,
    /// The template it was rendered from.
    pub template_id: String,
    /// The last action requested.
    pub action: DeploymentAction,
    /// Where it is in its life.
    pub status: DeploymentStatus,
    /// Human-readable state.
    pub message: String,
    /// Its containers' health as its node last reported it while `running` or
    /// `failed` (`starting`, `healthy`, `unhealthy`, or `none` when no service
    /// has a healthcheck); null before.
    #[serde(default)]
    pub health: Option<DeploymentHealth>,
    /// The sum of its containers' restart counts, as its node last reported it.
    #[serde(default)]
    pub restarts: u32,
    /// The node it is placed on; null until placed.
    pub node_id: Option<String>,
    /// A node it was moved away from, which is still to remove its copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_node_id: Option<String>,
    /// The requirements placement used (given, or derived from the compose document).
    #[serde(default)]
    pub requirements: Requirements,
    /// The GPUs of its node assigned to it, by id.
    #[serde(default)]
    pub gpu_ids: Vec<u32>,
    /// Why no node fits, while `pending`.
    #[serde(default)]
    pub placement: Option<PlacementSummary>,
    /// Environment for the compose document.
    #[schema(value_type = BTreeMap<String, String>)]
    pub env: Env,
    /// The docker-compose document.
    pub rendered_compose: String,
    /// The parameters the server rendered the template with (secrets shown as
    /// `***`: their values are in `env`); null when the compose document was
    /// given.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub params: Option<BTreeMap<String, serde_json::Value>>,
    /// The version of the template the server rendered; null when the compose
    /// document was given.
    #[serde(default)]
    pub template_version: Option<u32>,
    /// 1 at creation, +1 for each apply that changed it.
    pub revision: u32,
    /// Creation time (epoch seconds).
    pub created_at: f64,
    /// Last change (epoch seconds).
    pub updated_at: f64,
    /// Where it can be reached: one entry per port it publishes, once placed (`[]`
    /// when it publishes none or is not placed). Worked out when it is read.
    #[serde(default)]
    pub endpoints: Vec<super::Endpoint>,
}

/// What a secret value is shown as.
pub const REDACTED: &str = "***";

impl Deployment {
    /// The deployment with every `env` value replaced by [`REDACTED`] (names stay
    /// visible).
    pub fn redacted(mut self) -> Self {
        self.env = self.env.with_values(REDACTED);
        self
    }

    /// Whether `request` (with `requirements` as it resolves to) asks for exactly
    /// what this deployment already is.
    pub fn has_spec_of(&self, spec: &DeploymentSpec) -> bool {
        self.template_id == spec.template_id
            && self.rendered_compose == spec.rendered_compose
            && self.env == spec.env
            && self.requirements == spec.requirements
            && self.params == spec.params
            && self.template_version == spec.template_version
    }

    /// Its status with its health and restarts, for people ([`status_text`]).
    pub fn status_text(&self) -> String {
        status_text(self.status, self.health, self.restarts)
    }

    /// Whether it is ready to serve: `running`, its health `healthy` or `none`.
    pub fn is_ready(&self) -> bool {
        self.status == DeploymentStatus::Running
            && self.health.is_none_or(DeploymentHealth::is_ready)
    }

    /// Whether it holds resources on `node_id` (placed there and not yet released).
    pub fn holds_resources(&self) -> bool {
        self.node_id.is_some() && self.status.holds_resources()
    }

    /// Whether a reconcile looks at it whatever its node's state (a lifecycle
    /// rule): it waits for capacity, or it is `deleting` with no node left to
    /// remove it.
    pub fn needs_attention(&self) -> bool {
        self.status.waits_for_capacity()
            || (self.status == DeploymentStatus::Deleting && self.node_id.is_none())
    }
}

/// A status with what calls for attention in its health and restarts, for
/// people: `running`, `running (starting)`, `running (unhealthy, 3 restarts)`
/// (`healthy` and `none` are the normal case and not said: see [`health_note`]).
pub fn status_text(
    status: DeploymentStatus,
    health: Option<DeploymentHealth>,
    restarts: u32,
) -> String {
    match health_note(health, restarts) {
        Some(note) => format!("{} ({note})", status.as_str()),
        None => status.as_str().to_string(),
    }
}

/// What calls for attention in a health and restarts: `starting`,
/// `unhealthy, 3 restarts`, `1 restart`; `None` when nothing does (healthy or
/// no healthcheck, never restarted).
pub fn health_note(health: Option<DeploymentHealth>, restarts: u32) -> Option<String> {
    let mut notes = Vec::new();
    if let Some(health @ (DeploymentHealth::Starting | DeploymentHealth::Unhealthy)) = health {
        notes.push(health.as_str().to_string());
    }
    match restarts {
        0 => {}
        1 => notes.push("1 restart".into()),
        n => notes.push(format!("{n} restarts")),
    }
    (!notes.is_empty()).then(|| notes.join(", "))
}

/// Why a deployment is not placed: counted per reason, as Nomad and kube-scheduler
/// explain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlacementSummary {
    /// For people: e.g. "no node fits: 3 nodes offline, 2 lacked a GPU".
    pub message: String,
    /// How many nodes were considered.
    pub nodes_evaluated: usize,
    /// Nodes rejected per reason (a node counts once, for the first filter it failed).
    pub reasons: BTreeMap<String, usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_and_lost_wait_and_so_does_a_deletion_with_no_node_left() {
        use DeploymentStatus::*;
        let waiting: Vec<_> = (DeploymentStatus::ALL.into_iter())
            .filter(|s| s.waits_for_capacity())
            .collect();
        assert_eq!(waiting, [Pending, Lost]);
        let deployment = |status: DeploymentStatus, node: Option<&str>| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "deployment_id": "d", "template_id": "t", "action": "apply",
                "status": status, "message": "", "node_id": node, "env": {},
                "rendered_compose": "", "revision": 1, "created_at": 0.0, "updated_at": 0.0
            }))
            .expect("deployment")
        };
        for status in DeploymentStatus::ALL {
            for node in [None, Some("n1")] {
                let expected =
                    matches!(status, Pending | Lost) || (status == Deleting && node.is_none());
                assert_eq!(
                    deployment(status, node).needs_attention(),
                    expected,
                    "{status:?} on {node:?}"
                );
            }
        }
    }
}
