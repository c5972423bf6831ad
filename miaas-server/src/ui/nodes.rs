//! The dashboard's nodes: the list (filterable), one node's page with its GPUs,
//! deployments and events, and the node operations (cordon, uncordon, drain,
//! remove).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use miaas_core::model::{Deployment, NodeStatus, NodeUpdate};
use minijinja::{Value, context};
use serde::Deserialize;

use super::events::latest_events;
use super::gpus;
use super::guard::Checked;
use super::page::{error_page, page, see_other};
use super::session::Viewer;
use crate::auth::{DeregisterNodes, ManageNodes};
use crate::state::AppState;

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
pub async fn list(
    State(state): State<AppState>,
    Query(filter): Query<NodeFilter>,
    viewer: Viewer,
) -> Response {
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
            "online" => n.status == NodeStatus::Online,
            "offline" => n.status == NodeStatus::Offline,
            _ => true,
        })
        .collect();
    page(
        &viewer,
        state.auth,
        "nodes",
        "nodes.html",
        context! {
            gpu_utilization => gpus::utilization_by_node(&shown),
            nodes => shown, q => filter.q, status => filter.status,
        },
    )
}

/// `GET /ui/nodes/{id}`: one node, its GPUs and deployments.
pub async fn show(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
    viewer: Viewer,
) -> Response {
    let node = match state.service.get_node(&node_id).await {
        Ok(node) => node,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let deployments: Vec<Deployment> = match state.service.list_deployments(&viewer.principal).await
    {
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
    let gpus: Vec<Value> = gpus::rows(&node, &holders);
    let events = latest_events(&state, &viewer, Some(format!("node:{}", node.id))).await;
    page(
        &viewer,
        state.auth,
        "nodes",
        "node.html",
        context! { node => node, gpus => gpus, deployments => deployments, events => events },
    )
}

/// `POST /ui/nodes/{id}/{cordon|uncordon|drain}`; any other action is `404`
/// (`remove` has its own route, [`remove`]).
pub async fn operate(
    State(state): State<AppState>,
    Path((node_id, action)): Path<(String, String)>,
    Checked { viewer, .. }: Checked<ManageNodes>,
) -> Response {
    let service = &state.service;
    let done = match action.as_str() {
        "cordon" | "uncordon" => {
            let update = NodeUpdate {
                schedulable: Some(action == "uncordon"),
                tags: None,
            };
            service
                .update_node(&viewer.principal, &node_id, &update)
                .await
                .map(|_| ())
        }
        "drain" => service
            .drain_node(&viewer.principal, &node_id)
            .await
            .map(|_| ()),
        _ => Err(miaas_core::Error::NotFound(format!("no action {action:?}"))),
    };
    match done {
        Ok(()) => see_other(&format!("/ui/nodes/{node_id}")),
        Err(err) => error_page(&viewer, state.auth, &err),
    }
}

/// `POST /ui/nodes/{id}/remove`: deregisters the node (admins), then shows the list.
pub async fn remove(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
    Checked { viewer, .. }: Checked<DeregisterNodes>,
) -> Response {
    match (state.service)
        .deregister_node(&viewer.principal, &node_id)
        .await
    {
        Ok(_) => see_other("/ui/nodes"),
        Err(err) => error_page(&viewer, state.auth, &err),
    }
}
