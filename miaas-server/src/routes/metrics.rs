//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Allowed, Read};
use crate::error::{ApiError, AuthErrors};
use crate::state::AppState;

/// The metrics route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Prometheus metrics (viewer): HTTP requests by route template, scheduling,
/// heartbeats, and the fleet (nodes and deployments by status, capacity and
/// allocation). `--metrics-listen` also serves them without credentials on a
/// separate address.
#[utoipa::path(
    get, path = "/metrics", tag = "system",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        AuthErrors,
        (status = 404, description = "Metrics are off (`--no-metrics`)", body = crate::error::ErrorBody),
    )
)]
async fn metrics(
    State(state): State<AppState>,
    _allowed: Allowed<Read>,
) -> Result<Response, ApiError> {
    scrape(&state).await
}

/// The scrape's answer.
pub(crate) async fn scrape(state: &AppState) -> Result<Response, ApiError> {
    if !state.metrics {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "metrics are off on this server (--no-metrics)",
        ));
    }
    let text = crate::metrics::scrape(&state.service, state.metrics_per_node).await?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// The router of `--metrics-listen`: `/metrics` without credentials, nothing else.
pub fn unauthenticated(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move { scrape(&state).await }),
        )
        .with_state(state)
}
