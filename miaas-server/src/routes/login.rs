//! `/api/v1/auth/token`: a password login that hands out an access token.

use axum::Json;
use axum::extract::State;
use miaas_core::model::{AccessToken, LoginRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::state::AppState;

/// The login route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_token))
}

/// Exchange a username and password for a signed access token (JWT) that expires
/// after `expires_in` seconds. Send it as `Authorization: Bearer <access_token>`.
#[utoipa::path(
    post, path = "/api/v1/auth/token", tag = "auth",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Logged in", body = AccessToken),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Invalid username or password", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
        (status = 429, description = "Too many failed logins from this address, or for this user; see Retry-After", body = ErrorBody),
        (status = 503, description = "Every password check is busy (a login flood); see Retry-After", body = ErrorBody),
    )
)]
async fn issue_token(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<AccessToken>, ApiError> {
    Ok(Json(state.service.login(&request).await?))
}
