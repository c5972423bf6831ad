//! The HTTP surface: every resource's routes merged in one place, with the OpenAPI
//! document generated from them.

mod cluster;
mod deployments;
mod docs;
mod events;
pub(crate) mod install;
mod login;
mod logs;
mod metrics;
mod nodes;
pub(crate) mod placement;
pub(crate) mod streaming;
mod system;
mod templates;
mod tokens;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use miaas_core::model::page::{Page, PageQuery};
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
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Password login for an access token"),
        (name = "nodes", description = "Node registration, status and heartbeats"),
        (name = "deployments", description = "Deployments: compose documents plus environment"),
        (name = "placement", description = "Placement dry runs"),
        (name = "templates", description = "Templates: compose documents rendered from parameters"),
        (name = "events", description = "The event log: every change, followed live"),
        (name = "users", description = "User accounts (admin)"),
        (name = "tokens", description = "Long-lived API tokens (admin)"),
        (name = "cluster", description = "The join token (admin)"),
        (name = "system", description = "Health and API information"),
    )
)]
struct ApiDoc;

/// The three credentials: users' (access token or API token), nodes' and the
/// cluster's join token. All are `Authorization: Bearer`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str, format: Option<&str>| {
            let mut scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description.to_string()));
            if let Some(format) = format {
                scheme = scheme.bearer_format(format);
            }
            SecurityScheme::Http(scheme.build())
        };
        components.add_security_scheme(
            "bearer",
            bearer(
                "A user's access token from POST /api/v1/auth/token (JWT), or an API token \
                 (miaas_api_...). Roles: viewer reads; operator also deploys, cordons, \
                 drains, tags and plans; admin also deregisters nodes, manages users, \
                 tokens and the join token, and reveals secrets.",
                Some("JWT"),
            ),
        );
        components.add_security_scheme(
            "node_token",
            bearer("The node_token returned by registration (mnode_...)", None),
        );
        components.add_security_scheme(
            "join_token",
            bearer(
                "The cluster's join token (miaas_join_...), from `miaas tokens join`",
                None,
            ),
        );
    }
}

/// A page as a JSON array (the list endpoints' body, as in the original), with
/// `X-Next-Cursor` and a `Link` to the next page when there is one.
pub(crate) fn paged<T: serde::Serialize>(path: &str, query: &PageQuery, page: Page<T>) -> Response {
    match json_array(&page.items) {
        Ok(body) => paged_json(path, query, body, page.next),
        Err(err) => err.into_response(),
    }
}

/// `items` as a JSON array.
pub(crate) fn json_array<T: serde::Serialize>(items: &[T]) -> Result<Bytes, ApiError> {
    // a page of 1,000 nodes is half a megabyte: written into room made for it, not
    // grown (and copied) from a few bytes
    let mut body = Vec::with_capacity(items.len().saturating_mul(640).max(64));
    serde_json::to_writer(&mut body, items)
        .map_err(|err| ApiError::from(miaas_core::Error::Corrupt(err.to_string())))?;
    Ok(body.into())
}

/// A page already serialized (see [`paged`]).
pub(crate) fn paged_json(
    path: &str,
    query: &PageQuery,
    body: Bytes,
    next: Option<String>,
) -> Response {
    let json = HeaderValue::from_static("application/json");
    let mut response = ([(axum::http::header::CONTENT_TYPE, json)], body).into_response();
    if let Some(next) = next {
        let limit = query
            .limit
            .map(|l| format!("limit={l}&"))
            .unwrap_or_default();
        let link = format!("<{path}?{limit}cursor={next}>; rel=\"next\"");
        let headers = response.headers_mut();
        for (name, value) in [("x-next-cursor", next), ("link", link)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(system::router())
        .merge(login::router())
        .merge(nodes::router())
        .merge(deployments::router())
        .merge(placement::router())
        .merge(templates::router())
        .merge(users::router())
        .merge(tokens::router())
        .merge(cluster::router())
        .merge(events::router())
        .merge(logs::router())
        .merge(metrics::router())
}

/// The document as served with `--auth off`: no route asks for a credential, so
/// none declares a security requirement and no scheme is offered.
fn without_security(openapi: &mut utoipa::openapi::OpenApi) {
    openapi.security = None;
    if let Some(components) = openapi.components.as_mut() {
        components.security_schemes.clear();
    }
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            operation.security = None;
        }
    }
}

/// The router of `--metrics-listen`.
pub fn metrics_only(state: AppState) -> Router {
    metrics::unauthenticated(state)
}

/// The whole application: API routes, documentation, and JSON answers for unknown
/// routes and methods.
pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = api_router().split_for_parts();
    if !state.auth {
        without_security(&mut openapi);
    }
    let api = if state.metrics {
        api.route_layer(axum::middleware::from_fn(crate::metrics::track))
    } else {
        api
    };
    api.merge(docs::router(openapi))
        .merge(crate::ui::router())
        .merge(install::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
        })
        .with_state(state)
}
