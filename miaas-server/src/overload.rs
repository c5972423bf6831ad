//! Refusing work early instead of queueing it forever: at most `--max-inflight`
//! requests are handled at once (one more is answered `503` with `Retry-After`
//! at once, never queued), and a request not answered within `--request-timeout`
//! is answered `503` with `Retry-After`. So an overload leaves the server
//! responsive: `/health`, node heartbeats and the agents' long-polls and log
//! uploads never count against the bound (a heartbeat refused under load would
//! mark a healthy node offline and move its deployments), and long-polls and log
//! uploads, long by design, are not timed out. A streamed answer (events, logs)
//! holds its slot only until its headers are sent.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Seconds a refused client is asked to wait.
const RETRY_AFTER_SECS: u64 = 1;

/// The in-flight bound and the request timeout.
#[derive(Debug, Clone)]
pub struct LoadLimits {
    slots: Arc<Semaphore>,
    max_inflight: usize,
    request_timeout: Duration,
}

impl LoadLimits {
    /// At most `max_inflight` requests at once, each answered within `request_timeout`.
    pub fn new(max_inflight: usize, request_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_inflight)),
            max_inflight,
            request_timeout,
        }
    }
}

/// How a request is treated.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// Counted and timed.
    Bounded,
    /// Neither counted nor timed: long-polls and log uploads.
    LongLived,
    /// Not counted but timed: health and heartbeats.
    Essential,
}

fn classify(method: &Method, path: &str, query: Option<&str>) -> Class {
    if path == "/health" {
        return Class::Essential;
    }
    let Some(rest) = path.strip_prefix("/api/v1/nodes/") else {
        return Class::Bounded;
    };
    let mut parts = rest.split('/');
    let (_node, what, more) = (parts.next(), parts.next(), parts.next());
    match (method, what, more) {
        (&Method::POST, Some("heartbeat"), None) => Class::Essential,
        (&Method::GET, Some("deployments"), None)
            if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("wait="))) =>
        {
            Class::LongLived
        }
        (&Method::POST, Some("logs"), Some(_)) => Class::LongLived,
        _ => Class::Bounded,
    }
}

/// The in-flight bound: the outermost layer, so that a refusal costs next to
/// nothing (no tracing, no logging: under overload there are thousands); the
/// slot is held until the response head is sent.
pub async fn limit_inflight(
    State(limits): State<LoadLimits>,
    request: Request,
    next: Next,
) -> Response {
    if class_of(&request) != Class::Bounded {
        return next.run(request).await;
    }
    let Ok(_slot) = limits.slots.clone().try_acquire_owned() else {
        return refused(
            "inflight",
            format!(
                "The server is handling the most requests it may at once ({}, --max-inflight)",
                limits.max_inflight
            ),
        );
    };
    next.run(request).await
}

/// The request timeout (inside the tracing layer: a timed-out request is logged).
pub async fn limit_time(
    State(limits): State<LoadLimits>,
    request: Request,
    next: Next,
) -> Response {
    if class_of(&request) == Class::LongLived {
        return next.run(request).await;
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => refused(
            "timeout",
            format!(
                "The request was not answered within {}s (--request-timeout)",
                limits.request_timeout.as_secs_f64()
            ),
        ),
    }
}

fn class_of(request: &Request) -> Class {
    classify(
        request.method(),
        request.uri().path(),
        request.uri().query(),
    )
}

/// `503` with `Retry-After`, counted by `reason`.
fn refused(reason: &'static str, why: String) -> Response {
    crate::metrics::record_overload(reason);
    ApiError::unavailable(
        format!("{why}; retry in {RETRY_AFTER_SECS}s"),
        RETRY_AFTER_SECS,
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_and_health_are_never_refused() {
        assert_eq!(
            classify(&Method::POST, "/api/v1/nodes/n1/heartbeat", None),
            Class::Essential
        );
        assert_eq!(classify(&Method::GET, "/health", None), Class::Essential);
    }

    #[test]
    fn long_polls_and_log_uploads_are_long_lived() {
        assert_eq!(
            classify(
                &Method::GET,
                "/api/v1/nodes/n1/deployments",
                Some("index=3&wait=30s")
            ),
            Class::LongLived
        );
        assert_eq!(
            classify(&Method::POST, "/api/v1/nodes/n1/logs/s1", None),
            Class::LongLived
        );
    }

    #[test]
    fn everything_else_is_bounded() {
        for (method, path, query) in [
            (Method::GET, "/api/v1/nodes/n1/deployments", None),
            (Method::GET, "/api/v1/nodes/n1/deployments", Some("index=3")),
            (Method::GET, "/api/v1/nodes/n1/heartbeat", None),
            (Method::POST, "/api/v1/nodes/register", None),
            (Method::GET, "/api/v1/deployments", Some("wait=30s")),
            (Method::POST, "/api/v1/deployments", None),
        ] {
            assert_eq!(classify(&method, path, query), Class::Bounded, "{path}");
        }
    }
}
