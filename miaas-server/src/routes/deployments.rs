//! `/api/v1/deployments`: create, update, list, get, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use miaas_core::model::{Deployment, DeploymentAck, DeploymentRequest, StatusReport};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, BearerToken};
use crate::state::AppState;

/// The deployment routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_deployment, list_deployments))
        .routes(routes!(get_deployment, delete_deployment))
        .routes(routes!(report_status))
}

/// Create, update or remove a deployment.
///
/// `action: apply` creates it, or updates it (a new revision) when the id exists and
/// the spec changed; the same spec again changes nothing. `action: remove` marks it
/// for deletion, as `DELETE` does.
#[utoipa::path(
    post, path = "/api/v1/deployments", tag = "deployments",
    request_body = DeploymentRequest,
    responses(
        (status = 202, description = "Accepted", body = DeploymentAck),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "`remove` of an unknown deployment", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_deployment(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DeploymentRequest>,
) -> Result<(StatusCode, Json<DeploymentAck>), ApiError> {
    let ack = state.service.submit_deployment(&request).await?;
    Ok((StatusCode::ACCEPTED, Json(ack)))
}

/// List all deployments, oldest first.
#[utoipa::path(
    get, path = "/api/v1/deployments", tag = "deployments",
    responses((status = 200, description = "All deployments", body = Vec<Deployment>))
)]
async fn list_deployments(
    State(state): State<AppState>,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    Ok(Json(state.service.list_deployments().await?))
}

/// Get one deployment, with its compose document.
#[utoipa::path(
    get, path = "/api/v1/deployments/{deployment_id}", tag = "deployments",
    params(("deployment_id" = String, Path, description = "The deployment's id")),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
    )
)]
async fn get_deployment(
    State(state): State<AppState>,
    ApiPath(deployment_id): ApiPath<String>,
) -> Result<Json<Deployment>, ApiError> {
    Ok(Json(state.service.get_deployment(&deployment_id).await?))
}

/// Mark a deployment for deletion; the answer says `deleting`.
#[utoipa::path(
    delete, path = "/api/v1/deployments/{deployment_id}", tag = "deployments",
    params(("deployment_id" = String, Path, description = "The deployment's id")),
    responses(
        (status = 200, description = "Marked for deletion", body = DeploymentAck),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
    )
)]
async fn delete_deployment(
    State(state): State<AppState>,
    ApiPath(deployment_id): ApiPath<String>,
) -> Result<Json<DeploymentAck>, ApiError> {
    Ok(Json(state.service.delete_deployment(&deployment_id).await?))
}

/// A node reports on a deployment placed on it: `running`, `failed`, or `deleted`
/// (which completes a deletion and frees its resources). Needs the Bearer token of
/// the node the deployment is placed on.
#[utoipa::path(
    post, path = "/api/v1/deployments/{deployment_id}/status", tag = "deployments",
    params(("deployment_id" = String, Path, description = "The deployment's id")),
    request_body = StatusReport,
    security(("node_token" = [])),
    responses(
        (status = 200, description = "Recorded; the deployment as it is now", body = Deployment),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = ErrorBody),
        (status = 403, description = "The deployment is not on this node", body = ErrorBody),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
        (status = 409, description = "The report contradicts the deployment's state", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn report_status(
    State(state): State<AppState>,
    ApiPath(deployment_id): ApiPath<String>,
    BearerToken(token): BearerToken,
    ApiJson(report): ApiJson<StatusReport>,
) -> Result<Json<Deployment>, ApiError> {
    let deployment = state
        .service
        .report_status(token.as_deref(), &deployment_id, &report)
        .await?;
    Ok(Json(deployment))
}
