//! The dashboard's pages (`GET`): overview, nodes, deployments, deploy, admin.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use miaas_core::access::Permission;
use miaas_core::model::{Deployment, Event, EventFilter};
use minijinja::{Value, context};
use serde::Deserialize;

use super::session::Viewer;
use super::{error_page, page};
use crate::state::AppState;

/// How many events the event lists show.
const EVENTS_SHOWN: usize = 20;
/// How far back the event list of one node or deployment looks, in events.
const EVENTS_SCANNED: u64 = 5_000;
/// How far back the list of every event looks (some may be hidden from the
/// viewer): a page read again at each change reads little.
const LATEST_SCANNED: u64 = 200;

/// The newest events (newest first) of `topic` (all when `None`) the viewer may see.
pub(super) async fn latest_events(
    state: &AppState,
    viewer: &Viewer,
    topic: Option<String>,
) -> Vec<Event> {
    let log = state.service.events();
    let Ok(bounds) = log.bounds().await else {
        return Vec::new();
    };
    let span = if topic.is_some() {
        EVENTS_SCANNED
    } else {
        LATEST_SCANNED
    };
    let after = bounds
        .latest
        .saturating_sub(span)
        .max(bounds.pruned_through);
    let filter = EventFilter {
        topics: topic.into_iter().collect(),
        types: Vec::new(),
        admin: viewer.principal.sees_audit_log(),
    };
    let Ok(Ok(mut follower)) = log.pages(Some(after), filter).await else {
        return Vec::new();
    };
    let mut events: Vec<Event> = Vec::new();
    while let Ok(batch) = follower.read().await {
        if batch.is_empty() {
            break;
        }
        events.extend(batch.iter().map(|published| published.event.clone()));
        let excess = events.len().saturating_sub(EVENTS_SHOWN);
        events.drain(..excess);
    }
    events.reverse();
    events
}

macro_rules! viewer_or_login {
    ($state:expr, $headers:expr) => {
        match $crate::ui::session::Viewer::of(&$state, &$headers).await {
            Ok(viewer) => viewer,
            Err(login) => return login,
        }
    };
}
pub(super) use viewer_or_login;

/// `GET /ui`: the fleet at a glance.
pub async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = viewer_or_login!(state, headers);
    let totals = match state.service.fleet_totals(false).await {
        Ok(totals) => totals,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let events = latest_events(&state, &viewer, None).await;
    let capacity = |key: &str| totals.capacity.get(key).copied().unwrap_or_default();
    let allocated = |key: &str| totals.allocated.get(key).copied().unwrap_or_default();
    const MIB: f64 = 1024.0 * 1024.0;
    let resources = vec![
        context! { name => "CPU cores", used => allocated("cpus"), total => capacity("cpus"), unit => "" },
        context! { name => "Memory (GiB)", used => (allocated("memory_bytes") / MIB / 1024.0 * 10.0).round() / 10.0,
        total => (capacity("memory_bytes") / MIB / 1024.0 * 10.0).round() / 10.0, unit => "" },
        context! { name => "GPUs", used => allocated("gpus"), total => capacity("gpus"), unit => "" },
    ];
    page(
        &viewer,
        state.auth,
        "overview",
        "overview.html",
        context! {
            nodes => totals.nodes.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            deployments => totals.deployments.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            resources => resources,
            events => events,
        },
    )
}

/// Filters of the nodes page.
#[derive(Debug, Default, Deserialize)]
pub struct NodeFilter {
    /// A part of a name, address or tag.
    #[serde(default)]
    q: String,
    /// `online`, `offline` or `cordoned`.
    #[serde(default)]
    status: String,
}

