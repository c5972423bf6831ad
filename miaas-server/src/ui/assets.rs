//! The dashboard's static files, embedded in the binary (no CDN: it works offline).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLE: &str = include_str!("../../assets/style.css");
const HTMX: &str = include_str!("../../assets/vendor/htmx.min.js");
const HTMX_SSE: &str = include_str!("../../assets/vendor/htmx-ext-sse.min.js");
const CONFIRM: &str = include_str!("../../assets/confirm.js");
const COPY: &str = include_str!("../../assets/copy.js");

/// `GET /ui/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "htmx.min.js" => (HTMX, "text/javascript; charset=utf-8"),
        "htmx-ext-sse.min.js" => (HTMX_SSE, "text/javascript; charset=utf-8"),
        "confirm.js" => (CONFIRM, "text/javascript; charset=utf-8"),
        "copy.js" => (COPY, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
