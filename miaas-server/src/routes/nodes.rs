//! `/api/v1/nodes`: registration, listing, heartbeats.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use miaas_core::model::{Heartbeat, HeartbeatAck, Node, NodeRegistration, RegistrationResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, BearerToken};
use crate::state::AppState;

/// The node routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_node))
        .routes(routes!(list_nodes))
        .routes(routes!(get_node))
        .routes(routes!(heartbeat))
}

/// Register a node, or update the node of the same name.
///
/// A known `name` keeps its `node_id` and gets a fresh `node_token`; the previous
/// token stops working at once.
#[utoipa::path(
    post, path = "/api/v1/nodes/register", tag = "nodes",
    request_body = NodeRegistration,
    responses(
        (status = 201, description = "Registered", body = RegistrationResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn register_node(
    State(state): State<AppState>,
    ApiJson(registration): ApiJson<NodeRegistration>,
) -> Result<(StatusCode, Json<RegistrationResponse>), ApiError> {
    let credentials = state.service.register_node(&registration).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegistrationResponse {
            node_id: credentials.node_id,
            node_token: credentials.node_token,
            control_plane_url: state.public_url.to_string(),
        }),
    ))
}

/// List all nodes with their capabilities, status and latest metrics.
#[utoipa::path(
    get, path = "/api/v1/nodes", tag = "nodes",
    responses((status = 200, description = "All nodes, by name", body = Vec<Node>))
)]
async fn list_nodes(State(state): State<AppState>) -> Result<Json<Vec<Node>>, ApiError> {
    Ok(Json(state.service.list_nodes().await?))
}

/// Get one node.
#[utoipa::path(
    get, path = "/api/v1/nodes/{node_id}", tag = "nodes",
    params(("node_id" = String, Path, description = "The node's id")),
    responses(
        (status = 200, description = "The node", body = Node),
        (status = 404, description = "Unknown node", body = ErrorBody),
    )
)]
async fn get_node(
    State(state): State<AppState>,
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
        (status = 403, description = "Another node's token", body = ErrorBody),
        (status = 404, description = "Unknown node", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn heartbeat(
    State(state): State<AppState>,
    ApiPath(node_id): ApiPath<String>,
    BearerToken(token): BearerToken,
    ApiJson(heartbeat): ApiJson<Heartbeat>,
) -> Result<Json<HeartbeatAck>, ApiError> {
    let ack = state
        .service
        .heartbeat(&node_id, token.as_deref(), heartbeat)
        .await?;
    Ok(Json(ack))
}
