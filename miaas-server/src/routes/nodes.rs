//! `/api/v1/nodes`: registration, listing, heartbeats.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use miaas_core::model::page::PageQuery;
use miaas_core::model::{
    DesiredState, DesiredStateQuery, Heartbeat, HeartbeatAck, Node, NodeRegistration, NodeUpdate,
    RegistrationResponse,
};
use miaas_core::service::NodeEvacuation;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, Caller, DeregisterNodes, ManageNodes, NodeCredential, Read};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::page_cache::CachedPage;
use crate::routes::{json_array, paged_json};
use crate::state::AppState;

/// The node routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_node))
        .routes(routes!(list_nodes))
        .routes(routes!(get_node, update_node, deregister_node))
        .routes(routes!(heartbeat))
        .routes(routes!(drain_node))
        .routes(routes!(desired_state))
}

/// Register a node, or update the node of the same name.
///
/// A new `name` needs `Authorization: Bearer <join token>`. A known `name` keeps
/// its `node_id` and gets a fresh `node_token` (the previous one stops working at
/// once), but only for proof of being that node: its current node token, or an
/// admin's credential. With the join token alone, a known name is `409` and
/// nothing changes.
#[utoipa::path(
    post, path = "/api/v1/nodes/register", tag = "nodes",
    request_body = NodeRegistration,
    security(("join_token" = []), ("node_token" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = RegistrationResponse),
        AuthErrors,
        (status = 409, description = "The name is taken, and the join token cannot re-register it", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn register_node(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiJson(registration): ApiJson<NodeRegistration>,
) -> Result<(StatusCode, Json<RegistrationResponse>), ApiError> {
    let credentials = state.service.register_node(&caller, &registration).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegistrationResponse {
            node_id: credentials.node_id,
            node_token: credentials.node_token,
            control_plane_url: state.public_url.to_string(),
        }),
    ))
}

/// List nodes by name with their capabilities, status and latest metrics (viewer):
/// up to `limit` (default and most 1000); `X-Next-Cursor` and `Link` name the next
/// page when there is one.
#[utoipa::path(
    get, path = "/api/v1/nodes", tag = "nodes",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of nodes, by name", body = Vec<Node>, headers(
            ("X-Next-Cursor" = String, description = "The `cursor` of the next page, when there is one"),
            ("Link" = String, description = "`<...>; rel=\"next\"`, when there is a next page"),
        )),
        AuthErrors,
        (status = 422, description = "Invalid limit or cursor", body = ErrorBody),
    )
)]
async fn list_nodes(
    State(state): State<AppState>,
    _: Allowed<Read>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let service = &state.service;
    let version = service.node_views_version().await.ok();
    if let Some(hit) = version.and_then(|v| state.node_pages.get(v, &query, service.now())) {
        return Ok(paged_json("/api/v1/nodes", &query, hit.body, hit.next));
    }
    let page = service.list_nodes_page(&query).await?;
    let body = json_array(&page.items)?;
    if let Some(validity) = service.node_page_validity(version, &page.items).await {
        let kept = CachedPage {
            body: body.clone(),
            next: page.next.clone(),
        };
        state.node_pages.put(validity, &query, kept);
    }
    Ok(paged_json("/api/v1/nodes", &query, body, page.next))
}

/// Get one node (viewer).
#[utoipa::path(
    get, path = "/api/v1/nodes/{node_id}", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The node", body = Node),
        AuthErrors,
        (status = 404, description = "Unknown node", body = ErrorBody),
    )
)]
async fn get_node(
    State(state): State<AppState>,
    _: Allowed<Read>,
    ApiPath(node_id): ApiPath<String>,
) -> Result<Json<Node>, ApiError> {
    Ok(Json(state.service.get_node(&node_id).await?))
}

