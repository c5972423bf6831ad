//! Deployment rules: apply, remove, read, and the plan (dry run).

use super::Service;
use super::lifecycle::{Planner, deleted_message, placed_message};
use crate::access::Principal;
use crate::compose::{parse_compose, requirements_of};
use crate::host_access::host_access_of;
use crate::model::page::{
    DeploymentKey, Page, PageQuery, deployment_cursor, parse_deployment_cursor,
};
use crate::model::{
    Deployment, DeploymentAck, DeploymentAction, DeploymentRequest, DeploymentSpec,
    DeploymentStatus, NodeRecord, Requirements,
};
use crate::placement::{Candidate, Cluster, PlacementPlan, Reservation};
use crate::templates::{self, SecretValue};
use crate::{Error, Result};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The message a new deployment is acknowledged with, as the original server says it.
pub const ACCEPTED_MESSAGE: &str = "Deployment request accepted and queued for processing";

/// What a plan evaluates: explicit requirements, a compose document, or a
/// template with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanInput {
    /// Requirements as given.
    Requirements(Requirements),
    /// A compose document to derive them from.
    Compose(String),
    /// A template to render, and derive them from what it renders.
    Template {
        /// The template.
        template_id: String,
        /// Its parameters.
        params: BTreeMap<String, serde_json::Value>,
    },
}

impl PlanInput {
    /// The input from a request that names exactly one of the three (`params`
    /// goes with `template_id`).
    pub fn from_parts(
        requirements: Option<Requirements>,
        rendered_compose: Option<String>,
        template_id: Option<String>,
        params: Option<BTreeMap<String, serde_json::Value>>,
    ) -> Result<Self> {
        match (requirements, rendered_compose, template_id) {
            (Some(requirements), None, None) if params.is_none() => {
                Ok(Self::Requirements(requirements))
            }
            (None, Some(compose), None) if params.is_none() => Ok(Self::Compose(compose)),
            (None, None, Some(template_id)) => Ok(Self::Template {
                template_id,
                params: params.unwrap_or_default(),
            }),
            _ => Err(Error::Invalid(
                "give exactly one of `requirements`, `rendered_compose` and `template_id` (with \
                 its `params`)"
                    .into(),
            )),
        }
    }
}

impl Service {
    /// Applies or removes a deployment as `request.action` says. `apply` creates it
    /// and places it, updates it (new revision; placed again when its requirements
    /// changed), or changes nothing when the same spec is sent again; `remove` is
    /// [`Service::delete_deployment`].
    pub async fn submit_deployment(&self, request: &DeploymentRequest) -> Result<DeploymentAck> {
        self.submit_deployment_as(&Principal::Unrestricted, request)
            .await
    }

    /// As [`Self::submit_deployment`], for `caller`: a document with host access
    /// ([`crate::host_access`]) needs the role the settings name (admin by default).
    pub async fn submit_deployment_as(
        &self,
        caller: &Principal,
        request: &DeploymentRequest,
    ) -> Result<DeploymentAck> {
        request.validate()?;
        match request.action {
            DeploymentAction::Apply => {
                let (spec, document, secrets) = self.resolve_spec(request).await?;
                let features = host_access_of(&document);
                caller.require_host_access(self.settings.host_access_role, &features)?;
                self.apply_deployment(&request.deployment_id, spec, secrets)
                    .await
            }
            DeploymentAction::Remove => {
                let mut ack = self.delete_deployment(&request.deployment_id).await?;
                ack.status = "accepted".into();
                Ok(ack)
            }
        }
    }

