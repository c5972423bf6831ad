//! Deployment rules: apply, remove, read, and the plan (dry run).

use super::Service;
use super::lifecycle::{Planner, deleted_message, placed_message};
use crate::access::Principal;
use crate::compose::baseline::host_access_of;
use crate::compose::derive;
use crate::compose::node_document::resolve;
use crate::compose::runnable::check_runnable;
use crate::model::page::{
    DeploymentKey, Page, PageQuery, deployment_cursor, parse_deployment_cursor,
};
use crate::model::{
    Deployment, DeploymentAck, DeploymentAction, DeploymentRequest, DeploymentSpec,
    DeploymentStatus, Env, Requirements,
};
use crate::placement::PlacementPlan;
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
    /// A compose document to derive them from, interpolated with `env` as a
    /// deployment's would be.
    Compose {
        /// The document.
        compose: String,
        /// The environment it is interpolated with.
        env: BTreeMap<String, String>,
    },
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
        env: Option<BTreeMap<String, String>>,
        template_id: Option<String>,
        params: Option<BTreeMap<String, serde_json::Value>>,
    ) -> Result<Self> {
        if env.is_some() && rendered_compose.is_none() {
            return Err(Error::Invalid(
                "env: give it with the `rendered_compose` it is interpolated into".into(),
            ));
        }
        match (requirements, rendered_compose, template_id) {
            (Some(requirements), None, None) if params.is_none() => {
                Ok(Self::Requirements(requirements))
            }
            (None, Some(compose), None) if params.is_none() => Ok(Self::Compose {
                compose,
                env: env.unwrap_or_default(),
            }),
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
    /// [`Service::delete_deployment`]. The document is judged for `caller` as
    /// Compose will run it (interpolated with the deployment's environment), and
    /// one with features outside what operators may run
    /// ([`crate::compose::baseline`]) needs the role the settings name (admin by
    /// default).
    pub async fn submit_deployment(
        &self,
        caller: &Principal,
        request: &DeploymentRequest,
    ) -> Result<DeploymentAck> {
        request.validate()?;
        match request.action {
            DeploymentAction::Apply => {
                let (spec, secrets) = self.resolve_spec(request).await?;
                let existing = if secrets.is_empty() {
                    None
                } else {
                    // the secrets it keeps, for the judgement (checked again when
                    // the change is decided)
                    (self.fleet.state().await?.snapshot())
                        .find(&request.deployment_id)
                        .cloned()
                };
                let kept = |name: &str| kept_secret(existing.as_ref(), &spec.template_id, name);
                let resolved = with_secrets(&spec, &secrets, kept)?;
                let judged = self.judged(caller, &resolved, &secrets)?;
                self.apply_deployment(caller, &request.deployment_id, spec, judged, secrets)
                    .await
            }
            DeploymentAction::Remove => {
                let mut ack = self
                    .delete_deployment(caller, &request.deployment_id)
                    .await?;
                ack.status = "accepted".into();
                Ok(ack)
            }
        }
    }

    /// `spec` judged for `caller` as Compose will run it: its document interpolated
    /// with its environment must resolve, stay within what `caller` may run, and
    /// state valid requirements (which are its requirements unless given). An
    /// error never shows the values of the template's `secrets`.
    fn judged(
        &self,
        caller: &Principal,
        spec: &DeploymentSpec,
        secrets: &[SecretValue],
    ) -> Result<DeploymentSpec> {
        let check = || {
            let resolved = resolve(&spec.rendered_compose, &spec.env)?;
            let features = host_access_of(&resolved);
            caller.require_host_access(self.settings.host_access_role, &features)?;
            check_runnable(&resolved, &spec.env)?;
            derive(&resolved, &spec.env).map(|(requirements, _)| requirements)
        };
        let derived = check().map_err(|err| {
            let values = secrets.iter().filter_map(|s| spec.env.get(&s.env));
            without_values(err, values)
        })?;
        let mut judged = spec.clone();
        judged.requirements = if spec.requirements_given {
            // given requirements say what to reserve; the ports and names the
            // document takes are taken all the same
            spec.requirements.clone().with_document_resources(&derived)
        } else {
            derived
        };
        Ok(judged)
    }

    /// What an `apply` asks for: the compose document given, or the template
    /// rendered with the parameters (its secrets still to be resolved against the
    /// deployment).
    async fn resolve_spec(
        &self,
        request: &DeploymentRequest,
    ) -> Result<(DeploymentSpec, Vec<SecretValue>)> {
        let template_id = request.template_id.clone();
        let requirements_given = request.requirements.is_some();
        let requirements = request.requirements.clone().unwrap_or_default();
        if let Some(compose) = &request.rendered_compose {
            let spec = DeploymentSpec {
                template_id,
                rendered_compose: compose.clone(),
                env: request.env.clone().into(),
                requirements,
                requirements_given,
                params: None,
                template_version: None,
            };
            return Ok((spec, Vec::new()));
        }
        let Some(template) = self.find_template(&request.template_id).await? else {
            return Err(Error::Invalid(format!(
                "template_id: {:?} names no template to render (see GET /api/v1/templates), \
                 and there is no rendered_compose",
                request.template_id
            )));
        };
        let params = request.params.clone().unwrap_or_default();
        let rendering = templates::render_bounded(&self.renderer, &template, &params).await?;
        let spec = DeploymentSpec {
            template_id,
            rendered_compose: rendering.compose,
            env: request.env.clone().into(),
            requirements,
            requirements_given,
            params: Some(rendering.params),
            template_version: Some(rendering.template_version),
        };
        Ok((spec, rendering.secrets))
    }

    /// Creates, updates or keeps deployment `deployment_id` as `spec` (its secrets
    /// still to resolve against the deployment) asks; `judged` is `spec` with
    /// them resolved and judged for `caller`, judged again should the deployment
    /// have changed meanwhile so that its kept secrets differ.
    async fn apply_deployment(
        &self,
        caller: &Principal,
        deployment_id: &str,
        spec: DeploymentSpec,
        judged: DeploymentSpec,
        secrets: Vec<SecretValue>,
    ) -> Result<DeploymentAck> {
        let now = self.now();
        // the change owns what it uses: the store may run it in a transaction shared
        // with concurrent deploys (group commit)
        let (service, deployment_id_owned) = (self.clone(), deployment_id.to_string());
        let judged_for = caller.clone();
        let change = move |state: &crate::fleet::FleetState| {
            let deployment_id = deployment_id_owned.as_str();
            let mut planner = service.planner(now, state);
            let before = planner.get(deployment_id).cloned();
            let spec = if secrets.is_empty() {
                Cow::Borrowed(&judged)
            } else {
                let kept = |name: &str| {
                    kept_secret(before.as_ref(), &spec.template_id, name)
                        .or_else(|| judged.env.get(name))
                };
                let resolved = with_secrets(&spec, &secrets, kept)?;
                if resolved.env == judged.env {
                    Cow::Borrowed(&judged)
                } else {
                    Cow::Owned(service.judged(&judged_for, &resolved, &secrets)?)
                }
            };
            let spec = spec.as_ref();
            let after = match &before {
                None => {
                    let mut created = new_deployment(deployment_id, spec, now);
                    planner.place(&mut created);
                    planner.put(created.clone());
                    created
                }
                Some(existing) if !existing.status.is_removal() && existing.has_spec_of(spec) => {
                    existing.clone()
                }
                Some(existing) => {
                    let revised = revise(&mut planner, existing, spec);
                    planner.put(revised.clone());
                    revised
                }
            };
            Ok((planner.into_writes(), (before.map(|b| b.revision), after)))
        };
        let (_, (before, after)) = self.transact(Some(caller), change).await?;
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
    pub async fn delete_deployment(
        &self,
        caller: &Principal,
        deployment_id: &str,
    ) -> Result<DeploymentAck> {
        let now = self.now();
        let (service, id) = (self.clone(), deployment_id.to_string());
        let change = move |state: &crate::fleet::FleetState| {
            let mut planner = service.planner(now, state);
            let existing = planner
                .get(&id)
                .cloned()
                .ok_or_else(|| deployment_not_found(&id))?;
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
        self.transact(Some(caller), change).await?;
        tracing::info!(%deployment_id, "deployment marked for deletion");
        Ok(DeploymentAck {
            deployment_id: deployment_id.to_string(),
            status: DeploymentStatus::Deleting.as_str().into(),
            message: format!("Deployment '{deployment_id}' marked for deletion"),
        })
    }

    /// One deployment, its secrets in clear: only what the service itself does
    /// with a deployment reads it so (callers get [`Self::get_deployment`]).
    pub(super) async fn deployment_in_clear(&self, deployment_id: &str) -> Result<Deployment> {
        (self.fleet.state().await?.snapshot())
            .find(deployment_id)
            .cloned()
            .ok_or_else(|| deployment_not_found(deployment_id))
    }

    /// Every deployment, oldest first, secrets in clear.
    async fn deployments_in_clear(&self) -> Result<Vec<Deployment>> {
        let state = self.fleet.state().await?;
        Ok(state.snapshot().deployments().cloned().collect())
    }

    /// One deployment as `viewer` is shown it ([`Principal::show`]): `env` values
    /// in clear only to whoever may and `reveal`s them.
    pub async fn get_deployment(
        &self,
        viewer: &Principal,
        deployment_id: &str,
        reveal: bool,
    ) -> Result<Deployment> {
        // endpoints first: they are worked out of the environment in clear
        let deployment = self.deployment_in_clear(deployment_id).await?;
        let mut with = self.with_endpoints(vec![deployment]).await?;
        let deployment = with
            .pop()
            .ok_or_else(|| deployment_not_found(deployment_id))?;
        viewer.show(deployment, reveal)
    }

    /// Every deployment, oldest first, as `viewer` is shown them (never revealed).
    pub async fn list_deployments(&self, viewer: &Principal) -> Result<Vec<Deployment>> {
        let all = self.deployments_in_clear().await?;
        (self.with_endpoints(all).await?.into_iter())
            .map(|d| viewer.show(d, false))
            .collect()
    }

    /// One page of deployments, oldest first (at most `query.limit`, after
    /// `query.cursor`), as `viewer` is shown them (never revealed).
    pub async fn list_deployments_page(
        &self,
        viewer: &Principal,
        query: &PageQuery,
    ) -> Result<Page<Deployment>> {
        let page = self.deployments_page_in_clear(query).await?;
        let items = (self.with_endpoints(page.items).await?.into_iter())
            .map(|d| viewer.show(d, false))
            .collect::<Result<_>>()?;
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// Ranks every node for the requirements, changing nothing.
    pub async fn plan(&self, input: &PlanInput) -> Result<PlacementPlan> {
        let (compose, env) = match input {
            PlanInput::Requirements(requirements) => {
                requirements.validate()?;
                let ledger = self.fleet.state().await?.ledger_at(self.now());
                return Ok(self.engine.plan(ledger.candidates(), requirements));
            }
            PlanInput::Compose { compose, env } => {
                for name in env.keys() {
                    crate::validate::env_key(name)?;
                }
                (Cow::Borrowed(compose), Env::from(env.clone()))
            }
            PlanInput::Template {
                template_id,
                params,
            } => {
                let rendering = self.render_with(template_id, params).await?;
                (Cow::Owned(rendering.compose), Env::default())
            }
        };
        let document = resolve(&compose, &env)?;
        // what cannot run at all is refused when deployed; the plan still shows
        // what it asks of the host
        let host_access = host_access_of(&document);
        let (requirements, derived) = derive(&document, &env)?;
        let ledger = self.fleet.state().await?.ledger_at(self.now());
        let mut plan = self.engine.plan(ledger.candidates(), &requirements);
        plan.host_access = host_access;
        plan.derived = derived;
        Ok(plan)
    }

    /// One page of deployments, oldest first, secrets in clear.
    async fn deployments_page_in_clear(&self, query: &PageQuery) -> Result<Page<Deployment>> {
        let limit = query.limit()?;
        let after = query
            .cursor
            .as_deref()
            .map(parse_deployment_cursor)
            .transpose()?;
        let state = self.fleet.state().await?;
        let mut items = state.snapshot().deployments_page(after.as_ref(), limit + 1);
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
        health: None,
        restarts: 0,
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
        endpoints: Vec::new(),
    }
}

/// `spec` with the values of the template's secret parameters in its
/// environment: given, else what `kept` holds (what the deployment had: a
/// generated secret is made once per deployment), else the default or a new
/// generated one.
fn with_secrets<'a>(
    spec: &DeploymentSpec,
    secrets: &[SecretValue],
    kept: impl Fn(&str) -> Option<&'a str>,
) -> Result<DeploymentSpec> {
    if secrets.is_empty() {
        return Ok(spec.clone());
    }
    let mut env: BTreeMap<String, String> = (&spec.env).into();
    for secret in secrets {
        env.insert(secret.env.clone(), secret.resolve(kept(&secret.env))?);
    }
    let mut spec = spec.clone();
    spec.env = env.into();
    Ok(spec)
}

/// The value secret `name` keeps from `existing`: only when it was made from the
/// same template, whose document is the one the secret was made for (a template
/// of someone else's, deployed under the id, must not be handed the secret).
fn kept_secret<'a>(
    existing: Option<&'a Deployment>,
    template_id: &str,
    name: &str,
) -> Option<&'a str> {
    existing
        .filter(|d| d.template_id == template_id)
        .and_then(|d| d.env.get(name))
}

/// `err` with every (non-empty) one of `values` in its message shown as `***`.
fn without_values<'a>(err: Error, values: impl Iterator<Item = &'a str>) -> Error {
    let values: Vec<&str> = values.filter(|v| !v.is_empty()).collect();
    if values.is_empty() {
        return err;
    }
    let hide = |mut text: String| {
        for value in &values {
            text = text.replace(value, crate::model::REDACTED);
        }
        text
    };
    match err {
        Error::Invalid(text) => Error::Invalid(hide(text)),
        Error::Forbidden(text) => Error::Forbidden(hide(text)),
        other => other,
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{Role, TemplateSpec};
    use crate::service::ServiceSettings;

    /// An admin deploys the built-in `postgres` template: its password is
    /// generated and kept in the deployment's env, which operators may not
    /// reveal. An operator adds a template of theirs with a secret parameter of
    /// the same name and deploys it under the admin's id: the kept password
    /// fills it, and the refusal names the feature with its value. Nothing is
    /// changed and no node is needed.
    #[tokio::test]
    async fn an_operator_cannot_read_a_kept_secret_through_a_template_of_theirs() {
        let store = crate::store::connect("sqlite::memory:").await.unwrap();
        let service = Service::new(store, ServiceSettings::default());
        let request = |template: &str| DeploymentRequest {
            deployment_id: "db".into(),
            template_id: template.into(),
            rendered_compose: None,
            params: Some(BTreeMap::new()),
            env: BTreeMap::new(),
            action: DeploymentAction::Apply,
            requirements: None,
        };
        service
            .submit_deployment(&Principal::Unrestricted, &request("postgres"))
            .await
            .unwrap();
        let kept = service
            .get_deployment(&Principal::Unrestricted, "db", true)
            .await
            .unwrap()
            .env;
        let secret = kept.get("MIAAS_SECRET_PASSWORD").unwrap().to_string();
        let spec: TemplateSpec = serde_json::from_value(json!({
            "parameters": [{"name": "password", "type": "secret"}],
            "compose": "services:\n  x:\n    image: busybox\n    network_mode: {{ password }}\n",
        }))
        .unwrap();
        service
            .create_template(&Principal::Unrestricted, "mine", spec)
            .await
            .unwrap();
        let operator = Principal::User {
            username: "op".into(),
            role: Role::Operator,
        };
        let answer = service.submit_deployment(&operator, &request("mine")).await;
        let said = format!("{answer:?}");
        assert!(!said.contains(&secret), "{said}");
        // nor when the template keeps its id: the refusal hides the value
        let mut same = request("mine");
        same.deployment_id = "mine-db".into();
        let given = BTreeMap::from([("password".to_string(), json!("host"))]);
        same.params = Some(given);
        service
            .submit_deployment(&Principal::Unrestricted, &same)
            .await
            .unwrap();
        let mut again = request("mine");
        again.deployment_id = "mine-db".into();
        let said = format!("{:?}", service.submit_deployment(&operator, &again).await);
        assert!(said.contains("network_mode: ***"), "{said}");
        // and a template of another id starts afresh: the admin's password is
        // not the operator's deployment's
        let spec: TemplateSpec = serde_json::from_value(json!({
            "parameters": [{"name": "password", "type": "secret", "generate": "hex"}],
            "compose": "services:\n  x:\n    image: busybox\n    environment: {P: {{ password }}}\n",
        }))
        .unwrap();
        service
            .create_template(&Principal::Unrestricted, "harmless", spec)
            .await
            .unwrap();
        service
            .submit_deployment(&operator, &request("harmless"))
            .await
            .unwrap();
        let now = service
            .get_deployment(&Principal::Unrestricted, "db", true)
            .await
            .unwrap()
            .env;
        let regenerated = now.get("MIAAS_SECRET_PASSWORD").unwrap();
        assert_ne!(regenerated, secret, "not carried into another template");
    }
}
