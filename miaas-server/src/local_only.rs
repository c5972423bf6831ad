//! Defences of `--auth off` against the browser: without credentials, the only
//! thing between a web page the developer visits and the API is the browser's
//! same-origin policy. Two holes remain, and both are closed here:
//! - DNS rebinding: a page whose name resolves to 127.0.0.1 is same-origin with
//!   itself, and its requests carry its own name in `Host`. Only `Host` values
//!   naming a loopback address or `localhost` are served (`421` otherwise).
//! - Cross-origin reads: CORS allows only loopback origins (`http://localhost:*`,
//!   `http://127.0.0.1:*`, `http://[::1]:*`) unless `CORS_ORIGINS` says otherwise,
//!   so the original's UI on a local development port keeps working.
//!
//! (Cross-origin writes that need no preflight are refused by [`crate::extract`]:
//! JSON bodies must say `Content-Type: application/json`.)

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Whether `host` (a `Host` value or URL authority, with or without a port) names
/// this machine's loopback interface.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [::1] or [::1]:8080
        rest.split(']').next().unwrap_or_default()
    } else {
        match host.rsplit_once(':') {
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a browser `Origin` is a page served from this machine's loopback.
pub fn is_loopback_origin(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| !a.contains('/') && is_loopback_host(a))
}

/// The middleware (with `--auth off` only): `421` for a request whose `Host`
/// names anything but loopback. A request without a host (HTTP/1.0) is served.
pub async fn require_loopback_host(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !is_loopback_host(&host) => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "With authentication off this server answers only to localhost and loopback \
                 addresses, not to Host {host:?}; turn authentication on to serve other names"
            ),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_any_port() {
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:9000",
            "127.3.2.1:80",
            "[::1]",
            "[::1]:8080",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "[2001:db8::1]:80",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn loopback_origins_only() {
        let origin = |o: &str| HeaderValue::from_str(o).unwrap();
        assert!(is_loopback_origin(&origin("http://localhost:3000")));
        assert!(is_loopback_origin(&origin("http://127.0.0.1:5173")));
        assert!(is_loopback_origin(&origin("http://[::1]:8080")));
        assert!(!is_loopback_origin(&origin("http://evil.example")));
        assert!(!is_loopback_origin(&origin(
            "http://localhost.evil.example"
        )));
        assert!(!is_loopback_origin(&origin("null")));
    }
}