    /// What an `apply` asks for: the compose document given, or the template
    /// rendered with the parameters (its secrets still to be resolved against the
    /// deployment); with the parsed document, parsed once.
    async fn resolve_spec(
        &self,
        request: &DeploymentRequest,
    ) -> Result<(DeploymentSpec, serde_json::Value, Vec<SecretValue>)> {
        let template_id = request.template_id.clone();
        if let Some(compose) = &request.rendered_compose {
            let document = parse_compose(compose)?;
            // derived also when requirements are given: the document must be valid
            let derived = requirements_of(&document)?;
            let spec = DeploymentSpec {
                template_id,
                rendered_compose: compose.clone(),
                env: request.env.clone().into(),
                requirements: request.requirements.clone().unwrap_or(derived),
                params: None,
                template_version: None,
            };
            return Ok((spec, document, Vec::new()));
        }
        let Some(template) = self.find_template(&request.template_id).await? else {
            return Err(Error::Invalid(format!(
                "template_id: {:?} names no template to render (see GET /api/v1/templates), \
                 and there is no rendered_compose",
                request.template_id
            )));
        };
        let rendering = templates::render(&template, &request.params.clone().unwrap_or_default())?;
        let spec = DeploymentSpec {
            template_id,
            rendered_compose: rendering.compose,
            env: request.env.clone().into(),
            requirements: (request.requirements.clone()).unwrap_or(rendering.requirements),
            params: Some(rendering.params),
            template_version: Some(rendering.template_version),
        };
        Ok((spec, rendering.document, rendering.secrets))
    }

    async fn apply_deployment(
        &self,
        deployment_id: &str,
        spec: DeploymentSpec,
        secrets: Vec<SecretValue>,
    ) -> Result<DeploymentAck> {
        let now = self.now();
        // the change owns what it uses: the store may run it in a transaction shared
        // with concurrent deploys (group commit)
        let (service, deployment_id_owned) = (self.clone(), deployment_id.to_string());
        let change = move |snapshot: &crate::store::Snapshot| {
            let deployment_id = deployment_id_owned.as_str();
            let mut planner = service.planner(now, snapshot);
            let before = planner.get(deployment_id).cloned();
            let spec = with_secrets(&spec, &secrets, before.as_ref())?;
            let after = match &before {
                None => {
                    let mut created = new_deployment(deployment_id, &spec, now);
                    planner.place(&mut created);
                    planner.put(created.clone());
                    created
                }
                Some(existing) if !existing.status.is_removal() && existing.has_spec_of(&spec) => {
                    existing.clone()
                }
                Some(existing) => {
                    let revised = revise(&mut planner, existing, &spec);
                    planner.put(revised.clone());
                    revised
                }
            };
            Ok((planner.into_writes(), (before.map(|b| b.revision), after)))
        };
        let (_, (before, after)) = self.transact_shared(change).await?;
        let message = match before {
            None => ACCEPTED_MESSAGE.to_string(),
            Some(revision) if revision == after.revision => format!(
                "Deployment '{}' is unchanged at revision {}",
                after.deployment_id, after.revision
            ),
            Some(_) => format!(
                "Deployment '{}' updated to revision {} and queued for processing",
                after.deployment_id, after.revision
            ),
        };
        tracing::info!(
            deployment_id = %after.deployment_id,
            revision = after.revision,
            status = after.status.as_str(),
            node_id = after.node_id.as_deref().unwrap_or("-"),
            "deployment applied"
        );
        Ok(DeploymentAck {
            deployment_id: after.deployment_id,
            status: "accepted".into(),
            message,
        })
    }

