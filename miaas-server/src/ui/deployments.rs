//! The dashboard's deployments: the list (filterable), one deployment's page
//! with its document, events and live logs, and deleting one. The deploy form
//! is `deploy.rs`'s.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use miaas_core::model::{Deployment, DeploymentStatus};
use minijinja::context;
use serde::Deserialize;

use super::events::latest_events;
use super::guard::Checked;
use super::page::{error_page, page, see_other};
use super::session::Viewer;
use crate::auth::Deploy;
use crate::state::AppState;

/// Filters of the deployments page.
#[derive(Debug, Default, Deserialize)]
pub struct DeploymentFilter {
    /// A status.
    #[serde(default)]
    status: String,
    /// A part of the id or template.
    #[serde(default)]
    q: String,
}

/// `GET /ui/deployments`: every deployment, filterable.
pub async fn list(
    State(state): State<AppState>,
    Query(filter): Query<DeploymentFilter>,
    viewer: Viewer,
) -> Response {
    let (all, names) = match deployments_and_names(&state, &viewer).await {
        Ok(found) => found,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let q = filter.q.trim().to_lowercase();
    let shown: Vec<_> = all
        .into_iter()
        .rev()
        .filter(|d| filter.status.is_empty() || d.status.as_str() == filter.status)
        .filter(|d| {
            q.is_empty()
                || d.deployment_id.to_lowercase().contains(&q)
                || d.template_id.to_lowercase().contains(&q)
        })
        .collect();
    page(
        &viewer,
        state.auth,
        "deployments",
        "deployments.html",
        context! { deployments => shown, names => names, status => filter.status, q => filter.q,
        statuses => DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() },
    )
}

/// The deployments the viewer may see, and every node's name by id.
async fn deployments_and_names(
    state: &AppState,
    viewer: &Viewer,
) -> miaas_core::Result<(Vec<Deployment>, HashMap<String, String>)> {
    let deployments = state.service.list_deployments(&viewer.principal).await?;
    let names = (state.service.list_nodes().await?)
        .into_iter()
        .map(|n| (n.id, n.name))
        .collect();
    Ok((deployments, names))
}

/// Whether the deployment page connects to the logs.
#[derive(Debug, Default, Deserialize)]
pub struct DeploymentQuery {
    /// `1` shows the live logs.
    #[serde(default)]
    logs: String,
}

/// `GET /ui/deployments/{id}`: one deployment, its document, events and logs.
pub async fn show(
    State(state): State<AppState>,
    Path(deployment_id): Path<String>,
    Query(query): Query<DeploymentQuery>,
    viewer: Viewer,
) -> Response {
    let deployment = match (state.service)
        .get_deployment(&viewer.principal, &deployment_id, false)
        .await
    {
        Ok(d) => d,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let node_name = match &deployment.node_id {
        Some(id) => state.service.get_node(id).await.ok().map(|n| n.name),
        None => None,
    };
    let events = latest_events(&state, &viewer, Some(format!("deployment:{deployment_id}"))).await;
    let requirements = serde_json::to_string_pretty(&deployment.requirements).unwrap_or_default();
    let logs = matches!(
        deployment.status,
        DeploymentStatus::Running | DeploymentStatus::Failed
    );
    let show_logs = logs && !query.logs.is_empty();
    page(
        &viewer,
        state.auth,
        "deployments",
        "deployment.html",
        context! { d => deployment, node_name => node_name, events => events,
        requirements => requirements, logs => logs, show_logs => show_logs,
        stream_logs => if show_logs { deployment_id.clone() } else { String::new() } },
    )
}

/// `POST /ui/deployments/{id}/delete`: deletes it, then shows it.
pub async fn delete(
    State(state): State<AppState>,
    Path(deployment_id): Path<String>,
    Checked { viewer, .. }: Checked<Deploy>,
) -> Response {
    match (state.service)
        .delete_deployment(&viewer.principal, &deployment_id)
        .await
    {
        Ok(_) => see_other(&format!("/ui/deployments/{deployment_id}")),
        Err(err) => error_page(&viewer, state.auth, &err),
    }
}
