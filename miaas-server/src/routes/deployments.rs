//! `/api/v1/deployments`: create, update, list, get, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use miaas_core::model::page::PageQuery;
use miaas_core::model::{Deployment, DeploymentAck, DeploymentRequest, StatusReport};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, Deploy, NodeCaller, NodeCredential, Read};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::routes::paged;
use crate::state::AppState;

/// Query of `GET /api/v1/deployments/{deployment_id}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct RevealQuery {
    /// `true` shows the `env` values in clear (admin only; `403` otherwise).
    #[serde(default)]
    pub reveal: bool,
}

/// The deployment routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_deployment, list_deployments))
        .routes(routes!(get_deployment, delete_deployment))
        .routes(routes!(report_status))
}

/// Create, update or remove a deployment (operator).
///
/// `action: apply` creates it, or updates it (a new revision) when the id exists and
/// the spec changed; the same spec again changes nothing. `action: remove` marks it
/// for deletion, as `DELETE` does. Without `rendered_compose`, the server renders
/// the template `template_id` with `params` (secret parameters go to `env`).
#[utoipa::path(
    post, path = "/api/v1/deployments", tag = "deployments",
    request_body = DeploymentRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted", body = DeploymentAck),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "`remove` of an unknown deployment", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_deployment(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<Deploy>,
    ApiJson(request): ApiJson<DeploymentRequest>,
) -> Result<(StatusCode, Json<DeploymentAck>), ApiError> {
    let ack = state.service.submit_deployment(&caller, &request).await?;
    Ok((StatusCode::ACCEPTED, Json(ack)))
}

/// List deployments, oldest first, `env` values shown as `***`: up to `limit`
/// (default and most 1000); `X-Next-Cursor` and `Link` name the next page when
/// there is one.
#[utoipa::path(
    get, path = "/api/v1/deployments", tag = "deployments",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of deployments, oldest first", body = Vec<Deployment>, headers(
            ("X-Next-Cursor" = String, description = "The `cursor` of the next page, when there is one"),
            ("Link" = String, description = "`<...>; rel=\"next\"`, when there is a next page"),
        )),
        AuthErrors,
        (status = 422, description = "Invalid limit or cursor", body = ErrorBody),
    )
)]
async fn list_deployments(
    State(state): State<AppState>,
    Allowed(principal, ..): Allowed<Read>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let page = (state.service)
        .list_deployments_page(&principal, &query)
        .await?;
    Ok(paged("/api/v1/deployments", &query, page))
}

/// Get one deployment, with its compose document; `env` values are shown as `***`
/// unless an admin asks `?reveal=true`.
#[utoipa::path(
    get, path = "/api/v1/deployments/{deployment_id}", tag = "deployments",
    params(
        ("deployment_id" = String, Path, description = "The deployment's id"),
        RevealQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The deployment", body = Deployment),
        AuthErrors,
        (status = 404, description = "Unknown deployment", body = ErrorBody),
        (status = 422, description = "Invalid query", body = ErrorBody),
    )
)]
async fn get_deployment(
    State(state): State<AppState>,
    Allowed(principal, ..): Allowed<Read>,
    ApiPath(deployment_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RevealQuery>,
) -> Result<Json<Deployment>, ApiError> {
    let deployment = (state.service)
        .get_deployment(&principal, &deployment_id, query.reveal)
        .await?;
    Ok(Json(deployment))
}

/// Mark a deployment for deletion (operator); the answer says `deleting`.
#[utoipa::path(
    delete, path = "/api/v1/deployments/{deployment_id}", tag = "deployments",
    params(("deployment_id" = String, Path, description = "The deployment's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Marked for deletion", body = DeploymentAck),
        AuthErrors,
        (status = 404, description = "Unknown deployment", body = ErrorBody),
    )
)]
async fn delete_deployment(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<Deploy>,
    ApiPath(deployment_id): ApiPath<String>,
) -> Result<Json<DeploymentAck>, ApiError> {
    Ok(Json(
        state
            .service
            .delete_deployment(&caller, &deployment_id)
            .await?,
    ))
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
        (status = 200, description = "Recorded; the deployment as it is now (env redacted)", body = Deployment),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = ErrorBody),
        (status = 403, description = "The deployment is not on this node, or a user's credential", body = ErrorBody),
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
    NodeCaller(caller): NodeCaller,
    NodeCredential(token): NodeCredential,
    ApiJson(report): ApiJson<StatusReport>,
) -> Result<Json<Deployment>, ApiError> {
    let deployment = state
        .service
        .report_status(&caller, token.as_deref(), &deployment_id, &report)
        .await?;
    Ok(Json(deployment))
}
