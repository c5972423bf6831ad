//! The HTTP surface: every resource's routes merged in one place, with the OpenAPI
//! document generated from them.

mod deployments;
mod docs;
mod nodes;
mod placement;
mod system;

use axum::Router;
use axum::http::StatusCode;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MIaaS Control Plane",
        description = "Nodes register and heartbeat; deployments are docker-compose documents placed on nodes.",
    ),
    modifiers(&NodeTokenScheme),
    tags(
        (name = "nodes", description = "Node registration, status and heartbeats"),
        (name = "deployments", description = "Deployments: compose documents plus environment"),
        (name = "placement", description = "Placement dry runs"),
        (name = "system", description = "Health and API information"),
    )
)]
struct ApiDoc;

struct NodeTokenScheme;

impl Modify for NodeTokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "node_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The node_token returned by registration"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::router())
        .merge(nodes::router())
        .merge(deployments::router())
        .merge(placement::router())
}

/// The whole application: API routes, documentation, and JSON answers for unknown
/// routes and methods.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api_router().split_for_parts();
    api.merge(docs::router(openapi))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .with_state(state)
}