/// `GET /ui/nodes`: every node (with its average GPU utilization), filterable.
pub async fn nodes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<NodeFilter>,
) -> Response {
    let viewer = viewer_or_login!(state, headers);
    let nodes = match state.service.list_nodes().await {
        Ok(nodes) => nodes,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let q = filter.q.trim().to_lowercase();
    let shown: Vec<_> = nodes
        .into_iter()
        .filter(|n| {
            q.is_empty()
                || n.name.to_lowercase().contains(&q)
                || n.ip.contains(&q)
                || n.tags.iter().any(|t| t.to_lowercase().contains(&q))
        })
        .filter(|n| match filter.status.as_str() {
            "" => true,
            "cordoned" => !n.schedulable,
            "online" => n.status == miaas_core::model::NodeStatus::Online,
            "offline" => n.status == miaas_core::model::NodeStatus::Offline,
            _ => true,
        })
        .collect();
    page(
        &viewer,
        state.auth,
        "nodes",
        "nodes.html",
        context! {
            gpu_utilization => super::gpus::utilization_by_node(&shown),
            nodes => shown, q => filter.q, status => filter.status,
        },
    )
}

/// `GET /ui/nodes/{id}`: one node, its GPUs and deployments.
pub async fn node(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(node_id): Path<String>,
) -> Response {
    let viewer = viewer_or_login!(state, headers);
    let node = match state.service.get_node(&node_id).await {
        Ok(node) => node,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let deployments: Vec<Deployment> =
        match state.service.list_deployments_as(&viewer.principal).await {
            Ok(all) => all
                .into_iter()
                .filter(|d| d.node_id.as_deref() == Some(node.id.as_str()) && d.holds_resources())
                .collect(),
            Err(err) => return error_page(&viewer, state.auth, &err),
        };
    let holders: HashMap<u32, &str> = deployments
        .iter()
        .flat_map(|d| d.gpu_ids.iter().map(|g| (*g, d.deployment_id.as_str())))
        .collect();
    let gpus: Vec<Value> = super::gpus::rows(&node, &holders);
    let events = latest_events(&state, &viewer, Some(format!("node:{}", node.id))).await;
    page(
        &viewer,
        state.auth,
        "nodes",
        "node.html",
        context! { node => node, gpus => gpus, deployments => deployments, events => events },
    )
}

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
pub async fn deployments(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filter): Query<DeploymentFilter>,
) -> Response {
    let viewer = viewer_or_login!(state, headers);
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
        statuses => miaas_core::model::DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>() },
    )
}

async fn deployments_and_names(
    state: &AppState,
    viewer: &Viewer,
) -> miaas_core::Result<(Vec<Deployment>, HashMap<String, String>)> {
    let deployments = state.service.list_deployments_as(&viewer.principal).await?;
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
pub async fn deployment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(deployment_id): Path<String>,
    Query(query): Query<DeploymentQuery>,
) -> Response {
    let viewer = viewer_or_login!(state, headers);
    let deployment = match (state.service)
        .get_deployment_as(&viewer.principal, &deployment_id, false)
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
        miaas_core::model::DeploymentStatus::Running | miaas_core::model::DeploymentStatus::Failed
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

/// Which template the deploy page shows.
#[derive(Debug, Default, Deserialize)]
pub struct DeployQuery {
    /// A template's id.
    #[serde(default)]
    template: String,
}

/// `GET /ui/deploy`: pick a template and fill its form, or paste compose.
pub async fn deploy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DeployQuery>,
) -> Response {
    let viewer = viewer_or_login!(state, headers);
    super::actions::deploy_page(
        &state,
        &viewer,
        &query.template,
        &BTreeMap::new(),
        None,
        axum::http::StatusCode::OK,
    )
    .await
}

/// `GET /ui/admin`: users, API tokens, the join token (admins).
pub async fn admin(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = viewer_or_login!(state, headers);
    super::actions::admin_page(&state, &viewer, context! {}).await
}

/// The `403` page when the viewer may not do `permission`.
pub(super) fn refusal(viewer: &Viewer, auth: bool, permission: Permission) -> Option<Response> {
    (viewer.principal.require(permission))
        .err()
        .map(|err| error_page(viewer, auth, &err))
}
