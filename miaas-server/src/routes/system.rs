//! `/health` and `/`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The system routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(root))
        .routes(routes!(ca_certificate))
}

/// The CA certificate (PEM) of a server serving HTTPS itself (`--tls-cert`), for
/// clients to check against a join token's pin before trusting it. Public: a
/// certificate is no secret, and a client fetches it before it can verify the
/// server. `404` when the server does not serve HTTPS itself.
#[utoipa::path(
    get, path = "/cacerts", tag = "system",
    responses(
        (status = 200, description = "The CA certificate", content_type = "application/x-pem-file", body = String),
        (status = 404, description = "This server does not serve HTTPS itself", body = crate::error::ErrorBody),
    )
)]
async fn ca_certificate(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &state.tls {
        Some(tls) => (
            [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
            tls.ca_pem(),
        )
            .into_response(),
        None => crate::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "This server does not serve HTTPS itself (--tls-cert)",
        )
        .into_response(),
    }
}

/// Health of the server and its database.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// Why it is unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What this API is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiInfo {
    /// Name of the API.
    pub message: String,
    /// Server version.
    pub version: String,
    /// Path of the interactive documentation.
    pub docs: String,
    /// Path of the ReDoc documentation.
    pub redoc: String,
    /// Path of the OpenAPI document.
    pub openapi: String,
}

/// Health check: `200` when the database answers, `503` when it does not.
#[utoipa::path(
    get, path = "/health", tag = "system",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    )
)]
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match state.service.health().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "healthy".into(),
                detail: None,
            }),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unhealthy".into(),
                    detail: Some("the database does not answer".into()),
                }),
            )
        }
    }
}

/// API information.
#[utoipa::path(
    get, path = "/", tag = "system",
    responses((status = 200, description = "API information", body = ApiInfo))
)]
async fn root() -> Json<ApiInfo> {
    Json(ApiInfo {
        message: "MIaaS Control Plane API".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        docs: "/docs".into(),
        redoc: "/redoc".into(),
        openapi: "/openapi.json".into(),
    })
}