    /// Marks a deployment for deletion: `deleting` until its node confirms removal
    /// (which releases its reservation), or `deleted` at once when it was never
    /// placed. The answer always says `deleting`.
    pub async fn delete_deployment(&self, deployment_id: &str) -> Result<DeploymentAck> {
        let now = self.now();
        let change = |snapshot: &crate::store::Snapshot| {
            let mut planner = self.planner(now, snapshot);
            let existing = planner
                .get(deployment_id)
                .cloned()
                .ok_or_else(|| deployment_not_found(deployment_id))?;
            if existing.status.is_removal() {
                return Ok((Vec::new(), ()));
            }
            let mut next = existing.clone();
            next.action = DeploymentAction::Remove;
            next.updated_at = now;
            next.placement = None;
            if existing.holds_resources() {
                next.status = DeploymentStatus::Deleting;
                next.message = format!("Deployment '{}' marked for deletion", existing.template_id);
            } else {
                next.status = DeploymentStatus::Deleted;
                next.message = deleted_message(&existing.template_id);
            }
            planner.put(next);
            Ok((planner.into_writes(), ()))
        };
        self.transact(change).await?;
        tracing::info!(%deployment_id, "deployment marked for deletion");
        Ok(DeploymentAck {
            deployment_id: deployment_id.to_string(),
            status: DeploymentStatus::Deleting.as_str().into(),
            message: format!("Deployment '{deployment_id}' marked for deletion"),
        })
    }

    /// One deployment.
    pub async fn get_deployment(&self, deployment_id: &str) -> Result<Deployment> {
        self.store
            .get_deployment(deployment_id)
            .await?
            .ok_or_else(|| deployment_not_found(deployment_id))
    }

    /// Every deployment, oldest first.
    pub async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        self.store.list_deployments().await
    }

    /// One deployment as `viewer` is shown it ([`Principal::show`]): `env` values
    /// in clear only to whoever may and `reveal`s them.
    pub async fn get_deployment_as(
        &self,
        viewer: &Principal,
        deployment_id: &str,
        reveal: bool,
    ) -> Result<Deployment> {
        viewer.show(self.get_deployment(deployment_id).await?, reveal)
    }

    /// Every deployment, oldest first, as `viewer` is shown them (never revealed).
    pub async fn list_deployments_as(&self, viewer: &Principal) -> Result<Vec<Deployment>> {
        (self.list_deployments().await?.into_iter())
            .map(|d| viewer.show(d, false))
            .collect()
    }

    /// [`Self::list_deployments_page`], as `viewer` is shown them (never revealed).
    pub async fn list_deployments_page_as(
        &self,
        viewer: &Principal,
        query: &PageQuery,
    ) -> Result<Page<Deployment>> {
        let page = self.list_deployments_page(query).await?;
        Ok(Page {
            items: (page.items.into_iter())
                .map(|d| viewer.show(d, false))
                .collect::<Result<_>>()?,
            next: page.next,
        })
    }

    /// Ranks every node for the requirements, changing nothing.
    pub async fn plan(&self, input: &PlanInput) -> Result<PlacementPlan> {
        let (requirements, host_access) = match input {
            PlanInput::Requirements(requirements) => {
                requirements.validate()?;
                (requirements.clone(), Vec::new())
            }
            PlanInput::Compose(compose) => {
                let document = parse_compose(compose)?;
                (requirements_of(&document)?, host_access_of(&document))
            }
            PlanInput::Template {
                template_id,
                params,
            } => {
                let rendering = self.render_with(template_id, params).await?;
                (rendering.requirements, host_access_of(&rendering.document))
            }
        };
        let (_, cluster) = self.cluster_view().await?;
        let mut plan = self.engine.plan(cluster.candidates(), &requirements);
        plan.host_access = host_access;
        Ok(plan)
    }

    /// The nodes, and the nodes with their reservations as placement sees them now.
    pub(super) async fn cluster_view(&self) -> Result<(Vec<NodeRecord>, Cluster)> {
        let mut nodes = self.store.list_nodes().await?;
        self.heartbeats.overlay(&mut nodes);
        let placed = self.store.reservations().await?;
        let cluster = self.ledger_of(&nodes, &placed);
        Ok((nodes, cluster))
    }

    /// The ledger of `nodes` (heartbeats laid over) with what is placed on them.
    pub(super) fn ledger_of(&self, nodes: &[NodeRecord], placed: &[Reservation]) -> Cluster {
        let now = self.now();
        let timeout = self.settings.heartbeat_timeout.as_secs_f64();
        let candidates = nodes
            .iter()
            .map(|n| Candidate::from_record(n, n.is_online(now, timeout)));
        Cluster::from_reservations(candidates, placed)
    }

    /// One page of deployments, oldest first: at most `query.limit`, after
    /// `query.cursor`.
    pub async fn list_deployments_page(&self, query: &PageQuery) -> Result<Page<Deployment>> {
        let limit = query.limit()?;
        let after = query
            .cursor
            .as_deref()
            .map(parse_deployment_cursor)
            .transpose()?;
        let mut items = self
            .store
            .deployments_page(after.as_ref(), limit + 1)
            .await?;
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|d| {
                deployment_cursor(&DeploymentKey {
                    created_at: d.created_at,
                    deployment_id: d.deployment_id.clone(),
                })
            })
        });
        Ok(Page {
            items,
            next: next.flatten(),
        })
    }
}

