//! `/openapi.json`, `/docs` (Swagger UI) and `/redoc` (ReDoc), all served from the
//! binary: no CDN, so they work without internet access.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use utoipa_swagger_ui::SwaggerUi;

use crate::state::AppState;

const REDOC_JS: &[u8] = include_bytes!("../../assets/redoc.standalone.js");

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>MIaaS Control Plane - ReDoc</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The documentation routes for `openapi`.
pub fn router(openapi: utoipa::openapi::OpenApi) -> Router<AppState> {
    let swagger: Router<AppState> = SwaggerUi::new("/docs").url("/openapi.json", openapi).into();
    Router::new()
        .route("/redoc", get(|| async { Html(REDOC_PAGE) }))
        .route("/redoc/redoc.standalone.js", get(redoc_js))
        .merge(swagger)
}

async fn redoc_js() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
}
