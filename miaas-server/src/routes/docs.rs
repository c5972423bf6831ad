//! `/openapi.json`, `/docs` (Swagger UI) and `/redoc` (ReDoc), all served from the
//! binary: no CDN, so they work without internet access. Each page has its own
//! Content-Security-Policy (see [`crate::security_headers`]).

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa_swagger_ui::Config;

use crate::security_headers;
use crate::state::AppState;

const REDOC_JS: &[u8] = include_bytes!("../../assets/redoc.standalone.js");

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>MIaaS Control Plane - ReDoc</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" href="data:,">
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The documentation routes for `openapi`. `/docs` answers the Swagger UI page
/// itself (`200`, as FastAPI does), not a redirect to `/docs/`.
pub fn router(openapi: utoipa::openapi::OpenApi) -> Router<AppState> {
    let openapi = Arc::new(openapi);
    let config = Arc::new(Config::new(["/openapi.json"]));
    let index = {
        let config = config.clone();
        move || {
            let config = config.clone();
            async move { swagger_file("", config) }
        }
    };
    let swagger = Router::new()
        .route("/docs", get(index.clone()))
        .route("/docs/", get(index))
        .route(
            "/docs/{*file}",
            get(move |Path(file): Path<String>| {
                let config = config.clone();
                async move { swagger_file(&file, config) }
            }),
        )
        .layer(security_headers::policy(security_headers::SWAGGER_POLICY));
    let redoc = Router::new()
        .route("/redoc", get(|| async { Html(REDOC_PAGE) }))
        .route("/redoc/redoc.standalone.js", get(redoc_js))
        .layer(security_headers::policy(security_headers::REDOC_POLICY));
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi) }
            }),
        )
        .merge(swagger)
        .merge(redoc)
}

/// A file of the vendored Swagger UI; its page learns that its files are under
/// `/docs/` whether it was asked as `/docs` or `/docs/`.
fn swagger_file(file: &str, config: Arc<Config<'static>>) -> Response {
    let found = match utoipa_swagger_ui::serve(file, config) {
        Ok(Some(found)) => found,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    };
    let mut headers = HeaderMap::new();
    if let Ok(kind) = HeaderValue::from_str(&found.content_type) {
        headers.insert(header::CONTENT_TYPE, kind);
    }
    if found.gzpipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (headers, found.bytes.into_owned()).into_response();
    }
    let bytes = if file.is_empty() || file == "index.html" {
        String::from_utf8_lossy(&found.bytes)
            .replacen("<head>", "<head>\n    <base href=\"/docs/\">", 1)
            .into_bytes()
    } else {
        found.bytes.into_owned()
    };
    (headers, bytes).into_response()
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
