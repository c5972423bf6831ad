//! The dashboard's deploy form: pick a template and fill its parameters, or
//! paste a compose document; preview where it would be placed; submit it.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use miaas_core::model::{DeploymentAction, DeploymentRequest};
use miaas_core::service::PlanInput;
use minijinja::context;
use serde::Deserialize;

use super::guard::{Checked, Fields, Permitted, field};
use super::page::{error_page, page_with_status, see_other};
use super::session::Viewer;
use super::view::render;
use crate::auth::{Deploy, Plan};
use crate::state::AppState;

/// Which template the deploy page shows.
#[derive(Debug, Default, Deserialize)]
pub struct DeployQuery {
    /// A template's id.
    #[serde(default)]
    template: String,
}

/// `GET /ui/deploy`: pick a template and fill its form, or paste compose.
pub async fn form(
    State(state): State<AppState>,
    Query(query): Query<DeployQuery>,
    Permitted { viewer, .. }: Permitted<Deploy>,
) -> Response {
    deploy_page(
        &state,
        &viewer,
        &query.template,
        &BTreeMap::new(),
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /ui/deploy`: deploys, then shows the deployment; the form again with
/// the server's message when refused.
pub async fn submit(
    State(state): State<AppState>,
    Checked { viewer, form, .. }: Checked<Deploy>,
) -> Response {
    let request = request_of(&form);
    match state
        .service
        .submit_deployment(&viewer.principal, &request)
        .await
    {
        Ok(ack) => see_other(&format!("/ui/deployments/{}", ack.deployment_id)),
        Err(err) => {
            let template = field(&form, "template").unwrap_or_default().to_string();
            let status = crate::error::status_of(&err);
            let values: BTreeMap<String, String> = form.into_iter().collect();
            deploy_page(
                &state,
                &viewer,
                &template,
                &values,
                Some(err.to_string()),
                status,
            )
            .await
        }
    }
}

/// `POST /ui/deploy/preview`: where the form's deployment would be placed (a
/// fragment for htmx).
pub async fn preview(
    State(state): State<AppState>,
    Checked { form, .. }: Checked<Plan>,
) -> Response {
    let request = request_of(&form);
    let input = match (request.rendered_compose, request.params) {
        (Some(compose), _) => PlanInput::Compose {
            compose,
            env: request.env,
        },
        (None, params) => PlanInput::Template {
            template_id: request.template_id,
            params: params.unwrap_or_default(),
        },
    };
    let (plan, error) = match state.service.plan(&input).await {
        Ok(plan) => (Some(plan), None),
        Err(err) => (None, Some(err.to_string())),
    };
    render(
        StatusCode::OK,
        "plan.html",
        context! { plan => plan, error => error },
    )
}

/// The deploy page: the catalog, the form of `template` with `values`, and an
/// error to show. Its callers hold a [`Permitted`] or [`Checked`] of [`Deploy`].
async fn deploy_page(
    state: &AppState,
    viewer: &Viewer,
    template: &str,
    values: &BTreeMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let templates = match state.service.list_templates(None).await {
        Ok(list) => list,
        Err(err) => return error_page(viewer, state.auth, &err),
    };
    let chosen = if template.is_empty() {
        None
    } else {
        match state.service.get_template(template).await {
            Ok(t) => Some(t),
            Err(err) => return error_page(viewer, state.auth, &err),
        }
    };
    page_with_status(
        viewer,
        state.auth,
        "deploy",
        "deploy.html",
        context! { templates => templates, template => chosen, values => values, error => error },
        status,
    )
}

/// What the deploy form asks for: a template's parameters, or a compose document.
fn request_of(form: &Fields) -> DeploymentRequest {
    let template = field(form, "template").unwrap_or_default().to_string();
    let deployment_id = field(form, "deployment_id")
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .unwrap_or(&template)
        .to_string();
    let env: BTreeMap<String, String> = field(form, "env")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    let (rendered_compose, params) = if field(form, "mode") == Some("compose") {
        (field(form, "compose").map(str::to_string), None)
    } else {
        (None, Some(params_of(form)))
    };
    DeploymentRequest {
        template_id: if template.is_empty() {
            deployment_id.clone()
        } else {
            template
        },
        deployment_id,
        rendered_compose,
        params,
        env,
        action: DeploymentAction::Apply,
        requirements: None,
    }
}

/// The `param.NAME` fields given (empty ones left to their defaults).
fn params_of(form: &Fields) -> BTreeMap<String, serde_json::Value> {
    let mut params = BTreeMap::new();
    for (key, value) in form {
        if let Some(name) = key.strip_prefix("param.") {
            if value.is_empty() {
                params.remove(name);
            } else {
                params.insert(name.to_string(), serde_json::Value::String(value.clone()));
            }
        }
    }
    params
}
