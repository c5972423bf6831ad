//! `/api/v1/cluster/join-token`: the token nodes register with (admin only).

use axum::Json;
use axum::extract::State;
use miaas_core::model::JoinToken;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, ManageAccess};
use crate::error::{ApiError, AuthErrors};
use crate::state::AppState;

/// The cluster routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join_token))
        .routes(routes!(rotate_join_token))
}

/// Show the join token (admin). A server serving HTTPS itself also gives its CA's
/// hash and the join token pinned to it (`<join_token>::sha256:<hex>`).
#[utoipa::path(
    get, path = "/api/v1/cluster/join-token", tag = "cluster",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The join token", body = JoinToken),
        AuthErrors,
    )
)]
async fn join_token(
    State(state): State<AppState>,
    _: Allowed<ManageAccess>,
) -> Result<Json<JoinToken>, ApiError> {
    let ca_hash = state.tls.as_ref().map(crate::tls::ServerTls::ca_hash);
    let token = state.service.join_token().await?;
    Ok(Json(with_install_command(
        &state,
        token.with_ca(ca_hash.as_deref()),
    )))
}

/// Replace the join token (admin): the old one stops registering nodes at once;
/// registered nodes keep working with their own tokens.
#[utoipa::path(
    post, path = "/api/v1/cluster/join-token/rotate", tag = "cluster",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new join token", body = JoinToken),
        AuthErrors,
    )
)]
async fn rotate_join_token(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<ManageAccess>,
) -> Result<Json<JoinToken>, ApiError> {
    let ca_hash = state.tls.as_ref().map(crate::tls::ServerTls::ca_hash);
    let token = state.service.rotate_join_token(&caller).await?;
    Ok(Json(with_install_command(
        &state,
        token.with_ca(ca_hash.as_deref()),
    )))
}

/// The token with the one-liner that joins a machine with it.
fn with_install_command(state: &AppState, mut token: JoinToken) -> JoinToken {
    token.install_command = Some(super::install::install_command(state, token.for_joining()));
    token.install_warnings = super::install::install_warnings(state);
    token
}
