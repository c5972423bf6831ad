//! `/api/v1/tokens`: long-lived API tokens (admin only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use miaas_core::model::{ApiTokenInfo, CreatedApiToken, TokenRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, ManageAccess};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// The API token routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

/// List API tokens that are not revoked (admin); never the tokens themselves.
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Active API tokens, oldest first", body = Vec<ApiTokenInfo>),
        AuthErrors,
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    _: Allowed<ManageAccess>,
) -> Result<Json<Vec<ApiTokenInfo>>, ApiError> {
    Ok(Json(state.service.list_api_tokens().await?))
}

/// Create an API token with a role (admin). The token is in this answer only; the
/// server keeps a hash. It is revoked when the user who created it is removed.
#[utoipa::path(
    post, path = "/api/v1/tokens", tag = "tokens",
    request_body = TokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the token is shown once", body = CreatedApiToken),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_token(
    State(state): State<AppState>,
    Allowed(creator, _): Allowed<ManageAccess>,
    ApiJson(request): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<CreatedApiToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.service.create_api_token(&creator, &request).await?),
    ))
}

/// Revoke an API token (admin): it stops working at once.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        AuthErrors,
        (status = 404, description = "No such active token", body = ErrorBody),
    )
)]
async fn revoke_token(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageAccess>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_api_token(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
