//! `X-Request-Id`: kept from the request when it is a sensible id, generated
//! otherwise; on every response, in the request's log span and in every error
//! body, so that a user's error report can be found in the log.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use miaas_core::events::Origin;

use crate::client_addr::ClientAddr;

/// The header.
pub const REQUEST_ID: &str = "x-request-id";

/// The request's id, in its extensions (for the log span).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The layer: runs the request on behalf of its [`Origin`] (id and client).
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        // 128 random bits from the thread's generator (no system call per request)
        .map_or_else(
            || format!("{:032x}", rand::random::<u128>()),
            str::to_string,
        );
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let origin = Origin::new(Some(id.clone()), client);
    let mut response = origin.scope(next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// At most 128 visible ASCII characters: anything else is replaced, so that a
/// client cannot forge log lines.
fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_short_ids_are_kept() {
        assert!(acceptable("req-42_abc.DEF"));
        assert!(!acceptable(""));
        assert!(!acceptable("a b"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable(&"x".repeat(129)));
    }
}