/// Record a node's heartbeat and metrics. Needs `Authorization: Bearer <node_token>`.
#[utoipa::path(
    post, path = "/api/v1/nodes/{node_id}/heartbeat", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id")),
    request_body = Heartbeat,
    security(("node_token" = [])),
    responses(
        (status = 200, description = "Recorded", body = HeartbeatAck),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = ErrorBody),
        (status = 403, description = "Another node's token, or a user's credential", body = ErrorBody),
        (status = 404, description = "Unknown node", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn heartbeat(
    State(state): State<AppState>,
    ApiPath(node_id): ApiPath<String>,
    NodeCredential(token): NodeCredential,
    ApiJson(heartbeat): ApiJson<Heartbeat>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    let ack = state
        .service
        .heartbeat(&node_id, token.as_deref(), heartbeat)
        .await?;
    Ok(Json(ack))
}

/// Cordon/uncordon a node (`schedulable`) and/or replace its `tags` (operator).
///
/// Uncordoning and new tags may let pending deployments fit: they are placed at once.
#[utoipa::path(
    patch, path = "/api/v1/nodes/{node_id}", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id")),
    request_body = NodeUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The node as it is now", body = Node),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown node", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn update_node(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageNodes>,
    ApiPath(node_id): ApiPath<String>,
    ApiJson(update): ApiJson<NodeUpdate>,
) -> Result<Json<Node>, ApiError> {
    Ok(Json(
        state
            .service
            .update_node(&caller, &node_id, &update)
            .await?,
    ))
}

/// Deregister a node (admin): its deployments are placed elsewhere (or wait as
/// `pending`) and its token stops working.
#[utoipa::path(
    delete, path = "/api/v1/nodes/{node_id}", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deregistered; where its deployments went", body = NodeEvacuation),
        AuthErrors,
        (status = 404, description = "Unknown node", body = ErrorBody),
    )
)]
async fn deregister_node(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<DeregisterNodes>,
    ApiPath(node_id): ApiPath<String>,
) -> Result<Json<NodeEvacuation>, ApiError> {
    Ok(Json(
        state.service.deregister_node(&caller, &node_id).await?,
    ))
}

/// Drain a node (operator): cordon it and place its deployments elsewhere (or `pending`); the
/// node is told to remove its copies.
#[utoipa::path(
    post, path = "/api/v1/nodes/{node_id}/drain", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Drained; where its deployments went", body = NodeEvacuation),
        AuthErrors,
        (status = 404, description = "Unknown node", body = ErrorBody),
    )
)]
async fn drain_node(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageNodes>,
    ApiPath(node_id): ApiPath<String>,
) -> Result<Json<NodeEvacuation>, ApiError> {
    Ok(Json(state.service.drain_node(&caller, &node_id).await?))
}

/// The node's desired state: the deployments to run (compose, env, revision, GPUs)
/// and those to remove. Needs `Authorization: Bearer <node_token>` of that node.
///
/// A long-poll with `?wait=30s&index=N`: the answer comes as soon as the state's
/// `index` differs from `N` (a deploy, an update, a removal, on any replica), or
/// after `wait` with the same state. The `index` is in the body and in
/// `X-MIaaS-Index`.
#[utoipa::path(
    get, path = "/api/v1/nodes/{node_id}/deployments", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id"), DesiredStateQuery),
    security(("node_token" = [])),
    responses(
        (status = 200, description = "What to run and what to remove", body = DesiredState, headers(
            ("X-MIaaS-Index" = u64, description = "The state's index, to give back as `?index=`"),
        )),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = ErrorBody),
        (status = 403, description = "Another node's token, or a user's credential", body = ErrorBody),
        (status = 404, description = "Unknown node", body = ErrorBody),
        (status = 422, description = "Invalid wait or index", body = ErrorBody),
    )
)]
async fn desired_state(
    State(state): State<AppState>,
    ApiPath(node_id): ApiPath<String>,
    NodeCredential(token): NodeCredential,
    ApiQuery(query): ApiQuery<DesiredStateQuery>,
) -> Result<Response, ApiError> {
    let wait = match query.wait.as_deref() {
        None => std::time::Duration::ZERO,
        Some(text) => crate::config::parse_duration_or_zero(text).map_err(|err| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("wait: {err} (e.g. 30s, 500ms, 1m)"),
            )
        })?,
    };
    let desired = state
        .service
        .wait_for_desired_state(&node_id, token.as_deref(), query.index, wait)
        .await?;
    let index = desired.index;
    let mut response = Json(desired).into_response();
    response
        .headers_mut()
        .insert("x-miaas-index", axum::http::HeaderValue::from(index));
    Ok(response)
}