fn new_deployment(deployment_id: &str, spec: &DeploymentSpec, now: f64) -> Deployment {
    Deployment {
        deployment_id: deployment_id.to_string(),
        template_id: spec.template_id.clone(),
        action: DeploymentAction::Apply,
        status: DeploymentStatus::Pending,
        message: String::new(),
        node_id: None,
        previous_node_id: None,
        requirements: spec.requirements.clone(),
        gpu_ids: Vec::new(),
        placement: None,
        env: spec.env.clone(),
        rendered_compose: spec.rendered_compose.clone(),
        params: spec.params.clone(),
        template_version: spec.template_version,
        revision: 1,
        created_at: now,
        updated_at: now,
    }
}

/// `spec` with the values of the template's secret parameters in its
/// environment: given, else what `existing` had (a generated secret is made once
/// per deployment), else the default or a new generated one.
fn with_secrets<'a>(
    spec: &'a DeploymentSpec,
    secrets: &[SecretValue],
    existing: Option<&Deployment>,
) -> Result<Cow<'a, DeploymentSpec>> {
    if secrets.is_empty() {
        return Ok(Cow::Borrowed(spec));
    }
    let mut env: BTreeMap<String, String> = (&spec.env).into();
    for secret in secrets {
        let kept = existing.and_then(|d| d.env.get(&secret.env));
        env.insert(secret.env.clone(), secret.resolve(kept)?);
    }
    let mut spec = spec.clone();
    spec.env = env.into();
    Ok(Cow::Owned(spec))
}

/// A new revision of `existing`: kept on its node when its requirements did not
/// change and it still holds its place there, placed again otherwise.
fn revise(planner: &mut Planner<'_>, existing: &Deployment, spec: &DeploymentSpec) -> Deployment {
    let mut next = existing.clone();
    next.template_id = spec.template_id.clone();
    next.rendered_compose = spec.rendered_compose.clone();
    next.env = spec.env.clone();
    next.params = spec.params.clone();
    next.template_version = spec.template_version;
    next.action = DeploymentAction::Apply;
    next.revision = existing.revision.saturating_add(1);
    next.updated_at = planner.now();
    let requirements = &spec.requirements;
    let keeps_place = existing.holds_resources()
        && !existing.status.is_removal()
        && &existing.requirements == requirements;
    if keeps_place {
        if existing.status != DeploymentStatus::Lost {
            next.status = DeploymentStatus::Scheduled;
        }
        let node = existing.node_id.as_deref().unwrap_or_default();
        next.message = placed_message(&next.template_id, node);
        return next;
    }
    // Release with the old requirements, then place with the new ones.
    planner.release(existing);
    next.requirements = requirements.clone();
    let old_node = next.node_id.take();
    let old_had_copy = existing.holds_resources();
    planner.place(&mut next);
    if old_had_copy && old_node.is_some() && old_node != next.node_id {
        next.previous_node_id = old_node;
    }
    next
}

pub(super) fn deployment_not_found(deployment_id: &str) -> Error {
    Error::NotFound(format!("deployment {deployment_id} not found"))
}
