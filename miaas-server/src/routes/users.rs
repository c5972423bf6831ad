//! `/api/v1/users`: user accounts (admin only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use miaas_core::model::{CreatedUser, NewUser, PasswordChange, User};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, Caller, ManageAccess};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// The user routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(delete_user))
        .routes(routes!(change_password))
}

/// List users (admin).
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every user, by name", body = Vec<User>),
        AuthErrors,
    )
)]
async fn list_users(
    State(state): State<AppState>,
    _: Allowed<ManageAccess>,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.service.list_users().await?))
}

/// Create a user (admin). Without `password`, one is generated and returned once.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedUser),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageAccess>,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.service.create_user(&caller, &new).await?),
    ))
}

/// Remove a user (admin): its access tokens, and the API tokens it created, stop
/// working at once. The last admin cannot be removed.
#[utoipa::path(
    delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "The user's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed"),
        AuthErrors,
        (status = 404, description = "Unknown user", body = ErrorBody),
        (status = 409, description = "The last admin", body = ErrorBody),
    )
)]
async fn delete_user(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageAccess>,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_user(&caller, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a user's password: an admin sets anyone's; users change their own with
/// `old_password` (a wrong one is `403`). Every access token issued to the user
/// before stops working at once.
#[utoipa::path(
    put, path = "/api/v1/users/{username}/password", tag = "users",
    params(("username" = String, Path, description = "The user's name")),
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed"),
        AuthErrors,
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown user", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid field, or old_password missing", body = ErrorBody),
        (status = 503, description = "Every password check is busy; see Retry-After", body = ErrorBody),
    )
)]
async fn change_password(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiPath(username): ApiPath<String>,
    ApiJson(change): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .change_password(&caller, &username, &change)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
