//! Failed authentication is rate-limited per client address: past a number of
//! `401` answers in a window, that address gets `429` with `Retry-After` until the
//! window ends. Guessing tokens or passwords gets slow; honest clients never
//! notice. A credential this server issued that has expired or was revoked is not a
//! guess and is not counted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ExpiredCredential};

/// The password login, whose failures count although it carries no credential.
const LOGIN_PATH: &str = "/api/v1/auth/token";

/// Counts failed authentications per client address.
#[derive(Debug, Clone)]
pub struct AuthFailureLimiter {
    max_failures: u32,
    window: Duration,
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

impl AuthFailureLimiter {
    /// Allows `max_failures` failed authentications per address per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Arc::default(),
        }
    }

    /// Seconds until `ip` may try again, when it is blocked.
    fn blocked_for(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut failures = self.failures.lock().ok()?;
        let (count, since) = *failures.get(&ip)?;
        let elapsed = now.duration_since(since);
        if elapsed >= self.window {
            failures.remove(&ip);
            return None;
        }
        (count >= self.max_failures).then(|| (self.window - elapsed).as_secs().max(1))
    }

    fn record_failure(&self, ip: IpAddr, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() > 100_000 {
            // a flood of addresses: forget the expired ones
            let window = self.window;
            failures.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let entry = failures.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }
}

/// The middleware: refuses authentication attempts from blocked addresses, counts
/// the `401` answers to authentication attempts.
pub async fn limit_auth_failures(
    State(limiter): State<AuthFailureLimiter>,
    request: Request,
    next: Next,
) -> Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    // Only attempts to authenticate (a credential, or a password login) are
    // refused; anonymous calls stay open.
    let authenticating =
        request.headers().contains_key(header::AUTHORIZATION) || request.uri().path() == LOGIN_PATH;
    let Some(ip) = ip.filter(|_| authenticating) else {
        return next.run(request).await;
    };
    if let Some(retry_after) = limiter.blocked_for(ip, Instant::now()) {
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed authentication attempts; retry in {retry_after}s"),
        )
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let response = next.run(request).await;
    let expired = response.extensions().get::<ExpiredCredential>().is_some();
    if response.status() == StatusCode::UNAUTHORIZED && !expired {
        limiter.record_failure(ip, Instant::now());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_too_many_failures_until_the_window_ends() {
        let limiter = AuthFailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.blocked_for(ip, t0), None);
            limiter.record_failure(ip, t0);
        }
        assert_eq!(
            limiter.blocked_for(ip, t0 + Duration::from_secs(10)),
            Some(50)
        );
        assert_eq!(limiter.blocked_for(other, t0), None, "per address");
        assert_eq!(limiter.blocked_for(ip, t0 + Duration::from_secs(61)), None);
    }
}
